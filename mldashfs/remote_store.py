"""Assembling a remote store: S3 for bytes, MongoDB for metadata, a local cache folder for write-back."""

from __future__ import annotations

import os

from .blob_cache import BlobCache
from .errors import Unavailable
from .journal import Journal
from .mongo_catalog import MongoCatalog
from .remote_blobs import RemoteBlobs
from .s3_blobs import S3Blobs, parse_s3_url
from .staging import Staging
from .store import Store
from .writeback import WriteBack
from .writeback_catalog import DEFAULT_TTL, WriteBackCatalog


def open_remote(location: str, mongo: str, cache_dir: str, cache_size: int, endpoint: str | None,
                workers: int, ttl: float | None) -> Store:
    """The Store of `s3://bucket/prefix` + `mongo`, writing back through `cache_dir`."""
    bucket, prefix = parse_s3_url(location)
    try:
        os.makedirs(cache_dir, exist_ok=True)
    except OSError as e:
        raise Unavailable(f"cannot make the cache folder {cache_dir}: {e.strerror or e}") from e
    s3 = S3Blobs(bucket, prefix, endpoint_url=endpoint)
    s3.check(tolerate_outage=True)
    remote = MongoCatalog(mongo)
    journal = Journal(cache_dir, f"{location} {mongo}")
    cache = BlobCache(cache_dir, cache_size, journal)
    writeback = WriteBack(journal, cache, s3, remote, workers)
    catalog = WriteBackCatalog(remote, journal, writeback, DEFAULT_TTL if ttl is None else ttl)
    blobs = RemoteBlobs(s3, cache, writeback.admit)
    return Store(cache_dir, catalog, blobs, cache, Staging(os.path.join(cache_dir, "staging")), state="pending",
                 location=location, writeback=writeback)
