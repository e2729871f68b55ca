"""`mldashfs fsck`: check a store (and repair what is safe to repair), from the shell.

Exit status: 0 clean; 1 everything found was repaired; 2 damage left (found without --repair, or not
repairable); 3 the store cannot be opened or reached, or the options are wrong.
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import Any, NoReturn

from ..errors import StoreError
from ..fsck import UNUSABLE, Report, fsck
from ..store import Store
from .progress import progress_bar


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `fsck` to the `mldashfs` subparsers; `common` carries --store and friends."""
    p: argparse.ArgumentParser = sub.add_parser("fsck", parents=[common], help="check a store for missing, corrupt or orphan bytes and "
                       "catalog damage; exit 0 clean, 1 repaired, 2 damaged, 3 cannot open")
    p.add_argument("--verify", action="store_true", help="read every byte and compare its SHA-256")
    p.add_argument("--repair", action="store_true",
                   help="remove old orphans and crash leftovers, fix the catalog, abort stale multipart uploads, "
                        "retry stuck uploads")
    p.add_argument("--json", action="store_true", help="print the report as JSON")
    p.add_argument("--min-age", type=float, default=None, metavar="S",
                   help="orphans younger than S seconds are left alone (default: 3600 local, 604800 remote)")
    p.set_defaults(func=cmd_fsck)

    def usage_error(message: str) -> NoReturn:
        p.print_usage(sys.stderr)
        p.exit(UNUSABLE, f"{p.prog}: error: {message}\n")

    p.error = usage_error  # type: ignore[method-assign]


def cmd_fsck(args: argparse.Namespace) -> int:
    from .main import store_options

    try:
        # uploaders run only to retry stuck uploads: without --repair fsck changes nothing
        store = Store.open(args.store, create=False, upload_workers=0, **store_options(args))
    except StoreError as e:
        print(f"mldashfs: {e}", file=sys.stderr)
        return UNUSABLE
    try:
        with store:
            report = fsck(store, verify=args.verify, repair=args.repair, min_age=args.min_age,
                          progress_bar=progress_bar)
    except StoreError as e:  # S3 or MongoDB stopped answering: the check is incomplete
        print(f"mldashfs: fsck stopped: {e}", file=sys.stderr)
        return UNUSABLE
    if args.json:
        print(json.dumps(report.as_json(), indent=2))
    else:
        show(report)
    return report.status


def show(report: Report) -> None:
    """One line per finding, then a summary."""
    for p in report.problems:
        state = "repaired" if p.repaired else "found"
        print(f"{state:8} {p.kind:9} {p.subject}: {p.detail}")
    c = report.checked
    verdict = {0: "clean", 1: "repaired", 2: "damaged"}[report.status]
    print(f"{report.store}: {verdict} ({c['versions']} versions, {c['blobs']} blobs, "
          f"{c['verified_bytes']} bytes verified, {len(report.problems)} problems)")
