"""Mount, serve and unmount: the life of one mldashfs daemon process under trio.

`check_mountpoint` finds every reason a mount cannot work before anything is started, so the
CLI can print one clear line. `serve` runs in the daemon: it mounts, reports readiness, serves
until unmounted or signalled (SIGTERM/SIGINT/SIGHUP), commits what open writers still hold, and
unmounts.
"""

from __future__ import annotations

import logging
import os
import re
import shutil
import signal
import time
from collections.abc import Callable
from typing import Any

import pyfuse3
import trio

from ..backends import is_remote
from ..errors import NotFound
from ..paths import EXPERIMENT_DEPTH, check_path, depth
from ..records import Dir
from ..store import Store
from .operations import Operations

log = logging.getLogger("mldashfs.fs")


class MountError(Exception):
    """A reason the mount cannot be made, phrased as one line for the user."""


def check_mountpoint(mountpoint: str) -> None:
    """Raise MountError if FUSE is missing or `mountpoint` is not an empty directory."""
    if not os.path.exists("/dev/fuse"):
        raise MountError("/dev/fuse is missing: load the fuse module (modprobe fuse) or pass the device to the container")
    if shutil.which("fusermount3") is None:
        raise MountError("fusermount3 is missing: install fuse3 (apt-get install fuse3)")
    if not os.path.exists(mountpoint):
        raise MountError(f"mount point {mountpoint} does not exist")
    if not os.path.isdir(mountpoint):
        raise MountError(f"mount point {mountpoint} is not a directory")
    if os.path.ismount(mountpoint):
        raise MountError(f"{mountpoint} is already a mount point")
    if os.listdir(mountpoint):
        raise MountError(f"mount point {mountpoint} is not empty")


def open_store(store_dir: str, experiment: str | None, create: bool = False, **options: Any) -> Store:
    """Open the store (a folder is made only if `create`; `options` for a remote one) and check
    (creating if missing) the experiment to show at the mount root."""
    if not is_remote(store_dir) and not os.path.isdir(store_dir) and os.path.exists(store_dir):
        raise MountError(f"store {store_dir} is not a directory")
    store = Store.open(store_dir, create=create, **options)
    if experiment:
        try:
            exp = check_path(experiment)
            if depth(exp) != EXPERIMENT_DEPTH:
                raise MountError(f"--experiment {experiment!r} is not NAMESPACE/PROJECT/EXPERIMENT")
            try:
                if not isinstance(store.stat(exp), Dir):
                    raise MountError(f"--experiment {experiment!r} is a file")
            except NotFound:
                store.mkdir(exp, parents=True)
        except BaseException:
            store.close()
            raise
    return store


#: Kernel readahead of the mount (KiB): one full 1 MiB FUSE request. The kernel's default for a
#: FUSE mount is 128 KiB, which makes a cold sequential read 8 round trips per MiB (measured: 1 GiB
#: read cold at 300-630 MB/s with 128 KiB, 780-1,180 MB/s with 1 MiB, the bare disk 930-1,030 MB/s).
READAHEAD_KIB = 1024


def mount_device(mountpoint: str) -> str | None:
    """The "major:minor" of the filesystem mounted at `mountpoint` (from /proc/self/mountinfo, so the
    mount itself is not asked: its daemon may not be serving yet)."""
    path = os.path.abspath(mountpoint)  # realpath of the mount point itself would ask the mount
    target = os.path.join(os.path.realpath(os.path.dirname(path)), os.path.basename(path))
    with open("/proc/self/mountinfo", encoding="utf-8", errors="surrogateescape") as f:
        found = None
        for line in f:
            fields = line.split()
            point = re.sub(r"\\([0-7]{3})", lambda m: chr(int(m.group(1), 8)), fields[4])
            if point == target:
                found = fields[2]  # the last (topmost) mount on that path wins
    return found


def raise_readahead(mountpoint: str, kib: int = READAHEAD_KIB) -> None:
    """Set the mount's kernel readahead (root only: /sys/class/bdi is not writable otherwise)."""
    device = mount_device(mountpoint)
    if device is None:
        log.info("kept the kernel's readahead: %s is not in /proc/self/mountinfo", mountpoint)
        return
    try:
        with open(f"/sys/class/bdi/{device}/read_ahead_kb", "w") as f:
            f.write(str(kib))
    except OSError as e:
        log.info("kept the kernel's readahead for %s (%s)", mountpoint, e.strerror)


def fuse_options(store_dir: str, allow_other: bool = False, read_only: bool = False) -> set[str]:
    """libfuse mount options: permissions checked by the kernel (`default_permissions`, always, so
    `allow_other` never lets other users past the mode bits), the store shown as the source, and
    `ro` for a read-only mount (the kernel itself answers EROFS to every change)."""
    opts = set(pyfuse3.default_options) | {"default_permissions"}
    source = store_dir if is_remote(store_dir) else os.path.abspath(store_dir)
    opts |= {f"fsname={source}", "subtype=mldashfs"}
    if allow_other:
        opts.add("allow_other")
    if read_only:
        opts.add("ro")
    return opts


async def _serve(ops: Operations, mountpoint: str) -> None:
    async with trio.open_nursery() as nursery:
        ops.background = nursery

        async def after_init() -> None:
            await ops.initialized.wait()  # the INIT reply (sent right after ops.init) caps readahead
            raise_readahead(mountpoint)
            log.info("reads: %s", "kernel passthrough to the blobs" if ops.backings.available
                     else "through the daemon and the mount's page cache")

        async def on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
                async for signum in signals:
                    log.info("got %s: unmounting", signal.Signals(signum).name)
                    pyfuse3.terminate()
                    return

        nursery.start_soon(on_signal)
        nursery.start_soon(after_init)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()
    await ops.commit_all()


def _upload_logger(every: float = 5.0) -> Callable[[int, int], None]:
    """A progress callback for `Store.wait_uploads` that logs what is left at most every `every` s."""
    last = 0.0

    def report(n: int, size: int) -> None:
        nonlocal last
        if n and time.monotonic() - last >= every:
            last = time.monotonic()
            log.info("uploads pending: %d versions, %d bytes", n, size)

    return report


def serve(store: Store, experiment: str | None, mountpoint: str, store_dir: str,
          ready: Callable[[], None], allow_other: bool = False, passthrough: bool = True,
          read_only: bool = False) -> None:
    """Mount `store` at `mountpoint`, call `ready()`, serve until unmounted, then clean up."""
    ops = Operations(store, root=check_path(experiment) if experiment else "", passthrough=passthrough)
    try:
        pyfuse3.init(ops, mountpoint, fuse_options(store_dir, allow_other, read_only))
    except RuntimeError as e:
        raise MountError(f"cannot mount {mountpoint}: {e}") from e
    log.info("mounted %s%s at %s", store_dir, f" ({experiment})" if experiment else "", mountpoint)
    try:
        ready()
        trio.run(_serve, ops, mountpoint)
    finally:
        pyfuse3.close(unmount=True)  # a no-op when fusermount3 -u already unmounted it
        log.info("unmounted %s", mountpoint)
        if store.remote:  # `mldashfs umount` shows the progress; SIGTERM/kill skips (next start resumes)
            store.wait_uploads(_upload_logger())
            log.info("every version written through %s is uploaded", mountpoint)
        store.close()
