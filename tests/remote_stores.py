"""Remote stores for tests: a fresh bucket on the S3 test server and a fresh MongoDB database per test,
opened through caches named like machines ("a", "b", ...)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from mldashfs.store import Store
from tests.servers.s3 import S3Server


def with_database(uri: str, name: str) -> str:
    """`uri` with its database (the URI's path) set to `name`, keeping its options."""
    parts = urllib.parse.urlsplit(uri)
    return urllib.parse.urlunsplit((parts.scheme, parts.netloc, "/" + name, parts.query, parts.fragment))


@dataclass
class RemoteStore:
    """One remote store (`s3://bucket/team` + a MongoDB database) and the machines' cache folders."""

    location: str
    mongo: str
    endpoint: str
    bucket: str
    server: S3Server
    caches: Path
    opened: list[Store] = field(default_factory=list)

    def cache(self, machine: str) -> Path:
        return self.caches / machine

    def open(self, machine: str = "a", **options: Any) -> Store:
        """The store as `machine` sees it (its own cache folder); closed at the end of the test."""
        options.setdefault("metadata_ttl", 0.0)
        options.setdefault("mongo", self.mongo)
        s = Store.open(self.location, cache_dir=str(self.cache(machine)), s3_endpoint=self.endpoint, **options)
        self.opened.append(s)
        return s

    def cli_options(self, machine: str) -> list[str]:
        """The `mldashfs` options naming this store as `machine` sees it."""
        return ["--store", self.location, "--mongo", self.mongo, "--cache-dir", str(self.cache(machine)),
                "--s3-endpoint", self.endpoint]


@pytest.fixture
def remote_store(s3_server: S3Server, s3_bucket: str, mongo_uri: str, mongo_db_name: str,
                 tmp_path: Path) -> Iterator[RemoteStore]:
    r = RemoteStore(location=f"s3://{s3_bucket}/team", mongo=with_database(mongo_uri, mongo_db_name),
                    endpoint=s3_server.endpoint, bucket=s3_bucket, server=s3_server, caches=tmp_path / "caches")
    try:
        yield r
    finally:
        for s in reversed(r.opened):
            s.close()
