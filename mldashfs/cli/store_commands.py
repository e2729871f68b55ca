"""The store commands of `mldashfs`: init, ls, versions, get, put, tag, describe and gc (with retention).

Each command opens the store at `--store`, makes one or a few Store calls and prints an
aligned table (or `--json`, the SDK's result dicts). Bad input raises the core's StoreError
types before anything is stored; `main` turns them into one line on stderr and exit status 1.
"""

from __future__ import annotations

import argparse
import json
import os
from collections.abc import Iterable, Iterator
from typing import Any

from .. import retention
from ..downloads import download
from ..errors import InvalidPath, InvalidValue, IsADirectory, NotFound
from ..paths import EXPERIMENT_DEPTH, check_path, depth, hidden_below, hidden_in, join, relative_to
from ..records import Entry, Version
from ..retention import Policy, check_policy
from ..store import Store, check_tags
from .destinations import destination
from .main import open_store
from .progress import progress_bar
from .tables import (
    dir_json,
    emit_json,
    human_size,
    local_time,
    render,
    short_sha,
    shown_name,
    usage_line,
    version_json,
)

PAGE = 1000


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add the store commands to the `mldashfs` subparsers; `common` carries --store."""
    out = argparse.ArgumentParser(add_help=False)
    out.add_argument(
        "--json", action="store_true", help="print JSON (the SDK's result dicts) instead of a table"
    )
    parents = [common, out]

    p = sub.add_parser("init", parents=[common], help="make an empty store (commands never make one by accident)")
    p.add_argument("dir", nargs="?", metavar="DIR", help="the store folder (default: --store, $ML_DASH_STORE or ./.ml-dash)")
    p.set_defaults(func=cmd_init)

    p = sub.add_parser(
        "ls", parents=parents, help="list a directory of the store (the root lists namespaces)"
    )
    p.add_argument("path", nargs="?", default="", metavar="NS/PROJECT/EXP[/PREFIX]")
    p.add_argument("-r", "--recursive", action="store_true", help="list every file below PATH")
    p.set_defaults(func=cmd_ls)

    p = sub.add_parser("versions", parents=parents, help="the history of one file, oldest first")
    p.add_argument("path", metavar="PATH")
    p.set_defaults(func=cmd_versions)

    p = sub.add_parser("get", parents=parents, help="copy a file (newest or --id) out, verified by SHA-256")
    p.add_argument("path", metavar="PATH")
    p.add_argument("dest", metavar="DEST", help="a file, or a directory to copy into under the file's name")
    p.add_argument("--id", help="a version id (default: the newest version)")
    p.set_defaults(func=cmd_get)

    p = sub.add_parser("put", parents=parents, help="store a local file as a new version")
    p.add_argument("src", metavar="SRC")
    p.add_argument("path", metavar="PATH", help="where to store it; ending in '/' means into that folder")
    p.add_argument("--tag", action="append", default=[], metavar="T", help="a tag (repeatable)")
    p.add_argument(
        "--meta", action="append", default=[], metavar="K=V", help="metadata; V is JSON if it parses"
    )
    p.add_argument("--description", metavar="D")
    p.add_argument("--create", action="store_true", help="make the store if --store names none")
    p.set_defaults(func=cmd_put)

    p = sub.add_parser("tag", parents=parents, help="show or change the tags of a version (no new version)")
    p.add_argument("path", metavar="PATH")
    p.add_argument("--id", help="a version id (default: the newest version)")
    p.add_argument("--add", action="append", default=[], metavar="T", help="add a tag (repeatable)")
    p.add_argument("--remove", action="append", default=[], metavar="T", help="remove a tag (repeatable)")
    p.add_argument("--set", metavar="T,T", help="replace all tags (comma-separated; '' clears)")
    p.set_defaults(func=cmd_tag)

    p = sub.add_parser("describe", parents=parents, help="set the description of a version ('' clears)")
    p.add_argument("path", metavar="PATH")
    p.add_argument("text", metavar="TEXT")
    p.add_argument("--id", help="a version id (default: the newest version)")
    p.set_defaults(func=cmd_describe)

    p = sub.add_parser("du", parents=parents,
                       help="bytes of the live versions below PATH: logical, and stored (dedup shares blobs)")
    p.add_argument("path", nargs="?", default="", metavar="PATH")
    p.set_defaults(func=cmd_du)

    p = sub.add_parser("gc", parents=parents,
                       help="delete old versions by a retention policy, reclaim the bytes of deleted ones")
    p.add_argument("--older-than", metavar="AGE", help="versions older than AGE (7d, 12h, 30m) may go")
    p.add_argument("--keep-last", type=int, metavar="N", help="keep the newest N versions of each file")
    p.add_argument("--keep-tagged", action="store_true", default=None, help="keep every tagged version")
    p.add_argument("--dry-run", action="store_true", help="change nothing; report what would go")
    p.set_defaults(func=cmd_gc)


def resolve(store: Store, path: str, version_id: str | None) -> Version:
    """The newest version of `path`, or version `version_id`, which must belong to `path`."""
    if version_id is None:
        return store.latest(path)
    v = store.get_version(version_id)
    if v.path != path or v.deleted:
        raise NotFound(f"{path} has no version {version_id}")
    return v


def file_path(path: str) -> str:
    """A checked store path that can hold a file: namespace/project/experiment/[prefix/]filename."""
    p = check_path(path)
    if depth(p) <= EXPERIMENT_DEPTH:
        raise InvalidPath(
            f"{path!r} is not a file path: files live at namespace/project/experiment/[prefix/]name"
        )
    return p


def cmd_init(args: argparse.Namespace) -> int:
    """Make an empty store at DIR (or --store); a store already there is left as it is."""
    if args.dir is not None:
        args.store = args.dir
    try:
        open_store(args).close()
    except NotFound:
        open_store(args, create=True).close()
        print(f"made an empty store at {args.store}")
    else:
        print(f"{args.store} already holds a store; left as it is")
    return 0


def cmd_ls(args: argparse.Namespace) -> int:
    """List a directory (files with size, mtime and id), one file, or with -r every file below."""
    path = check_path(args.path)
    with open_store(args) as store:
        node = store.stat(path)
        if isinstance(node, Version):
            versions, top = [node], node.dir
        elif args.recursive:  # an experiment's run data (.ml_dash/) only when PATH lies in it
            versions, top = [v for v in store.list(path) if not hidden_below(v.path, path)], path
        else:
            hidden = hidden_in(path)
            entries = [e for e in _entries(store, path) if e.name not in hidden]
            return _print_entries(path, entries, link_targets(store, [e.version for e in entries]), args.json)
        targets = link_targets(store, versions)
    if args.json:
        emit_json([version_json(v, **_target(v, targets)) for v in versions])
    else:
        rows = [
            [shown_name(relative_to(v.path, top), v, targets), human_size(v.size), local_time(v.mtime), v.id_str]
            for v in versions
        ]
        print(render(["PATH" if args.recursive else "NAME", "SIZE", "MODIFIED", "ID"], rows, right=["SIZE"]))
    return 0


def _entries(store: Store, path: str) -> Iterator[Entry]:
    """Every child of a directory, reading the listing page by page."""
    after: str | None = None
    while True:
        page = store.listdir(path, after=after, limit=PAGE)
        yield from page
        if len(page) < PAGE:
            return
        after = page[-1].name


def link_targets(store: Store, versions: Iterable[Version | None]) -> dict[int, str]:
    """The targets of the links among `versions`, by version id (a listing shows them as `ls -l` does)."""
    return {v.id: store.link_target(v) for v in versions if v is not None and v.is_link}


def _target(v: Version, targets: dict[int, str]) -> dict[str, str]:
    """The `linkTarget` key of a link's JSON row (nothing for a file)."""
    return {"linkTarget": targets[v.id]} if v.is_link else {}


