"""Checking and repairing the SQLite catalog: the invariants sqlite_catalog.py keeps in every write
transaction, checked by one scan (what a bug, a hand edit or a restored file could break) and fixed by
the same steps the writes use (point `files` at the newest live version, make missing parents, prune).
"""

from __future__ import annotations

import sqlite3
import time
from typing import TYPE_CHECKING

from .errors import NotADirectory
from .paths import split

if TYPE_CHECKING:
    from .sqlite_catalog import SqliteCatalog

#: Each kind of finding, with the query listing its paths.
CHECKS = {
    # files.latest is not the newest live version, or a live path has no files row, or a row no live version
    "stale": """
        SELECT coalesce(f.path, v.path) FROM files f FULL OUTER JOIN
            (SELECT path, max(id) AS top FROM versions WHERE deleted_at IS NULL GROUP BY path) v ON f.path = v.path
        WHERE f.latest IS NOT v.top ORDER BY 1""",
    # a file or directory whose parent directory has no row
    "orphans": """
        SELECT path FROM (SELECT path, parent FROM files UNION ALL SELECT path, parent FROM dirs)
        WHERE parent != '' AND parent NOT IN (SELECT path FROM dirs) ORDER BY 1""",
    # an implied directory with nothing below it
    "empty": """
        SELECT path FROM dirs d WHERE NOT explicit
            AND NOT EXISTS (SELECT 1 FROM files WHERE parent = d.path)
            AND NOT EXISTS (SELECT 1 FROM dirs c WHERE c.parent = d.path) ORDER BY 1""",
    # a path that is a file and a directory at once (only reported)
    "both": "SELECT path FROM files WHERE path IN (SELECT path FROM dirs) ORDER BY 1",
}


def scan(c: sqlite3.Connection) -> dict[str, list[str]]:
    """Paths breaking each invariant, by kind."""
    return {kind: [r[0] for r in c.execute(sql)] for kind, sql in CHECKS.items()}


def lines(found: dict[str, list[str]]) -> list[str]:
    return [f"{kind}: {p}" for kind, paths in found.items() for p in paths]


def repair(cat: SqliteCatalog) -> int:
    """Fix what `scan` finds, in one transaction (paths that are both a file and a directory stay);
    returns how many findings are gone."""
    now = time.time()
    with cat._tx() as c:
        found = scan(c)
        before = sum(len(v) for v in found.values())
        for path in found["stale"]:
            top = c.execute("SELECT max(id) FROM versions WHERE path=? AND deleted_at IS NULL", (path,)).fetchone()[0]
            if top is None:
                c.execute("DELETE FROM files WHERE path=?", (path,))
                cat._prune(c, split(path)[0])
            else:
                parent, name = split(path)
                c.execute("INSERT OR REPLACE INTO files(path, parent, name, latest) VALUES (?,?,?,?)",
                          (path, parent, name, top))
                found["orphans"].append(path)  # its parents may be missing too
        for path in found["orphans"]:
            try:
                cat._ensure_parents(c, path, now)
            except NotADirectory:
                pass  # an ancestor is a file: reported again by the next check
        for path in found["empty"]:
            cat._prune(c, path)
        left = scan(c)
    return before - sum(len(v) for v in left.values())
