"""Real mounts: the daemon's lifecycle and the POSIX calls users make, through the kernel."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import os
import signal
import sqlite3
import subprocess
import sys
import textwrap
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from mldashfs.cli.mount_commands import _alive, run_file
from mldashfs.fs.attributes import VISIBILITY_DELAY
from mldashfs.fs.daemon import READAHEAD_KIB, mount_device
from mldashfs.store import Store
from tests.mounting import Mount, mounted, require_fuse
from tests.page_cache import resident_pages

EXP = "alice/cv/resnet"
CLI = [sys.executable, "-m", "mldashfs.cli"]


@pytest.fixture
def mnt(tmp_path: Path) -> Iterator[Mount]:
    """One experiment mounted with --experiment."""
    with mounted(tmp_path / "store", tmp_path / "mnt", experiment=EXP) as m:
        yield m


@contextlib.contextmanager
def installed_helper() -> Iterator[None]:
    """mount(8) runs helpers with PATH=/usr/local/sbin:/usr/local/bin:...: link `mldashfs` there meanwhile."""
    link = Path("/usr/local/bin/mldashfs")
    script = Path(sys.executable).parent / "mldashfs"
    assert script.exists(), f"{script} missing: pip install -e . in the venv"
    made = False
    if not link.exists():
        link.symlink_to(script)
        made = True
    try:
        yield
    finally:
        if made:
            link.unlink(missing_ok=True)


def _ensure_unmounted(path: Path) -> None:
    """Unmount `path` if still mounted and stop the background daemon this test started (its pid is
    in the mount's run file), killing it if it has not exited 10 s after the unmount."""
    pid_file = Path(run_file(str(path)))
    pid = int(pid_file.read_text().strip() or 0) if pid_file.exists() else 0
    if os.path.ismount(path):
        subprocess.run(["fusermount3", "-u", "-z", str(path)], check=False)
    if pid and not _wait(lambda: not _alive(pid), 10):
        os.kill(pid, signal.SIGKILL)


def _wait(predicate: object, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():  # type: ignore[operator]
            return True
        time.sleep(0.05)
    return False


def _in_other_process(code: str) -> str:
    """Run Python in a fresh process (another client of the store); returns its stdout."""
    res = subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    return res.stdout.strip()


# -- lifecycle -------------------------------------------------------------------------------


def test_background_mount_returns_when_ready_and_umount_commits_and_stops(tmp_path: Path) -> None:
    require_fuse()
    mp, store = tmp_path / "mnt", tmp_path / "store"
    mp.mkdir()
    try:
        res = subprocess.run([*CLI, "mount", "--create", "--store", str(store), "--experiment", EXP,
                              "--log-file", str(tmp_path / "log"), str(mp)], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert os.path.ismount(mp)  # answered before the command returned
        (mp / "a.txt").write_bytes(b"hello")
        pid = int(Path(run_file(str(mp))).read_text())
        assert _alive(pid)
        res = subprocess.run([*CLI, "umount", str(mp)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert not os.path.ismount(mp)
        assert not _alive(pid)  # umount waited for the daemon to finish
        with Store.open(store) as s:
            assert s.read_bytes(s.latest(f"{EXP}/a.txt")) == b"hello"
        res = subprocess.run([*CLI, "umount", str(mp)], capture_output=True, text=True, timeout=60)
        assert res.returncode == 1 and "not mounted" in res.stderr
    finally:
        _ensure_unmounted(mp)


def test_a_background_mount_logs_in_the_store_and_every_eio_leaves_a_traceback(tmp_path: Path) -> None:
    require_fuse()
    mp, store = tmp_path / "mnt", tmp_path / "store"
    mp.mkdir()
    try:
        res = subprocess.run([*CLI, "mount", "--create", "--store", str(store), "--experiment", EXP, str(mp)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        pid = int(Path(run_file(str(mp))).read_text())
        log = store / ".mldashfs" / "logs" / f"mount-{pid}.log"
        assert "mounted" in log.read_text()
        (store / EXP).mkdir(parents=True)
        (store / EXP / "files").write_text("a file where the blobs' folder belongs")  # every commit fails
        with pytest.raises(OSError) as e:
            (mp / "a.txt").write_bytes(b"hello")
        assert e.value.errno == errno.EIO
        text = log.read_text()
        assert "ERROR" in text and "Traceback" in text and "cannot store the bytes" in text, text
    finally:
        _ensure_unmounted(mp)


def test_umount_refuses_while_a_file_is_open_then_commits_after_close(tmp_path: Path) -> None:
    with mounted(tmp_path / "store", tmp_path / "mnt", experiment=EXP) as m:
        f = open(m.path / "open.bin", "wb")
        try:
            f.write(b"pending")
            f.flush()
            res = subprocess.run([*CLI, "umount", str(m.path)], capture_output=True, text=True, timeout=60)
            assert res.returncode == 1 and len(res.stderr.strip().splitlines()) == 1, res.stderr
            assert os.path.ismount(m.path)
        finally:
            f.close()
        res = subprocess.run([*CLI, "umount", str(m.path)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert m.proc.wait(timeout=30) == 0
    with Store.open(tmp_path / "store") as s:
        assert s.read_bytes(s.latest(f"{EXP}/open.bin")) == b"pending"


@pytest.mark.parametrize("signum", [signal.SIGTERM, signal.SIGINT])
def test_sigterm_and_sigint_unmount_cleanly(tmp_path: Path, signum: int) -> None:
    with mounted(tmp_path / "store", tmp_path / "mnt", experiment=EXP) as m:
        (m.path / "x.bin").write_bytes(b"x" * 1000)
        os.kill(m.pid, signum)
        assert m.proc.wait(timeout=30) == 0
        assert not os.path.ismount(m.path)
        assert "unmounted" in m.log_text()
    with Store.open(tmp_path / "store") as s:
        assert s.latest(f"{EXP}/x.bin").size == 1000


@pytest.mark.parametrize(
    "case, expected",
    [
        ("missing", "does not exist"),
        ("not-empty", "not empty"),
        ("store-is-a-file", "not a directory"),
        ("bad-experiment", "NAMESPACE/PROJECT/EXPERIMENT"),
    ],
)
def test_mount_errors_are_one_clear_line(tmp_path: Path, case: str, expected: str) -> None:
    require_fuse()
    mp, store, experiment = tmp_path / "mnt", tmp_path / "store", EXP
    if case != "missing":
        mp.mkdir()
    if case == "not-empty":
        (mp / "file").write_text("x")
    if case == "store-is-a-file":
        store.write_text("x")
    if case == "bad-experiment":
        experiment = "alice/cv"
    try:
        res = subprocess.run([*CLI, "mount", "--store", str(store), "--experiment", experiment, str(mp)],
                             capture_output=True, text=True, timeout=60)
        assert res.returncode != 0
        assert len(res.stderr.strip().splitlines()) == 1 and expected in res.stderr, res.stderr
        assert not os.path.ismount(mp)
    finally:
        _ensure_unmounted(mp)


def test_mount_t_fuse_mldashfs_uses_the_mount_helper_convention(tmp_path: Path) -> None:
    require_fuse()
    mp, store = tmp_path / "mnt", tmp_path / "store"
    mp.mkdir()
    with Store.open(store) as s:
        s.put_bytes(f"{EXP}/seen.txt", b"via mount(8)")
    try:
        with installed_helper():
            res = subprocess.run(["mount", "-t", "fuse.mldashfs", str(store), str(mp), "-o", f"experiment={EXP}"],
                                 capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        assert (mp / "seen.txt").read_bytes() == b"via mount(8)"
        assert f"{store} {mp} fuse.mldashfs" in Path("/proc/mounts").read_text()
        res = subprocess.run([*CLI, "umount", str(mp)], capture_output=True, text=True, timeout=120)
        assert res.returncode == 0, res.stderr
        assert not os.path.ismount(mp)
    finally:
        _ensure_unmounted(mp)


# -- the tree --------------------------------------------------------------------------------


def test_whole_store_root_shows_namespace_project_experiment(tmp_path: Path) -> None:
    with Store.open(tmp_path / "store") as s:
        s.put_bytes("alice/cv/resnet/models/best.pt", b"w")
        s.put_bytes("bob/nlp/gpt/notes.md", b"n")
    with mounted(tmp_path / "store", tmp_path / "mnt") as m:
        assert sorted(os.listdir(m.path)) == ["alice", "bob"]
        assert (m.path / "alice/cv/resnet/models/best.pt").read_bytes() == b"w"
        with pytest.raises(PermissionError):
            (m.path / "alice/cv/loose.txt").write_bytes(b"no experiment")
        (m.path / "carol/x/y").mkdir(parents=True)
        (m.path / "carol/x/y/z.txt").write_bytes(b"z")
    with Store.open(tmp_path / "store") as s:
        assert s.read_bytes(s.latest("carol/x/y/z.txt")) == b"z"


def test_the_mount_reads_ahead_one_full_request(mnt: Mount) -> None:
    dev = mnt.path.stat().st_dev
    assert mount_device(str(mnt.path)) == f"{os.major(dev)}:{os.minor(dev)}"
    if os.access("/sys/class/bdi", os.W_OK):  # root: the daemon raised it from the kernel's 128 KiB
        assert Path(f"/sys/class/bdi/{os.major(dev)}:{os.minor(dev)}/read_ahead_kb").read_text() == f"{READAHEAD_KIB}\n"


def test_write_then_read_and_one_version_per_close(mnt: Mount) -> None:
    f = mnt.path / "models" / "best.pt"
    f.parent.mkdir()
    for i in range(3):
        f.write_bytes(f"weights {i}".encode())
    with open(f, "ab") as out:
        out.write(b" + more")
    assert f.read_bytes() == b"weights 2 + more"
    st = f.stat()
    assert st.st_size == 16 and oct(st.st_mode & 0o777) == oct(0o644) and st.st_uid == os.getuid()
    versions = sorted(os.listdir(mnt.path / "models/.versions/best.pt"))
    assert len(versions) == 4
    assert ".versions" not in os.listdir(mnt.path / "models")
    assert (mnt.path / "models/.versions/best.pt" / versions[0]).read_bytes() == b"weights 0"
    os.unlink(mnt.path / "models/.versions/best.pt" / versions[0])
    assert sorted(os.listdir(mnt.path / "models/.versions/best.pt")) == versions[1:]
    with pytest.raises(OSError) as e:
        open(mnt.path / "models/.versions/best.pt" / versions[1], "wb")
    assert e.value.errno in (errno.EROFS, errno.EACCES)
    os.truncate(f, 7)
    assert f.read_bytes() == b"weight"[:6] + b"s"


def test_overwriting_a_file_gives_back_the_old_versions_pages(mnt: Mount) -> None:
    f = mnt.path / "ckpt.pt"
    f.write_bytes(os.urandom(4 << 20))
    with Store.open(mnt.store) as s:
        old = Path(s.local_file(s.latest(f"{EXP}/ckpt.pt")) or "")
    os.sync()  # clean pages: what an overwrite a while after the last save finds
    assert old.read_bytes() and resident_pages(old) > 0
    f.write_bytes(b"new weights")  # O_TRUNC, as torch.save opens an existing file
    assert resident_pages(old) == 0
    assert len(os.listdir(mnt.path / ".versions" / "ckpt.pt")) == 2


def test_a_reader_keeps_the_version_it_opened_while_the_file_is_rewritten(mnt: Mount) -> None:
    f = mnt.path / "weights.bin"
    f.write_bytes(b"A" * (4 << 20))
    with open(f, "r+b") as w, open(f, "rb") as reader:
        head = reader.read(1 << 20)
        w.truncate(0)
        w.write(b"B" * (2 << 20))
        w.close()
        assert f.read_bytes() == b"B" * (2 << 20)
        rest = reader.read()
    assert head + rest == b"A" * (4 << 20)
    assert [p.stat().st_size for p in sorted((mnt.path / ".versions/weights.bin").iterdir())] == [4 << 20, 2 << 20]


def test_xattrs_with_getfattr_and_setfattr(mnt: Mount) -> None:
    f = mnt.path / "best.pt"
    f.write_bytes(b"weights")
    subprocess.run(["setfattr", "-n", "user.mldash.tags", "-v", "best,final", str(f)], check=True)
    subprocess.run(["setfattr", "-n", "user.epoch", "-v", "50", str(f)], check=True)
    out = subprocess.run(["getfattr", "-d", str(f)], capture_output=True, text=True, check=True).stdout
    assert 'user.mldash.tags="best,final"' in out and 'user.epoch="50"' in out
    out = subprocess.run(["getfattr", "-n", "user.mldash.checksum", "--only-values", str(f)],
                         capture_output=True, text=True, check=True).stdout
    assert out == hashlib.sha256(b"weights").hexdigest()
    bad = subprocess.run(["setfattr", "-n", "user.mldash.metadata", "-v", "nope", str(f)], capture_output=True, text=True)
    assert bad.returncode != 0 and "Invalid argument" in bad.stderr
    assert os.getxattr(f, "user.xdg.tags") == b"best,final"
    with pytest.raises(OSError) as e:
        os.getxattr(f, "security.selinux")
    assert e.value.errno == errno.ENOTSUP  # ls -l then stops asking for the whole mount


def test_rename_rmdir_and_bad_names(mnt: Mount) -> None:
    (mnt.path / "ckpt.pt").write_bytes(b"old")
    (mnt.path / "ckpt.pt.tmp").write_bytes(b"new")
    os.rename(mnt.path / "ckpt.pt.tmp", mnt.path / "ckpt.pt")
    assert (mnt.path / "ckpt.pt").read_bytes() == b"new"
    assert len(os.listdir(mnt.path / ".versions/ckpt.pt")) == 2
    (mnt.path / "d").mkdir()
    (mnt.path / "d/f").write_bytes(b"f")
    with pytest.raises(OSError) as e:
        os.rmdir(mnt.path / "d")
    assert e.value.errno == errno.ENOTEMPTY
    os.rename(mnt.path / "d", mnt.path / "e")
    assert (mnt.path / "e/f").read_bytes() == b"f"
    with pytest.raises(OSError) as e:
        (mnt.path / ("x" * 256)).write_bytes(b"")
    assert e.value.errno == errno.ENAMETOOLONG
    with pytest.raises(OSError):
        os.mkdir(mnt.path / ".versions")
    for call in (lambda: os.link(mnt.path / "ckpt.pt", mnt.path / "hard"),
                 lambda: os.mkfifo(mnt.path / "fifo")):
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EPERM


# -- one store, two doors --------------------------------------------------------------------


def test_a_file_saved_by_another_process_appears_within_the_documented_delay(mnt: Mount) -> None:
    (mnt.path / "metrics.json").write_bytes(b"{}")
    assert (mnt.path / "metrics.json").stat().st_size == 2  # now cached by the kernel and the daemon
    _in_other_process(f"""
        from mldashfs.store import Store
        with Store.open({str(mnt.store)!r}) as s:
            s.put_bytes("{EXP}/metrics.json", b'{{"loss": 0.1}}')
            s.put_bytes("{EXP}/new.txt", b"new")
    """)
    saved = time.monotonic()
    assert (mnt.path / "new.txt").read_bytes() == b"new"
    assert _wait(lambda: (mnt.path / "metrics.json").stat().st_size == 13, VISIBILITY_DELAY + 1.0)
    assert time.monotonic() - saved <= VISIBILITY_DELAY + 1.0
    assert (mnt.path / "metrics.json").read_bytes() == b'{"loss": 0.1}'


def test_a_file_written_through_the_mount_is_seen_by_another_process(mnt: Mount) -> None:
    data = os.urandom(3 * 1024 * 1024 + 17)
    with open(mnt.path / "blob.bin", "wb") as f:
        for i in range(0, len(data), 65536):
            f.write(data[i : i + 65536])
    out = _in_other_process(f"""
        from mldashfs.store import Store
        with Store.open({str(mnt.store)!r}) as s:
            v = s.latest("{EXP}/blob.bin")
            print(v.sha256, v.size)
    """)
    assert out == f"{hashlib.sha256(data).hexdigest()} {len(data)}"
    assert os.getxattr(mnt.path / "blob.bin", "user.mldash.checksum").decode() == hashlib.sha256(data).hexdigest()


def test_a_big_write_does_not_stall_ls(mnt: Mount) -> None:
    (mnt.path / "other").mkdir()
    for i in range(20):
        (mnt.path / "other" / f"f{i}").write_bytes(b"x")
    writer = subprocess.Popen(["dd", "if=/dev/zero", f"of={mnt.path / 'big.bin'}", "bs=1M", "count=512"],
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        assert _wait(lambda: (mnt.path / "big.bin").exists() and (mnt.path / "big.bin").stat().st_size > 0, 60)
        ls = subprocess.run(["ls", "-l", str(mnt.path / "other")], capture_output=True, text=True, timeout=60)
        assert ls.returncode == 0 and len(ls.stdout.splitlines()) == 21
        assert writer.poll() is None, "the 512 MiB write finished before ls did: ls waited for it"
        assert writer.wait(timeout=240) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()
    assert (mnt.path / "big.bin").stat().st_size == 512 << 20


def test_a_locked_catalog_delays_a_commit_but_not_the_mount(mnt: Mount) -> None:
    """Small files commit on the daemon's loop only when the catalog takes the row at once: while
    another process holds its write lock, the commit waits elsewhere and the mount keeps answering."""
    (mnt.path / "seen.txt").write_bytes(b"x")
    other = sqlite3.connect(mnt.store / ".mldashfs" / "catalog.sqlite", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")  # another process in the middle of a write
    closed = threading.Event()

    def write() -> None:
        (mnt.path / "small.txt").write_bytes(b"hello")  # its close() commits: it has to wait for the lock
        closed.set()

    writer = threading.Thread(target=write)
    try:
        writer.start()
        time.sleep(0.5)  # let the write reach its commit
        ls = subprocess.run(["ls", "-l", str(mnt.path)], capture_output=True, text=True, timeout=30)
        assert ls.returncode == 0 and "seen.txt" in ls.stdout
        assert (mnt.path / "seen.txt").read_bytes() == b"x"
        assert (mnt.path / "small.txt").stat().st_size == 5  # the bytes being committed, not 0
        assert not closed.is_set(), "the commit did not wait for the other writer"
    finally:
        other.execute("ROLLBACK")
        other.close()
        writer.join(timeout=60)
    assert closed.is_set() and (mnt.path / "small.txt").read_bytes() == b"hello"
