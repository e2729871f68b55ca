"""The MongoDB wire-protocol test server (scripts/mongo_test_server.py), exercised through pymongo.

Every assertion is real MongoDB behaviour: with MLDASH_TEST_MONGO_URI set, the same tests run
against that server (the few about the test server's own limits are skipped then).
"""

from __future__ import annotations

import datetime
import multiprocessing
import os
import socket
import struct
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from typing import Any

import bson
import pytest
from bson.decimal128 import Decimal128
from bson.int64 import Int64
from bson.objectid import ObjectId
from pymongo import (
    ASCENDING,
    DESCENDING,
    DeleteMany,
    DeleteOne,
    IndexModel,
    InsertOne,
    MongoClient,
    ReplaceOne,
    ReturnDocument,
    UpdateMany,
    UpdateOne,
    monitoring,
    uri_parser,
)
from pymongo.collection import Collection
from pymongo.database import Database
from pymongo.errors import (
    BulkWriteError,
    CollectionInvalid,
    CursorNotFound,
    DuplicateKeyError,
    OperationFailure,
    WriteError,
)
from pymongo.write_concern import WriteConcern

from tests.servers import mongo

mongo_uri = mongo.mongo_uri
mongo_db_name = mongo.mongo_db_name

EXTERNAL = bool(os.environ.get(mongo.MONGO_URI_ENV))
only_test_server = pytest.mark.skipif(EXTERNAL, reason="checks the test server's own limits, not MongoDB's")


class Commands(monitoring.CommandListener):
    """Records the commands a client sends and the replies it gets."""

    def __init__(self) -> None:
        self.sent: list[monitoring.CommandStartedEvent] = []
        self.replies: list[monitoring.CommandSucceededEvent] = []

    def started(self, event: monitoring.CommandStartedEvent) -> None:
        self.sent.append(event)

    def succeeded(self, event: monitoring.CommandSucceededEvent) -> None:
        self.replies.append(event)

    def failed(self, event: monitoring.CommandFailedEvent) -> None:
        pass

    def names(self) -> list[str]:
        return [e.command_name for e in self.sent]

    def batches(self) -> list[int]:
        """The number of documents in each find/aggregate/getMore reply, in order."""
        sizes = []
        for event in self.replies:
            cursor = (
                event.reply.get("cursor") if event.command_name in ("find", "aggregate", "getMore") else None
            )
            if cursor is not None:
                sizes.append(len(cursor.get("firstBatch", cursor.get("nextBatch", []))))
        return sizes


def connect(uri: str, **kwargs: Any) -> MongoClient:
    return MongoClient(uri, serverSelectionTimeoutMS=10_000, **kwargs)


@pytest.fixture
def client(mongo_uri: str) -> Iterator[MongoClient]:
    with connect(mongo_uri) as c:
        yield c


@pytest.fixture
def db(client: MongoClient, mongo_db_name: str) -> Database:
    return client[mongo_db_name]


def ids(coll: Collection, query: dict[str, Any]) -> list[Any]:
    return sorted(d["_id"] for d in coll.find(query, {"_id": 1}))


# --------------------------------------------------------------------------- basics


def test_handshake_reports_a_writable_primary(client: MongoClient) -> None:
    hello = client.admin.command("hello")
    assert hello["isWritablePrimary"] is True
    assert hello["maxWireVersion"] >= 9
    assert hello["maxBsonObjectSize"] == 16 * 1024 * 1024
    assert hello["maxWriteBatchSize"] >= 1000
    assert client.admin.command("ping")["ok"] == 1.0
    assert isinstance(client.admin.command("buildInfo")["version"], str)


def test_documents_round_trip_with_their_bson_types(db: Database) -> None:
    doc = {
        "_id": ObjectId(),
        "text": "héllo wörld ✓",
        "empty": "",
        "int": 7,
        "long": Int64(2**40),
        "float": 2.5,
        "yes": True,
        "nothing": None,
        "when": datetime.datetime(2024, 5, 6, 7, 8, 9, 123000),
        "blob": b"\x00\x01\xff",
        "dec": Decimal128("1.10"),
        "nested": {"a": {"b": [1, {"c": "d"}]}},
        "list": [1, "two", 3.0, None, [4]],
    }
    db.things.insert_one(doc)
    got = db.things.find_one({"_id": doc["_id"]})
    assert got == doc
    assert list(got) == list(doc)
    assert isinstance(got["long"], Int64)


