"""`mldashfs` command line: store commands (ls, versions, get, put, tag, describe) and mount/umount."""

from __future__ import annotations

import argparse
import os
import sys
from typing import Any

from ..errors import StoreError


def default_store() -> str:
    """The store used when --store is not given: $ML_DASH_STORE, else ./.ml-dash."""
    return os.environ.get("ML_DASH_STORE") or "./.ml-dash"


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand; each command module adds its own."""
    from . import mount_commands, store_commands, upload_commands

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=None,
                        help="store folder, or s3://bucket/prefix (default: $ML_DASH_STORE or ./.ml-dash)")
    remote = common.add_argument_group("remote stores (s3://)")
    remote.add_argument("--mongo", metavar="URI", help="MongoDB holding the metadata (default: $ML_DASH_MONGO_URI)")
    remote.add_argument("--cache-dir", metavar="DIR",
                        help="local cache and upload journal (default: $ML_DASH_CACHE_DIR, else ~/.cache/mldashfs/...)")
    remote.add_argument("--cache-size", metavar="SIZE", help="bound of the cache, e.g. 20G (default: 20G)")
    remote.add_argument("--s3-endpoint", metavar="URL", help="S3 endpoint (default: $AWS_ENDPOINT_URL, else AWS)")
    parser = argparse.ArgumentParser(prog="mldashfs", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store_commands.register(sub, common)
    mount_commands.register(sub, common)
    upload_commands.register(sub, common)
    return parser


def store_options(args: argparse.Namespace) -> dict[str, Any]:
    """The remote-store options given on the command line, as `Store.open` takes them."""
    names = ("mongo", "cache_dir", "cache_size", "s3_endpoint")
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors become one line on stderr and a non-zero exit status."""
    from .mount_commands import helper_argv

    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(helper_argv(argv) or argv)
    if getattr(args, "store", None) is None:
        args.store = default_store()
    try:
        return int(args.func(args) or 0)
    except StoreError as e:
        print(f"mldashfs: {e}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