def _print_entries(path: str, entries: list[Entry], targets: dict[int, str], as_json: bool) -> int:
    """Print a directory listing: sub-directories (with a trailing '/'), files and links (`name -> target`)."""
    if as_json:
        emit_json(
            [
                version_json(e.version, **_target(e.version, targets))
                if e.version is not None
                else dir_json(join(path, e.name), e.name, _dir_mtime(e))
                for e in entries
            ]
        )
        return 0
    rows = []
    for e in entries:
        if e.version is not None:
            v = e.version
            rows.append([shown_name(e.name, v, targets), human_size(v.size), local_time(v.mtime), v.id_str])
        else:
            rows.append([e.name + "/", "-", local_time(_dir_mtime(e)), ""])
    print(render(["NAME", "SIZE", "MODIFIED", "ID"], rows, right=["SIZE"]))
    return 0


def _dir_mtime(e: Entry) -> float:
    """A directory entry's mtime (0 when the listing carries no Dir record)."""
    return e.dir.mtime if e.dir is not None else 0.0


def cmd_versions(args: argparse.Namespace) -> int:
    """Print the history of one file: id, size, short sha256, created time and tags, oldest first."""
    path = file_path(args.path)
    with open_store(args) as store:
        node = store.stat(path)
        if not isinstance(node, Version):
            raise IsADirectory(f"{path} is a directory; `versions` takes a file")
        history = store.history(path)
        targets = link_targets(store, history)
    if args.json:
        emit_json([version_json(v, **_target(v, targets)) for v in history])
        return 0
    rows = [
        [v.id_str, human_size(v.size), short_sha(v.sha256), local_time(v.created_at), ",".join(v.tags)]
        for v in history
    ]
    print(render(["ID", "SIZE", "SHA256", "CREATED", "TAGS"], rows, right=["SIZE"]))
    return 0


def cmd_get(args: argparse.Namespace) -> int:
    """Copy the newest version (or --id) of a file to DEST, verified against its SHA-256; a link is
    written as a symbolic link to the same target (as `cp -a` copies links)."""
    path = file_path(args.path)
    with open_store(args) as store:
        v = resolve(store, path, args.id)
        with progress_bar(v.size, v.name) as progress:
            written = download(store, v, destination(args.dest, v), progress)
    if args.json:
        emit_json(version_json(v, dest=written, **({"linkTarget": os.readlink(written)} if v.is_link else {})))
    elif v.is_link:
        print(f"{written} -> {os.readlink(written)}: {v.path} id {v.id_str}, a symbolic link")
    else:
        print(f"{written}: {v.path} id {v.id_str}, {human_size(v.size)}, sha256 {short_sha(v.sha256)}")
    return 0


