"""Symbolic links through a real mount with real tools: ln, readlink, ls, stat, rsync, tar, diff, getfattr.

One mount serves the module; each test works in its own subdirectory of it, named after the test.
"""

from __future__ import annotations

import errno
import os
import socket
import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from mldashfs.store import Store
from tests.mounting import Mount, temp_dir, temp_mount

EXPERIMENT = "alice/cv/links"
LINKS = ("rel", "abs", "inside", "dirlink", "sub/dangling", "sub/up")


@pytest.fixture(scope="module")
def mount() -> Iterator[Mount]:
    with temp_mount(EXPERIMENT, "mldashfs-links-") as m:
        yield m



@pytest.fixture
def store(mount: Mount) -> Iterator[Store]:
    with Store.open(mount.store) as s:
        yield s


@pytest.fixture
def source() -> Iterator[Path]:
    """A local tree holding links of every kind: relative, absolute, into the tree, to a folder, dangling."""
    with temp_dir("mldashfs-links-local-") as d:
        src = d / "src"
        (src / "sub").mkdir(parents=True)
        (src / "a.txt").write_text("hello\n")
        os.symlink("a.txt", src / "rel")
        os.symlink("/etc/hostname", src / "abs")
        os.symlink(src / "a.txt", src / "inside")
        os.symlink("sub", src / "dirlink")
        os.symlink("../missing/file", src / "sub" / "dangling")
        os.symlink("../a.txt", src / "sub" / "up")
        os.utime(src / "rel", (1_600_000_000, 1_600_000_000), follow_symlinks=False)
        yield src


def run(*argv: str, cwd: Path | None = None) -> str:
    """Run a tool, fail the test with its stderr if it fails, return its stdout."""
    done = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, f"{' '.join(argv)} exited {done.returncode}: {done.stderr}"
    return done.stdout


def same_tree(src: Path, dst: Path) -> None:
    """`diff -r` (links compared as links, so dangling ones count) and every link's target read back."""
    run("diff", "-r", "--no-dereference", str(src), str(dst))
    for name in LINKS:
        assert (dst / name).is_symlink(), name
        assert run("readlink", str(dst / name)) == run("readlink", str(src / name)), name


def test_ln_s_readlink_ls_and_stat_show_a_link(work: Path, store: Store) -> None:
    (work / "epoch3.pt").write_bytes(b"weights")
    run("ln", "-s", "epoch3.pt", "best.pt", cwd=work)
    assert run("readlink", str(work / "best.pt")) == "epoch3.pt\n"
    assert run("stat", "-c", "%F %s", str(work / "best.pt")) == "symbolic link 9\n"
    assert "best.pt -> epoch3.pt" in run("ls", "-l", str(work))
    assert (work / "best.pt").read_bytes() == b"weights"  # followed by the kernel, as on any disk
    v = store.latest(f"{EXPERIMENT}/{work.name}/best.pt")
    assert v.is_link and store.link_target(v) == "epoch3.pt"


def test_ln_sfn_makes_a_new_version_listed_in_versions(work: Path) -> None:
    (work / "run1").mkdir()
    (work / "run2").mkdir()
    run("ln", "-s", "run1", "current", cwd=work)
    run("ln", "-sfn", "run2", "current", cwd=work)
    assert os.readlink(work / "current") == "run2"
    ids = os.listdir(work / ".versions" / "current")
    assert len(ids) == 2
    assert [os.readlink(work / ".versions" / "current" / i) for i in ids] == ["run1", "run2"]
    assert run("stat", "-c", "%F", str(work / ".versions" / "current" / ids[0])) == "symbolic link\n"
    os.unlink(work / ".versions" / "current" / ids[1])
    assert os.readlink(work / "current") == "run1"
    os.rename(work / "current", work / "previous")
    assert os.readlink(work / "previous") == "run1" and not os.path.lexists(work / "current")
    os.unlink(work / "previous")
    assert sorted(os.listdir(work)) == ["run1", "run2"]


def test_rsync_a_copies_every_kind_of_link(work: Path, source: Path) -> None:
    run("rsync", "-a", f"{source}/", f"{work}/dst/")
    same_tree(source, work / "dst")
    assert int(os.lstat(work / "dst" / "rel").st_mtime) == 1_600_000_000  # rsync -a sets link times
    out = run("rsync", "-a", "--itemize-changes", f"{source}/", f"{work}/dst/")
    assert out == "", out  # nothing left to transfer


def test_tar_into_and_out_of_the_mount_keeps_links(work: Path, source: Path) -> None:
    with temp_dir("mldashfs-links-tar-") as scratch:
        run("tar", "-cf", str(scratch / "in.tar"), "-C", str(source.parent), "src")
        run("tar", "-xf", str(scratch / "in.tar"), "-C", str(work))
        same_tree(source, work / "src")
        run("tar", "-cf", str(scratch / "out.tar"), "-C", str(work), "src")
        (scratch / "back").mkdir()
        run("tar", "-xf", str(scratch / "out.tar"), "-C", str(scratch / "back"))
        same_tree(source, scratch / "back" / "src")


def test_cp_a_keeps_links(work: Path, source: Path) -> None:
    run("cp", "-a", str(source), str(work / "copy"))
    same_tree(source, work / "copy")


def test_getfattr_follows_links_and_the_store_keeps_a_links_metadata(work: Path, store: Store) -> None:
    (work / "f.pt").write_bytes(b"w")
    run("setfattr", "-n", "user.epoch", "-v", "7", str(work / "f.pt"))
    os.symlink("f.pt", work / "l")
    assert run("getfattr", "-n", "user.epoch", "--only-values", str(work / "l")) == "7"  # the target's
    assert run("getfattr", "-h", "-d", str(work / "l")) == ""  # Linux keeps user.* off links
    v = store.latest(f"{EXPERIMENT}/{work.name}/l")
    store.update(v.id, tags=["best"], metadata={"epoch": 7})
    assert store.latest(f"{EXPERIMENT}/{work.name}/l").tags == ("best",)
    assert os.readlink(work / "l") == "f.pt"


def bind(path: Path) -> None:
    """Bind a unix socket at `path` (what makes a socket file)."""
    with socket.socket(socket.AF_UNIX) as s:
        s.bind(str(path))


def test_hard_links_fifos_device_nodes_and_sockets_keep_their_errors(work: Path) -> None:
    (work / "t").write_bytes(b"t")
    calls = {
        "link": lambda: os.link(work / "t", work / "hard"),
        "mkfifo": lambda: os.mkfifo(work / "fifo"),
        "mknod": lambda: os.mknod(work / "node", 0o600 | 0o020000, os.makedev(1, 3)),
        "socket": lambda: bind(work / "sock"),
    }
    for name, call in calls.items():
        with pytest.raises(OSError) as e:
            call()
        assert e.value.errno == errno.EPERM, f"{name}: {e.value}"
    assert sorted(os.listdir(work)) == ["t"]
