"""Where things go: the store folder, the experiment's store path, and a file's store path.

Relative names given by users (`prefix`, `to=`) are validated here, in one place, before any
byte is written, so bad input never leaves a half-stored file.
"""

from __future__ import annotations

import os

from mldashfs import paths
from mldashfs.default_store import default_store
from mldashfs.errors import InvalidPath

#: The namespace of experiments made with the older `name=`/`project=` form.
DEFAULT_NAMESPACE = "local"


def store_root(local_path: str | os.PathLike[str] | None) -> str:
    """The store folder: `local_path=`, else $ML_DASH_STORE, else ./.ml-dash."""
    if local_path is not None:
        return os.fspath(local_path)
    return default_store()


def experiment_path(
    prefix: str | None, name: str | None, project: str | None, namespace: str | None
) -> str:
    """`namespace/project/experiment` from `prefix=` (002) or `name=`/`project=` (000/001)."""
    if prefix is not None:
        if name is not None or project is not None:
            raise ValueError("give either prefix='namespace/project/experiment' or name=/project=, not both")
        return paths.check_experiment(prefix)
    if name is None or project is None:
        raise ValueError("an Experiment needs prefix='namespace/project/experiment', or name= and project=")
    ns = namespace or os.environ.get("ML_DASH_NAMESPACE") or DEFAULT_NAMESPACE
    return paths.join(paths.check_name(ns), paths.check_name(project), paths.check_name(name))


def folder(prefix: str | os.PathLike[str] | None) -> str:
    """A folder inside the experiment from `files(prefix)`; a leading '/' means the experiment's top."""
    if prefix is None:
        return ""
    return paths.check_path(os.fspath(prefix))


def relative(to: str | os.PathLike[str]) -> str:
    """A validated relative name from `to=`: absolute paths, '.', '..', NUL and empty parts are refused."""
    text = os.fspath(to)
    if not isinstance(text, str):
        raise InvalidPath(f"to= must be a string path, not {type(to).__name__}")
    if text.startswith("/"):
        raise InvalidPath(f"to= must be relative to the prefix, not absolute: {text!r}")
    if text.endswith("/") or text == "":
        raise InvalidPath(f"to= must name a file, got {text!r}")
    return paths.check_path(text)


def has_magic(pattern: str) -> bool:
    """True if `pattern` is a glob rather than a plain path."""
    return any(c in pattern for c in "*?[")