def test_filters_follow_mongodb_semantics(db: Database) -> None:
    coll = db.filters
    coll.insert_many(
        [
            {"_id": 1, "name": "a", "n": 1, "tags": ["x", "y"], "meta": {"k": "v"}, "flag": True},
            {"_id": 2, "name": "b", "n": 2.5, "tags": [], "meta": {"k": "w"}, "flag": False},
            {"_id": 3, "name": "c", "n": "3", "meta": None},
            {"_id": 4, "name": "d", "n": None, "meta": 4},
            {"_id": 5, "name": "e"},
            {"_id": 6, "name": "f", "n": 1, "flag": 1},
        ]
    )
    assert ids(coll, {}) == [1, 2, 3, 4, 5, 6]
    assert ids(coll, {"n": 1}) == [1, 6]
    assert ids(coll, {"n": {"$gte": 1}}) == [1, 2, 6]  # type bracketing: not "3", not null
    assert ids(coll, {"n": {"$lt": 3}}) == [1, 2, 6]
    assert ids(coll, {"n": {"$gt": "2"}}) == [3]
    assert ids(coll, {"n": None}) == [4, 5]  # null or missing
    assert ids(coll, {"n": {"$ne": None}}) == [1, 2, 3, 6]
    assert ids(coll, {"n": {"$ne": 1}}) == [2, 3, 4, 5]
    assert ids(coll, {"n": {"$exists": False}}) == [5]
    assert ids(coll, {"n": {"$exists": True}}) == [1, 2, 3, 4, 6]
    assert ids(coll, {"n": {"$in": [1, "3"]}}) == [1, 3, 6]
    assert ids(coll, {"n": {"$nin": [1, None]}}) == [2, 3]
    assert ids(coll, {"n": {"$type": "string"}}) == [3]
    assert ids(coll, {"flag": True}) == [1]  # true is not 1
    assert ids(coll, {"flag": 1}) == [6]
    assert ids(coll, {"tags": "x"}) == [1]  # an array matches any of its elements
    assert ids(coll, {"tags": {"$size": 0}}) == [2]
    assert ids(coll, {"meta.k": "v"}) == [1]
    assert ids(coll, {"meta.k": {"$exists": False}}) == [3, 4, 5, 6]
    assert ids(coll, {"meta.k": None}) == [3, 4, 5, 6]  # through null, a number, or nothing: missing
    assert ids(coll, {"meta.k": {"$ne": None}}) == [1, 2]
    assert ids(coll, {"name": {"$gte": "b", "$lt": "d"}}) == [2, 3]
    assert ids(coll, {"name": {"$regex": "^[a-c]$"}}) == [1, 2, 3]
    assert ids(coll, {"$or": [{"name": "a"}, {"n": {"$gt": 2}}]}) == [1, 2]
    assert ids(coll, {"$and": [{"n": {"$gte": 1}}, {"n": {"$lt": 2}}]}) == [1, 6]
    assert ids(coll, {"$nor": [{"name": "a"}, {"name": "b"}]}) == [3, 4, 5, 6]
    assert ids(coll, {"_id": 3}) == [3]
    assert ids(coll, {"_id": 3.0}) == [3]
    assert ids(coll, {"_id": 3, "name": "x"}) == []
    assert ids(coll, {"_id": {"$gt": 4}}) == [5, 6]


def test_path_ranges_sorted_and_limited_like_a_catalog_listing(db: Database) -> None:
    coll = db.entries
    paths = ["exp/a/2", "exp/a/1", "exp/a/b/1", "exp/ab/1", "exp/b/1", "exp/a", "exp/a/10"]
    coll.insert_many([{"path": p, "name": p.rsplit("/", 1)[-1], "version": i} for i, p in enumerate(paths)])
    coll.create_index([("path", ASCENDING)], unique=True)
    under_a = {"path": {"$gte": "exp/a/", "$lt": "exp/a0"}}  # "0" follows "/"
    listing = [d["path"] for d in coll.find(under_a).sort("path", ASCENDING)]
    assert listing == ["exp/a/1", "exp/a/10", "exp/a/2", "exp/a/b/1"]
    page = [d["path"] for d in coll.find(under_a).sort([("name", ASCENDING), ("_id", ASCENDING)]).limit(2)]
    assert page == ["exp/a/1", "exp/a/b/1"]
    after = [d["path"] for d in coll.find({"path": {"$gt": "exp/a/10", "$lt": "exp/a0"}}).sort("path", 1)]
    assert after == ["exp/a/2", "exp/a/b/1"]
    assert coll.count_documents(under_a) == 4


def test_sort_skip_limit_and_projection(db: Database) -> None:
    coll = db.sorting
    docs = [{"_id": i, "group": i % 3, "name": f"n{i:02d}", "extra": {"big": "x" * 10}} for i in range(30)]
    coll.insert_many(docs)
    expected = sorted(docs, key=lambda d: (-d["group"], d["name"]))[2:7]
    got = list(coll.find().sort([("group", DESCENDING), ("name", ASCENDING)]).skip(2).limit(5))
    assert [d["_id"] for d in got] == [d["_id"] for d in expected]
    assert list(coll.find({"_id": 4}, {"name": 1})) == [{"_id": 4, "name": "n04"}]
    assert list(coll.find({"_id": 4}, {"name": 1, "_id": 0})) == [{"name": "n04"}]
    assert list(coll.find({"_id": 4}, {"extra": 0})) == [{"_id": 4, "group": 1, "name": "n04"}]
    assert list(coll.find({"_id": 4}, {"extra.big": 1, "_id": 0})) == [{"extra": {"big": "x" * 10}}]

    mixed = db.mixed
    mixed.insert_many(
        [{"_id": 1, "v": 2}, {"_id": 2, "v": "a"}, {"_id": 3}, {"_id": 4, "v": 1}, {"_id": 5, "v": None}]
    )
    order = [d["_id"] for d in mixed.find().sort([("v", ASCENDING), ("_id", ASCENDING)])]
    assert order == [3, 5, 4, 1, 2]  # missing and null first, then numbers, then strings
    order = [d["_id"] for d in mixed.find().sort([("v", DESCENDING), ("_id", ASCENDING)])]
    assert order == [2, 1, 4, 3, 5]


# --------------------------------------------------------------------------- updates and deletes


