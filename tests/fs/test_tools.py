"""Users' workflows through a real mount with real tools: torch, numpy, cp, rsync, tar, git, sqlite3, xattrs.

One mount serves the whole module (mounting costs a second); each test works in its own subdirectory
of it, named after the test, so tests never see each other's files.
"""

from __future__ import annotations

import errno
import hashlib
import itertools
import json
import os
import random
import sqlite3
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import pytest
import torch

from mldashfs.fs.attributes import VISIBILITY_DELAY
from mldashfs.fs.page_cache import MOVE_GRACE
from mldashfs.store import Store
from tests.mounting import Mount, temp_dir, temp_mount

EXPERIMENT = "alice/cv/tools"
UNSUPPORTED = {errno.EPERM, errno.EOPNOTSUPP, errno.ENOTSUP, errno.ENOSYS}


@pytest.fixture(scope="module")
def mount() -> Iterator[Mount]:
    """One experiment mounted for the whole module; unmounted and removed even on failure."""
    with temp_mount(EXPERIMENT, "mldashfs-tools-") as m:
        yield m



@pytest.fixture
def scratch() -> Iterator[Path]:
    """A folder on the local disk for this test's own files; removed even on failure."""
    with temp_dir("mldashfs-tools-local-") as d:
        yield d


@pytest.fixture
def source(scratch: Path) -> Path:
    """A small tree on the local disk to copy in: text, binary, nested dirs, an xattr on one file."""
    src = scratch / "src"
    (src / "sub" / "deeper").mkdir(parents=True)
    (src / "a.txt").write_text("hello\n" * 100)
    (src / "sub" / "b.bin").write_bytes(os.urandom(300_000))
    (src / "sub" / "deeper" / "c.json").write_text('{"lr": 0.001}')
    (src / "empty").write_bytes(b"")
    os.chmod(src / "a.txt", 0o600)
    os.utime(src / "sub" / "b.bin", (1_600_000_000, 1_600_000_000))
    run("setfattr", "-n", "user.epoch", "-v", "7", str(src / "sub" / "b.bin"))
    return src


@pytest.fixture
def store(mount: Mount) -> Iterator[Store]:
    """The mounted store opened by this process too, as the SDK of a training script would
    (this overrides conftest's fresh-store fixture for this module)."""
    with Store.open(mount.store) as s:
        yield s


def run(*argv: str, cwd: Path | None = None, env: dict[str, str] | None = None) -> str:
    """Run a tool, fail the test with its stderr if it fails, return its stdout."""
    done = subprocess.run(argv, cwd=cwd, env=env, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}: {done.stderr}"
    return done.stdout


def store_path(work: Path, *names: str) -> str:
    """The store path of a file written at work/names... inside the mounted experiment."""
    return "/".join([EXPERIMENT, work.name, *names])


def versions(path: Path) -> list[str]:
    """The version ids listed in `<dir>/.versions/<name>/`, in listing order."""
    return os.listdir(path.parent / ".versions" / path.name)


def test_torch_state_dict_and_whole_model(work: Path) -> None:
    torch.manual_seed(0)
    model = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    x = torch.randn(4, 8)

    torch.save(model.state_dict(), work / "weights.pt")
    fresh = torch.nn.Sequential(torch.nn.Linear(8, 16), torch.nn.ReLU(), torch.nn.Linear(16, 2))
    fresh.load_state_dict(torch.load(work / "weights.pt"))
    assert torch.equal(fresh(x), model(x))

    torch.save(model, work / "model.pt")
    whole = torch.load(work / "model.pt", weights_only=False)
    assert torch.equal(whole(x), model(x))
    assert sorted(os.listdir(work)) == ["model.pt", "weights.pt"]


def test_an_unchanged_checkpoint_saved_again_takes_the_space_of_one(work: Path, mount: Mount) -> None:
    torch.manual_seed(0)
    model = torch.nn.Linear(500, 500)  # a 1 MB state dict; torch.save writes the same bytes each time
    for _ in range(20):
        torch.save(model.state_dict(), work / "ckpt.pt")
    assert len(versions(work / "ckpt.pt")) == 20
    size = (work / "ckpt.pt").stat().st_size
    blobs = mount.store / store_path(work).replace(EXPERIMENT, EXPERIMENT + "/files", 1)
    on_disk = [f for f in blobs.rglob("*") if f.is_file()]
    assert [f.stat().st_size for f in on_disk] == [size]  # one blob for the 20 versions
    fresh = torch.nn.Linear(500, 500)
    fresh.load_state_dict(torch.load(work / ".versions" / "ckpt.pt" / versions(work / "ckpt.pt")[3]))
    assert torch.equal(fresh.weight, model.weight)
    du = json.loads(run(sys.executable, "-m", "mldashfs.cli", "--store", str(mount.store), "du", "--json",
                        store_path(work, "ckpt.pt")))
    assert (du["versions"], du["logical"], du["stored"], du["blobs"]) == (20, 20 * size, size, 1)


