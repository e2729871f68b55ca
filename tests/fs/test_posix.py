"""POSIX details through a real mount, as on a local disk: open files after unlink, modes of new
folders, names and paths the store cannot keep.

One mount serves most of the module; each test works in its own subdirectory of it, named after the
test. Tests that remount use a store of their own.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import tempfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from mldashfs.paths import STORE_PATH_MAX
from mldashfs.store import Store
from tests.mounting import Mount, mounted, temp_mount

EXPERIMENT = "alice/cv/posix"


@pytest.fixture(scope="module")
def mount() -> Iterator[Mount]:
    """One experiment mounted for the whole module; unmounted and removed even on failure."""
    with temp_mount(EXPERIMENT, "mldashfs-posix-") as m:
        yield m


@pytest.fixture
def work(mount: Mount, request: pytest.FixtureRequest) -> Path:
    """This test's own directory inside the mount."""
    d = mount.path / request.node.name
    d.mkdir()
    return d


def stored(mount: Mount, work: Path) -> list[str]:
    """The store paths of every live file below `work`, as another client of the store sees them."""
    with Store.open(mount.store) as s:
        return [v.path for v in s.list(f"{EXPERIMENT}/{work.name}")]


def test_a_new_file_keeps_working_through_its_descriptor_after_unlink(work: Path, mount: Mount) -> None:
    fd = os.open(work / "scratch", os.O_CREAT | os.O_RDWR, 0o600)
    try:
        os.unlink(work / "scratch")
        assert os.write(fd, b"hello world") == 11
        assert os.pread(fd, 5, 0) == b"hello"
        os.ftruncate(fd, 5)
        st = os.fstat(fd)
        assert (st.st_size, st.st_nlink, stat.S_IMODE(st.st_mode)) == (5, 0, 0o600)
        os.close(os.dup(fd))  # a close of another descriptor (a flush) stores nothing and keeps the bytes
        assert os.pread(fd, 100, 0) == b"hello"
        os.fchmod(fd, 0o640)
        assert stat.S_IMODE(os.fstat(fd).st_mode) == 0o640
    finally:
        os.close(fd)
    assert os.listdir(work) == [] and stored(mount, work) == []


def test_temporary_files_work_in_the_mount(work: Path, mount: Mount) -> None:
    with tempfile.TemporaryFile(dir=work) as f:
        f.write(b"x" * 100_000)
        f.seek(0)
        assert f.read() == b"x" * 100_000
        assert os.listdir(work) == []
    with tempfile.SpooledTemporaryFile(max_size=10, dir=work) as f:
        f.write(b"rolled over to a real file")
        f.seek(0)
        assert f.read() == b"rolled over to a real file"
    assert os.listdir(work) == [] and stored(mount, work) == []


def test_a_reader_keeps_reading_a_file_unlinked_after_it_opened_it(work: Path, mount: Mount) -> None:
    data = os.urandom(3 << 20)
    (work / "ckpt.pt").write_bytes(data)
    with open(work / "ckpt.pt", "rb") as f:
        head = f.read(1 << 20)
        os.unlink(work / "ckpt.pt")
        assert not (work / "ckpt.pt").exists()
        assert head + f.read() == data
        st = os.fstat(f.fileno())
        assert (st.st_size, st.st_nlink) == (len(data), 0)
    assert stored(mount, work) == []


def test_a_writer_of_an_unlinked_file_does_not_bring_it_back_at_close(work: Path, mount: Mount) -> None:
    (work / "log.txt").write_bytes(b"committed\n")
    with open(work / "log.txt", "ab") as f:
        f.write(b"before\n")
        f.flush()
        os.unlink(work / "log.txt")
        f.write(b"after\n")
        f.flush()
        assert os.fstat(f.fileno()).st_nlink == 0
    assert os.listdir(work) == [] and stored(mount, work) == []


def test_names_that_are_not_utf8_get_eilseq_and_leave_no_traceback(work: Path, mount: Mount) -> None:
    bad = os.fsencode(work) + b"/bad\xff"
    touch = subprocess.run(["touch", bad], capture_output=True, text=True)
    assert touch.returncode == 1 and "Invalid or incomplete multibyte" in touch.stderr, touch.stderr
    for call in (lambda: os.mkdir(bad), lambda: os.stat(bad), lambda: open(bad, "wb")):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EILSEQ
    (work / "good").write_bytes(b"g")
    with pytest.raises(OSError) as e:
        os.rename(work / "good", bad)
    assert e.value.errno == errno.EILSEQ
    assert os.listdir(work) == ["good"]
    assert "Traceback" not in mount.log_text()


def test_mkdir_keeps_its_mode_across_a_remount(tmp_path: Path) -> None:
    store, mp = tmp_path / "store", tmp_path / "mnt"
    with mounted(store, mp, experiment=EXPERIMENT) as m:
        tmp = tempfile.mkdtemp(dir=m.path)
        assert stat.S_IMODE(os.stat(tmp).st_mode) == 0o700
        os.mkdir(m.path / "shared", 0o750)
        os.mkdir(m.path / "plain")
        name = os.path.basename(tmp)
    with mounted(store, mp, experiment=EXPERIMENT) as m:
        modes = {n: stat.S_IMODE(os.stat(m.path / n).st_mode) for n in (name, "shared", "plain")}
    assert modes == {name: 0o700, "shared": 0o750, "plain": 0o755}


def test_a_name_whose_store_path_would_be_too_long_is_refused_at_create(work: Path, mount: Mount) -> None:
    parent = work.joinpath(*["d" * 250] * 3)
    parent.mkdir(parents=True)
    room = STORE_PATH_MAX - len(f"{EXPERIMENT}/{parent.relative_to(mount.path)}/")
    assert room < 255  # a name the store path limit refuses, not the name limit
    for make in (lambda p: open(p, "wb"), os.mkdir):
        with pytest.raises(OSError) as e:
            make(parent / ("n" * (room + 1)))
        assert e.value.errno == errno.ENAMETOOLONG
    (parent / ("n" * room)).write_bytes(b"fits")  # committed at close, not refused there
    assert (parent / ("n" * room)).read_bytes() == b"fits"
    assert os.listdir(parent) == ["n" * room]