def test_update_operators(db: Database) -> None:
    coll = db.updates
    coll.insert_one(
        {
            "_id": 1,
            "n": 1,
            "hi": 5,
            "lo": 5,
            "tags": ["a"],
            "gone": 1,
            "items": [{"k": 1, "v": 0}, {"k": 2, "v": 0}],
        }
    )
    result = coll.update_one(
        {"_id": 1},
        {
            "$set": {"s": "x", "sub.deep": 1},
            "$inc": {"n": 2, "fresh": 5},
            "$max": {"hi": 3},
            "$min": {"lo": 3},
            "$unset": {"gone": ""},
            "$push": {"tags": "b"},
        },
    )
    assert (result.matched_count, result.modified_count, result.upserted_id) == (1, 1, None)
    doc = coll.find_one({"_id": 1})
    assert doc is not None
    assert doc["s"] == "x" and doc["sub"] == {"deep": 1}
    assert doc["n"] == 3 and doc["fresh"] == 5
    assert doc["hi"] == 5 and doc["lo"] == 3
    assert "gone" not in doc and doc["tags"] == ["a", "b"]

    coll.update_one({"_id": 1}, {"$max": {"hi": 9, "new_max": 1}, "$mul": {"n": 2, "zero": 4}})
    assert coll.update_one({"_id": 1}, {"$addToSet": {"tags": "a"}}).modified_count == 0
    coll.update_one({"_id": 1}, {"$pull": {"tags": "a"}})
    coll.update_one({"_id": 1, "items.k": 2}, {"$set": {"items.$.v": 7}})
    doc = coll.find_one({"_id": 1})
    assert doc is not None
    assert (doc["hi"], doc["new_max"], doc["n"], doc["zero"]) == (9, 1, 6, 0)
    assert doc["tags"] == ["b"]
    assert doc["items"] == [{"k": 1, "v": 0}, {"k": 2, "v": 7}]

    existing = coll.update_one({"_id": 1}, {"$setOnInsert": {"created": 1}, "$set": {"t": 1}}, upsert=True)
    assert (existing.matched_count, existing.upserted_id) == (1, None)
    assert "created" not in coll.find_one({"_id": 1})  # type: ignore[operator]

    new = coll.update_one({"_id": 2}, {"$setOnInsert": {"created": 1}, "$inc": {"count": 1}}, upsert=True)
    assert (new.matched_count, new.modified_count, new.upserted_id) == (0, 0, 2)
    assert coll.find_one({"_id": 2}) == {"_id": 2, "created": 1, "count": 1}

    seeded = coll.update_one({"path": "p", "v": 1, "size": {"$gte": 0}}, {"$set": {"x": 1}}, upsert=True)
    doc = coll.find_one({"_id": seeded.upserted_id})
    assert doc is not None
    assert (doc["path"], doc["v"], doc["x"], "size" in doc) == ("p", 1, 1, False)

    anded = coll.update_one({"$and": [{"kind": "and"}, {"v": {"$in": [7]}}]}, {"$set": {"x": 1}}, upsert=True)
    doc = coll.find_one({"_id": anded.upserted_id}, {"_id": 0})
    assert doc == {"kind": "and", "v": 7, "x": 1}

    coll.insert_many([{"kind": "m", "v": i} for i in range(5)])
    many = coll.update_many({"kind": "m", "v": {"$gte": 2}}, {"$inc": {"v": 10}})
    assert (many.matched_count, many.modified_count) == (3, 3)
    assert sorted(d["v"] for d in coll.find({"kind": "m"})) == [0, 1, 12, 13, 14]

    replaced = coll.replace_one({"_id": 2}, {"whole": "new"})
    assert replaced.modified_count == 1
    assert coll.find_one({"_id": 2}) == {"_id": 2, "whole": "new"}


def test_bad_updates_fail_and_change_nothing(db: Database) -> None:
    coll = db.bad_updates
    coll.insert_one({"_id": 1, "a": 1, "s": "text"})
    with pytest.raises(WriteError) as conflict:
        coll.update_one({"_id": 1}, {"$set": {"a": 5}, "$inc": {"a": 1}})
    assert conflict.value.code == 40
    with pytest.raises(WriteError) as prefix:
        coll.update_one({"_id": 1}, {"$set": {"b": {"c": 1}, "b.c": 2}})
    assert prefix.value.code == 40
    with pytest.raises(WriteError) as non_numeric:
        coll.update_one({"_id": 1}, {"$inc": {"s": 1}})
    assert non_numeric.value.code == 14
    with pytest.raises(WriteError) as unknown:
        coll.update_one({"_id": 1}, {"$frobnicate": {"a": 1}})
    assert unknown.value.code == 9
    assert coll.find_one({"_id": 1}) == {"_id": 1, "a": 1, "s": "text"}


def test_deletes(db: Database) -> None:
    coll = db.deletes
    coll.insert_many([{"_id": i, "g": i % 2} for i in range(10)])
    assert coll.delete_one({"g": 1}).deleted_count == 1
    assert coll.count_documents({"g": 1}) == 4
    assert coll.delete_many({"g": 0, "_id": {"$gte": 4}}).deleted_count == 3
    assert coll.delete_many({"g": 7}).deleted_count == 0
    assert coll.delete_one({"_id": 0}).deleted_count == 1
    remaining = ids(coll, {})
    assert len(remaining) == 5 and 2 in remaining
    assert coll.delete_many({}).deleted_count == 5
    assert coll.count_documents({}) == 0


