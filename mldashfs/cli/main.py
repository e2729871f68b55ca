"""`mldashfs` command line: store commands (ls, versions, get, put, tag, describe) and mount/umount."""

from __future__ import annotations

import argparse
import os
import sys

from ..errors import StoreError


def default_store() -> str:
    """The store used when --store is not given: $ML_DASH_STORE, else ./.ml-dash."""
    return os.environ.get("ML_DASH_STORE") or "./.ml-dash"


def build_parser() -> argparse.ArgumentParser:
    """The parser with every subcommand; each command module adds its own."""
    from . import mount_commands, store_commands

    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--store", default=None, help="store folder (default: $ML_DASH_STORE or ./.ml-dash)")
    parser = argparse.ArgumentParser(prog="mldashfs", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    store_commands.register(sub, common)
    mount_commands.register(sub, common)
    return parser


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
