#!/usr/bin/env python
"""Dedup, measured: an unchanged checkpoint saved N times with the SDK's `save_torch`, and the space it
takes, on a local store and on a remote one (S3 + MongoDB test servers, started here and stopped by
pid), against the bytes the saves wrote.

- local: the bytes of every file in the store folder (`du --apparent-size`), less the empty store's;
- remote: the bytes of every object under the bucket's prefix (`list_objects_v2`);
- both: `Store.usage()` of the experiment (logical and stored bytes, blobs), every version's bytes
  read back from another Store and hashed, and the seconds of the saves (with the Experiment's exit,
  which waits for the uploads, on the remote store).

    python scripts/dedup_space.py                 # 100 saves of a 100 MB checkpoint, both stores
    python scripts/dedup_space.py --quick         # 10 saves of 8 MB (the smoke run)
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path[:0] = [str(ROOT), str(ROOT / "sdk"), str(ROOT / "scripts")]

from script_servers import remote_servers, script_env  # noqa: E402

EXPERIMENT = "bench/dedup/ckpt"
BUCKET = "dedup"


def checkpoint(mb: int) -> Any:
    """A state dict of about `mb` MB (float32 weights), the same at every call."""
    import torch

    g = torch.Generator().manual_seed(0)
    n = mb * 1_000_000 // 4
    return {"weight": torch.randn(n // 1000, 1000, generator=g), "step": torch.tensor(0)}


def folder_bytes(folder: Path) -> int:
    out = subprocess.run(["du", "-s", "-b", "--apparent-size", str(folder)], capture_output=True, text=True,
                         check=True)
    return int(out.stdout.split()[0])


def bucket_bytes(client: Any, prefix: str) -> tuple[int, int]:
    """(objects, bytes) under `prefix`."""
    n = size = 0
    for page in client.get_paginator("list_objects_v2").paginate(Bucket=BUCKET, Prefix=prefix):
        for o in page.get("Contents", []):
            n, size = n + 1, size + o["Size"]
    return n, size


def saves(where: dict[str, Any], state: Any, n: int) -> tuple[float, int]:
    """`n` save_torch calls of `state` to one path; (seconds, bytes of one save)."""
    from ml_dash import Experiment

    t0 = time.perf_counter()
    with Experiment(prefix=EXPERIMENT, **where).run as exp:
        size = 0
        for _ in range(n):
            size = exp.files("models").save_torch(state, to="ckpt.pt")["sizeBytes"]
    return time.perf_counter() - t0, size


def check(store: Any, n: int) -> dict[str, Any]:
    """Every version read back and hashed; the experiment's usage."""
    history = store.history(f"{EXPERIMENT}/models/ckpt.pt")
    bad = sum(hashlib.sha256(store.read_bytes(v)).hexdigest() != v.sha256 for v in history)
    if len(history) != n or bad:
        raise SystemExit(f"dedup_space: {len(history)} versions of {n}, {bad} with wrong bytes")
    return store.usage(EXPERIMENT).as_dict()


def run_local(work: Path, state: Any, n: int) -> dict[str, Any]:
    from mldashfs.store import Store

    folder = work / "store"
    Store.open(folder, create=True).close()
    empty = folder_bytes(folder)
    seconds, size = saves({"store": str(folder)}, state, n)
    with Store.open(folder) as s:
        usage = check(s, n)
    return {"seconds": seconds, "save_bytes": size, "written": n * size, "on_disk": folder_bytes(folder) - empty,
            "usage": usage}


def run_remote(work: Path, state: Any, n: int) -> dict[str, Any]:
    from mldashfs.store import Store

    env = script_env()
    with remote_servers(env, BUCKET) as (s3, mongo):
        os.environ["AWS_ENDPOINT_URL"] = s3.endpoint
        location = f"s3://{BUCKET}/team"
        Store.open(location, mongo=mongo, cache_dir=str(work / "setup"), create=True).close()
        seconds, size = saves({"store": location, "mongo": mongo, "cache_dir": str(work / "cache-a")}, state, n)
        client = s3.client()
        objects, stored = bucket_bytes(client, "team/files/")
        with Store.open(location, mongo=mongo, cache_dir=str(work / "cache-b")) as other:
            usage = check(other, n)
    return {"seconds": seconds, "save_bytes": size, "written": n * size, "objects": objects, "in_s3": stored,
            "usage": usage}


def report(f: dict[str, Any]) -> str:
    mib = 1 << 20
    rows = ["| Store | Saves | Bytes saved | Space taken | Ratio | `usage`: logical / stored, blobs | Time |",
            "| --- | --- | --- | --- | --- | --- | --- |"]
    for name, r in f["stores"].items():
        taken = r["on_disk"] if name == "local" else r["in_s3"]
        where = "store folder" if name == "local" else f"S3, {r['objects']} object(s)"
        u = r["usage"]
        rows.append(f"| {name} | {f['saves']} x {r['save_bytes'] / 1e6:.1f} MB | {r['written'] / mib:,.0f} MiB "
                    f"| {taken / mib:,.1f} MiB ({where}) | {r['written'] / max(taken, 1):.0f}x "
                    f"| {u['logical'] / mib:,.0f} MiB / {u['stored'] / mib:,.1f} MiB, {u['blobs']} "
                    f"| {r['seconds']:.1f} s |")
    return "\n".join(rows)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--saves", type=int, default=None, help="saves of the checkpoint (100; --quick 10)")
    parser.add_argument("--mb", type=int, default=None, help="checkpoint size in MB (100; --quick 8)")
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--local-only", action="store_true")
    parser.add_argument("--json", metavar="FILE")
    a = parser.parse_args()
    n = a.saves or (10 if a.quick else 100)
    state = checkpoint(a.mb or (8 if a.quick else 100))
    with tempfile.TemporaryDirectory(prefix="mldashfs-dedup-") as d:
        work = Path(d)
        stores = {"local": run_local(work / "local", state, n)}
        if not a.local_only:
            stores["remote"] = run_remote(work / "remote", state, n)
    figures = {"saves": n, "stores": stores}
    print(report(figures))
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=2))
    return 0


if __name__ == "__main__":
    sys.exit(main())
