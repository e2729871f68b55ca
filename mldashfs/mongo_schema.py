"""The MongoDB catalog's schema (every collection and field says what it holds and who writes it), its
indexes, and the mapping between documents and `Version`/`Dir` records.

Collections (one database per store, `mldash` unless the URI or the caller names another):

`versions`: one document per committed version. Inserted by `insert_version` (Store.commit) and by a
rename onto an existing file; description/tags/metadata/mtime/mode/state/updated_at changed in place by
`update_version`; `path` changed by renames; `deleted_at` set by deletes; removed by `forget_keys` (gc).
    _id           int64   snowflake id; orders the versions of a path
    path          string  store path of the file this version belongs to
    size          int     bytes
    sha256        string  hex digest of the bytes
    content_type  string  MIME type
    description   string|null
    tags          [string]             (multikey index: listings by tag)
    metadata      string  the metadata dict as JSON text. Not a subdocument: user keys may contain '.'
                          or start with '$' (refused or ambiguous in MongoDB field names), integers may
                          exceed int64, and text keeps key order and values exactly as the SQLite
                          catalog does; nothing queries inside metadata.
    created_at    double  commit time, epoch seconds
    updated_at    double  last change of this document
    mtime         double  user-visible mtime (utime sets it)
    mode          int     permission bits
    state         string  local | pending | uploaded
    key           string  blob key; shared by a version made by a rename onto a file, and by dedup
    deleted_at    double|null  soft-delete time; null while live

`files`: one document per live file path, kept in step with `versions` by every write (see
mongo_catalog.py for the order of the writes and what a reader sees between them).
    _id     ObjectId
    path    string  store path (unique)
    parent  string  directory path ('' = root)
    name    string  last component ((parent, name) unique)
    latest  int64   id of the newest live version; only ever moved forward with $max by inserts,
                    and back (after a delete) by `reconcile` with a compare-and-set on `gen`
    gen     int     incremented by every write of this document; `reconcile` writes only if it is
                    unchanged since its read, so a concurrent insert is never undone

`dirs`: one document per directory (namespace, project, experiment or prefix), and the root.
    _id      ObjectId
    path     string  directory path (unique); the root is '' and always present
    parent   string|null  parent path ('' for top-level names; null for the root)
    name     string  last component ((parent, name) unique)
    explicit bool    true: made by mkdir, kept while empty; false: implied by children, pruned with
                     the last of them
    mtime    double  changes when an entry is added or removed (the root: its creation time)
    mode     int     permission bits
    moving   {src, dst, owner, expires}  present only while a folder rename (`rename_dir`) is moving
                     this directory (on the source) or into it (on the destination); writers below a
                     moving directory wait for it; a lapsed `expires` lets anyone finish the move

`nodes`: snowflake node leases (see mongo_leases.py). Written by `claim_node`, the lease's renewal
thread and `close`.
    _id        int     node number 0..1023
    owner      string  random token of the holding process
    expires_at double  epoch seconds (holder's clock); free once passed
    host, pid, claimed_at   who holds it, for people reading the collection

`blobs`: one document per uploaded blob other versions with the same bytes may share (dedup); its
fields, and how sharing and gc stay correct without transactions, are in mongo_shares.py.
"""

from __future__ import annotations

import json
from typing import Any

from bson.int64 import Int64

from .records import DIR_MODE, Dir, Version

VERSIONS, FILES, DIRS, NODES, BLOBS = "versions", "files", "dirs", "nodes", "blobs"

