"""POSIX details through a real mount, as on a local disk: open files after unlink, modes, times and
link counts of folders, names and paths the store cannot keep.

One mount serves most of the module; each test works in its own subdirectory of it, named after the
test. Tests that remount use a store of their own.
"""

from __future__ import annotations

import errno
import os
import stat
import subprocess
import tempfile
from collections.abc import Callable, Iterator
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
    with open(work / "out.txt", "wb") as f:  # a new file of the same name meanwhile keeps its own bytes
        f.write(b"old writer")
        f.flush()
        os.unlink(work / "out.txt")
        (work / "out.txt").write_bytes(b"new file")
        f.write(b", more")
    assert (work / "out.txt").read_bytes() == b"new file"
    assert stored(mount, work) == [f"{EXPERIMENT}/{work.name}/out.txt"]


OLD_NS = 1_600_000_000 * 10**9


def changes_times(folder: Path, call: Callable[[], object]) -> bool:
    """Whether `call` moves `folder`'s mtime and ctime (set to an old time first) at once."""
    os.utime(folder, ns=(OLD_NS, OLD_NS))
    before = os.stat(folder)
    assert before.st_mtime_ns == OLD_NS and before.st_ctime_ns > OLD_NS  # utime moved the ctime only
    call()
    after = os.stat(folder)
    return after.st_mtime_ns > OLD_NS and after.st_ctime_ns >= after.st_mtime_ns


def test_a_folder_s_times_change_at_once_when_its_entries_change(work: Path) -> None:
    (work / "other").mkdir()
    (work / "kept").write_bytes(b"k")
    (work / "gone").write_bytes(b"g")
    held = []
    calls: dict[str, Callable[[], object]] = {
        "create (open, no version yet)": lambda: held.append(open(work / "new", "wb")),
        "mkdir": lambda: os.mkdir(work / "sub"),
        "rename inside": lambda: os.rename(work / "kept", work / "kept2"),
        "rename out": lambda: os.rename(work / "kept2", work / "other" / "kept"),
        "unlink": lambda: os.unlink(work / "gone"),
        "unlink (no version yet)": lambda: os.unlink(work / "new"),
        "rmdir": lambda: os.rmdir(work / "sub"),
    }
    try:
        for what, call in calls.items():
            assert changes_times(work, call), what
    finally:
        for f in held:
            f.close()
    assert changes_times(work / "other", lambda: os.rename(work / "other" / "kept", work / "kept"))


def test_chmod_and_utime_of_a_folder_change_its_ctime(work: Path) -> None:
    os.utime(work, ns=(OLD_NS, OLD_NS))
    before = os.stat(work).st_ctime_ns
    assert before > OLD_NS
    os.chmod(work, 0o700)
    after = os.stat(work)
    assert after.st_ctime_ns > before and after.st_mtime_ns == OLD_NS and stat.S_IMODE(after.st_mode) == 0o700


def test_folders_have_one_link_so_find_and_rsync_walk_every_subfolder(work: Path, tmp_path: Path) -> None:
    for d in ("a/b/c", "a/d", "e"):
        (work / d).mkdir(parents=True)
        (work / d / "f").write_bytes(b"f")
    (work / "a/empty").mkdir()
    assert {os.stat(work / d).st_nlink for d in ("", "a", "a/b", "a/b/c", "e")} == {1}
    found = subprocess.run(["find", ".", "-type", "d"], cwd=work, capture_output=True, text=True, check=True)
    assert sorted(found.stdout.split()) == [".", "./a", "./a/b", "./a/b/c", "./a/d", "./a/empty", "./e"]
    subprocess.run(["rsync", "-a", f"{work}/", f"{tmp_path}/copy/"], check=True)
    copied = sorted(str(p.relative_to(tmp_path / "copy")) for p in (tmp_path / "copy").rglob("*"))
    assert copied == sorted(str(p.relative_to(work)) for p in work.rglob("*"))
    assert len(copied) == 9


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
