"""The SDK and the CLI on a remote store: saves return once staged, upload in the background, and the
Experiment's exit waits for them; `mldashfs status` and `sync` report and finish uploads."""

from __future__ import annotations

import json
import subprocess
import sys

from ml_dash import Experiment
from tests.remote_stores import RemoteStore

E = "alice/cv/resnet"


def experiment(remote: RemoteStore, machine: str, **kw: object) -> Experiment:
    return Experiment(prefix=E, store=remote.location, mongo=remote.mongo,
                      cache_dir=str(remote.cache(machine)), **kw)  # type: ignore[arg-type]


def test_saves_upload_in_the_background_and_exit_waits_for_them(remote_store: RemoteStore,
                                                                 monkeypatch: object) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", remote_store.endpoint)  # type: ignore[attr-defined]
    results = []
    with experiment(remote_store, "a").run as exp:
        for i in range(50):
            results.append(exp.files("results").save_json({"step": i}, to=f"r{i}.json"))
        assert all(r["id"].isdigit() and len(r["checksum"]) == 64 for r in results)
        exp.params.set(lr=1e-3)
        exp.metrics("loss").append(value=0.5, step=1)
    b = remote_store.open("b")
    seen = {v.name: (v.id_str, v.sha256) for v in b.list(f"{E}/results")}
    assert seen == {f"r{i}.json": (r["id"], r["checksum"]) for i, r in enumerate(results)}
    with experiment(remote_store, "b").run as again:  # another machine reads through its own cache
        assert json.loads(again.files("results/r7.json").read_text()) == {"step": 7}


def test_status_and_sync_from_the_cli(remote_store: RemoteStore, monkeypatch: object) -> None:
    remote_store.server.fault(503, seconds=60)
    monkeypatch.setenv("AWS_ENDPOINT_URL", remote_store.endpoint)  # type: ignore[attr-defined]
    with experiment(remote_store, "a", wait_uploads=False).run as exp:
        exp.files.save_text("hello", to="note.txt")
    cli = [sys.executable, "-m", "mldashfs.cli"]
    r = subprocess.run([*cli, "status", "--json", *remote_store.cli_options("a")], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    st = json.loads(r.stdout)
    assert st["remote"] and st["pending"]["versions"] == 1 and st["pending"]["bytes"] == 5
    remote_store.server.clear_faults()
    r = subprocess.run([*cli, "sync", *remote_store.cli_options("a")], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert remote_store.open("b").read_bytes(remote_store.open("b").latest(f"{E}/note.txt")) == b"hello"


def test_a_download_of_files_listed_while_their_uploads_run(remote_store: RemoteStore, monkeypatch: object,
                                                            tmp_path: object) -> None:
    """Copies of one checkpoint saved and downloaded at once: files listed while pending are read after
    their uploads published them onto the first copy's blob (dedup) and dropped their own copies."""
    monkeypatch.setenv("AWS_ENDPOINT_URL", remote_store.endpoint)  # type: ignore[attr-defined]
    data = bytes(range(256)) * 400
    with experiment(remote_store, "a").run as exp:
        for i in range(60):
            exp.files("ckpts").save_blob(data, to=f"c{i:02d}.pt")
        got = exp.files("ckpts").download("*.pt", to=str(tmp_path))
        assert len(got) == 60 and all(open(p, "rb").read() == data for p in got)
    assert remote_store.open("b").usage(f"{E}/ckpts").blobs == 1
