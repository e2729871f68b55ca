"""Several processes on one store at once (a training script and the mount daemon)."""

from __future__ import annotations

import multiprocessing as mp
import threading
from pathlib import Path

from mldashfs.store import Store

E = "alice/cv/resnet"


def _writer(root: str, who: int, n: int) -> None:
    with Store.open(root) as s:
        for i in range(n):
            s.put_bytes(f"{E}/shared.txt", f"{who}:{i}".encode())
            s.put_bytes(f"{E}/p{who}/f{i}.txt", b"x")


def test_two_processes_and_threads_write_one_store(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_writer, args=(str(tmp_path), w, 150)) for w in range(2)]
    for p in procs:
        p.start()
    with Store.open(tmp_path) as s:
        ts = [threading.Thread(target=lambda w=w: [s.put_bytes(f"{E}/t{w}/f{i}", b"y") for i in range(100)])
              for w in range(3)]
        for t in ts:
            t.start()
        for t in ts:
            t.join()
        for p in procs:
            p.join(timeout=120)
            assert p.exitcode == 0
        hist = s.history(f"{E}/shared.txt")
        assert len(hist) == 300 and len({v.id for v in hist}) == 300
        assert len(s.list(E)) == 1 + 300 + 300
        newest = s.read_bytes(s.latest(f"{E}/shared.txt"))
        assert newest == s.read_bytes(hist[-1])
