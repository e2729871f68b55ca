"""Remote stores through real mounts: two machines (mounts with their own cache folders) on one
store, with cp, mv, rm, getfattr, fsync, umount and kill -9."""

from __future__ import annotations

import hashlib
import os
import shutil
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.mounting import mounted
from tests.remote_stores import RemoteStore
from tests.servers.s3 import s3_client

E = "alice/cv/resnet"
#: How long a change may take to show on another machine: the metadata TTL (1 s) plus the kernel's
#: attribute and entry timeouts, plus the upload; the tests allow this much.
BOUND = 20.0


def xattr(path: Path, name: str) -> str:
    return os.getxattr(path, f"user.mldash.{name}").decode()


def eventually(check: Callable[[], bool], timeout: float = BOUND) -> None:
    """Wait until `check()` holds (a change on another machine shows within a bounded delay)."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"not seen within {timeout} s")
        time.sleep(0.1)


def mount_remote(remote: RemoteStore, machine: str, tmp_path: Path, *extra: str):  # type: ignore[no-untyped-def]
    opts = remote.cli_options(machine)
    return mounted(opts[1], tmp_path / f"mnt-{machine}", experiment=E, extra_args=(*opts[2:], *extra))


def test_two_machines_see_each_others_files(remote_store: RemoteStore, tmp_path: Path) -> None:
    data = os.urandom(5 << 20)
    src = tmp_path / "ckpt.pt"
    src.write_bytes(data)
    with mount_remote(remote_store, "a", tmp_path) as a, mount_remote(remote_store, "b", tmp_path) as b:
        (a.path / "models").mkdir()
        shutil.copy(src, a.path / "models" / "best.pt")
        assert xattr(a.path / "models" / "best.pt", "state") in ("pending", "uploaded")
        sha = hashlib.sha256(data).hexdigest()
        assert xattr(a.path / "models" / "best.pt", "checksum") == sha
        eventually(lambda: (b.path / "models" / "best.pt").exists())
        assert xattr(b.path / "models" / "best.pt", "checksum") == sha
        assert (b.path / "models" / "best.pt").read_bytes() == data  # a cold read through b's cache
        assert (b.path / "models" / "best.pt").read_bytes() == data  # warm: b's cached copy
        os.rename(a.path / "models" / "best.pt", a.path / "models" / "final.pt")
        eventually(lambda: (b.path / "models" / "final.pt").exists() and not (b.path / "models" / "best.pt").exists())
        (a.path / "models" / "final.pt").unlink()
        eventually(lambda: not (b.path / "models" / "final.pt").exists())
        for m in (a, b):
            assert "Traceback" not in m.log_text()


def test_fsync_returns_once_the_file_is_in_s3(remote_store: RemoteStore, tmp_path: Path) -> None:
    with mount_remote(remote_store, "a", tmp_path) as a:
        with open(a.path / "result.json", "wb") as f:
            f.write(b'{"acc": 0.9}')
            f.flush()
            os.fsync(f.fileno())
            keys = [o["Key"] for o in s3_client(remote_store.endpoint).list_objects_v2(
                Bucket=remote_store.bucket).get("Contents", [])]
            assert any(k.endswith("/result.json") for k in keys)
        assert xattr(a.path / "result.json", "state") == "uploaded"


def test_umount_waits_for_pending_uploads(remote_store: RemoteStore, tmp_path: Path) -> None:
    opts = remote_store.cli_options("a")
    mnt = tmp_path / "mnt"
    mnt.mkdir()
    subprocess.run([sys.executable, "-m", "mldashfs.cli", "mount", *opts, "--experiment", E, str(mnt)], check=True)
    try:
        remote_store.server.fault(503, seconds=3)  # uploads are still pending at umount
        for i in range(5):
            (mnt / f"f{i}.bin").write_bytes(bytes([i]) * 1000)
    finally:
        r = subprocess.run([sys.executable, "-m", "mldashfs.cli", "umount", str(mnt)], capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    b = remote_store.open("b")
    assert sorted(e.name for e in b.listdir(E)) == [f"f{i}.bin" for i in range(5)]


def test_a_killed_daemon_leaves_nothing_behind_that_sync_cannot_upload(remote_store: RemoteStore,
                                                                      tmp_path: Path) -> None:
    with mount_remote(remote_store, "a", tmp_path) as a:
        remote_store.server.fault(503, seconds=60)
        for i in range(3):
            (a.path / f"w{i}.bin").write_bytes(os.urandom(100_000))
        shas = {f"w{i}.bin": xattr(a.path / f"w{i}.bin", "checksum") for i in range(3)}
        os.kill(a.pid, signal.SIGKILL)
        a.proc.wait()
    remote_store.server.clear_faults()
    r = subprocess.run([sys.executable, "-m", "mldashfs.cli", "sync", *remote_store.cli_options("a")],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    b = remote_store.open("b")
    assert {n: b.latest(f"{E}/{n}").sha256 for n in shas} == shas


def test_a_corrupted_object_reads_as_eio(remote_store: RemoteStore, tmp_path: Path) -> None:
    a = remote_store.open("a")
    v = a.put_bytes(f"{E}/bad.bin", os.urandom(300_000))
    assert a.wait_uploads(timeout=60)
    remote_store.server.corrupt(remote_store.bucket, f"team/files/{E}/{v.id}/bad.bin", offset=5)
    with mount_remote(remote_store, "b", tmp_path) as b:
        with pytest.raises(OSError) as e:
            (b.path / "bad.bin").read_bytes()
        assert e.value.errno == 5
        assert "checksum" in b.log_text() or "SHA-256" in b.log_text()


def test_copies_of_one_checkpoint_upload_once_and_read_back_elsewhere(remote_store: RemoteStore,
                                                                      tmp_path: Path) -> None:
    data = os.urandom(3 << 20)
    src = tmp_path / "ckpt.pt"
    src.write_bytes(data)
    with mount_remote(remote_store, "a", tmp_path) as a:
        (a.path / "ckpts").mkdir()
        for i in range(5):
            shutil.copy(src, a.path / "ckpts" / f"epoch{i}.pt")
            with open(a.path / "ckpts" / f"epoch{i}.pt", "rb") as f:
                os.fsync(f.fileno())  # published before the next copy: each later one shares its bytes
    c = s3_client(remote_store.endpoint)
    objects = c.list_objects_v2(Bucket=remote_store.bucket, Prefix=f"team/files/{E}/ckpts/").get("Contents", [])
    assert [o["Size"] for o in objects] == [len(data)]
    b = remote_store.open("b")
    assert b.usage(f"{E}/ckpts").as_dict() == {"versions": 5, "logical": 5 * len(data), "blobs": 1,
                                               "stored": len(data), "reclaimable": 0}
    with mount_remote(remote_store, "b", tmp_path) as mb:
        for i in range(5):
            assert (mb.path / "ckpts" / f"epoch{i}.pt").read_bytes() == data


def test_files_read_back_while_their_uploads_publish_them(remote_store: RemoteStore, tmp_path: Path) -> None:
    """Reads right after close, and again while the uploads publish: a file's bytes move from the
    pinned copies to the cached ones, or (a copy of published bytes) onto the published blob; and
    `ls -l` of the folders being written stats every file it lists."""
    published = os.urandom(200_000)
    errors: list[str] = []
    written: dict[Path, bytes] = {}
    lock = threading.Lock()

    def writer(d: Path, n: int) -> None:
        d.mkdir()
        for i in range(n):
            data = published if i % 2 else os.urandom(1000 + i)
            p = d / f"f{i:03d}.bin"
            p.write_bytes(data)
            with lock:
                written[p] = data
            if p.read_bytes() != data:
                errors.append(f"{p}: other bytes right after close")

    def lister(stop: threading.Event) -> None:  # ls -l stats every name it lists, some being written
        while not stop.is_set():
            for w in range(4):
                if (a.path / f"w{w}").exists():
                    done = subprocess.run(["ls", "-l", str(a.path / f"w{w}")], capture_output=True, text=True)
                    if done.returncode != 0:
                        errors.append(done.stderr.strip())

    def reader(stop: threading.Event) -> None:
        while not stop.is_set():
            with lock:
                recent = list(written.items())[-16:]
            for p, data in recent:
                try:
                    if p.read_bytes() != data:
                        errors.append(f"{p}: other bytes")
                except OSError as e:
                    errors.append(f"{p}: {e}")

    with mount_remote(remote_store, "a", tmp_path) as a:
        with open(a.path / "first.bin", "wb") as f:
            f.write(published)
            f.flush()
            os.fsync(f.fileno())  # in S3 and MongoDB: the copies below are published onto its blob
        stop = threading.Event()
        readers = [threading.Thread(target=reader, args=(stop,)) for _ in range(2)]
        readers.append(threading.Thread(target=lister, args=(stop,)))
        for t in readers:
            t.start()
        try:
            writers = [threading.Thread(target=writer, args=(a.path / f"w{w}", 40)) for w in range(4)]
            for t in writers:
                t.start()
            for t in writers:
                t.join()
        finally:
            stop.set()
            for t in readers:
                t.join()
        for p, data in written.items():
            assert p.read_bytes() == data
    assert errors == []
