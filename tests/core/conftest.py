"""Backends every core contract test runs against (remote backends join this list)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from mldashfs.store import Store

BACKENDS: dict[str, Callable[[Path], Store]] = {
    "sqlite+local": lambda root: Store.open(root),
}


@pytest.fixture(params=sorted(BACKENDS))
def open_store(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Callable[[], Store]]:
    """A factory opening the same store again (as another client would); all are closed at the end."""
    opened: list[Store] = []

    def factory() -> Store:
        s = BACKENDS[request.param](tmp_path / "store")
        opened.append(s)
        return s

    yield factory
    for s in opened:
        s.close()


@pytest.fixture
def store(open_store: Callable[[], Store]) -> Store:
    return open_store()