def test_numpy_save_and_load(work: Path) -> None:
    arr = np.arange(100_000, dtype=np.float32).reshape(100, 1000)
    np.save(work / "arr.npy", arr)
    np.testing.assert_array_equal(np.load(work / "arr.npy"), arr)
    np.savez_compressed(work / "both.npz", a=arr, b=arr * 2)
    with np.load(work / "both.npz") as z:
        np.testing.assert_array_equal(z["b"], arr * 2)


def test_numpy_memmap_reads_right_after_the_save(work: Path) -> None:
    arr = np.arange(200_000, dtype=np.int64)
    np.save(work / "big.npy", arr)
    view = np.load(work / "big.npy", mmap_mode="r")  # a shared read-only mapping, as data loaders use
    assert int(view[123_456]) == 123_456
    np.save(work / "big.npy", arr * 2)  # overwritten while mapped: the mapping keeps its version
    assert int(view[123_456]) == 123_456 and int(view[-1]) == 199_999
    del view
    np.testing.assert_array_equal(np.load(work / "big.npy", mmap_mode="r")[:3], [0, 2, 4])


def test_numpy_memmap_writes(work: Path, store: Store) -> None:
    """A shared writable mapping (direct I/O files may be mapped: FUSE_DIRECT_IO_ALLOW_MMAP) makes
    one new version at close, with the checksum of its bytes."""
    arr = np.arange(200_000, dtype=np.int64)
    np.save(work / "big.npy", arr)
    mm = np.lib.format.open_memmap(work / "big.npy", mode="r+")
    with open(work / "big.npy", "rb") as reader:  # opened while the writer maps the file
        mm[:10] = -1
        mm[-1] = 7
        mm.flush()
        del mm
        assert np.load(reader)[0] == 0  # keeps the version it opened
    got = np.load(work / "big.npy")
    np.testing.assert_array_equal(got[:11], [-1] * 10 + [10])
    assert got[-1] == 7
    history = store.history(store_path(work, "big.npy"))
    assert len(history) == 2
    assert history[-1].sha256 == hashlib.sha256((work / "big.npy").read_bytes()).hexdigest()


def test_write_temp_then_rename_adds_one_version(work: Path, store: Store) -> None:
    target = work / "x"
    target.write_bytes(b"first")
    (work / "x.tmp").write_bytes(b"second")
    os.replace(work / "x.tmp", target)

    assert target.read_bytes() == b"second"
    assert sorted(os.listdir(work)) == ["x"]
    ids = versions(target)
    assert len(ids) == 2
    assert (work / ".versions" / "x" / ids[0]).read_bytes() == b"first"
    assert [v.sha256 for v in store.history(store_path(work, "x"))] == [
        hashlib.sha256(b"first").hexdigest(),
        hashlib.sha256(b"second").hexdigest(),
    ]


def test_cp_a_keeps_tree_modes_mtimes_and_xattrs(work: Path, source: Path) -> None:
    run("cp", "-a", str(source), str(work / "copy"))
    run("diff", "-r", str(source), str(work / "copy"))
    copied = work / "copy" / "sub" / "b.bin"
    assert run("getfattr", "-n", "user.epoch", "--only-values", str(copied)) == "7"
    assert int(copied.stat().st_mtime) == 1_600_000_000
    assert stat.S_IMODE((work / "copy" / "a.txt").stat().st_mode) == 0o600


def test_rsync_twice_transfers_nothing_the_second_time(work: Path, source: Path, store: Store) -> None:
    run("rsync", "-a", f"{source}/", f"{work}/dst/")
    run("diff", "-r", str(source), str(work / "dst"))
    out = run("rsync", "-a", "--itemize-changes", "--stats", f"{source}/", f"{work}/dst/")
    assert "Number of regular files transferred: 0" in out, out
    assert not [line for line in out.splitlines() if line[1:2] == "f"], out
    assert len(store.history(store_path(work, "dst", "sub", "b.bin"))) == 1


