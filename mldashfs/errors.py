"""The core's exception types; each carries the errno the FUSE layer returns for it."""

from __future__ import annotations

import errno as _errno


class StoreError(Exception):
    """Base of every error the store raises on purpose."""

    errno: int = _errno.EIO


class NotFound(StoreError):
    errno = _errno.ENOENT


class AlreadyExists(StoreError):
    errno = _errno.EEXIST


class NotEmpty(StoreError):
    errno = _errno.ENOTEMPTY


class InvalidPath(StoreError):
    """A path or name that cannot be stored: empty, `.`/`..`, NUL, or too long."""

    errno = _errno.EINVAL

    def __init__(self, message: str, errno: int = _errno.EINVAL) -> None:
        super().__init__(message)
        self.errno = errno


class IsADirectory(StoreError):
    errno = _errno.EISDIR


class NotADirectory(StoreError):
    errno = _errno.ENOTDIR


class ReadOnly(StoreError):
    """The store (or the filesystem holding it) takes no changes."""

    errno = _errno.EROFS


class InvalidValue(StoreError):
    """A value the store cannot keep, such as metadata that is not JSON."""

    errno = _errno.EINVAL


class TooLarge(StoreError):
    errno = _errno.E2BIG


class ChecksumMismatch(StoreError):
    errno = _errno.EIO


class NotPermitted(StoreError):
    errno = _errno.EPERM


class Unavailable(StoreError):
    """A backend (disk, S3, MongoDB) cannot be reached or refused the operation."""

    errno = _errno.EIO


class NoSpace(Unavailable):
    """The store's disk (or the user's quota on it) is full: nothing was changed."""

    errno = _errno.ENOSPC


def os_failure(message: str, e: OSError) -> StoreError:
    """The StoreError for a disk call that failed with `e`, keeping the errno users can act on
    (ENOSPC/EDQUOT, EROFS); any other errno is EIO with the reason in the message."""
    if e.errno in (_errno.ENOSPC, _errno.EDQUOT):
        return NoSpace(message)
    if e.errno == _errno.EROFS:
        return ReadOnly(message)
    return Unavailable(message)


class WouldBlock(Exception):
    """A `nowait` call would have to wait (for a lock, the network, a large write, a checkpoint) and
    changed nothing; the caller repeats it where waiting is fine (off the mount's event loop).
    Not a StoreError: it never reaches users."""
