"""`mldashfs` command line: store commands (init, ls, versions, get, put, tag, describe, gc) and mount/umount."""

from __future__ import annotations

import argparse
import sys
from importlib.metadata import PackageNotFoundError, version
from typing import Any

from ..default_store import default_store
from ..errors import StoreError
from ..store import Store
from .terminal import Escaping, escape


def open_store(args: argparse.Namespace, create: bool = False) -> Store:
    """The store at --store. Only `init` and `--create` make one, so a mistyped path is an error, not a new store."""
    return Store.open(args.store, create=create or getattr(args, "create", False), **store_options(args))


def add_remote_options(p: argparse.ArgumentParser, default: Any) -> None:
    """--mongo, --cache-dir, --cache-size and --s3-endpoint: how to reach and cache an s3:// store."""
    g = p.add_argument_group("remote stores (--store s3://bucket/prefix)")
    g.add_argument("--mongo", metavar="URI", default=default,
                   help="MongoDB holding the metadata (default: $ML_DASH_MONGO_URI)")
    g.add_argument("--cache-dir", metavar="DIR", default=default,
                   help="local cache and upload journal (default: $ML_DASH_CACHE_DIR, else ~/.cache/mldashfs/...)")
    g.add_argument("--cache-size", metavar="SIZE", default=default, help="bound of the cache, e.g. 20G (default: 20G)")
    g.add_argument("--s3-endpoint", metavar="URL", default=default,
                   help="S3 endpoint (default: $AWS_ENDPOINT_URL, else AWS)")


def _version() -> str:
    """The installed package's version (the source tree's when it is not installed)."""
    try:
        return version("mldashfs")
    except PackageNotFoundError:
        return "unknown"


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand; each command module adds its own."""
    from . import fsck_commands, mount_commands, store_commands, upload_commands

    store_help = "store folder, or s3://bucket/prefix (default: $ML_DASH_STORE or ./.ml-dash)"
    common = argparse.ArgumentParser(add_help=False)
    # SUPPRESS: a --store after the subcommand overrides one before it, and its absence keeps that one
    common.add_argument("--store", default=argparse.SUPPRESS, help=store_help)
    add_remote_options(common, argparse.SUPPRESS)
    parser = argparse.ArgumentParser(prog="mldashfs", description=__doc__)
    parser.add_argument("--store", default=None, help=store_help)
    add_remote_options(parser, None)
    parser.add_argument("--version", action="version", version=f"mldashfs {_version()}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store_commands.register(sub, common)
    mount_commands.register(sub, common)
    upload_commands.register(sub, common)
    fsck_commands.register(sub, common)
    return parser


def store_options(args: argparse.Namespace) -> dict[str, Any]:
    """The remote-store options given on the command line, as `Store.open` takes them."""
    names = ("mongo", "cache_dir", "cache_size", "s3_endpoint")
    return {n: getattr(args, n) for n in names if getattr(args, n, None) is not None}


def main(argv: list[str] | None = None) -> int:
    """Run one command; errors become one line on stderr and a non-zero exit status."""
    from .mount_commands import helper_argv

    # names are bytes on Linux: print those that are not UTF-8 back as they came, never a traceback
    for stream in (sys.stdout, sys.stderr):
        reconfigure = getattr(stream, "reconfigure", None)
        if reconfigure is not None:
            reconfigure(errors="surrogateescape")
    sys.stdout = Escaping(sys.stdout)  # type: ignore[assignment]  # (stderr keeps progress bars' \r)
    argv = list(sys.argv[1:] if argv is None else argv)
    args = build_parser().parse_args(helper_argv(argv) or argv)
    if args.store is None:
        args.store = default_store()
    try:
        return int(args.func(args) or 0)
    except StoreError as e:
        print(f"mldashfs: {escape(str(e))}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
