"""Fixtures for the FUSE tests: a tmp Store, the Operations over it, and a driver calling handlers."""

from __future__ import annotations

import copy
import errno
import os
import stat
import types
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pyfuse3
import pytest
import trio

from mldashfs.fs.operations import Operations
from mldashfs.store import Store

EXPERIMENT = "alice/cv/resnet"


class Driver:
    """Calls Operations handlers the way the kernel would, each under `trio.run`."""

    def __init__(self, ops: Operations) -> None:
        self.ops = ops
        self.ctx = pyfuse3.RequestContext()

    def __call__(self, handler: str, *args: Any) -> Any:
        fn = getattr(self.ops, handler)

        async def call() -> Any:
            return await fn(*args)

        return trio.run(call)

    def errno(self, handler: str, *args: Any) -> int:
        """The errno a handler fails with (the test fails if it succeeds)."""
        with pytest.raises(pyfuse3.FUSEError) as e:
            self(handler, *args)
        return e.value.errno

    def lookup(self, path: str) -> pyfuse3.EntryAttributes:
        """Walk `path` from the mount root with lookups, as path resolution does."""
        ino = pyfuse3.ROOT_INODE
        attr = self("getattr", ino, self.ctx)
        for part in [p for p in path.split("/") if p]:
            attr = self("lookup", ino, os.fsencode(part), self.ctx)
            ino = attr.st_ino
        return attr

    def ino(self, path: str) -> int:
        return self.lookup(path).st_ino

    def listdir(self, path: str, batch: int = 10**9) -> list[tuple[str, pyfuse3.EntryAttributes]]:
        """Read a whole directory in readdir calls that each accept at most `batch` entries."""
        fh = self("opendir", self.ino(path), self.ctx)
        out: list[tuple[str, pyfuse3.EntryAttributes]] = []
        taken = [0]

        def reply(token: object, name: bytes, attr: pyfuse3.EntryAttributes, next_id: int) -> bool:
            if taken[0] >= batch:
                return False
            taken[0] += 1
            out.append((os.fsdecode(name), copy.copy(attr)))  # the kernel copies each entry, as here
            return True

        try:
            with pytest.MonkeyPatch.context() as mp:
                mp.setattr(pyfuse3, "readdir_reply", reply)
                while True:
                    taken[0] = 0
                    self("readdir", fh, len(out), None)
                    if taken[0] == 0:
                        return out
        finally:
            self("releasedir", fh)

    def create(self, path: str, mode: int = 0o644) -> tuple[int, int]:
        """create(2) a file; returns (fh, inode)."""
        parent, _, name = path.rpartition("/")
        info, attr = self("create", self.ino(parent), os.fsencode(name), stat.S_IFREG | mode,
                          os.O_WRONLY | os.O_CREAT, self.ctx)
        return info.fh, attr.st_ino

    def open(self, path: str, flags: int) -> int:
        """open(2) of an existing file; on ESTALE it looks the path up again and retries once, as
        the kernel does."""
        try:
            return self("open", self.ino(path), flags, self.ctx).fh
        except pyfuse3.FUSEError as e:
            if e.errno != errno.ESTALE:
                raise
            return self("open", self.ino(path), flags, self.ctx).fh

    def write_file(self, path: str, data: bytes, flags: int = os.O_WRONLY | os.O_TRUNC) -> None:
        """open/create, write, flush, release: what `open(path, 'wb').write(data)` does."""
        try:
            fh = self.open(path, flags)
        except pyfuse3.FUSEError as e:
            if e.errno != errno.ENOENT:
                raise
            fh, _ = self.create(path)
        if data:
            offset = self("getattr", self.ino(path), self.ctx).st_size if flags & os.O_APPEND else 0
            assert self("write", fh, offset, data) == len(data)
        self("flush", fh)
        self("release", fh)

    def read_file(self, path: str) -> bytes:
        fh = self.open(path, os.O_RDONLY)
        try:
            return self("read", fh, 0, 1 << 30)
        finally:
            self("release", fh)

    @staticmethod
    def setattr_fields(**changed: bool) -> Any:
        names = ("atime", "mtime", "ctime", "mode", "uid", "gid", "size")
        return types.SimpleNamespace(**{f"update_{n}": changed.get(n, False) for n in names})


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    s = Store.open(tmp_path / "store")
    try:
        yield s
    finally:
        s.close()


@pytest.fixture
def fs(store: Store) -> Driver:
    """Operations showing one experiment at the root, as `mount --experiment alice/cv/resnet`."""
    store.mkdir(EXPERIMENT, parents=True)
    return Driver(Operations(store, root=EXPERIMENT))


@pytest.fixture
def whole_fs(store: Store) -> Driver:
    """Operations showing the whole store at the root."""
    return Driver(Operations(store))


@pytest.fixture
def work(mount: Any, request: pytest.FixtureRequest) -> Path:
    """This test's own directory inside the module's `mount` (a real mount the module shares)."""
    d = mount.path / request.node.name
    d.mkdir()
    return d