def test_find_one_and_update_and_friends(db: Database) -> None:
    seq = db.seq
    after = ReturnDocument.AFTER
    assert seq.find_one_and_update({"_id": "s"}, {"$inc": {"n": 1}}, upsert=True, return_document=after) == {
        "_id": "s",
        "n": 1,
    }
    assert seq.find_one_and_update({"_id": "s"}, {"$inc": {"n": 1}}, return_document=after)["n"] == 2
    assert seq.find_one_and_update({"_id": "s"}, {"$inc": {"n": 1}})["n"] == 2  # before, by default
    assert seq.find_one({"_id": "s"})["n"] == 3  # type: ignore[index]
    assert seq.find_one_and_update({"_id": "t"}, {"$set": {"n": 0}}, upsert=True) is None
    assert seq.find_one_and_update({"_id": "nope"}, {"$set": {"n": 0}}) is None
    assert seq.count_documents({}) == 2

    coll = db.picks
    coll.insert_many([{"_id": i, "g": "x", "p": i} for i in range(5)])
    picked = coll.find_one_and_update(
        {"g": "x"}, {"$set": {"picked": True}}, sort=[("p", DESCENDING)], return_document=after
    )
    assert picked == {"_id": 4, "g": "x", "p": 4, "picked": True}
    projected = coll.find_one_and_update(
        {"g": "x", "picked": {"$exists": False}},
        {"$set": {"picked": True}},
        sort=[("p", DESCENDING)],
        projection={"p": 1, "_id": 0},
        return_document=after,
    )
    assert projected == {"p": 3}
    assert coll.find_one_and_delete({"g": "x"}, sort=[("p", ASCENDING)]) == {"_id": 0, "g": "x", "p": 0}
    assert coll.find_one({"_id": 0}) is None
    assert coll.find_one_and_replace({"_id": 1}, {"g": "y"}) == {"_id": 1, "g": "x", "p": 1}
    assert coll.find_one({"_id": 1}) == {"_id": 1, "g": "y"}

    coll.create_index("p", unique=True, sparse=True)
    with pytest.raises(DuplicateKeyError):
        coll.find_one_and_update({"_id": 2}, {"$set": {"p": 3}})
    assert coll.find_one({"_id": 2})["p"] == 2  # type: ignore[index]


# --------------------------------------------------------------------------- indexes


def test_unique_indexes_are_enforced(db: Database) -> None:
    coll = db.uniq
    assert coll.create_index("name", unique=True) == "name_1"
    coll.insert_many([{"_id": 1, "name": "a"}, {"_id": 2, "name": "b"}])
    with pytest.raises(DuplicateKeyError) as dup:
        coll.insert_one({"_id": 3, "name": "a"})
    assert dup.value.code == 11000
    assert dup.value.details is not None and dup.value.details["keyValue"] == {"name": "a"}
    with pytest.raises(DuplicateKeyError):
        coll.update_one({"_id": 2}, {"$set": {"name": "a"}})
    with pytest.raises(DuplicateKeyError):
        coll.update_one({"_id": 9}, {"$set": {"name": "b"}}, upsert=True)
    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"_id": 1, "name": "z"})  # the _id index
    assert ids(coll, {}) == [1, 2]
    assert coll.find_one({"_id": 2})["name"] == "b"  # type: ignore[index]

    coll.update_one({"_id": 1}, {"$set": {"name": "renamed"}})  # frees "a"
    coll.insert_one({"_id": 4, "name": "a"})
    coll.delete_one({"_id": 2})  # frees "b"
    coll.insert_one({"_id": 5, "name": "b"})
    coll.insert_one({"_id": 6})  # a missing key is null ...
    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"_id": 7})  # ... and two nulls collide
    assert coll.index_information()["name_1"]["unique"] is True

    typed = db.typed
    typed.create_index("u", unique=True)
    typed.insert_many([{"_id": 1, "u": 1}, {"_id": 2, "u": True}, {"_id": 3, "u": "1"}])  # distinct types
    with pytest.raises(DuplicateKeyError):
        typed.insert_one({"_id": 4, "u": 1.0})  # 1.0 == 1
    with pytest.raises(DuplicateKeyError):
        typed.update_one({"_id": 2}, {"$set": {"u": 1}})  # true -> 1 is a change, and a duplicate
    assert typed.update_one({"_id": 1}, {"$set": {"u": 2}}).modified_count == 1
    assert typed.update_one({"_id": 2}, {"$set": {"u": 1}}).modified_count == 1
    assert typed.find_one({"_id": 2}) == {"_id": 2, "u": 1}


def test_compound_partial_and_sparse_unique_indexes(db: Database) -> None:
    versions = db.versions
    versions.create_index([("path", ASCENDING), ("version", ASCENDING)], unique=True)
    versions.insert_many(
        [{"path": "p", "version": 1}, {"path": "p", "version": 2}, {"path": "q", "version": 1}]
    )
    with pytest.raises(DuplicateKeyError):
        versions.insert_one({"path": "p", "version": 2})

    live = db.live
    live.insert_many([{"key": "k", "live": False}, {"key": "k", "live": False}, {"key": "k", "live": True}])
    live.create_index("key", unique=True, partialFilterExpression={"live": True})  # duplicates only outside
    live.insert_one({"key": "k", "live": False})
    with pytest.raises(DuplicateKeyError):
        live.insert_one({"key": "k", "live": True})
    with pytest.raises(DuplicateKeyError):
        live.update_one({"live": False}, {"$set": {"live": True}})
    live.update_one({"live": True}, {"$set": {"live": False}})
    live.update_one({"live": False}, {"$set": {"live": True}})
    assert live.count_documents({"live": True}) == 1

    sparse = db.sparse
    sparse.create_index("code", unique=True, sparse=True)
    sparse.insert_many([{"x": 1}, {"x": 2}, {"code": "c"}])
    with pytest.raises(DuplicateKeyError):
        sparse.insert_one({"code": "c"})


