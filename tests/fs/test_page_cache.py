"""PageCache: which open handles may use the kernel page cache (no mount: the rules alone)."""

from __future__ import annotations

import dataclasses

import pytest

from mldashfs.fs import page_cache
from mldashfs.fs.page_cache import DIRECT, MOVE_GRACE, PageCache
from mldashfs.records import Version

V1 = Version(id=1, path="e/f", size=10, sha256="0" * 64, content_type="application/octet-stream",
             description=None, tags=(), metadata={}, created_at=0.0, updated_at=0.0, mtime=0.0,
             mode=0o644, state="local", key="k1", deleted=False)
V2 = dataclasses.replace(V1, id=2, size=20, key="k2")


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> list[float]:
    """A settable time.monotonic for page_cache."""
    now = [1000.0]
    monkeypatch.setattr(page_cache.time, "monotonic", lambda: now[0])
    return now


def test_one_version_owns_the_cache_and_others_move_on() -> None:
    pc = PageCache()
    first = pc.open_reader(1, "e/f", V1)
    assert not first.direct_io and not first.keep_cache  # new owner: the kernel drops old pages
    again = pc.open_reader(1, "e/f", V1)
    assert again.keep_cache and not again.direct_io
    assert pc.open_reader(1, "e/f", V2) is None  # V1's readers are still open: V2 needs a new inode
    assert pc.cached_version(1) == V1
    pc.close(1, first, writer=False)
    pc.close(1, again, writer=False)
    assert pc.cached_version(1) is None
    assert not pc.open_reader(1, "e/f", V2).keep_cache  # V2 takes over, the kernel drops V1's pages


def test_readers_read_direct_while_a_writer_is_open() -> None:
    pc = PageCache()
    w = pc.open_writer(1, "e/f")
    r = pc.open_reader(1, "e/f", V1)
    assert w == DIRECT and r == DIRECT
    pc.close(1, w, writer=True)
    pc.close(1, r, writer=False)
    assert not pc.open_reader(1, "e/f", V1).direct_io  # at once after the writer: no window


def test_no_owner_while_direct_handles_are_open() -> None:
    """A direct-I/O handle may be mmapped, which faults its version's pages into the inode's page
    cache: a reader that would become the owner meanwhile reads direct too."""
    pc = PageCache()
    w = pc.open_writer(1, "e/f")
    early = pc.open_reader(1, "e/f", V1)
    pc.close(1, w, writer=True)
    late = pc.open_reader(1, "e/f", V2)
    assert late == DIRECT
    pc.close(1, early, writer=False)
    pc.close(1, late, writer=False)
    assert not pc.open_reader(1, "e/f", V2).direct_io


def test_a_moved_path_reads_direct_until_its_writer_opens_or_the_grace_ends(clock: list[float]) -> None:
    pc = PageCache()
    pc.moved("e/f")
    assert pc.open_reader(7, "e/f", V1) == DIRECT  # the writer's retried open has not come yet
    assert not pc.open_reader(8, "e/g", V1).direct_io  # other paths are not affected
    pc.open_writer(9, "e/f")
    assert pc.open_reader(10, "e/f", V1).direct_io is False
    pc.moved("e/h")
    clock[0] += MOVE_GRACE
    assert not pc.open_reader(11, "e/h", V1).direct_io
    pc.moved("e/old")
    clock[0] += MOVE_GRACE
    pc.moved("e/new")  # prunes paths nobody opened within the grace
    assert set(pc._moved) == {"e/new"}


def test_an_owners_readers_share_one_backing_chosen_by_the_first() -> None:
    pc = PageCache()
    calls: list[int] = []

    def register() -> int:
        calls.append(1)
        return 7

    a = pc.open_reader(1, "e/f", V1)
    b = pc.open_reader(1, "e/f", V1)
    assert pc.backing(1, register) == 7 and pc.backing(1, register) == 7 and len(calls) == 1
    assert pc.close(1, a, writer=False) is None  # b still reads through it
    assert pc.close(1, b, writer=False) == 7  # nobody does any more: the caller drops it
    c = pc.open_reader(1, "e/f", V1)
    assert pc.backing(1, lambda: 8) == 8  # chosen again for the next readers
    assert pc.close(1, c, writer=False) == 8


def test_a_refused_backing_keeps_the_owners_readers_on_the_page_cache() -> None:
    pc = PageCache()
    pc.open_reader(1, "e/f", V1)
    assert pc.backing(1, lambda: None) is None
    pc.open_reader(1, "e/f", V1)
    assert pc.backing(1, lambda: 9) is None  # the two ways never mix on one inode


def test_readers_of_the_owners_version_join_it_after_the_path_moved(clock: list[float]) -> None:
    """The inode a writer moved the path away from stays its readers': a reader of their version
    that opens it meanwhile (a stale dentry) joins them, as passthrough requires."""
    pc = PageCache()
    pc.open_reader(1, "e/f", V1)
    pc.moved("e/f")
    assert pc.open_reader(1, "e/f", V1).keep_cache
    assert pc.open_reader(2, "e/f", V1) == DIRECT  # the new inode waits for the writer
