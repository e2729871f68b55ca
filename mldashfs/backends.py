"""Opening a store from a location: the one place that picks backends (front ends never do).

- a folder: the embedded default, SQLite catalog + blobs in the folder;
- `s3://bucket/prefix` with a MongoDB URI: bytes in S3, metadata in MongoDB, written back through a
  local cache folder (staging, journal of pending uploads, cached copies).
"""

from __future__ import annotations

import hashlib
import os
import re

from .errors import InvalidValue, NotFound, Unavailable
from .local_blobs import LocalBlobs
from .sqlite_catalog import SqliteCatalog
from .staging import Staging
from .store import INTERNAL, Store

#: Default bound of a remote store's local cache (bytes): uploaded copies beyond it are evicted.
DEFAULT_CACHE_SIZE = 20 << 30
_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgtKMGT]?)i?[bB]?\s*$")


def parse_size(text: str | int) -> int:
    """`20G`, `512M`, `1.5T`, `4096` (bytes) as a number of bytes; InvalidValue otherwise."""
    if isinstance(text, int):
        return text
    m = _SIZE.match(text)
    if m is None:
        raise InvalidValue(f"bad size {text!r}: use a number with an optional K, M, G or T suffix")
    return int(float(m.group(1)) * (1 << (10 * " KMGT".index(m.group(2).upper() or " "))))


def is_remote(location: str | os.PathLike[str]) -> bool:
    return os.fspath(location).startswith("s3://")


def default_cache_dir(location: str, mongo: str) -> str:
    """`$XDG_CACHE_HOME/mldashfs/<hash>`: one cache folder per (bucket/prefix, MongoDB) pair."""
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    digest = hashlib.sha256(f"{location}\n{mongo}".encode()).hexdigest()[:16]
    return os.path.join(base, "mldashfs", digest)


def cache_folder(location: str, mongo: str | None, cache_dir: str | None) -> str:
    """The cache folder of a remote store: `cache_dir`, else $ML_DASH_CACHE_DIR, else the default."""
    mongo = mongo or os.environ.get("ML_DASH_MONGO_URI") or ""
    return os.path.abspath(cache_dir or os.environ.get("ML_DASH_CACHE_DIR") or default_cache_dir(location, mongo))


def state_folder(location: str | os.PathLike[str], mongo: str | None = None, cache_dir: str | None = None,
                 **_: object) -> str:
    """Where this machine keeps the store's own files (logs among them): the store's internal folder,
    or a remote store's cache folder."""
    loc = os.fspath(location)
    return cache_folder(loc, mongo, cache_dir) if is_remote(loc) else os.path.join(os.path.abspath(loc), INTERNAL)


def open_store(location: str | os.PathLike[str], *, create: bool = True, mongo: str | None = None,
               cache_dir: str | None = None,
               cache_size: int | str | None = None, s3_endpoint: str | None = None,
               upload_workers: int = 4, metadata_ttl: float | None = None) -> Store:
    """The Store at `location`. A folder holding no store is made only with `create`; a remote store
    needs its bucket to exist. Remote options fall back to $ML_DASH_MONGO_URI, $ML_DASH_CACHE_DIR,
    $ML_DASH_CACHE_SIZE and $AWS_ENDPOINT_URL."""
    loc = os.fspath(location)
    if not is_remote(loc):
        if mongo:
            raise InvalidValue(f"--mongo goes with an s3:// store, not the folder {loc!r}")
        return open_local(loc, create)
    mongo = mongo or os.environ.get("ML_DASH_MONGO_URI")
    if not mongo:
        raise InvalidValue(f"the store {loc} keeps its metadata in MongoDB: give --mongo URI "
                           "(or $ML_DASH_MONGO_URI)")
    from .remote_store import open_remote

    size = parse_size(cache_size if cache_size is not None else os.environ.get("ML_DASH_CACHE_SIZE", DEFAULT_CACHE_SIZE))
    return open_remote(loc, mongo, cache_folder(loc, mongo, cache_dir), size,
                       s3_endpoint or os.environ.get("AWS_ENDPOINT_URL"), upload_workers, metadata_ttl)


def open_local(given: str, create: bool) -> Store:
    """The embedded store in folder `given`: SQLite catalog + local blobs. With create=False a folder
    that holds no store is NotFound, so a mistyped path makes nothing."""
    root = os.path.abspath(given)
    internal = os.path.join(root, INTERNAL)
    if not create and not os.path.isdir(internal):
        why = "no such folder" if not os.path.exists(root) else "it holds no mldashfs store"
        raise NotFound(f"no store at {given} ({why}); `mldashfs init {given}` makes one")
    try:
        os.makedirs(internal, exist_ok=True)
        if not os.access(root, os.R_OK | os.W_OK | os.X_OK):
            raise PermissionError(f"no read/write access to {root}")
        catalog = SqliteCatalog(internal)
    except OSError as e:
        raise Unavailable(f"cannot open the store at {root}: {e.strerror or e}") from e
    blobs = LocalBlobs(root)
    return Store(root, catalog, blobs, blobs, Staging(os.path.join(internal, "staging")))
