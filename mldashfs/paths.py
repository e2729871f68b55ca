"""Store paths: `namespace/project/experiment[/prefix...]/filename`, validated in one place."""

from __future__ import annotations

import errno
import functools

from .errors import InvalidPath

#: Names a user may not create: `.versions` is the per-directory view of file history.
RESERVED = frozenset({".versions"})
#: Depth of an experiment directory (namespace/project/experiment); files live below it.
EXPERIMENT_DEPTH = 3
NAME_MAX = 255
#: Longest store path (UTF-8 bytes) a create, mkdir or rename may make. A local blob lives at
#: `{root}/{ns}/{proj}/{exp}/files/{prefix}/{id}/{name}`, at most 27 bytes more than its store path
#: (`/files`, and `/` plus an id of up to 20 digits), so the blob path fits Linux's PATH_MAX (4096,
#: with its NUL) for any store folder up to 3,000 bytes long, wherever the store is.
STORE_PATH_MAX = 1024


def check_name(name: str) -> str:
    """Return `name` if it is a valid single path component, else raise InvalidPath naming why."""
    if not isinstance(name, str):
        raise InvalidPath(f"a name must be a string, not {type(name).__name__}")
    if name == "":
        raise InvalidPath("empty name")
    if "\x00" in name:
        raise InvalidPath(f"name contains a NUL byte: {name!r}")
    if "/" in name:
        raise InvalidPath(f"name contains '/': {name!r}")
    if name in (".", ".."):
        raise InvalidPath(f"'{name}' is not allowed as a name")
    if len(name.encode("utf-8", "surrogateescape")) > NAME_MAX:
        raise InvalidPath(f"name longer than {NAME_MAX} bytes: {name[:40]!r}...", errno.ENAMETOOLONG)
    return name


def check_path(path: str) -> str:
    """Validate and normalise a store path (one leading/trailing '/' dropped); '' is the root."""
    if not isinstance(path, str):
        raise InvalidPath(f"a path must be a string, not {type(path).__name__}")
    return _checked_path(path)


@functools.lru_cache(maxsize=4096)
def _checked_path(path: str) -> str:
    """`check_path` of a str, remembered: the mount checks each path several times in a row."""
    if "\x00" in path:
        raise InvalidPath(f"path contains a NUL byte: {path!r}")
    p = path[1:] if path.startswith("/") else path
    p = p[:-1] if p.endswith("/") else p
    if p == "":
        return ""
    for part in p.split("/"):
        if part == "":
            raise InvalidPath(f"empty component in path {path!r}")
        check_name(part)
    return p


def join(*parts: str) -> str:
    """Join path pieces (each may hold several components), skipping empty ones."""
    return "/".join(s for p in parts for s in [p.strip("/")] if s)


def split(path: str) -> tuple[str, str]:
    """Split into (parent, name); the parent of a top-level name is ''."""
    head, _, tail = path.rpartition("/")
    return head, tail


def depth(path: str) -> int:
    """Number of components; the root '' has depth 0."""
    return 0 if path == "" else path.count("/") + 1


def experiment_of(path: str) -> str:
    """The experiment (first three components) a path lies in."""
    return "/".join(path.split("/")[:EXPERIMENT_DEPTH])


def is_below(path: str, top: str) -> bool:
    """True if `path` is `top` itself or lies below it."""
    return top == "" or path == top or path.startswith(top + "/")


def relative_to(path: str, top: str) -> str:
    """`path` relative to `top` (which must contain it)."""
    if top == "":
        return path
    if path == top:
        return ""
    return path[len(top) + 1 :]