def cmd_put(args: argparse.Namespace) -> int:
    """Store SRC at PATH (PATH ending in '/' means SRC's name inside that folder) as a new version."""
    if not os.path.exists(args.src):
        raise NotFound(f"no such file: {args.src}")
    if os.path.isdir(args.src):
        raise IsADirectory(f"{args.src} is a directory; `put` takes a file")
    target = join(args.path, os.path.basename(args.src)) if args.path.endswith("/") else args.path
    path = file_path(target)
    metadata = parse_meta(args.meta)
    tags = check_tags(args.tag)
    with open_store(args) as store:
        with progress_bar(os.path.getsize(args.src), os.path.basename(path)) as progress:
            v = store.put_file(
                path, args.src, progress=progress, description=args.description, tags=tags, metadata=metadata
            )
    if args.json:
        emit_json(version_json(v))
    else:
        print(f"{v.path}: id {v.id_str}, {human_size(v.size)}, sha256 {short_sha(v.sha256)}")
    return 0


def parse_meta(items: list[str]) -> dict[str, Any]:
    """`--meta K=V` pairs as a dict; V is parsed as JSON when it parses (50, true, [1,2]), else kept as text."""
    metadata: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        if not sep or not key.strip():
            raise InvalidValue(f"--meta expects KEY=VALUE, got {item!r}")
        try:
            metadata[key.strip()] = json.loads(raw, parse_constant=_not_json)
        except _NotJson:
            raise InvalidValue(
                f"--meta {item}: NaN and infinities are not JSON (quote the value, '{key}=\"{raw}\"', to keep it as text)"
            ) from None
        except ValueError:
            metadata[key.strip()] = raw
    return metadata


class _NotJson(Exception):
    """A NaN or infinity where JSON was parsed: not a number JSON can carry."""


def _not_json(constant: str) -> Any:
    """`json.loads`' hook for NaN, Infinity and -Infinity, which Python's json accepts and JSON does not."""
    raise _NotJson(constant)


def cmd_tag(args: argparse.Namespace) -> int:
    """Show a version's tags, or change them in place: --set replaces, then --add, then --remove."""
    path = file_path(args.path)
    with open_store(args) as store:
        v = resolve(store, path, args.id)
        if args.set is not None or args.add or args.remove:
            base = list(v.tags) if args.set is None else [t for t in args.set.split(",") if t.strip()]
            removed = set(check_tags(args.remove))
            tags = [t for t in check_tags(base + args.add) if t not in removed]
            v = store.update(v.id, tags=tags)
    if args.json:
        emit_json(version_json(v))
    else:
        print(f"{v.path} id {v.id_str}: {', '.join(v.tags) if v.tags else '(no tags)'}")
    return 0


def cmd_describe(args: argparse.Namespace) -> int:
    """Set (or with '' clear) the description of a version in place; no new version is made."""
    path = file_path(args.path)
    with open_store(args) as store:
        v = resolve(store, path, args.id)
        v = store.update(v.id, description=args.text or None)
    if args.json:
        emit_json(version_json(v))
    else:
        print(f"{v.path} id {v.id_str}: {v.description or '(no description)'}")
    return 0


def cmd_du(args: argparse.Namespace) -> int:
    """Logical bytes (every live version, history included) against stored bytes (their distinct blobs)."""
    path = check_path(args.path)
    with open_store(args) as store:
        if path:
            store.stat(path)  # NotFound for a path that is nothing
        u = store.usage(path)
    if args.json:
        emit_json({"path": path, **u.as_dict()})
        return 0
    print(usage_line(u, whole=path == ""))
    return 0


def cmd_gc(args: argparse.Namespace) -> int:
    """Expire versions by the retention policy (the options, under each experiment's own policy file),
    then delete the bytes that only deleted versions still name (deletes are soft until then)."""
    given = {"older_than": args.older_than, "keep_last": args.keep_last, "keep_tagged": args.keep_tagged}
    default = Policy(**check_policy({k: v for k, v in given.items() if v is not None}, "the command line"))
    with open_store(args) as store:
        report = retention.run(store, default, dry_run=args.dry_run)
    if args.json:
        emit_json({"dryRun": report.dry_run, "reclaimedBytes": report.reclaimed_bytes,
                   "removedVersions": [version_json(v) for v in report.expired]})
        return 0
    if report.expired:
        rows = [[v.path, v.id_str, human_size(v.size), local_time(v.created_at), ",".join(v.tags)]
                for v in report.expired]
        print(render(["PATH", "ID", "SIZE", "CREATED", "TAGS"], rows, right=["SIZE"]))
    n, size = len(report.expired), human_size(report.reclaimed_bytes)
    print(f"would remove {n} versions, reclaim {size}" if report.dry_run else f"removed {n} versions, reclaimed {size}")
    return 0
