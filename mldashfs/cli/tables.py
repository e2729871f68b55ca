"""Output of the store commands: aligned text tables for people, JSON for scripts."""

from __future__ import annotations

import datetime as _dt
import json
import sys
from collections.abc import Sequence
from typing import Any, TextIO

from ..catalog import Usage
from ..records import Version, iso
from .terminal import escape

_UNITS = ("KiB", "MiB", "GiB", "TiB", "PiB")


def human_size(n: int) -> str:
    """Bytes as people read them: exact below 1 KiB, else one decimal in binary units ("1.5 MiB")."""
    if n < 1024:
        return f"{n} B"
    value = n / 1024
    for unit in _UNITS[:-1]:
        if value < 1024:
            return f"{value:.1f} {unit}"
        value /= 1024
    return f"{value:.1f} {_UNITS[-1]}"


def local_time(ts: float) -> str:
    """Epoch seconds as local wall-clock time to the second, the way `ls -l --full-time` reads."""
    return _dt.datetime.fromtimestamp(ts).strftime("%Y-%m-%d %H:%M:%S")


def short_sha(sha256: str) -> str:
    """The first 12 hex digits of a checksum: enough to tell versions apart at a glance."""
    return sha256[:12]


def render(headers: Sequence[str], rows: Sequence[Sequence[str]], right: Sequence[str] = ()) -> str:
    """An aligned table with a header row; columns named in `right` are right-aligned (numbers)."""
    widths = [len(h) for h in headers]
    rows = [[escape(c) for c in row] for row in rows]  # escaped before measuring, so columns align
    for row in rows:
        widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]

    def line(cells: Sequence[str]) -> str:
        parts = [
            c.rjust(w) if h in right else c.ljust(w) for h, c, w in zip(headers, cells, widths, strict=True)
        ]
        return "  ".join(parts).rstrip()

    return "\n".join([line(headers), *(line(r) for r in rows)])


def version_json(v: Version, **extra: Any) -> dict[str, Any]:
    """The SDK's result dict of a version (`Version.to_dict()`), with `type` (`file` or `link`) and any
    extra keys (a link's `linkTarget`)."""
    return {"type": "link" if v.is_link else "file", **v.to_dict(), **extra}


def shown_name(name: str, v: Version, targets: dict[int, str]) -> str:
    """A listed file's name; a link's as `ls -l` shows it, `name -> target`."""
    return f"{name} -> {targets[v.id]}" if v.is_link else name


def dir_json(path: str, name: str, mtime: float) -> dict[str, Any]:
    """A directory row for `ls --json`: its name, store path and modification time (ISO-8601 UTC)."""
    return {"type": "directory", "name": name, "path": path, "modifiedAt": iso(mtime)}


def emit_json(value: Any, out: TextIO | None = None) -> None:
    """Print one JSON document (indented, UTF-8 kept readable) followed by a newline."""
    print(json.dumps(value, indent=2, ensure_ascii=False), file=out or sys.stdout)


def usage_line(u: Usage, whole: bool) -> str:
    """`N versions: X logical, Y stored in B blobs (dedup saves Z)`, and gc's share for a whole store."""
    saved = f" (dedup saves {human_size(u.logical - u.stored)})" if u.logical > u.stored else ""
    gc = f"; {human_size(u.reclaimable)} of deleted versions for gc" if whole and u.reclaimable else ""
    return (f"{plural(u.versions, 'version')}: {human_size(u.logical)} logical, {human_size(u.stored)} stored "
            f"in {plural(u.blobs, 'blob')}{saved}{gc}")


def plural(n: int, noun: str) -> str:
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"
