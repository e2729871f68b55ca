"""`EntryAttributes` for files, directories and `.versions` entries, built in one place."""

from __future__ import annotations

import stat
import time

import pyfuse3

from ..records import Dir, Stat, Version

#: Kernel entry/attribute cache time (s). With the daemon's own attribute cache of the same
#: length, a change made by another process (the SDK) is visible in the mount within 2 s.
TIMEOUT = 1.0
VISIBILITY_DELAY = 2 * TIMEOUT
BLOCK_SIZE = 1 << 20


def make(
    ino: int,
    *,
    is_dir: bool,
    size: int,
    mtime: float,
    mode: int,
    uid: int,
    gid: int,
    ctime: float | None = None,
) -> pyfuse3.EntryAttributes:
    """Attributes with the mount's owner, 1 MiB block size and short kernel cache times; a file's
    `mode` may carry S_IFLNK (a link version, see records.LINK_MODE), else it is a regular file."""
    a = pyfuse3.EntryAttributes()
    a.st_ino = ino
    a.generation = 0
    a.entry_timeout = TIMEOUT
    a.attr_timeout = TIMEOUT
    kind = stat.S_IFDIR if is_dir else stat.S_IFLNK if stat.S_ISLNK(mode) else stat.S_IFREG
    a.st_mode = kind | (mode & 0o7777)
    # Folders: 1, as on btrfs. find (gnulib fts) reads a count under 2 as "subfolders unknown" and
    # looks into every folder; 2 would tell it a folder has no subfolders.
    a.st_nlink = 1
    a.st_uid = uid
    a.st_gid = gid
    a.st_rdev = 0
    a.st_size = size
    a.st_blksize = BLOCK_SIZE
    a.st_blocks = (size + 511) // 512
    a.st_atime_ns = a.st_mtime_ns = int(mtime * 1e9)
    a.st_ctime_ns = int(ctime * 1e9) if ctime is not None else a.st_mtime_ns
    return a


def of(ino: int, obj: Version | Dir, uid: int, gid: int, read_only: bool = False) -> pyfuse3.EntryAttributes:
    """Attributes of a stored version (file or link) or directory; `read_only` for the `.versions` view."""
    if isinstance(obj, Dir):
        mode = 0o555 if read_only else obj.mode
        return make(ino, is_dir=True, size=0, mtime=obj.mtime, mode=mode, uid=uid, gid=gid)
    mode = 0o444 if read_only and not obj.is_link else obj.mode  # a link's 0o777 is no permission
    return make(ino, is_dir=False, size=obj.size, mtime=obj.mtime, mode=mode, uid=uid, gid=gid,
                ctime=max(obj.updated_at, obj.mtime))


def listed(ino: int, st: Stat, uid: int, gid: int) -> pyfuse3.EntryAttributes:
    """Attributes of a stored listing row."""
    return make(ino, is_dir=st.is_dir, size=st.size, mtime=st.mtime, mode=st.mode, uid=uid, gid=gid, ctime=st.ctime)


def change(a: pyfuse3.EntryAttributes, mode: int | None = None, mtime: float | None = None) -> None:
    """Apply a chmod/utime to attributes that live only in memory (a file unlinked while open)."""
    if mode is not None:
        a.st_mode = stat.S_IFMT(a.st_mode) | mode
    if mtime is not None:
        a.st_mtime_ns = int(mtime * 1e9)
    a.st_ctime_ns = time.time_ns()


def file_type(obj: Version | Dir) -> int:
    """What `of` shows `obj` as: S_IFDIR, S_IFLNK or S_IFREG (a kernel inode keeps one type for life)."""
    if isinstance(obj, Dir):
        return stat.S_IFDIR
    return stat.S_IFLNK if obj.is_link else stat.S_IFREG
