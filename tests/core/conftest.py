"""Backends every core contract test runs against: the embedded store, and a remote store (S3 test
server + MongoDB wire test server, or a real MongoDB when $MLDASH_TEST_MONGO_URI is set)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mldashfs.store import Store

BACKENDS = ("sqlite+local", "mongo+s3")


@pytest.fixture(params=BACKENDS)
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A factory opening the same store again (as another client would); all are closed at the end."""
    if request.param == "mongo+s3":
        remote = request.getfixturevalue("remote_store")  # closes what it opened
        yield lambda: remote.open("a")
        return
    opened: list[Store] = []

    def factory() -> Store:
        s = Store.open(tmp_path / "store")
        opened.append(s)
        return s

    yield factory
    for s in opened:
        s.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    return open_store()
