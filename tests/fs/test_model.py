"""Reference-model test: random POSIX operation sequences on the mount and on a plain directory must agree.

Each operation runs on both trees; results (bytes read, sorted listings) and errnos must match, and after
every step both trees must hold the same directories and file contents. Names come from a tiny alphabet so
collisions (rename onto an existing file, rmdir of a non-empty dir, a file where a dir is expected) are
common. Reproduce a failure with `pytest tests/fs/test_model.py --hypothesis-seed=N`.
"""

from __future__ import annotations

import itertools
import os
from collections.abc import Callable, Iterator
from pathlib import Path
from stat import S_ISDIR
from typing import Any

import pytest
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st
from hypothesis.stateful import RuleBasedStateMachine, invariant, rule, run_state_machine_as_test

from tests.mounting import Mount, temp_dir, temp_mount

EXPERIMENT = "alice/cv/model"
paths = st.lists(st.sampled_from("abc"), min_size=1, max_size=3).map("/".join)
payloads = st.binary(max_size=48)
offsets = st.integers(min_value=0, max_value=64)


@pytest.fixture(scope="module")
def mount() -> Iterator[Mount]:
    """One mount for every example of the machine; unmounted and removed even on failure."""
    with temp_mount(EXPERIMENT, "mldashfs-model-") as m:
        yield m


@pytest.fixture
def reference() -> Iterator[Path]:
    """The plain directory that serves as the model."""
    with temp_dir("mldashfs-model-ref-") as d:
        yield d


def outcome(call: Callable[[], Any]) -> tuple[str, Any]:
    """What one call did: ("ok", its result) or ("errno", the OSError's errno)."""
    try:
        return ("ok", call())
    except OSError as e:
        return ("errno", e.errno)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path below root: None for a directory, the bytes for a file."""
    tree: dict[str, bytes | None] = {}
    for dirpath, dirnames, filenames in os.walk(root):
        rel = os.path.relpath(dirpath, root)
        for d in dirnames:
            tree[os.path.normpath(os.path.join(rel, d))] = None
        for f in filenames:
            tree[os.path.normpath(os.path.join(rel, f))] = Path(dirpath, f).read_bytes()
    return tree


def write_at(path: Path, offset: int, data: bytes) -> int:
    """Open (creating) without truncating and write data at offset, as a read-modify-write tool does."""
    fd = os.open(path, os.O_WRONLY | os.O_CREAT, 0o644)
    try:
        return os.pwrite(fd, data, offset)
    finally:
        os.close(fd)


def append(path: Path, data: bytes) -> int:
    """Open with O_APPEND (creating) and write data, as `>>` does."""
    fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    try:
        return os.write(fd, data)
    finally:
        os.close(fd)


def create(path: Path, exclusive: bool) -> None:
    """open(O_CREAT|O_TRUNC), or O_CREAT|O_EXCL, then close without writing."""
    flags = os.O_WRONLY | os.O_CREAT | (os.O_EXCL if exclusive else os.O_TRUNC)
    os.close(os.open(path, flags, 0o644))


class MountAgreesWithDirectory(RuleBasedStateMachine):
    """Applies each rule to a fresh subdirectory of the mount and of the reference directory."""

    examples = itertools.count()

    def __init__(self, mount_root: Path, ref_root: Path) -> None:
        super().__init__()
        name = f"ex{next(self.examples)}"
        self.fs = mount_root / name
        self.ref = ref_root / name
        self.fs.mkdir()
        self.ref.mkdir()

    def both(self, op: Callable[[Path], Any]) -> None:
        """Run op on the mount's tree and on the reference tree; they must do the same."""
        got = outcome(lambda: op(self.fs))
        want = outcome(lambda: op(self.ref))
        assert got == want, f"mount gave {got}, a plain directory gives {want}"

    @rule(p=paths, exclusive=st.booleans())
    def create(self, p: str, exclusive: bool) -> None:
        self.both(lambda root: create(root / p, exclusive))

    @rule(p=paths, offset=offsets, data=payloads)
    def write_at(self, p: str, offset: int, data: bytes) -> None:
        self.both(lambda root: write_at(root / p, offset, data))

    @rule(p=paths, data=payloads)
    def append(self, p: str, data: bytes) -> None:
        self.both(lambda root: append(root / p, data))

    @rule(p=paths, data=payloads)
    def overwrite(self, p: str, data: bytes) -> None:
        self.both(lambda root: (root / p).write_bytes(data))

    @rule(p=paths, size=offsets)
    def truncate(self, p: str, size: int) -> None:
        self.both(lambda root: os.truncate(root / p, size))

    @rule(src=paths, dst=paths)
    def rename(self, src: str, dst: str) -> None:
        self.both(lambda root: os.rename(root / src, root / dst))

    @rule(p=paths)
    def unlink(self, p: str) -> None:
        self.both(lambda root: os.unlink(root / p))

    @rule(p=paths)
    def mkdir(self, p: str) -> None:
        self.both(lambda root: os.mkdir(root / p))

    @rule(p=paths)
    def rmdir(self, p: str) -> None:
        self.both(lambda root: os.rmdir(root / p))

    @rule(p=paths)
    def read(self, p: str) -> None:
        self.both(lambda root: (root / p).read_bytes())

    @rule(p=paths, offset=offsets)
    def read_at(self, p: str, offset: int) -> None:
        def pread(root: Path) -> bytes:
            fd = os.open(root / p, os.O_RDONLY)
            try:
                return os.pread(fd, 16, offset)
            finally:
                os.close(fd)

        self.both(pread)

    @rule(p=st.one_of(st.just(""), paths))
    def listdir(self, p: str) -> None:
        self.both(lambda root: sorted(os.listdir(root / p)))

    @rule(p=paths)
    def stat(self, p: str) -> None:
        def kind_and_size(root: Path) -> tuple[str, int]:
            st = os.stat(root / p)
            return ("dir", 0) if S_ISDIR(st.st_mode) else ("file", st.st_size)

        self.both(kind_and_size)

    @invariant()
    def same_tree(self) -> None:
        got, want = snapshot(self.fs), snapshot(self.ref)
        assert got == want, f"the mount holds {got}, a plain directory {want}"


def test_mount_agrees_with_a_plain_directory(mount: Mount, reference: Path) -> None:
    run_state_machine_as_test(
        lambda: MountAgreesWithDirectory(mount.path, reference),
        settings=settings(
            max_examples=40,
            stateful_step_count=30,
            deadline=None,
            suppress_health_check=[HealthCheck.too_slow],
            print_blob=True,
        ),
    )
