"""Kernel FUSE passthrough for readers: the kernel reads a version's blob itself, no daemon between.

A reader's open hands the kernel a *backing id*, the blob registered with the FUSE device; its
read() and mmap() then go straight to the blob's page cache (one cache, no copies). Registering
needs root (CAP_SYS_ADMIN) and a kernel with CONFIG_FUSE_PASSTHROUGH (Linux 6.9+); the first
refusal turns passthrough off for the mount, and readers go through the daemon as before.
"""

from __future__ import annotations

import logging

try:
    from . import _passthrough
except ImportError:
    _passthrough = None

log = logging.getLogger("mldashfs.fs")


class Backings:
    """Blobs registered as backing files of the mount's FUSE device."""

    def __init__(self, wanted: bool = True) -> None:
        """`wanted`: whether the mount (made after this) asks the kernel for passthrough at all."""
        self._refused = not wanted
        if _passthrough is not None:
            _passthrough.request(wanted)

    @property
    def available(self) -> bool:
        """True while registering may work: wanted, the INIT asked for passthrough, nothing refused since."""
        return not self._refused and _passthrough is not None and _passthrough.enabled()

    def open(self, fd: int) -> int | None:
        """The backing id of the open blob `fd`, or None (and off from now on) if the kernel refuses."""
        if not self.available:
            return None
        try:
            return _passthrough.open_backing(fd)
        except OSError as e:
            self._refused = True
            log.info("passthrough off: the kernel refused a backing file (%s); reads go through the daemon",
                     e.strerror)
            return None

    def close(self, backing_id: int) -> None:
        """Drop `backing_id`: files opened with it keep their blob, new opens cannot use it."""
        try:
            _passthrough.close_backing(backing_id)
        except OSError as e:  # the connection is gone (unmounted): so are its backing ids
            log.debug("backing id %d: %s", backing_id, e.strerror)

    @staticmethod
    def handle(fh: int, backing_id: int) -> int:
        """The file handle to reply with: `fh` marked for a passthrough open with `backing_id` (the
        kernel gets `fh` back unmarked)."""
        return fh | _passthrough.MARK | backing_id << 32