def test_a_failed_write_leaves_every_unique_index_as_it_was(db: Database) -> None:
    coll = db.two_indexes
    coll.create_index("u1", unique=True)
    coll.create_index("u2", unique=True)
    coll.insert_many([{"_id": 1, "u1": 1, "u2": 1}, {"_id": 2, "u1": 2, "u2": 2}])
    with pytest.raises(DuplicateKeyError):
        coll.update_one({"_id": 2}, {"$set": {"u1": 3, "u2": 1}})  # u1 passes, u2 collides
    assert coll.find_one({"_id": 2}) == {"_id": 2, "u1": 2, "u2": 2}
    coll.insert_one({"_id": 3, "u1": 3, "u2": 3})  # u1=3 was never taken
    with pytest.raises(DuplicateKeyError):
        coll.insert_one({"_id": 4, "u1": 2, "u2": 9})  # u1=2 still is


def test_creating_a_unique_index_over_duplicates_fails(db: Database) -> None:
    coll = db.has_dups
    coll.insert_many([{"name": "a"}, {"name": "a"}])
    with pytest.raises(OperationFailure) as failure:
        coll.create_index("name", unique=True)
    assert failure.value.code == 11000
    assert "name_1" not in coll.index_information()
    coll.insert_one({"name": "a"})


def test_index_management(db: Database) -> None:
    coll = db.idx
    assert coll.create_index([("a", ASCENDING), ("b", DESCENDING)], name="ab") == "ab"
    assert coll.create_indexes([IndexModel("c", unique=True), IndexModel([("d", ASCENDING)])]) == [
        "c_1",
        "d_1",
    ]
    assert coll.create_index([("a", ASCENDING), ("b", DESCENDING)], name="ab") == "ab"  # again: no-op
    info = coll.index_information()
    assert sorted(info) == ["_id_", "ab", "c_1", "d_1"]
    assert info["ab"]["key"] == [("a", 1), ("b", -1)]
    assert info["c_1"].get("unique") is True and "unique" not in info["d_1"]
    assert [i["name"] for i in coll.list_indexes()][0] == "_id_"
    with pytest.raises(OperationFailure):
        coll.create_index([("a", ASCENDING), ("b", DESCENDING)], name="other_name")
    coll.drop_index("ab")
    coll.drop_index([("d", ASCENDING)])
    assert sorted(coll.index_information()) == ["_id_", "c_1"]
    with pytest.raises(OperationFailure):
        coll.drop_index("nope")
    coll.drop_indexes()
    assert sorted(coll.index_information()) == ["_id_"]
    coll.insert_many([{"c": 1}, {"c": 1}])  # the unique index is gone with it
    assert list(db.never_created.list_indexes()) == []


# --------------------------------------------------------------------------- bulk writes


def test_bulk_write(db: Database) -> None:
    coll = db.bulk
    coll.create_index("k", unique=True)
    result = coll.bulk_write(
        [
            InsertOne({"_id": 1, "k": "a", "n": 0}),
            InsertOne({"_id": 2, "k": "b", "n": 0}),
            UpdateOne({"k": "a"}, {"$inc": {"n": 1}}),
            UpdateOne({"k": "c"}, {"$set": {"n": 5}}, upsert=True),
            UpdateMany({}, {"$set": {"seen": True}}),
            ReplaceOne({"k": "b"}, {"k": "b", "n": 9}),
            DeleteOne({"k": "c"}),
            DeleteMany({"k": "zzz"}),
        ]
    )
    assert (result.inserted_count, result.matched_count, result.modified_count) == (2, 5, 5)
    assert (result.upserted_count, result.deleted_count) == (1, 1)
    assert list(coll.find().sort("_id", 1)) == [
        {"_id": 1, "k": "a", "n": 1, "seen": True},
        {"_id": 2, "k": "b", "n": 9},
    ]

    with pytest.raises(BulkWriteError) as ordered:
        coll.bulk_write([InsertOne({"k": "x"}), InsertOne({"k": "a"}), InsertOne({"k": "y"})])
    details = ordered.value.details
    assert details["nInserted"] == 1
    assert [(e["index"], e["code"]) for e in details["writeErrors"]] == [(1, 11000)]
    assert coll.count_documents({"k": "y"}) == 0

    with pytest.raises(BulkWriteError) as unordered:
        coll.bulk_write(
            [InsertOne({"k": "a"}), UpdateOne({"k": "x"}, {"$set": {"n": 1}}), InsertOne({"k": "y"})],
            ordered=False,
        )
    details = unordered.value.details
    assert (details["nInserted"], details["nModified"]) == (1, 1)
    assert [e["index"] for e in details["writeErrors"]] == [0]
    assert coll.count_documents({"k": "y"}) == 1


