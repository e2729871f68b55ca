"""Real mounts for tests: start `mldashfs mount --foreground`, wait until it answers, always unmount."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path


def require_fuse() -> None:
    """Fail loudly (never skip) when FUSE is missing: CI must run the mount tests."""
    problems = []
    if not os.path.exists("/dev/fuse"):
        problems.append("/dev/fuse is missing")
    if shutil.which("fusermount3") is None:
        problems.append("fusermount3 is not installed (apt-get install fuse3)")
    if problems:
        raise RuntimeError("FUSE tests cannot run: " + "; ".join(problems))


@dataclass
class Mount:
    """A running mount: the daemon's pid, where it is mounted, and its log file."""

    proc: subprocess.Popen
    path: Path
    store: Path
    log: Path

    @property
    def pid(self) -> int:
        return self.proc.pid

    def log_text(self) -> str:
        return self.log.read_text(errors="replace") if self.log.exists() else ""


def _unmount(path: Path) -> None:
    for args in (["fusermount3", "-u", str(path)], ["fusermount3", "-u", "-z", str(path)]):
        if not os.path.ismount(path):
            return
        subprocess.run(args, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)
        deadline = time.monotonic() + 10
        while os.path.ismount(path) and time.monotonic() < deadline:
            time.sleep(0.05)


@contextlib.contextmanager
def mounted(
    store: Path,
    mountpoint: Path,
    experiment: str | None = None,
    extra_args: tuple[str, ...] = (),
    timeout: float = 30.0,
) -> Iterator[Mount]:
    """Mount `store` at `mountpoint` in the foreground; unmount and stop that pid on exit, even on failure."""
    require_fuse()
    mountpoint.mkdir(parents=True, exist_ok=True)
    log = mountpoint.parent / f"{mountpoint.name}.log"
    cmd = [sys.executable, "-m", "mldashfs.cli", "mount", "--foreground", "--create", "--store", str(store),
           "--log-file", str(log), "--log-level", "debug" if os.environ.get("MLDASHFS_DEBUG") else "info"]
    if experiment:
        cmd += ["--experiment", experiment]
    cmd += [*extra_args, str(mountpoint)]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    m = Mount(proc=proc, path=mountpoint, store=store, log=log)
    try:
        deadline = time.monotonic() + timeout
        while not os.path.ismount(mountpoint):
            if proc.poll() is not None:
                err = proc.stderr.read().decode(errors="replace") if proc.stderr else ""
                raise RuntimeError(f"mount exited with {proc.returncode}: {err}\n{m.log_text()}")
            if time.monotonic() > deadline:
                raise RuntimeError(f"mount did not answer within {timeout}s\n{m.log_text()}")
            time.sleep(0.05)
        yield m
    finally:
        _unmount(mountpoint)
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()
        _unmount(mountpoint)
        if proc.stderr:
            proc.stderr.close()


@contextlib.contextmanager
def temp_dir(prefix: str) -> Iterator[Path]:
    """A fresh folder on the local disk, removed on exit even on failure."""
    d = Path(tempfile.mkdtemp(prefix=prefix))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


@contextlib.contextmanager
def temp_mount(experiment: str, prefix: str) -> Iterator[Mount]:
    """A new store in a temp folder with `experiment` mounted; unmounted and removed even on failure."""
    with temp_dir(prefix) as base, mounted(base / "store", base / "mnt", experiment=experiment) as m:
        yield m