def test_rsync_X_keeps_user_xattrs(work: Path, source: Path) -> None:
    # rsync -X makes the destination's xattrs equal the source's, so it meets the mount's read-only
    # user.mldash.* names; SEMANTICS.md promises `rsync -X` keeps user.<key> metadata all the same.
    for _ in range(2):
        run("rsync", "-aX", f"{source}/", f"{work}/dst/")
    assert run("getfattr", "-n", "user.epoch", "--only-values", str(work / "dst" / "sub" / "b.bin")) == "7"
    run("diff", "-r", str(source), str(work / "dst"))


def test_tar_extract_into_the_mount(work: Path, source: Path, scratch: Path) -> None:
    tarball = scratch / "src.tar"
    run("tar", "-cf", str(tarball), "-C", str(source.parent), "src")
    run("tar", "-xf", str(tarball), "-C", str(work))
    run("diff", "-r", str(source), str(work / "src"))
    assert int((work / "src" / "sub" / "b.bin").stat().st_mtime) == 1_600_000_000


def test_xattrs_tags_and_metadata_reach_the_store(work: Path, store: Store) -> None:
    f = work / "best.pt"
    f.write_bytes(b"weights")
    run("setfattr", "-n", "user.mldash.tags", "-v", "a,b", str(f))
    run("setfattr", "-n", "user.mldash.description", "-v", "best so far", str(f))
    run("setfattr", "-n", "user.epoch", "-v", "50", str(f))

    v = store.latest(store_path(work, "best.pt"))
    assert v.tags == ("a", "b")
    assert v.description == "best so far"
    assert v.metadata["epoch"] in (50, "50")
    assert len(store.history(store_path(work, "best.pt"))) == 1  # xattrs make no version

    dump = run("getfattr", "-d", str(f))
    assert 'user.mldash.tags="a,b"' in dump
    assert 'user.epoch="50"' in dump
    assert f'user.mldash.id="{v.id}"' in dump
    checksum = run("getfattr", "-n", "user.mldash.checksum", "--only-values", str(f))
    assert checksum == hashlib.sha256(b"weights").hexdigest()
    assert run("getfattr", "-n", "user.xdg.tags", "--only-values", str(f)) == "a,b"

    denied = subprocess.run(["setfattr", "-n", "user.mldash.checksum", "-v", "0" * 64, str(f)],
                            capture_output=True, text=True)
    assert denied.returncode != 0
    bad_json = subprocess.run(["setfattr", "-n", "user.mldash.metadata", "-v", "{not json", str(f)],
                              capture_output=True, text=True)
    assert bad_json.returncode != 0
    assert store.latest(store_path(work, "best.pt")).metadata["epoch"] in (50, "50")


def test_shell_append_makes_a_version_each_time(work: Path) -> None:
    log = work / "train.log"
    for i in range(3):
        run("sh", "-c", f'printf "step {i}\\n" >> "$0"', str(log))
    assert log.read_text() == "step 0\nstep 1\nstep 2\n"
    ids = versions(log)
    assert len(ids) == 3
    assert (work / ".versions" / "train.log" / ids[1]).read_text() == "step 0\nstep 1\n"


def test_truncate_shrinks_and_extends(work: Path) -> None:
    f = work / "data.bin"
    f.write_bytes(bytes(range(100)))
    run("truncate", "-s", "10", str(f))
    assert f.read_bytes() == bytes(range(10))
    run("truncate", "-s", "20", str(f))
    assert f.read_bytes() == bytes(range(10)) + b"\0" * 10
    assert f.stat().st_size == 20
    run("truncate", "-s", "0", str(f))
    assert f.read_bytes() == b""
    assert len(versions(f)) == 4


def test_shell_redirect_empties_a_file_at_once(work: Path) -> None:
    log = work / "run.log"
    for i in range(20):  # each round: write, then `: > f` (open O_TRUNC, write nothing, close), then read
        log.write_text(f"round {i}\n")
        run("sh", "-c", ': > "$0"', str(log))
        got = log.read_bytes()
        assert got == b"", f"round {i}: still {got!r} after `: > run.log`"
        assert log.stat().st_size == 0