def test_insert_many_reports_which_document_failed(db: Database) -> None:
    with pytest.raises(BulkWriteError) as failure:
        db.many.insert_many([{"_id": 1}, {"_id": 2}, {"_id": 1}, {"_id": 3}])
    assert failure.value.details["nInserted"] == 2
    assert failure.value.details["writeErrors"][0]["index"] == 2
    assert ids(db.many, {}) == [1, 2]


# --------------------------------------------------------------------------- cursors


def test_cursors_batch_with_get_more(mongo_uri: str, mongo_db_name: str) -> None:
    commands = Commands()
    with connect(mongo_uri, event_listeners=[commands]) as client:
        coll = client[mongo_db_name].cursors
        coll.insert_many([{"_id": i, "v": i} for i in range(250)])

        commands.replies.clear()
        assert [d["_id"] for d in coll.find().sort("_id", 1)] == list(range(250))
        sizes = commands.batches()
        assert sizes[0] == 101 and sum(sizes) == 250 and len(sizes) >= 2

        commands.replies.clear()
        assert len(list(coll.find().batch_size(7))) == 250
        assert max(commands.batches()) == 7

        commands.replies.clear()
        assert [d["_id"] for d in coll.find().sort("_id", -1).limit(150).batch_size(100)] == list(
            range(249, 99, -1)
        )
        assert sum(commands.batches()) == 150

        commands.replies.clear()
        results = list(coll.aggregate([{"$match": {"v": {"$gte": 10}}}, {"$sort": {"v": 1}}], batchSize=40))
        assert [d["v"] for d in results] == list(range(10, 250))
        assert max(commands.batches()) == 40

        commands.sent.clear()
        cursor = coll.find().batch_size(5)
        next(cursor)
        cursor.close()
        assert "killCursors" in commands.names()


def test_twenty_thousand_documents_in_large_batches(mongo_uri: str, mongo_db_name: str) -> None:
    commands = Commands()
    with connect(mongo_uri, event_listeners=[commands]) as client:
        coll = client[mongo_db_name].big
        payload = "x" * 1000
        coll.insert_many([{"_id": i, "payload": payload} for i in range(20_000)])
        assert coll.count_documents({}) == 20_000
        commands.replies.clear()
        seen = 0
        for expected, doc in enumerate(coll.find().sort("_id", 1)):
            assert doc["_id"] == expected and doc["payload"] == payload
            seen += 1
        assert seen == 20_000
        sizes = commands.batches()
        assert sizes[0] == 101 and max(sizes) > 1000  # getMore fills up to 16 MiB


def test_documents_larger_than_one_batch(db: Database) -> None:
    chunk = "y" * (4 * 1024 * 1024)
    db.huge.insert_many([{"_id": i, "data": chunk + str(i)} for i in range(5)])  # ~20 MiB in all
    got = list(db.huge.find().sort("_id", 1))
    assert [d["data"][-1] for d in got] == ["0", "1", "2", "3", "4"]
    assert all(len(d["data"]) == len(chunk) + 1 for d in got)


def test_killed_cursors_are_gone(client: MongoClient, db: Database) -> None:
    db.killing.insert_many([{"_id": i} for i in range(10)])
    with client.start_session() as session:
        cursor = db.command("find", "killing", batchSize=2, session=session)["cursor"]
        assert len(cursor["firstBatch"]) == 2 and cursor["id"] != 0
        killed = db.command("killCursors", "killing", cursors=[cursor["id"]], session=session)
        assert killed["cursorsKilled"] == [cursor["id"]]
        with pytest.raises(CursorNotFound):
            db.command("getMore", cursor["id"], collection="killing", session=session)


# --------------------------------------------------------------------------- aggregation and counting


def test_aggregate_count_and_distinct(db: Database) -> None:
    coll = db.agg
    rows = [
        {"dir": d, "size": s, "v": v} for d, s, v in [("a", 1, 1), ("a", 2, 5), ("b", 10, 2), ("c", 4, 3)]
    ]
    coll.insert_many(rows + [{"dir": "b", "size": 1, "v": 9}])
    pipeline = [
        {"$match": {"dir": {"$in": ["a", "b"]}}},
        {"$group": {"_id": "$dir", "total": {"$sum": "$size"}, "n": {"$sum": 1}, "latest": {"$max": "$v"}}},
        {"$sort": {"total": -1}},
        {"$limit": 5},
    ]
    assert list(coll.aggregate(pipeline)) == [
        {"_id": "b", "total": 11, "n": 2, "latest": 9},
        {"_id": "a", "total": 3, "n": 2, "latest": 5},
    ]
    assert list(coll.aggregate([{"$match": {"size": {"$gt": 1}}}, {"$count": "n"}])) == [{"n": 3}]
    projected = list(
        coll.aggregate([{"$sort": {"v": -1}}, {"$limit": 1}, {"$project": {"_id": 0, "dir": 1}}])
    )
    assert projected == [{"dir": "b"}]
    assert coll.count_documents({}) == 5
    assert coll.count_documents({"dir": "b"}) == 2
    assert coll.count_documents({}, skip=1, limit=2) == 2
    assert coll.estimated_document_count() == 5
    assert sorted(coll.distinct("dir")) == ["a", "b", "c"]
    assert sorted(coll.distinct("size", {"dir": "a"})) == [1, 2]
    assert list(db.nothing_here.aggregate([{"$match": {}}])) == []
    assert db.nothing_here.count_documents({}) == 0


