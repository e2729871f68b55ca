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
#: The folder at an experiment's top that holds the SDK's run data (params, logs, metrics). Listings
#: of the experiment (SDK `list()`, `mldashfs ls`, the mount's readdir) leave it out, as `ls` leaves
#: out dot files; it is found by name, and a listing of it or below it shows everything.
RUN_DATA = ".ml_dash"
_RUN_DATA_ONLY = frozenset({RUN_DATA})
#: Longest store path (UTF-8 bytes) a create, mkdir or rename may make. A local blob lives at
#: `{root}/{ns}/{proj}/{exp}/files/{prefix}/{id}/{name}`, at most 27 bytes more than its store path
#: (`/files`, and `/` plus an id of up to 20 digits), so the blob path fits Linux's PATH_MAX (4096,
#: with its NUL) for any store folder up to 3,000 bytes long, wherever the store is.
STORE_PATH_MAX = 1024


def check_name(name: str) -> str:
    """Return `name` if it is a valid single path component, else raise InvalidPath naming why.

    One rule for every front end (the mount, the CLI, the SDK): no '/', NUL, '.', '..', white
    space at either end, bytes that are not UTF-8, or more than NAME_MAX bytes."""
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
    if name != name.strip():
        raise InvalidPath(f"name begins or ends with white space (a typo, mostly): {name!r}")
    try:
        name.encode("utf-8")
    except UnicodeEncodeError:  # undecodable bytes, as os.fsdecode gives them (surrogate escapes)
        raise InvalidPath(f"name is not valid UTF-8: {name!r}") from None
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


def check_experiment(path: str) -> str:
    """A checked experiment path: exactly NAMESPACE/PROJECT/EXPERIMENT, else InvalidPath naming it."""
    p = check_path(path)
    if depth(p) != EXPERIMENT_DEPTH:
        raise InvalidPath(f"an experiment is NAMESPACE/PROJECT/EXPERIMENT (three names), not {path!r}")
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


def is_run_data(path: str) -> bool:
    """True if `path` is an experiment's run-data folder or lies below it."""
    parts = path.split("/", EXPERIMENT_DEPTH + 1)
    return len(parts) > EXPERIMENT_DEPTH and parts[EXPERIMENT_DEPTH] == RUN_DATA


def hidden_below(path: str, top: str) -> bool:
    """Whether a listing of everything below `top` leaves out `path` (run data, unless `top` is in it)."""
    return is_run_data(path) and not is_run_data(top)


def hidden_in(directory: str) -> frozenset[str]:
    """The names a listing of `directory` leaves out: the run-data folder at an experiment's top."""
    return _RUN_DATA_ONLY if depth(directory) == EXPERIMENT_DEPTH else frozenset()
