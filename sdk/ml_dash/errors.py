"""The SDK's exceptions: the core's own error types, re-exported so scripts need only `ml_dash`.

Every error the SDK raises on purpose is a `StoreError`: a bad name or `to=` is `InvalidPath`,
metadata that is not JSON is `InvalidValue`, a missing source file or an unknown file id is
`NotFound`, a corrupt download is `ChecksumMismatch`, a full disk is `NoSpace` (errno ENOSPC) and a
read-only one `ReadOnly` (EROFS); after either nothing was stored. Each message names the problem.
"""

from mldashfs.errors import (
    AlreadyExists,
    ChecksumMismatch,
    InvalidPath,
    InvalidValue,
    IsADirectory,
    NoSpace,
    NotADirectory,
    NotFound,
    ReadOnly,
    StoreError,
    Unavailable,
)

__all__ = [
    "AlreadyExists",
    "ChecksumMismatch",
    "InvalidPath",
    "InvalidValue",
    "IsADirectory",
    "NotADirectory",
    "NoSpace",
    "NotFound",
    "ReadOnly",
    "StoreError",
    "Unavailable",
]