#: Every lookup the mount and the SDK make, per collection: (keys, options). Created at open;
#: create_index is a no-op for an index that already exists with the same keys and options.
INDEXES: dict[str, list[tuple[list[tuple[str, int]], dict[str, Any]]]] = {
    FILES: [
        ([("path", 1)], {"name": "path", "unique": True}),  # lookup, latest, iter_files (range by path)
        ([("parent", 1), ("name", 1)], {"name": "listing", "unique": True}),  # listdir / list_stats pages
    ],
    DIRS: [
        ([("path", 1)], {"name": "path", "unique": True}),  # lookup, ancestors of a path, subtree ranges
        ([("parent", 1), ("name", 1)], {"name": "listing", "unique": True}),  # listdir, emptiness checks
        ([("moving.owner", 1)], {"name": "moving", "sparse": True}),  # unfinished folder renames (repair)
    ],
    VERSIONS: [
        ([("path", 1), ("_id", 1)], {"name": "path_id"}),  # history, newest live version, renames
        ([("path", 1), ("deleted_at", 1)], {"name": "path_deleted"}),  # deleted_since
        ([("key", 1)], {"name": "key"}),  # dead_keys / forget_keys (gc)
        ([("tags", 1)], {"name": "tags"}),  # versions by tag
        ([("updated_at", 1)], {"name": "updated_at"}),  # recently changed versions (sync, the web UI)
    ],
    BLOBS: [
        ([("sha256", 1), ("size", 1)], {"name": "sha256"}),  # dedup: a blob of the same bytes
    ],
}

#: Largest number of characters a `$substrCP` needs to take to reach the end of any path.
PATH_MAX_CHARS = 1 << 20


def root_doc(now: float) -> dict[str, Any]:
    """The root directory's document (inserted once, at the first open of a database)."""
    return {"path": "", "parent": None, "name": "", "explicit": True, "mtime": now, "mode": DIR_MODE}


def dir_doc(path: str, parent: str, name: str, explicit: bool, mtime: float, mode: int = DIR_MODE) -> dict[str, Any]:
    return {"path": path, "parent": parent, "name": name, "explicit": explicit, "mtime": float(mtime), "mode": mode}


def below(top: str) -> dict[str, str]:
    """A filter on `path` for everything strictly below `top` ('/' + 1 == '0'; '' is the root)."""
    return {"$gte": top + "/", "$lt": top + "0"} if top else {"$gt": ""}


def version_doc(v: Version) -> dict[str, Any]:
    return {
        "_id": Int64(v.id), "path": v.path, "size": v.size, "sha256": v.sha256, "content_type": v.content_type,
        "description": v.description, "tags": list(v.tags), "metadata": metadata_text(v.metadata),
        "created_at": float(v.created_at), "updated_at": float(v.updated_at), "mtime": float(v.mtime),
        "mode": v.mode, "state": v.state, "key": v.key, "deleted_at": None,
    }


def metadata_text(metadata: dict[str, Any]) -> str:
    return json.dumps(metadata) if metadata else "{}"


def doc_to_version(d: dict[str, Any], path: str | None = None) -> Version:
    """A version document as a record; `path` (from the file's document) overrides the stored one, which a
    rename in progress may not have moved yet."""
    return Version(
        id=int(d["_id"]), path=path if path is not None else d["path"], size=int(d["size"]), sha256=d["sha256"],
        content_type=d["content_type"], description=d.get("description"), tags=tuple(d.get("tags") or ()),
        metadata=json.loads(d["metadata"]) if d.get("metadata", "{}") != "{}" else {},
        created_at=d["created_at"], updated_at=d["updated_at"], mtime=d["mtime"], mode=int(d["mode"]),
        state=d["state"], key=d["key"], deleted=d.get("deleted_at") is not None,
    )


def doc_to_dir(d: dict[str, Any]) -> Dir:
    return Dir(path=d["path"], mtime=d["mtime"], mode=int(d["mode"]), explicit=bool(d["explicit"]))


def ancestors(path: str) -> list[str]:
    """Every directory above `path`, nearest first, without the root ('a/b/c' -> ['a/b', 'a'])."""
    out: list[str] = []
    head = path.rpartition("/")[0]
    while head:
        out.append(head)
        head = head.rpartition("/")[0]
    return out
