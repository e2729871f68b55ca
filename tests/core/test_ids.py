"""Snowflake ids: unique across threads and processes sharing a store, monotonic within a process."""

from __future__ import annotations

import multiprocessing as mp
import threading
import traceback
from pathlib import Path

from mldashfs.ids import EPOCH_MS, MAX_SEQ, Snowflake, node_of, timestamp_ms
from mldashfs.store import Store


def _ids_in_threads(gen: Snowflake, threads: int, per_thread: int) -> list[list[int]]:
    out: list[list[int]] = [[] for _ in range(threads)]

    def run(i: int) -> None:
        out[i] = [gen.next() for _ in range(per_thread)]

    ts = [threading.Thread(target=run, args=(i,)) for i in range(threads)]
    for t in ts:
        t.start()
    for t in ts:
        t.join()
    return out


def _worker(store_dir: str, q: mp.Queue) -> None:
    """Put the ids of 4 threads on `q`, or the traceback that stopped them (so the test shows it)."""
    try:
        with Store.open(store_dir) as store:
            per_thread = _ids_in_threads(store._ids, 4, 25_000)
    except BaseException:
        q.put(traceback.format_exc())
        raise
    q.put(per_thread)


def test_200k_ids_from_4_threads_and_2_processes_are_unique(tmp_path: Path) -> None:
    ctx = mp.get_context("spawn")
    q: mp.Queue = ctx.Queue()
    procs = [ctx.Process(target=_worker, args=(str(tmp_path), q)) for _ in range(2)]
    for p in procs:
        p.start()
    results = [q.get(timeout=120) for _ in procs]
    assert not [r for r in results if isinstance(r, str)], "a worker failed:\n" + "".join(
        r for r in results if isinstance(r, str))
    for p in procs:
        p.join(timeout=60)
        assert p.exitcode == 0
    all_ids = [i for per_proc in results for per_thread in per_proc for i in per_thread]
    assert len(all_ids) == 200_000
    assert len(set(all_ids)) == 200_000
    for per_proc in results:
        for per_thread in per_proc:  # each thread sees increasing ids
            assert all(a < b for a, b in zip(per_thread, per_thread[1:], strict=False))
        merged = sorted(i for t in per_proc for i in t)
        assert len({node_of(i) for i in merged}) == 1  # one node per process
    assert len({node_of(r[0][0]) for r in results}) == 2  # the two processes hold different nodes


def test_monotonic_when_the_clock_steps_back_and_the_sequence_overflows() -> None:
    now = [EPOCH_MS + 10_000]
    gen = Snowflake(lambda: 7, clock=lambda: now[0])
    ids = [gen.next() for _ in range(MAX_SEQ + 10)]  # overflows the sequence within one ms
    now[0] -= 5_000  # the clock steps back five seconds
    ids += [gen.next() for _ in range(100)]
    now[0] += 20_000
    ids += [gen.next() for _ in range(3)]
    assert all(a < b for a, b in zip(ids, ids[1:], strict=False))
    assert {node_of(i) for i in ids} == {7}
    assert timestamp_ms(ids[-1]) == now[0]


def test_ids_are_64_bit_and_carry_their_time() -> None:
    gen = Snowflake(lambda: 1023)
    i = gen.next()
    assert 0 < i < 2**63
    assert node_of(i) == 1023


def test_node_leases_are_exclusive_and_freed(tmp_path: Path) -> None:
    a = Store.open(tmp_path)
    b = Store.open(tmp_path)
    assert a._ids.node != b._ids.node
    node_a = a._ids.node
    a.close()
    others = {Store.open(tmp_path) for _ in range(3)}
    try:
        assert b._ids.node not in {s._ids.node for s in others}
    finally:
        for s in others:
            s.close()
        b.close()
    assert 0 <= node_a <= 1023