# --------------------------------------------------------------------------- collections and databases


def test_collections_and_databases(client: MongoClient, db: Database, mongo_db_name: str) -> None:
    db.create_collection("made")
    with pytest.raises(CollectionInvalid):
        db.create_collection("made")
    db.kept.insert_one({"x": 1})
    db.kept.delete_many({})
    assert {"made", "kept"} <= set(db.list_collection_names())  # emptied collections remain
    assert [c["name"] for c in db.list_collections(filter={"name": "made"})] == ["made"]
    db.drop_collection("made")
    assert "made" not in db.list_collection_names()
    db.drop_collection("never_existed")

    db.old.insert_many([{"_id": 1}, {"_id": 2}])
    db.old.rename("new")
    assert "old" not in db.list_collection_names()
    assert ids(db.new, {}) == [1, 2]

    assert mongo_db_name in client.list_database_names()
    client.drop_database(mongo_db_name)
    assert mongo_db_name not in client.list_database_names()
    assert db.new.count_documents({}) == 0


def test_unacknowledged_writes_are_applied(db: Database) -> None:
    fire_and_forget = db.w0.with_options(write_concern=WriteConcern(w=0))
    assert fire_and_forget.insert_one({"_id": "w0"}).acknowledged is False
    deadline = time.monotonic() + 10
    while db.w0.find_one({"_id": "w0"}) is None:
        assert time.monotonic() < deadline, "the w=0 insert never arrived"
        time.sleep(0.05)


# --------------------------------------------------------------------------- concurrency and robustness


def write_from_another_process(uri: str, db_name: str, worker: int, count: int) -> None:
    """A spawned process: insert documents, bump a shared counter, allocate sequence numbers."""
    with connect(uri) as client:
        db = client[db_name]
        for i in range(count):
            db.shared.insert_one({"worker": worker, "i": i})
            db.counters.update_one({"_id": "total"}, {"$inc": {"n": 1}}, upsert=True)
            seq = db.counters.find_one_and_update(
                {"_id": "seq"}, {"$inc": {"n": 1}}, upsert=True, return_document=ReturnDocument.AFTER
            )
            db.allocated.insert_one({"_id": seq["n"], "worker": worker})


def test_processes_share_one_database(mongo_uri: str, db: Database, mongo_db_name: str) -> None:
    db.counters.insert_many([{"_id": "total", "n": 0}, {"_id": "seq", "n": 0}])
    spawn = multiprocessing.get_context("spawn")
    workers, count = 4, 100
    procs = [
        spawn.Process(target=write_from_another_process, args=(mongo_uri, mongo_db_name, w, count))
        for w in range(workers)
    ]
    for proc in procs:
        proc.start()
    for proc in procs:
        proc.join(180)
    assert [p.exitcode for p in procs] == [0] * workers
    assert db.shared.count_documents({}) == workers * count
    for w in range(workers):
        assert sorted(d["i"] for d in db.shared.find({"worker": w})) == list(range(count))
    assert db.counters.find_one({"_id": "total"})["n"] == workers * count  # type: ignore[index]
    assert ids(db.allocated, {}) == list(range(1, workers * count + 1))


def test_threads_share_one_client(db: Database) -> None:
    def bump() -> None:
        for _ in range(100):
            db.counter.update_one({"_id": 1}, {"$inc": {"n": 1}}, upsert=True)

    threads = [threading.Thread(target=bump) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(120)
    assert db.counter.find_one({"_id": 1}) == {"_id": 1, "n": 800}


def ping_message() -> bytes:
    body = b"\x00" + bson.encode({"ping": 1, "$db": "admin"})
    payload = struct.pack("<I", 0) + body
    return struct.pack("<iiii", 16 + len(payload), 1, 0, 2013) + payload


def raw_disconnects(host: str, port: int) -> None:
    """Clients that go away at awkward moments."""
    for data in (b"\x10\x00\x00", struct.pack("<iiii", 1000, 1, 0, 2013) + b"abc", ping_message()):
        with socket.create_connection((host, port), timeout=10) as sock:
            sock.sendall(data)
            sock.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))  # RST on close


def exchange(host: str, port: int, message: bytes) -> tuple[int, bytes]:
    """Send one raw message; return the reply's opcode and payload."""
    with socket.create_connection((host, port), timeout=10) as sock:
        sock.sendall(message)
        stream = sock.makefile("rb")
        length, _, _, opcode = struct.unpack("<iiii", stream.read(16))
        return opcode, stream.read(length - 16)


def crc32c(data: bytes) -> int:
    crc = 0xFFFFFFFF
    for byte in data:
        crc ^= byte
        for _ in range(8):
            crc = (crc >> 1) ^ (0x82F63B78 & -(crc & 1))
    return crc ^ 0xFFFFFFFF


def op_msg(flags: int, sections: bytes) -> bytes:
    body = struct.pack("<I", flags) + sections
    length = 16 + len(body) + (4 if flags & 1 else 0)
    message = struct.pack("<iiii", length, 7, 0, 2013) + body
    return message + struct.pack("<I", crc32c(message)) if flags & 1 else message


def op_msg_reply(payload: bytes) -> dict[str, Any]:
    flags = struct.unpack_from("<I", payload)[0]
    assert payload[4] == 0
    return bson.decode(payload[5 : len(payload) - (4 if flags & 1 else 0)])


