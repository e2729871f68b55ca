"""Checking and repairing a MongoDB catalog: what a crash between the single-document writes of
mongo_catalog.py and mongo_moves.py can leave behind, found by one scan and fixed by the same idempotent
steps the writes use (finish a lapsed folder rename, reconcile a path, make missing parents, prune), and
claims of shared blobs a dead sharer left (mongo_shares.py).

The scan reads, for the paths below `under`: every directory document, every file document, and the
newest live version id per path (one $group aggregate). A catalog of a million versions takes seconds.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from . import mongo_shares as shares
from .mongo_moves import wait_for
from .mongo_schema import BLOBS, DIRS, FILES, VERSIONS, ancestors, below

if TYPE_CHECKING:
    from .mongo_steps import MongoSteps


@dataclass
class Findings:
    """What a scan found wrong, by kind (paths)."""

    moving: list[str] = field(default_factory=list)  # directories marked by an unfinished folder rename
    stale: list[str] = field(default_factory=list)  # files.latest is not the newest live version (or no file)
    orphans: list[str] = field(default_factory=list)  # files or directories whose parent directory is missing
    empty: list[str] = field(default_factory=list)  # implied directories with nothing below them
    both: list[str] = field(default_factory=list)  # paths that are a file and a directory at once
    claims: list[str] = field(default_factory=list)  # blob keys a dead sharer left claimed (mongo_shares.py)

    def lines(self) -> list[str]:
        return [f"{kind}: {p}" for kind in ("moving", "stale", "orphans", "empty", "both", "claims")
                for p in getattr(self, kind)]


def scan(cat: MongoSteps, under: str = "") -> Findings:
    """Every broken invariant below `under` (see mongo_catalog.py for the invariants)."""
    out = Findings()
    rng = {"path": below(under)} if under else {"path": {"$gt": ""}}
    dirs = {d["path"]: d for d in cat.coll(DIRS).find(rng, {"path": 1, "parent": 1, "explicit": 1, "moving": 1})}
    out.moving = sorted(p for p, d in dirs.items() if "moving" in d)
    known = set(dirs) | set(ancestors(under + "/x")) | {""}
    tops = {g["_id"]: int(g["top"]) for g in cat.coll(VERSIONS).aggregate([
        {"$match": {**rng, "deleted_at": None}}, {"$group": {"_id": "$path", "top": {"$max": "$_id"}}}])}
    busy: set[str] = {d["parent"] for d in dirs.values()}
    for f in cat.coll(FILES).find(rng, {"path": 1, "parent": 1, "latest": 1}):
        busy.add(f["parent"])
        if tops.pop(f["path"], None) != int(f["latest"]):
            out.stale.append(f["path"])
        if f["parent"] not in known:
            out.orphans.append(f["path"])
        if f["path"] in dirs:
            out.both.append(f["path"])
    out.stale += tops  # live versions without a file document
    out.orphans += [p for p, d in dirs.items() if d["parent"] not in known]
    out.empty = sorted(p for p, d in dirs.items() if not d["explicit"] and p not in busy and "moving" not in d)
    out.stale.sort()
    out.orphans.sort()
    if not under:
        out.claims = shares.stale_claims(cat.coll(BLOBS), time.time())
    return out


def repair(cat: MongoSteps, under: str = "") -> int:
    """Fix what `scan` finds (files and directories that are both are only reported); returns how many
    problems were fixed."""
    found = scan(cat, under)
    now = time.time()
    for p in found.moving:
        wait_for(cat, p)  # finishes it if its owner stopped renewing; else waits for the owner
    for p in found.stale:
        cat.repair_path(p, now)
    for p in found.orphans:
        pr = cat.probe(p, up=True)
        missing, blocker = pr.missing_parents()
        if blocker is None:
            cat.make_dirs(missing, now)
    for p in found.empty:
        cat.prune(p)
    shares.clear_claims(cat.coll(BLOBS), found.claims, now)
    return len(found.moving) + len(found.stale) + len(found.orphans) + len(found.empty) + len(found.claims)
