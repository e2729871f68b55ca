"""`mldashfs sync` and `mldashfs status`: the write-back uploads of a remote store, from the shell."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import Any

from ..catalog import Usage
from ..errors import Unavailable
from .tables import human_size, local_time, usage_line


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `sync` and `status` to the `mldashfs` subparsers; `common` carries --store and friends."""
    p = sub.add_parser("sync", parents=[common], help="upload every version still pending in the cache, then exit")
    p.add_argument("--timeout", type=float, default=None, metavar="S", help="give up after S seconds (exit 1)")
    p.set_defaults(func=cmd_sync)
    p = sub.add_parser("status", parents=[common],
                       help="the store's bytes (logical, stored), pending uploads, cache use, upload errors")
    p.add_argument("--json", action="store_true", help="print JSON for scripts")
    p.set_defaults(func=cmd_status)


def cmd_sync(args: argparse.Namespace) -> int:
    """Finish the uploads a killed daemon or training process left in the journal."""
    from .main import open_store

    with open_store(args) as store:
        if not store.remote:
            print(f"{store.location} is a local store: nothing to upload")
            return 0
        bar = ProgressBar()
        ok = store.wait_uploads(bar.update, args.timeout)
        bar.close()
        if not ok:
            n = store.status()["pending"]["versions"]
            raise Unavailable(f"{n} versions are still pending after {args.timeout:g} s (see `mldashfs status`)")
    print("every pending version is uploaded")
    return 0


def cmd_status(args: argparse.Namespace) -> int:
    from .main import open_store

    with open_store(args) as store:
        st = store.status()
    if args.json:
        print(json.dumps(st, indent=2))
        return 0
    print(f"store    {st['store']}")
    known = st["bytes"] is not None
    print(f"bytes    {usage_line(Usage(**st['bytes']), whole=True) if known else 'unknown: MongoDB cannot be reached'}")
    if not st["remote"]:
        print(f"folder   {st['folder']} (local store: no uploads)")
        return 0
    p, c = st["pending"], st["cache"]
    oldest = f", oldest committed {local_time(p['oldest'])}" if p["oldest"] else ""
    print(f"pending  {p['versions']} versions, {human_size(p['bytes'])}{oldest}")
    print(f"cache    {human_size(c['bytes'])} of {human_size(c['bound'])} in {c['folder']}")
    for e in st["errors"]:
        print(f"error    {local_time(e['at'])}  {e['message']}")
    return 0


class ProgressBar:
    """A progress bar of pending bytes on a terminal (nothing otherwise)."""

    def __init__(self) -> None:
        self._bar: Any = None
        self._start: int | None = None
        self._last = time.monotonic()

    def update(self, n: int, size: int) -> None:
        if not sys.stderr.isatty():
            return
        if self._bar is None:
            from tqdm import tqdm

            self._start = size
            self._bar = tqdm(total=size, desc="uploading", unit="B", unit_scale=True, unit_divisor=1024,
                             file=sys.stderr, leave=False)
        assert self._start is not None
        self._bar.n = max(0, self._start - size)
        self._bar.set_postfix_str(f"{n} versions left", refresh=True)

    def close(self) -> None:
        if self._bar is not None:
            self._bar.close()
