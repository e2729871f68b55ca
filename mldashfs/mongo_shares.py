"""Dedup in a MongoDB catalog: the `blobs` collection records each uploaded blob by its SHA-256, so a
later version with the same bytes is published onto that blob instead of uploading them again.

Without transactions, a version may take a blob's key only while gc cannot take the blob:
- a sharer claims the blob (`claims` + 1, only if gc has not marked it `dying`), publishes its
  version with the blob's key, then releases the claim (`claims` - 1);
- gc marks a blob `dying` only while `claims` is 0, then asks again whether a live version names it;
  one that gained a live version meanwhile is unmarked and kept.
Each step is one document's atomic update, so either the claim comes first (gc then sees claims > 0,
or the live version the claim led to) or the mark does (the claim then fails and the sharer uploads
its own bytes). A sharer killed between claim and release leaves `claims` above 0: the blob is kept
(never lost) until `repair` clears claims older than CLAIM_TTL.

`blobs`: one document per shareable blob. Inserted by the uploader after the blob's first version is
published; `claims`/`dying` changed by sharers and gc; removed with the blob by gc (`forget_keys`).
    _id         string  blob key (the key of the version that uploaded it)
    sha256      string  hex digest of the bytes
    size        int64   bytes
    claims      int     sharers between claim and release
    claimed_at  double  epoch seconds of the latest claim
    dying       double|null  when gc marked it for deletion; null while shareable
"""

from __future__ import annotations

import time

from bson.int64 import Int64
from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError

from .records import Version

#: A claim older than this is a sharer's that died (a publish takes milliseconds to minutes).
CLAIM_TTL = 3600.0


def register(blobs: Collection, v: Version) -> None:
    """`v`'s bytes are uploaded whole under `v.key`: later versions with the same bytes may share them."""
    try:
        blobs.insert_one({"_id": v.key, "sha256": v.sha256, "size": Int64(v.size), "claims": 0,
                          "claimed_at": 0.0, "dying": None})
    except DuplicateKeyError:
        pass  # registered before a crash, or by another machine publishing a renamed copy


def claim(blobs: Collection, sha256: str, size: int) -> str | None:
    """The key of a shareable blob of these bytes, held from gc until `release`; None if none."""
    d = blobs.find_one_and_update({"sha256": sha256, "size": Int64(size), "dying": None},
                                  {"$inc": {"claims": 1}, "$set": {"claimed_at": time.time()}}, {"_id": 1})
    return None if d is None else str(d["_id"])


def release(blobs: Collection, key: str) -> None:
    """End a claim of `claim` (its version is published, or will not be)."""
    blobs.update_one({"_id": key, "claims": {"$gt": 0}}, {"$inc": {"claims": -1}})


def mark_dying(blobs: Collection, keys: list[str]) -> set[str]:
    """Of `keys` (no live version names them), those gc may take now: keys that are no shareable blob,
    and blobs no sharer claims, which are marked dying so none can claim them from now on."""
    if not keys:
        return set()
    known = {str(d["_id"]) for d in blobs.find({"_id": {"$in": keys}}, {"_id": 1})}
    blobs.update_many({"_id": {"$in": sorted(known)}, "claims": 0, "dying": None}, {"$set": {"dying": time.time()}})
    dying = {str(d["_id"]) for d in blobs.find({"_id": {"$in": sorted(known)}, "dying": {"$ne": None}}, {"_id": 1})}
    return (set(keys) - known) | dying


def keep(blobs: Collection, keys: list[str]) -> None:
    """gc found live versions naming these dying blobs after all: shareable again."""
    if keys:
        blobs.update_many({"_id": {"$in": keys}}, {"$set": {"dying": None}})


def forget(blobs: Collection, keys: list[str]) -> None:
    """The blobs of `keys` are deleted."""
    if keys:
        blobs.delete_many({"_id": {"$in": keys}, "dying": {"$ne": None}})


def stale_claims(blobs: Collection, now: float) -> list[str]:
    """Keys of blobs claimed longer than CLAIM_TTL ago: their sharers died between claim and release."""
    return sorted(str(d["_id"]) for d in blobs.find({"claims": {"$gt": 0}, "claimed_at": {"$lt": now - CLAIM_TTL}},
                                                  {"_id": 1}))


def clear_claims(blobs: Collection, keys: list[str], now: float) -> None:
    """Drop the claims `stale_claims` found, unless a sharer claimed one again since."""
    if keys:
        blobs.update_many({"_id": {"$in": keys}, "claimed_at": {"$lt": now - CLAIM_TTL}}, {"$set": {"claims": 0}})
