#!/usr/bin/env python
"""Time a folder rename of N files (default 100,000) in the MongoDB catalog.

    python scripts/bench_mongo_rename.py [--uri mongodb://host:port/] [--files 100000] [--versions 2]

Without --uri (or $MLDASH_TEST_MONGO_URI) it starts the wire test server (scripts/mongo_test_server.py).
The folder is written straight into the collections (the documents insert_version writes, `--versions`
per file, all but the newest deleted), then renamed with `MongoCatalog.rename_dir`, and the catalog is
checked. Prints one line of timings; the database is dropped at the end.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
import uuid

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bson.int64 import Int64  # noqa: E402
from pymongo import MongoClient  # noqa: E402

from mldashfs.mongo_catalog import MongoCatalog  # noqa: E402
from mldashfs.mongo_schema import DIRS, FILES, VERSIONS, ancestors  # noqa: E402

E = "bench/mongo/rename"


def fill(db: object, top: str, files: int, versions: int, folders: int) -> None:
    """`files` files in `folders` folders below `top`, `versions` versions each, inserted in batches."""
    now = time.time()
    dirs = set(ancestors(top + "/x")) | {f"{top}/d{j}" for j in range(folders)}
    db[DIRS].insert_many([{"path": d, "parent": d.rpartition("/")[0], "name": d.rpartition("/")[2],  # type: ignore[index]
                           "explicit": False, "mtime": now, "mode": 0o755} for d in sorted(dirs)])
    vid = 1
    vdocs: list[dict[str, object]] = []
    fdocs: list[dict[str, object]] = []
    for i in range(files):
        path = f"{top}/d{i % folders}/f{i:07}.bin"
        for k in range(versions):
            vdocs.append({"_id": Int64(vid), "path": path, "size": 1, "sha256": "0" * 64,
                          "content_type": "application/octet-stream", "description": None, "tags": [],
                          "metadata": "{}", "created_at": now, "updated_at": now, "mtime": now, "mode": 0o644,
                          "state": "uploaded", "key": f"k/{vid}", "deleted_at": None if k == versions - 1 else now})
            vid += 1
        fdocs.append({"path": path, "parent": path.rpartition("/")[0], "name": path.rpartition("/")[2],
                      "latest": Int64(vid - 1), "gen": 1})
        if len(fdocs) == 5000:
            db[VERSIONS].insert_many(vdocs)  # type: ignore[index]
            db[FILES].insert_many(fdocs)  # type: ignore[index]
            vdocs, fdocs = [], []
    if fdocs:
        db[VERSIONS].insert_many(vdocs)  # type: ignore[index]
        db[FILES].insert_many(fdocs)  # type: ignore[index]


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--uri", default=os.environ.get("MLDASH_TEST_MONGO_URI"))
    parser.add_argument("--files", type=int, default=100_000)
    parser.add_argument("--versions", type=int, default=2)
    parser.add_argument("--folders", type=int, default=100)
    args = parser.parse_args()
    server = None
    if not args.uri:
        from tests.servers.mongo import start_mongo_server

        server = start_mongo_server()
        args.uri = server.uri
    name = f"bench_{uuid.uuid4().hex[:12]}"
    try:
        cat = MongoCatalog(args.uri, name)
        client: MongoClient[dict[str, object]] = MongoClient(args.uri)
        with client:
            start = time.monotonic()
            fill(client[name], f"{E}/runs", args.files, args.versions, args.folders)
            filled = time.monotonic() - start
            start = time.monotonic()
            cat.rename_dir(f"{E}/runs", f"{E}/archived", time.time(), True)
            renamed = time.monotonic() - start
            problems = cat.check()
            moved = client[name][FILES].count_documents({"parent": {"$regex": f"^{E}/archived/"}})
            pipeline = cat.pipeline_updates()
            cat.close()
            client.drop_database(name)
        print(f"{args.files} files x {args.versions} versions: filled in {filled:.1f} s, renamed in {renamed:.1f} s "
              f"({args.files / renamed:,.0f} files/s, pipeline updates: {pipeline}); "
              f"{moved} moved, {len(problems)} problems")
        return 0 if moved == args.files and not problems else 1
    finally:
        if server is not None:
            server.stop()


if __name__ == "__main__":
    sys.exit(main())