def test_readers_see_whole_versions_during_rewrites(work: Path) -> None:
    f = work / "ckpt.bin"
    contents = [(f"{i:08d}".encode() * 16384) for i in range(40)]  # 128 KiB each, all distinct
    f.write_bytes(contents[0])
    done = threading.Event()
    seen: list[bytes] = []
    errors: list[BaseException] = []

    def writer() -> None:
        try:
            for body in contents[1:]:
                with open(f, "wb") as out:
                    for at in range(0, len(body), 16384):  # several writes per version
                        out.write(body[at:at + 16384])
                        out.flush()
        except BaseException as e:  # noqa: B036 - reported by the main thread
            errors.append(e)
        finally:
            done.set()

    def reader() -> None:
        try:
            while not done.is_set():
                with open(f, "rb") as inp:
                    seen.append(inp.read())
        except BaseException as e:  # noqa: B036 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=writer), threading.Thread(target=reader), threading.Thread(target=reader)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    assert seen
    valid = set(contents)
    torn = [s[:16] for s in seen if s not in valid]
    assert not torn, f"{len(torn)} of {len(seen)} reads were not one whole version: {torn[:3]}"
    assert f.read_bytes() == contents[-1]


@pytest.mark.parametrize("change", ["overwrite", "truncate", "sdk"])
def test_a_reader_in_the_page_cache_keeps_its_whole_version(work: Path, store: Store, change: str) -> None:
    """A reader that opened a quiet file reads through the kernel page cache, which the kernel cuts
    at the inode's size: an overwrite through the mount, a truncate, or a smaller version saved by
    the SDK must not shorten what that reader sees."""
    f = work / "ckpt.bin"
    old, new = os.urandom(4 << 20), os.urandom(1 << 20)
    f.write_bytes(old)
    time.sleep(MOVE_GRACE)  # settled: the next reader takes the page cache
    with open(f, "rb", buffering=0) as reader:
        head = reader.read(1 << 20)
        if change == "overwrite":  # torch.save's way: open with O_TRUNC, write, close
            with open(f, "wb") as out:
                out.write(new)
        elif change == "truncate":
            os.truncate(f, len(new))
            new = old[: len(new)]
        else:
            store.put_bytes(store_path(work, "ckpt.bin"), new)
            time.sleep(VISIBILITY_DELAY + 0.5)  # the kernel has asked for the file's attributes again
        rest = reader.read()
    assert len(head + rest) == len(old) and head + rest == old
    if change == "sdk":
        time.sleep(VISIBILITY_DELAY)
    assert f.stat().st_size == len(new) and f.read_bytes() == new
    assert store.read_bytes(store.latest(store_path(work, "ckpt.bin"))) == new


@pytest.mark.parametrize("seen_by", ["read", "listing"])
def test_a_reader_opened_right_after_an_sdk_save_reads_one_whole_version(work: Path, store: Store,
                                                                          seen_by: str) -> None:
    """The kernel may still hold the old version's size when the SDK saves a bigger one; a reader
    opened then must not get the new bytes cut at the old size."""
    f = work / "grows.bin"
    small, big = os.urandom(1 << 20), os.urandom(4 << 20)
    store.put_bytes(store_path(work, "grows.bin"), small)
    if seen_by == "read":
        assert f.read_bytes() == small  # the kernel and the daemon now hold the small size
    else:
        assert os.listdir(work) == ["grows.bin"]  # only readdir has told the kernel the small size
    store.put_bytes(store_path(work, "grows.bin"), big)
    assert f.read_bytes() in (small, big)  # within the visibility delay either is fine, never a mix
    time.sleep(VISIBILITY_DELAY)
    assert f.read_bytes() == big


def test_a_reader_opened_right_after_the_newest_version_is_deleted_reads_the_one_before(work: Path,
                                                                                         store: Store) -> None:
    """Deleting a file's newest version (SDK, CLI or `.versions`) makes the one before it the file's
    bytes. A reader opened while the kernel still holds the deleted version's size from a listing
    must read the older version whole, not cut at the deleted one's size."""
    f = work / "shrinks.bin"
    older, newer = os.urandom(4 << 20), os.urandom(1 << 20)
    store.put_bytes(store_path(work, "shrinks.bin"), older)
    newest = store.put_bytes(store_path(work, "shrinks.bin"), newer)
    time.sleep(VISIBILITY_DELAY + 0.2)  # both versions are old: only the deletion below is recent
    assert os.listdir(work) == ["shrinks.bin"]  # readdir tells the kernel the newest version's size
    store.delete_version(newest.id)
    assert f.read_bytes() == older


