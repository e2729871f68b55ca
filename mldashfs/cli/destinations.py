"""Where `mldashfs get` writes: DEST itself, or DEST/<filename> when DEST is a folder."""

from __future__ import annotations

import os

from ..errors import NotADirectory, NotFound
from ..records import Version


def destination(dest: str, v: Version) -> str:
    """DEST itself, or DEST/<filename> when DEST is a directory; a '/'-ended or missing folder is an error."""
    if os.path.isdir(dest):
        return os.path.join(dest, v.name)
    if dest.endswith("/"):
        raise NotFound(f"no such directory: {dest}")
    parent = os.path.dirname(dest) or "."
    if not os.path.exists(parent):
        raise NotFound(f"no such directory: {parent}")
    if not os.path.isdir(parent):
        raise NotADirectory(f"not a directory: {parent}")
    return dest
