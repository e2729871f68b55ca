"""The FUSE error boundary and the hop to worker threads, shared by every handler.

Errors cross into the kernel in one place, `fuse_errors`: the core's StoreError subclasses and
OSError become their errno, anything unexpected becomes EIO. Every EIO leaves a log line with the
traceback (the user's errno says nothing of the cause).
"""

from __future__ import annotations

import errno
import functools
import logging
from collections.abc import Callable, Coroutine
from typing import Any, ParamSpec, TypeVar

import pyfuse3
import trio

from ..errors import AlreadyExists, InvalidPath, NotEmpty, NotFound, StoreError
from ..paths import check_name
from . import xattrs

log = logging.getLogger("mldashfs.fs")
P = ParamSpec("P")
#: Errors that are everyday answers (a lookup of a name to be created), logged at debug level only.
EXPECTED = (NotFound, AlreadyExists, NotEmpty)
R = TypeVar("R")


def fuse_errors(fn: Callable[P, Coroutine[Any, Any, R]]) -> Callable[P, Coroutine[Any, Any, R]]:
    """The one error boundary: StoreError/OSError -> their errno, anything else -> EIO and a log line."""

    @functools.wraps(fn)
    async def wrapper(*args: P.args, **kwargs: P.kwargs) -> R:
        try:
            return await fn(*args, **kwargs)
        except pyfuse3.FUSEError:
            raise
        except StoreError as e:
            if e.errno == errno.EIO:  # a backend failed: the user sees only EIO, the log says why
                log.error("%s: %s (EIO)", fn.__name__, e, exc_info=True)
            else:
                level = logging.DEBUG if isinstance(e, EXPECTED) else logging.INFO
                log.log(level, "%s: %s (%s)", fn.__name__, e, errno.errorcode.get(e.errno, e.errno))
            raise pyfuse3.FUSEError(e.errno) from None
        except xattrs.XattrError as e:
            raise pyfuse3.FUSEError(e.errno) from None
        except OSError as e:
            code = e.errno or errno.EIO
            log.log(logging.ERROR if code == errno.EIO else logging.WARNING, "%s: %s", fn.__name__, e,
                    exc_info=code == errno.EIO)
            raise pyfuse3.FUSEError(code) from None
        except Exception:
            log.exception("%s failed unexpectedly", fn.__name__)
            raise pyfuse3.FUSEError(errno.EIO) from None

    return wrapper


async def run_blocking(fn: Callable[..., R], *args: Any, **kwargs: Any) -> R:
    """Run a blocking call in a worker thread."""
    return await trio.to_thread.run_sync(functools.partial(fn, *args, **kwargs))


def decode_name(raw: bytes) -> str:
    """A name from the kernel as a checked str (ENAMETOOLONG/EINVAL for bad ones). Names are UTF-8
    on both sides, whatever the daemon's locale; one that is not valid UTF-8 can never be stored
    (the catalog keeps text), so it gets EILSEQ at once, from lookup as from create."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError:
        raise InvalidPath(f"name is not valid UTF-8: {raw!r}", errno.EILSEQ) from None
    return check_name(text)


def encode_name(name: str) -> bytes:
    """A stored name as the kernel gets it (the inverse of `decode_name`)."""
    return name.encode("utf-8", "surrogateescape")


def fail(code: int, why: str, *args: object) -> pyfuse3.FUSEError:
    """A FUSEError for an operation mldashfs refuses, with the reason in the log."""
    log.info(why, *args)
    return pyfuse3.FUSEError(code)
