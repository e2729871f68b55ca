"""Which local files a directory or a list upload sends, and under which relative names.

Everything is planned (and every name validated) before the first byte is stored, so a bad
entry in a batch stores nothing at all.
"""

from __future__ import annotations

import fnmatch
import os
from collections.abc import Iterable, Sequence

from mldashfs import paths
from mldashfs.errors import InvalidPath, NotFound

from . import locations


def _matches(rel: str, patterns: Sequence[str]) -> bool:
    name = rel.rsplit("/", 1)[-1]
    return any(fnmatch.fnmatchcase(rel, p) or fnmatch.fnmatchcase(name, p) for p in patterns)


def _as_given(src: str) -> str:
    """The path as the user wrote it, for preserve_path=True; it must stay inside the current dir."""
    norm = os.path.normpath(src).replace(os.sep, "/")
    if os.path.isabs(src) or norm == ".." or norm.startswith("../"):
        raise InvalidPath(
            f"preserve_path=True keeps the path as written, so it must be relative and inside "
            f"the current directory: {src!r}"
        )
    return "" if norm == "." else norm


def plan_dir(
    src: str | os.PathLike[str],
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    preserve_path: bool = False,
) -> list[tuple[str, str]]:
    """(local file, relative store name) for every file below `src` that passes include/exclude.

    Names keep their path inside `src`; with preserve_path=True they also keep `src` as written.
    Patterns match the path relative to `src` or the bare file name; exclude wins over include.
    """
    top = os.fspath(src)
    if not os.path.exists(top):
        raise NotFound(f"no such local directory: {top!r}")
    if not os.path.isdir(top):
        raise InvalidPath(f"not a directory: {top!r} (use upload() for a single file)")
    base = _as_given(top) if preserve_path else ""
    plan: list[tuple[str, str]] = []
    for root, dirs, files in os.walk(top):
        dirs.sort()
        for name in sorted(files):
            full = os.path.join(root, name)
            rel = os.path.relpath(full, top).replace(os.sep, "/")
            if include and not _matches(rel, include):
                continue
            if exclude and _matches(rel, exclude):
                continue
            plan.append((full, locations.relative(paths.join(base, rel))))
    return plan


def plan_all(
    sources: Iterable[str | os.PathLike[str]],
    include: Sequence[str] | None = None,
    exclude: Sequence[str] | None = None,
    preserve_path: bool = False,
) -> list[tuple[str, str]]:
    """(local file, relative store name) for a list of files and directories, in the given order."""
    if isinstance(sources, (str, os.PathLike)):
        raise TypeError("upload_all() takes a list of paths; use upload() or upload_dir() for one")
    plan: list[tuple[str, str]] = []
    for item in sources:
        src = os.fspath(item)
        if os.path.isdir(src):
            plan.extend(plan_dir(src, include, exclude, preserve_path))
        elif os.path.isfile(src):
            rel = _as_given(src) if preserve_path else os.path.basename(src)
            plan.append((src, locations.relative(rel)))
        else:
            raise NotFound(f"no such local file or directory: {src!r}")
    return plan
