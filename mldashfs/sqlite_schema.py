"""The SQLite catalog's schema (every table and column says what it holds and who writes it) and
the mapping between its rows and `Version`/`Dir` records."""

from __future__ import annotations

import json
from typing import Any

from .records import Dir, Version

SCHEMA = """
-- One row per committed version. Inserted by Store.commit; description/tags/metadata/mtime/mode
-- changed in place by Store.update/set_attrs; path changed by renames; deleted_at set by deletes.
CREATE TABLE IF NOT EXISTS versions (
    id           INTEGER PRIMARY KEY,  -- snowflake id; orders the versions of a path
    path         TEXT NOT NULL,        -- store path of the file this version belongs to
    size         INTEGER NOT NULL,     -- bytes
    sha256       TEXT NOT NULL,        -- hex digest of the bytes
    content_type TEXT NOT NULL,        -- MIME type, from the name unless given
    description  TEXT,                 -- free text, NULL when unset
    tags         TEXT NOT NULL,        -- JSON array of strings
    metadata     TEXT NOT NULL,        -- JSON object
    created_at   REAL NOT NULL,        -- commit time, epoch seconds
    updated_at   REAL NOT NULL,        -- last change of this row
    mtime        REAL NOT NULL,        -- user-visible mtime (utime sets it)
    mode         INTEGER NOT NULL,     -- permission bits
    state        TEXT NOT NULL,        -- local | pending | uploaded
    key          TEXT NOT NULL,        -- blob key; shared by versions with the same bytes (dedup)
    deleted_at   REAL                  -- soft-delete time; NULL while live
);
CREATE INDEX IF NOT EXISTS versions_live ON versions(path, id) WHERE deleted_at IS NULL;
CREATE INDEX IF NOT EXISTS versions_key ON versions(key);
-- Dedup: a commit takes the key of a live version with the same bytes (added 2026-12-06).
CREATE INDEX IF NOT EXISTS versions_sha256 ON versions(sha256, size) WHERE deleted_at IS NULL;
-- Recent deletions of a path (the mount asks before trusting a size the kernel got from a listing).
CREATE INDEX IF NOT EXISTS versions_deleted ON versions(path, deleted_at) WHERE deleted_at IS NOT NULL;

-- One row per live file path, kept in step with versions by every write.
CREATE TABLE IF NOT EXISTS files (
    path   TEXT PRIMARY KEY,           -- store path
    parent TEXT NOT NULL,              -- directory path ('' = root)
    name   TEXT NOT NULL,              -- last component
    latest INTEGER NOT NULL            -- id of the newest live version
);
-- Listings: readdir reads name and newest id from this index alone ((parent, name) is unique
-- since path is). Stores made before 2026-11-23 had files_parent(parent, name) instead.
DROP INDEX IF EXISTS files_parent;
CREATE INDEX IF NOT EXISTS files_listing ON files(parent, name, latest);

-- One row per directory (namespace, project, experiment or prefix).
CREATE TABLE IF NOT EXISTS dirs (
    path     TEXT PRIMARY KEY,
    parent   TEXT NOT NULL,
    name     TEXT NOT NULL,
    explicit INTEGER NOT NULL,         -- 1: made by mkdir, kept while empty; 0: implied by children
    mtime    REAL NOT NULL,            -- changes when an entry is added or removed
    mode     INTEGER NOT NULL
);
CREATE UNIQUE INDEX IF NOT EXISTS dirs_parent ON dirs(parent, name);
"""

VERSION_COLUMNS = (
    "id, path, size, sha256, content_type, description, tags, metadata, "
    "created_at, updated_at, mtime, mode, state, key, deleted_at"
)


def key_range(top: str) -> tuple[str, str]:
    """Bounds (inclusive, exclusive) of the paths strictly below `top` ('/' + 1 == '0')."""
    return (top + "/", top + "0") if top else ("", "\U0010ffff")


def row_to_version(r: tuple[Any, ...]) -> Version:
    # Most versions carry no tags or metadata; skipping json.loads for them speeds up large listings.
    return Version(
        id=r[0], path=r[1], size=r[2], sha256=r[3], content_type=r[4], description=r[5],
        tags=tuple(json.loads(r[6])) if r[6] != "[]" else (), metadata=json.loads(r[7]) if r[7] != "{}" else {},
        created_at=r[8], updated_at=r[9], mtime=r[10], mode=r[11], state=r[12], key=r[13],
        deleted=r[14] is not None,
    )


def row_to_dir(r: tuple[Any, ...]) -> Dir:
    return Dir(path=r[0], mtime=r[1], mode=r[2], explicit=bool(r[3]))