def plain_address(uri: str) -> tuple[str, int] | None:
    """host and port for raw sockets, unless the URI needs TLS, DNS SRV or credentials."""
    parsed = uri_parser.parse_uri(uri)
    if uri.startswith("mongodb+srv") or parsed["options"].get("tls") or parsed["username"]:
        return None
    return parsed["nodelist"][0]


def test_raw_wire_messages(mongo_uri: str, db: Database) -> None:
    address = plain_address(mongo_uri)
    if address is None:
        pytest.skip("raw sockets need a plain mongodb:// URI")
    query = (
        struct.pack("<i", 0) + b"admin.$cmd\x00" + struct.pack("<ii", 0, -1) + bson.encode({"isMaster": 1})
    )
    opcode, payload = exchange(*address, struct.pack("<iiii", 16 + len(query), 5, 0, 2004) + query)
    assert opcode == 1  # OP_REPLY
    flags, _, _, returned = struct.unpack_from("<iqii", payload)
    reply = bson.decode(payload[20:])
    assert (flags & 2, returned, reply["ok"], reply["ismaster"]) == (0, 1, 1.0, True)

    documents = bson.encode({"_id": 1}) + bson.encode({"_id": 2})
    sequence = b"documents\x00" + documents
    sections = (
        b"\x00"
        + bson.encode({"insert": "raw", "$db": db.name})
        + b"\x01"
        + struct.pack("<i", 4 + len(sequence))
        + sequence
    )
    opcode, payload = exchange(*address, op_msg(0, sections))
    inserted = op_msg_reply(payload)
    assert opcode == 2013 and (inserted["ok"], inserted["n"]) == (1.0, 2)
    opcode, payload = exchange(*address, op_msg(1, b"\x00" + bson.encode({"ping": 1, "$db": "admin"})))
    assert opcode == 2013 and op_msg_reply(payload)["ok"] == 1.0
    assert ids(db.raw, {}) == [1, 2]


CURSOR_HOLDER = """
import sys, time
from pymongo import MongoClient
client = MongoClient(sys.argv[1], serverSelectionTimeoutMS=10000)
cursor = client[sys.argv[2]].held.find().batch_size(2)
next(cursor)
print("OPEN", flush=True)
time.sleep(120)
"""


def test_the_server_survives_clients_that_vanish(mongo_uri: str, client: MongoClient, db: Database) -> None:
    db.held.insert_many([{"_id": i} for i in range(10)])
    address = plain_address(mongo_uri)
    if address is not None:
        raw_disconnects(*address)
    holder = subprocess.Popen(
        [sys.executable, "-c", CURSOR_HOLDER, mongo_uri, db.name], stdout=subprocess.PIPE, text=True
    )
    try:
        assert holder.stdout is not None and holder.stdout.readline().strip() == "OPEN"
    finally:
        holder.kill()  # SIGKILL: no goodbye, no killCursors
        holder.wait(30)
        if holder.stdout is not None:
            holder.stdout.close()
    assert client.admin.command("ping")["ok"] == 1.0
    assert ids(db.held, {}) == list(range(10))
    db.held.insert_one({"_id": 10})
    assert db.held.count_documents({}) == 11


def test_unsupported_commands_fail_and_the_server_keeps_running(client: MongoClient, db: Database) -> None:
    with pytest.raises(OperationFailure) as failure:
        db.command("mldashNoSuchCommand")
    assert failure.value.code == 59
    assert client.admin.command("ping")["ok"] == 1.0
    db.after.insert_one({"_id": 1})
    assert db.after.find_one() == {"_id": 1}


@only_test_server
def test_the_test_server_refuses_what_it_cannot_do(client: MongoClient, db: Database) -> None:
    db.limits.insert_one({"_id": 1, "a": [{"x": 1}]})
    with client.start_session() as session:
        with pytest.raises(OperationFailure) as no_transactions:
            with session.start_transaction():
                db.limits.insert_one({"_id": 2}, session=session)
    assert no_transactions.value.code == 20
    with pytest.raises(OperationFailure) as no_command:
        db.command("collMod", "limits")
    assert no_command.value.code == 59
    with pytest.raises(WriteError) as no_array_filters:
        db.limits.update_one({"_id": 1}, {"$set": {"a.$[e].x": 2}}, array_filters=[{"e.x": 1}])
    assert no_array_filters.value.code == 238
    with pytest.raises(OperationFailure) as no_collation:
        list(db.limits.find({}, collation={"locale": "fr"}))
    assert no_collation.value.code == 238
    assert db.limits.find_one({"_id": 1}) == {"_id": 1, "a": [{"x": 1}]}
    assert ids(db.limits, {}) == [1]


def test_the_server_script_starts_and_stops_cleanly() -> None:
    with mongo.start_mongo_server() as first, mongo.start_mongo_server() as second:
        assert first.port != second.port
        with connect(first.uri) as a, connect(second.uri) as b:
            a.scratch.things.insert_one({"_id": 1})
            assert b.scratch.things.find_one({"_id": 1}) is None  # separate servers, separate data
            assert a.scratch.things.find_one({"_id": 1}) == {"_id": 1}
        assert first.stop() == 0
        assert second.stop() == 0
    assert first.proc.returncode == 0
    with mongo.start_mongo_server(port=first.port) as again:  # the port was released
        assert again.port == first.port