def test_concurrent_readers_of_different_files_each_get_their_own_bytes(work: Path) -> None:
    """The daemon answers reads the blob's page cache holds from one reply buffer; readers of
    different files at the same time must each get their own file's bytes."""
    files = {work / f"part{i}.bin": os.urandom(8 << 20) for i in range(3)}
    for f, data in files.items():
        f.write_bytes(data)  # the blobs' pages stay cached: the daemon answers from them
    errors: list[BaseException] = []

    def read_rounds(f: Path, data: bytes) -> None:
        try:
            for _ in range(5):
                fd = os.open(f, os.O_RDONLY)
                try:
                    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)  # so every read asks the daemon
                    got = b"".join(iter(lambda fd=fd: os.read(fd, 1 << 20), b""))
                finally:
                    os.close(fd)
                assert got == data, f"{f.name}: another file's bytes"
        except BaseException as e:  # noqa: B036 - reported by the main thread
            errors.append(e)

    threads = [threading.Thread(target=read_rounds, args=item) for item in files.items()]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors, errors[0]


def test_readers_see_whole_versions_under_overwrites_truncates_and_sdk_saves(work: Path, store: Store) -> None:
    """For 15 s: overwrites through the mount, saves by the SDK and truncates of one file, at random
    pauses (often long enough that readers take the page cache), while fast and slow readers read it
    whole. Every read must be the bytes of one version of its history."""
    f, rng = work / "ckpt.bin", random.Random(7)
    stop = time.monotonic() + 15
    numbers = itertools.count(1)
    sizes = (32 << 10, 1 << 20, 3 << 20)
    seen: list[str] = []
    errors: list[BaseException] = []

    def body(n: int, size: int) -> bytes:
        return (f"{n:08d}".encode() * (size // 8 + 1))[:size]

    def loop(step: Callable[[], None], pause: float) -> None:
        try:
            while time.monotonic() < stop:
                step()
                time.sleep(rng.random() * pause)
        except BaseException as e:  # noqa: B036 - reported by the main thread
            errors.append(e)

    def overwrite() -> None:
        data = body(next(numbers), rng.choice(sizes))
        with open(f, "wb") as out:
            for at in range(0, len(data), 1 << 18):
                out.write(data[at:at + (1 << 18)])

    def read(slow: bool) -> None:
        parts = []
        with open(f, "rb", buffering=0) as inp:
            while chunk := inp.read(1 << 18):
                parts.append(chunk)
                if slow:
                    time.sleep(0.15)
        seen.append(hashlib.sha256(b"".join(parts)).hexdigest())

    f.write_bytes(body(0, 1 << 20))
    threads = [threading.Thread(target=loop, args=args) for args in [
        (overwrite, 6.0),
        (lambda: store.put_bytes(store_path(work, "ckpt.bin"), body(next(numbers), rng.choice(sizes))), 8.0),
        (lambda: os.truncate(f, rng.choice([0, 100_000])), 10.0),
        (lambda: read(True), 1.0),
        (lambda: read(False), 0.05),
    ]]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=120)
    assert not errors, errors
    valid = {v.sha256 for v in store.history(store_path(work, "ckpt.bin"))}
    torn = [h for h in seen if h not in valid]
    assert len(seen) > 50 and not torn, f"{len(torn)} of {len(seen)} reads were no version"


def test_two_writers_of_one_path_make_two_versions_last_closed_newest(work: Path) -> None:
    f = work / "shared.txt"
    first, second = open(f, "wb"), open(f, "wb")
    try:
        first.write(b"from the first writer")
        second.write(b"from the second writer")
        first.close()
        assert f.read_bytes() == b"from the first writer"
    finally:
        first.close()
        second.close()
    assert f.read_bytes() == b"from the second writer"
    assert [(work / ".versions" / "shared.txt" / i).read_bytes() for i in versions(f)] == [
        b"from the first writer", b"from the second writer"]


def test_versions_listing_reading_and_removing(work: Path) -> None:
    f = work / "m.pt"
    for body in (b"v1", b"v2", b"v3"):
        f.write_bytes(body)
    assert ".versions" not in os.listdir(work)
    vdir = work / ".versions" / "m.pt"
    ids = versions(f)
    assert len(ids) == 3
    assert ids == sorted(ids, key=int)  # newest last
    assert [(vdir / i).read_bytes() for i in ids] == [b"v1", b"v2", b"v3"]
    assert run("getfattr", "-n", "user.mldash.id", "--only-values", str(vdir / ids[0])) == ids[0]

    with pytest.raises(OSError):
        with open(vdir / ids[0], "r+b") as w:
            w.write(b"X")
    assert (vdir / ids[0]).read_bytes() == b"v1"

    os.remove(vdir / ids[1])
    assert versions(f) == [ids[0], ids[2]]
    assert f.read_bytes() == b"v3"
    os.remove(vdir / ids[2])
    assert f.read_bytes() == b"v1"  # the newest live version is now the first


def test_git_repository_inside_the_mount(work: Path, scratch: Path) -> None:
    repo = work / "repo"
    env = {**os.environ, "HOME": str(scratch), "GIT_CONFIG_NOSYSTEM": "1",
           "GIT_AUTHOR_NAME": "A", "GIT_AUTHOR_EMAIL": "a@example.com",
           "GIT_COMMITTER_NAME": "A", "GIT_COMMITTER_EMAIL": "a@example.com"}
    run("git", "init", "-q", "-b", "main", str(repo), env=env)
    (repo / "train.py").write_text("print('train')\n")
    (repo / "configs").mkdir()
    (repo / "configs" / "base.yaml").write_text("lr: 0.1\n")
    run("git", "add", "-A", cwd=repo, env=env)
    run("git", "commit", "-q", "-m", "first", cwd=repo, env=env)
    (repo / "configs" / "base.yaml").write_text("lr: 0.01\n")
    run("git", "commit", "-q", "-am", "lower lr", cwd=repo, env=env)

    assert run("git", "log", "--format=%s", cwd=repo, env=env).splitlines() == ["lower lr", "first"]
    assert run("git", "status", "--porcelain", cwd=repo, env=env) == ""
    run("git", "fsck", "--full", cwd=repo, env=env)
    assert run("git", "show", "HEAD~1:configs/base.yaml", cwd=repo, env=env) == "lr: 0.1\n"


def test_sqlite_database_inside_the_mount(work: Path) -> None:
    db = work / "runs.sqlite"
    con = sqlite3.connect(db)
    try:
        con.execute("CREATE TABLE metrics (step INTEGER PRIMARY KEY, loss REAL, note TEXT)")
        for batch in range(10):
            with con:  # one transaction (journal, random writes, fsync) per 100 rows
                con.executemany("INSERT INTO metrics VALUES (?, ?, ?)",
                                [(batch * 100 + i, 1.0 / (1 + batch * 100 + i), "x" * 50) for i in range(100)])
    finally:
        con.close()
    con = sqlite3.connect(db)
    try:
        assert con.execute("SELECT count(*), max(step) FROM metrics").fetchone() == (1000, 999)
        assert con.execute("PRAGMA integrity_check").fetchone() == ("ok",)
    finally:
        con.close()
    assert sorted(os.listdir(work)) == ["runs.sqlite"]  # the rollback journal is gone


def test_bad_names_get_clear_errors(work: Path) -> None:
    for make in (lambda p: open(p, "wb").close(), os.mkdir):
        with pytest.raises(OSError) as e:
            make(work / ("n" * 256))
        assert e.value.errno == errno.ENAMETOOLONG
    longest = work / ("n" * 255)
    longest.write_bytes(b"ok")
    assert longest.read_bytes() == b"ok"

    (work / "f").write_bytes(b"f")
    with pytest.raises(OSError):
        os.mkdir(work / ".versions")
    with pytest.raises(OSError):
        open(work / ".versions", "wb").close()
    with pytest.raises(OSError):
        os.rename(work / "f", work / ".versions")
    assert sorted(os.listdir(work)) == ["f", "n" * 255]
    assert (work / "f").read_bytes() == b"f"


def test_hard_links_and_special_files_are_refused_and_the_mount_keeps_working(work: Path) -> None:
    target = work / "target.txt"
    target.write_text("t")
    attempts = {
        "link": lambda: os.link(target, work / "hard"),
        "mkfifo": lambda: os.mkfifo(work / "fifo"),
        "mknod": lambda: os.mknod(work / "node", stat.S_IFCHR | 0o600, os.makedev(1, 3)),
    }
    for name, attempt in attempts.items():
        with pytest.raises(OSError) as e:
            attempt()
        assert e.value.errno in UNSUPPORTED, f"{name}: {e.value}"
    ln = subprocess.run(["ln", "target.txt", "hard2"], cwd=work, capture_output=True, text=True)
    assert ln.returncode != 0 and "ln:" in ln.stderr

    assert sorted(os.listdir(work)) == ["target.txt"]
    (work / "after.txt").write_text("still fine")
    assert (work / "after.txt").read_text() == "still fine"
    assert target.read_text() == "t"
