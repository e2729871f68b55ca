"""Mount, serve and unmount: the life of one mldashfs daemon process under trio.

`check_mountpoint` finds every reason a mount cannot work before anything is started, so the
CLI can print one clear line. `serve` runs in the daemon: it mounts, reports readiness, serves
until unmounted or signalled (SIGTERM/SIGINT/SIGHUP), commits what open writers still hold, and
unmounts.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
from collections.abc import Callable

import pyfuse3
import trio

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


def open_store(store_dir: str, experiment: str | None) -> Store:
    """Open the store and check (creating if missing) the experiment to show at the mount root."""
    if not os.path.isdir(store_dir) and os.path.exists(store_dir):
        raise MountError(f"store {store_dir} is not a directory")
    store = Store.open(store_dir)
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


def fuse_options(store_dir: str, allow_other: bool = False) -> set[str]:
    """libfuse mount options: permissions checked by the kernel, the store shown as the source."""
    opts = set(pyfuse3.default_options)
    opts |= {f"fsname={os.path.abspath(store_dir)}", "subtype=mldashfs"}
    if allow_other:
        opts.add("allow_other")
    return opts


async def _serve(ops: Operations) -> None:
    async with trio.open_nursery() as nursery:

        async def on_signal() -> None:
            with trio.open_signal_receiver(signal.SIGTERM, signal.SIGINT, signal.SIGHUP) as signals:
                async for signum in signals:
                    log.info("got %s: unmounting", signal.Signals(signum).name)
                    pyfuse3.terminate()
                    return

        nursery.start_soon(on_signal)
        await pyfuse3.main()
        nursery.cancel_scope.cancel()
    await ops.commit_all()


def serve(store: Store, experiment: str | None, mountpoint: str, store_dir: str,
          ready: Callable[[], None], allow_other: bool = False) -> None:
    """Mount `store` at `mountpoint`, call `ready()`, serve until unmounted, then clean up."""
    ops = Operations(store, root=check_path(experiment) if experiment else "")
    try:
        pyfuse3.init(ops, mountpoint, fuse_options(store_dir, allow_other))
    except RuntimeError as e:
        raise MountError(f"cannot mount {mountpoint}: {e}") from e
    log.info("mounted %s%s at %s", store_dir, f" ({experiment})" if experiment else "", mountpoint)
    try:
        ready()
        trio.run(_serve, ops)
    finally:
        pyfuse3.close(unmount=True)  # a no-op when fusermount3 -u already unmounted it
        store.close()
        log.info("unmounted %s", mountpoint)
