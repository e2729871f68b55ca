#!/usr/bin/env python
"""A MongoDB wire-protocol test server: mongomock's in-memory database behind a real TCP listener.

Why: remote mode keeps its catalog in MongoDB through pymongo, and no MongoDB server can be
installed on the test machines. mongomock alone only fakes the client inside one process; the
catalog tests need several processes (FUSE daemon, SDK clients, workers) sharing ONE database over
`mongodb://127.0.0.1:PORT/`. This script serves one `mongomock.MongoClient()` over the MongoDB
wire protocol so that unmodified pymongo clients in any process talk to it as to a standalone
mongod (reported as MongoDB 6.0, wire version 17).

    python scripts/mongo_test_server.py --port 0 [--host 127.0.0.1] [--verbose]

prints exactly one line `READY <port>` to stdout once it is listening, and stops cleanly on
SIGTERM or SIGINT (and by itself when the process that started it dies, with --exit-with-parent).

What it does:
- Protocol: OP_MSG (body and document-sequence sections, checksum flag accepted but not
  verified, moreToCome = unacknowledged write, no reply) and the legacy OP_QUERY command form
  (the first `isMaster` of older drivers; pymongo 4.20 sends OP_MSG from the start) answered with
  OP_REPLY. One thread per connection, TCP_NODELAY; every command runs under ONE lock because
  mongomock is not thread-safe.
- Commands: hello/isMaster, ping, buildInfo, endSessions, find, getMore, killCursors, insert,
  update, delete, findAndModify, aggregate, count, distinct, create, drop, dropDatabase,
  createIndexes, dropIndexes, listIndexes, listCollections, listDatabases, renameCollection.
  Anything else gets `CommandNotFound` (59), so pymongo raises OperationFailure.
- Cursors live on the server: first batch 101 documents by default (or `batchSize`), getMore
  batches up to `batchSize` documents and at most 16 MiB; killCursors frees them; cursors idle for
  10 minutes are dropped. Documents are copied when a batch is sent, not when the cursor opens.
- Write errors come back in `writeErrors` (11000 + keyPattern/keyValue for duplicate keys, so
  pymongo raises DuplicateKeyError / BulkWriteError as with a real server).
- Where mongomock differs from MongoDB or does not scale, this server patches it (see
  `patch_mongomock`):
  - declared indexes are used: equality/$in/range conditions on the first field of a plain index,
    and on `_id`, pick candidate documents instead of scanning all (every candidate is still
    checked against the whole filter); unique indexes are hash indexes (O(1) per write, sparse
    and partialFilterExpression honoured, also when the index is built);
  - common filters run through a fast matcher that follows MongoDB (true is not 1, a path through
    a scalar is missing) and defers to mongomock whenever arrays or unusual types are involved;
  - "did this update change the document" compares BSON, so true -> 1 counts as a change and is
    checked against unique indexes;
  - `$max`/`$min` use BSON order, `$inc`/`$mul` refuse non-numbers, `$mul` exists, conflicting
    update paths (`$set: {a}` with `$inc: {a}`) fail with code 40, and the `$unset` and
    `$replaceWith` aggregation stages exist.

What it does NOT support (a clear error, never a silent wrong answer, where it can tell):
- transactions (it is a standalone server: code 20 IllegalOperation, as a real standalone),
  change streams, tailable cursors, exhaust cursors, compression, TLS, authentication;
- collation (other than "simple"), `let`, arrayFilters and `$[]`/`$[<id>]` paths, `$bit`,
  pipeline-style `$merge`, database-level aggregate, capped/validated/time-series collections;
- operators mongomock itself lacks (e.g. `$where`, `$text`, geo queries) give NotImplemented (238).
- Multikey unique indexes compare whole arrays (MongoDB compares each element). Cursors are not
  snapshots: a document updated between two getMore calls is returned as it is at the later one.
- Data lives in memory only and is lost when the server stops. Hints are accepted and ignored.
"""

from __future__ import annotations

import argparse
import bisect
import copy
import itertools
import logging
import operator
import os
import signal
import socket
import socketserver
import struct
import sys
import threading
import time
from collections.abc import Callable, Hashable, Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import bson
import mongomock
from bson.codec_options import CodecOptions
from bson.decimal128 import Decimal128
from bson.errors import BSONError
from bson.int64 import Int64
from bson.objectid import ObjectId
from bson.raw_bson import RawBSONDocument
from mongomock import aggregate as mm_aggregate
from mongomock import collection as mm_collection
from mongomock import filtering as mm_filtering
from mongomock import helpers as mm_helpers
from pymongo.errors import (
    CollectionInvalid,
    DuplicateKeyError,
    InvalidName,
    OperationFailure,
    WriteError,
)

log = logging.getLogger("mongo_test_server")

SERVER_VERSION = "6.0.0"
MAX_WIRE_VERSION = 17
MAX_BSON_OBJECT_SIZE = 16 * 1024 * 1024
MAX_MESSAGE_SIZE = 48_000_000
MAX_WRITE_BATCH_SIZE = 100_000
DEFAULT_FIRST_BATCH = 101
BATCH_BYTES = 16 * 1024 * 1024
CURSOR_IDLE_SECONDS = 600.0
SESSION_TIMEOUT_MINUTES = 30

OP_REPLY = 1
OP_QUERY = 2004
OP_MSG = 2013
MSG_CHECKSUM_PRESENT = 1 << 0
MSG_MORE_TO_COME = 1 << 1
MSG_EXHAUST_ALLOWED = 1 << 16
MSG_KNOWN_FLAGS = MSG_CHECKSUM_PRESENT | MSG_MORE_TO_COME | MSG_EXHAUST_ALLOWED
REPLY_QUERY_FAILURE = 1 << 1

HEADER = struct.Struct("<iiii")
INT32 = struct.Struct("<i")
CODEC = CodecOptions(document_class=dict, tz_aware=False)

Doc = dict[str, Any]

# --------------------------------------------------------------------------- errors

CODE_NAMES = {
    1: "InternalError",
    2: "BadValue",
    9: "FailedToParse",
    14: "TypeMismatch",
    20: "IllegalOperation",
    26: "NamespaceNotFound",
    27: "IndexNotFound",
    40: "ConflictingUpdateOperators",
    43: "CursorNotFound",
    48: "NamespaceExists",
    52: "DollarPrefixedFieldName",
    59: "CommandNotFound",
    72: "InvalidOptions",
    73: "InvalidNamespace",
    85: "IndexOptionsConflict",
    86: "IndexKeySpecsConflict",
    238: "NotImplemented",
    10334: "BSONObjectTooLarge",
    40323: "Location40323",
    11000: "DuplicateKey",
}


class CommandError(Exception):
    """A command failure with a MongoDB error code, sent back as `{ok: 0, errmsg, code, codeName}`."""

    def __init__(self, code: int, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def not_supported(what: str) -> CommandError:
    return CommandError(238, f"{what} is not supported by the mongomock test server")


def plain_message(exc: OperationFailure) -> str:
    """The message of a pymongo error without the ", full error: {...}" pymongo appends to it."""
    message = str(exc)
    suffix = f", full error: {exc.details}"
    return message[: -len(suffix)] if exc.details and message.endswith(suffix) else message


def error_code_and_message(exc: BaseException) -> tuple[int, str]:
    """Map an exception raised while running a command to a MongoDB error code and message."""
    if isinstance(exc, CommandError):
        return exc.code, exc.message
    if isinstance(exc, DuplicateKeyError):
        return 11000, plain_message(exc)
    if isinstance(exc, OperationFailure):  # includes WriteError; mongomock often omits the code
        return (exc.code if isinstance(exc.code, int) and exc.code > 0 else 2), plain_message(exc)
    if isinstance(exc, NotImplementedError):
        return 238, f"not supported by the mongomock test server: {exc}"
    if isinstance(exc, InvalidName):
        return 73, str(exc)
    if isinstance(exc, CollectionInvalid):
        return 48, str(exc)
    if isinstance(exc, (BSONError, TypeError, ValueError, KeyError, IndexError)):
        return 2, f"{type(exc).__name__}: {exc}"
    log.error("internal error", exc_info=exc)
    return 1, f"internal error in the mongomock test server: {type(exc).__name__}: {exc}"


def error_reply(exc: BaseException) -> Doc:
    code, message = error_code_and_message(exc)
    return {"ok": 0.0, "errmsg": message, "code": code, "codeName": CODE_NAMES.get(code, "Error")}


def write_error(index: int, exc: BaseException) -> Doc:
    code, message = error_code_and_message(exc)
    entry: Doc = {"index": index, "code": code, "errmsg": message}
    details = getattr(exc, "details", None)
    if code == 11000 and isinstance(details, Mapping):
        for key in ("keyPattern", "keyValue"):
            if key in details:
                entry[key] = details[key]
    return entry


# --------------------------------------------------------------------------- fast matching
#
# mongomock evaluates every filter on every document in pure Python (several microseconds per
# document). The matcher below compiles the common subset (equality and ranges on scalars,
# $in/$nin/$ne/$exists, $and/$or/$nor) into closures. Each returns True/False when it is sure and
# None when arrays or types it does not model are involved; then mongomock decides.

_MISSING = object()  # the field is absent
_UNSURE = object()  # the path crosses an array: let mongomock decide

Matcher = Callable[[Mapping[str, Any]], "bool | None"]
ValueTest = Callable[[Any], "bool | None"]

_COMPARE = {"$gt": operator.gt, "$gte": operator.ge, "$lt": operator.lt, "$lte": operator.le}


def simple_kind(value: Any) -> str | None:
    """The comparison class of a scalar the fast matcher models exactly, else None."""
    kind = type(value)
    if kind is str:
        return "str"
    if kind is bool:
        return "bool"
    if kind is int or kind is Int64:
        return "num"
    if kind is float:
        return "num" if value == value else None  # NaN: leave it to mongomock
    if kind is ObjectId:
        return "oid"
    if value is None:
        return "null"
    return None


def value_kind(value: Any) -> str | None:
    """Like simple_kind for a stored value; "other" for types that never equal a simple scalar."""
    kind = simple_kind(value)
    if kind is not None:
        return kind
    if isinstance(value, (list, tuple, float, Decimal128)) or (
        isinstance(value, int) and not isinstance(value, bool)
    ):
        return None
    return "other"


def lookup(doc: Any, parts: list[str]) -> Any:
    """The value at a dotted path; _MISSING if absent; _UNSURE if the path crosses an array."""
    value = doc
    for part in parts:
        if isinstance(value, dict):
            value = value.get(part, _MISSING)
            if value is _MISSING:
                return _MISSING
        elif isinstance(value, (list, tuple)):
            return _UNSURE
        else:
            return _MISSING
    return value


def _eq_test(operand: Any, kind: str) -> ValueTest:
    def test(value: Any) -> bool | None:
        if value is _MISSING:
            return kind == "null"
        have = value_kind(value)
        if have is None:
            return None
        return have == kind and (kind == "null" or value == operand)

    return test


def _cmp_test(compare: Callable[[Any, Any], bool], operand: Any, kind: str) -> ValueTest:
    def test(value: Any) -> bool | None:
        if value is _MISSING:
            return False
        have = value_kind(value)
        if have is None:
            return None
        return have == kind and compare(value, operand)

    return test


def _any_test(tests: list[ValueTest]) -> ValueTest:
    def test(value: Any) -> bool | None:
        unsure = False
        for one in tests:
            result = one(value)
            if result:
                return True
            unsure = unsure or result is None
        return None if unsure else False

    return test


def _negate(test: ValueTest) -> ValueTest:
    def negated(value: Any) -> bool | None:
        result = test(value)
        return None if result is None else not result

    return negated


def compile_operator(op: str, operand: Any) -> ValueTest | None:
    """A test for one `{$op: operand}`, or None if the fast matcher does not model it."""
    if op in ("$eq", "$ne"):
        kind = simple_kind(operand)
        if kind is None:
            return None
        test = _eq_test(operand, kind)
        return test if op == "$eq" else _negate(test)
    if op in _COMPARE:
        kind = simple_kind(operand)
        if kind is None or kind == "null":
            return None
        return _cmp_test(_COMPARE[op], operand, kind)
    if op in ("$in", "$nin"):
        if not isinstance(operand, list):
            return None
        kinds = [simple_kind(item) for item in operand]
        if None in kinds:
            return None
        test = _any_test([_eq_test(item, kind) for item, kind in zip(operand, kinds, strict=True)])  # type: ignore[arg-type]
        return test if op == "$in" else _negate(test)
    if op == "$exists":
        want = bool(operand)
        return lambda value: (value is not _MISSING) == want
    return None


def compile_field(path: str, condition: Any) -> Matcher | None:
    parts = path.split(".")
    if any(not part or part.isdigit() or part.startswith("$") for part in parts):
        return None
    if isinstance(condition, dict):
        if not condition or not all(isinstance(k, str) and k.startswith("$") for k in condition):
            return None
        tests = [compile_operator(op, operand) for op, operand in condition.items()]
    else:
        tests = [compile_operator("$eq", condition)]
    if any(test is None for test in tests):
        return None
    checks: list[ValueTest] = tests  # type: ignore[assignment]

    def match(doc: Mapping[str, Any]) -> bool | None:
        value = lookup(doc, parts)
        if value is _UNSURE:
            return None
        unsure = False
        for check in checks:
            result = check(value)
            if result is False:
                return False
            unsure = unsure or result is None
        return None if unsure else True

    return match


def _all_of(matchers: list[Matcher]) -> Matcher:
    def match(doc: Mapping[str, Any]) -> bool | None:
        unsure = False
        for one in matchers:
            result = one(doc)
            if result is False:
                return False
            unsure = unsure or result is None
        return None if unsure else True

    return match


def _some_of(matchers: list[Matcher]) -> Matcher:
    def match(doc: Mapping[str, Any]) -> bool | None:
        unsure = False
        for one in matchers:
            result = one(doc)
            if result:
                return True
            unsure = unsure or result is None
        return None if unsure else False

    return match


def _none_of(matchers: list[Matcher]) -> Matcher:
    some = _some_of(matchers)

    def match(doc: Mapping[str, Any]) -> bool | None:
        result = some(doc)
        return None if result is None else not result

    return match


_LOGICAL = {"$and": _all_of, "$or": _some_of, "$nor": _none_of}


def compile_filter(spec: Any) -> Matcher | None:
    """A fast matcher for a query filter, or None if any part of it is outside the modelled subset."""
    if not isinstance(spec, dict):
        return None
    matchers: list[Matcher] = []
    for key, condition in spec.items():
        if key in _LOGICAL:
            if not isinstance(condition, list) or not condition:
                return None
            subs = [compile_filter(sub) for sub in condition]
            if any(sub is None for sub in subs):
                return None
            matchers.append(_LOGICAL[key](subs))  # type: ignore[arg-type]
        elif key == "$comment":
            continue
        elif not isinstance(key, str) or key.startswith("$"):
            return None
        else:
            one = compile_field(key, condition)
            if one is None:
                return None
            matchers.append(one)
    return _all_of(matchers)


def applies(matcher: Matcher | None, spec: Any, doc: Mapping[str, Any]) -> bool:
    if matcher is not None:
        result = matcher(doc)
        if result is not None:
            return result
    return bool(mm_filtering.filter_applies(spec, doc))


# --------------------------------------------------------------------------- sorting


def _fast_sort_values(docs: list[Any], path: str) -> list[Any] | None:
    """The sort values when every document has a string there (or every one a number, or an ObjectId)."""
    parts = path.split(".")
    values = [lookup(doc, parts) for doc in docs]
    kinds = {
        value_kind(value) if value is not _MISSING and value is not _UNSURE else None for value in values
    }
    if len(kinds) == 1 and kinds <= {"str", "num", "oid"}:
        return values
    return None


def sort_documents(docs: list[Any], sort: Iterable[tuple[str, Any]]) -> list[Any]:
    """Sort like MongoDB (stable, last key first); plain strings/numbers skip mongomock's comparator."""
    for key, direction in reversed(list(sort)):
        if not isinstance(direction, (int, float)) or isinstance(direction, bool):
            raise not_supported(f"sort {{{key}: {direction!r}}}")
        reverse = direction < 0
        if key == "$natural":
            if reverse:
                docs.reverse()
            continue
        if key.startswith("$"):
            raise not_supported(f"sorting by {key}")
        values = _fast_sort_values(docs, key)
        if values is None:
            docs.sort(key=lambda doc, k=key: mm_filtering.resolve_sort_key(k, doc), reverse=reverse)
        else:
            order = sorted(range(len(docs)), key=values.__getitem__, reverse=reverse)
            docs = [docs[i] for i in order]
    return docs


def sort_spec(value: Any) -> list[tuple[str, Any]]:
    if value is None:
        return []
    if isinstance(value, Mapping):
        return list(value.items())
    raise CommandError(2, f"sort must be a document, not {type(value).__name__}")


# --------------------------------------------------------------------------- unique indexes


def hashable(value: Any, strict: bool = True) -> Hashable:
    """A hashable stand-in for a BSON value; equal values map to equal keys (1 == 1.0).

    strict keeps booleans apart from numbers, as BSON does; loose (strict=False) lets them be
    equal, as Python does, which is how mongomock decides whether an update changed anything.
    """
    if isinstance(value, bool) and strict:
        return ("bool", value)
    if isinstance(value, dict):
        return ("doc", tuple((k, hashable(v, strict)) for k, v in value.items()))
    if isinstance(value, (list, tuple)):
        return ("list", tuple(hashable(v, strict) for v in value))
    if isinstance(value, float) and value != value:
        return ("nan",)
    try:
        hash(value)
    except TypeError:
        return ("repr", type(value).__name__, repr(value))
    return value


def id_key(value: Any) -> Hashable:
    """The key mongomock's store uses for an `_id`."""
    return mm_helpers.hashdict(value) if isinstance(value, dict) else value


def format_key_value(values: Mapping[str, Any]) -> str:
    inner = ", ".join(f"{k}: {v!r}" for k, v in values.items())
    return "{ " + inner + " }"


class UniqueIndex:
    """A hash index enforcing one unique index of one collection store.

    Built lazily from the documents; afterwards each write costs O(1). Entries may go stale
    (deleted documents, failed writes): every hit is re-checked against the stored document.
    Buckets use loose keys (true == 1) because mongomock does not report an update from true to
    1 as a change; conflicts are decided on strict keys (true != 1), as in MongoDB.
    """

    def __init__(self, name: str, spec: Mapping[str, Any], documents: Any) -> None:
        self.name = name
        self.spec = spec
        self.documents = documents  # the store's dict at build time; replaced dict => rebuild
        self.fields = [f for f, _ in spec["key"]]
        self.sparse = bool(spec.get("sparse"))
        self.partial = spec.get("partialFilterExpression")
        self.partial_matcher = compile_filter(self.partial) if self.partial is not None else None
        self.owners: dict[Hashable, set[Hashable]] = {}
        self.keys: dict[Hashable, Hashable] = {}

    def key_of(self, doc: Mapping[str, Any], strict: bool = False) -> Hashable | None:
        """The (loose or strict) index key of a document, or None if it is not in this index."""
        values = []
        present = False
        for name in self.fields:
            try:
                values.append(mm_helpers.get_value_by_dot(doc, name))
                present = True
            except (KeyError, IndexError, TypeError):
                values.append(None)
        if self.sparse and not present:
            return None
        if self.partial is not None and not applies(self.partial_matcher, self.partial, doc):
            return None
        return tuple(hashable(v, strict) for v in values)

    def check(self, doc: Mapping[str, Any], ns: str) -> tuple[Hashable, Hashable | None]:
        """Raise DuplicateKeyError if another stored document has this document's key."""
        key = self.key_of(doc)
        me = id_key(doc.get("_id"))
        if key is not None:
            strict = self.key_of(doc, strict=True)
            for other in list(self.owners.get(key, ())):
                if other == me:
                    continue
                stored = self.documents.get(other)
                if stored is None or self.key_of(stored) != key:
                    self.forget(other)  # stale
                elif self.key_of(stored, strict=True) == strict:
                    raise self.duplicate(doc, ns)
        return me, key

    def register(self, entry: tuple[Hashable, Hashable | None]) -> None:
        me, key = entry
        self.forget(me)
        if key is not None:
            self.owners.setdefault(key, set()).add(me)
            self.keys[me] = key

    def forget(self, me: Hashable) -> None:
        old = self.keys.pop(me, None)
        if old is not None:
            owners = self.owners.get(old)
            if owners is not None:
                owners.discard(me)
                if not owners:
                    del self.owners[old]

    def build(self, docs: Iterable[Mapping[str, Any]], ns: str) -> None:
        for doc in docs:
            self.register(self.check(doc, ns))

    def duplicate(self, doc: Mapping[str, Any], ns: str) -> DuplicateKeyError:
        values: Doc = {}
        for name in self.fields:
            try:
                values[name] = mm_helpers.get_value_by_dot(doc, name)
            except (KeyError, IndexError, TypeError):
                values[name] = None
        message = (
            f"E11000 duplicate key error collection: {ns} index: {self.name} "
            f"dup key: {format_key_value(values)}"
        )
        details = {"keyPattern": dict(self.spec["key"]), "keyValue": values}
        return DuplicateKeyError(message, 11000, details)


def unique_indexes(store: Any) -> dict[str, UniqueIndex]:
    cache = store.__dict__.get("_test_server_unique")
    if cache is None:
        cache = store.__dict__["_test_server_unique"] = {}
    return cache


def unique_index(store: Any, name: str, spec: Mapping[str, Any], ns: str) -> UniqueIndex:
    """The (re)built hash index for a unique index of a collection store."""
    cache = unique_indexes(store)
    index = cache.get(name)
    if index is None or index.spec is not spec or index.documents is not store._documents:
        index = UniqueIndex(name, spec, store._documents)
        index.build(list(store._documents.values()), ns)
        cache[name] = index
    return index


def duplicate_id(doc: Mapping[str, Any], ns: str) -> DuplicateKeyError:
    values = {"_id": doc.get("_id")}
    message = f"E11000 duplicate key error collection: {ns} index: _id_ dup key: {format_key_value(values)}"
    return DuplicateKeyError(message, 11000, {"keyPattern": {"_id": 1}, "keyValue": values})


# --------------------------------------------------------------------------- field indexes
#
# mongomock scans every document for every query. For the first field of each plain declared
# index (and for `_id`), a FieldIndex keeps value -> document ids, plus the distinct string and
# number values in order, so equality, $in and range conditions pick a few candidates instead.
# Candidates are only a superset: the whole filter is still checked on each, so a stale or
# missing-from-the-index document can never produce a wrong answer, only a slower one.


def bucket(kind: str, value: Any) -> tuple[str, Any]:
    """The FieldIndex key of a plain scalar. Booleans share the numbers' buckets (true with 1):
    mongomock does not report an update from true to 1 as a change, so the index must not care."""
    if kind == "null":
        return ("null", None)
    if kind == "bool":
        return ("num", int(value))
    return (kind, value)


class FieldIndex:
    """Equality and range lookups on one field path, used to narrow a query's candidates."""

    def __init__(self, path: str, documents: Any) -> None:
        self.path = path
        self.parts = path.split(".")
        self.documents = documents  # the store's dict at build time; replaced dict => rebuild
        self.owners: dict[Hashable, dict[Hashable, None]] = {}
        self.where: dict[Hashable, Any] = {}  # document id -> its key here (or _UNSURE)
        self.unsure: dict[Hashable, None] = {}  # arrays, decimals, NaN: candidates for everything
        self.ordered: dict[str, list[Any]] = {"str": [], "num": []}
        for doc in list(documents.values()):
            self.put(doc)

    def key_of(self, doc: Mapping[str, Any]) -> Any:
        """(kind, value) for a plain scalar, _UNSURE, or None if no scalar query can match it."""
        value = lookup(doc, self.parts)
        if value is _UNSURE:
            return _UNSURE
        kind = "null" if value is _MISSING else value_kind(value)
        if kind is None:
            return _UNSURE
        return None if kind == "other" else bucket(kind, value)

    def put(self, doc: Mapping[str, Any]) -> None:
        me = id_key(doc.get("_id"))
        self.forget(me)
        key = self.key_of(doc)
        if key is None:
            return
        self.where[me] = key
        if key is _UNSURE:
            self.unsure[me] = None
            return
        owners = self.owners.get(key)
        if owners is None:
            owners = self.owners[key] = {}
            if key[0] in self.ordered:
                bisect.insort(self.ordered[key[0]], key[1])
        owners[me] = None

    def forget(self, me: Hashable) -> None:
        key = self.where.pop(me, None)
        if key is None:
            return
        if key is _UNSURE:
            self.unsure.pop(me, None)
            return
        owners = self.owners.get(key)
        if owners is None:
            return
        owners.pop(me, None)
        if not owners:
            del self.owners[key]
            values = self.ordered.get(key[0])
            if values is not None:
                i = bisect.bisect_left(values, key[1])
                if i < len(values) and values[i] == key[1]:
                    del values[i]

    def equal(self, values: list[Any]) -> dict[Hashable, None]:
        ids = dict(self.unsure)
        for value in values:
            ids.update(self.owners.get(bucket(simple_kind(value), value), {}))  # type: ignore[arg-type]
        return ids

    def between(
        self, kind: str, low: Any, low_inclusive: bool, high: Any, high_inclusive: bool
    ) -> dict[Hashable, None]:
        values = self.ordered[kind]
        start = (
            0 if low is None else (bisect.bisect_left if low_inclusive else bisect.bisect_right)(values, low)
        )
        end = (
            len(values)
            if high is None
            else (bisect.bisect_right if high_inclusive else bisect.bisect_left)(values, high)
        )
        ids = dict(self.unsure)
        for value in values[start:end]:
            ids.update(self.owners[(kind, value)])
        return ids


def indexed_paths(store: Any) -> set[str]:
    """First fields of the store's plain (not partial, not sparse, ascending/descending) indexes."""
    paths = set()
    for spec in store.indexes.values():
        if spec.get("partialFilterExpression") is not None or spec.get("sparse"):
            continue
        path, direction = spec["key"][0]
        if direction in (1, -1) and path != "_id":
            paths.add(path)
    return paths


def field_indexes(store: Any) -> dict[str, FieldIndex]:
    """The store's field indexes, (re)built for its current documents and declared indexes."""
    cache = store.__dict__.get("_test_server_fields")
    if cache is None or cache[0] is not store._documents:
        cache = store.__dict__["_test_server_fields"] = (store._documents, {})
    indexes: dict[str, FieldIndex] = cache[1]
    wanted = indexed_paths(store) if store.indexes else set()
    for path in set(indexes) - wanted:
        del indexes[path]
    for path in wanted - set(indexes):
        indexes[path] = FieldIndex(path, store._documents)
    return indexes


def equal_values(condition: Any) -> list[Any] | None:
    """The values a condition requires equality with ({f: v}, $eq, $in of plain scalars), or None."""
    if simple_kind(condition) is not None:
        return [condition]
    if not isinstance(condition, dict):
        return None
    if simple_kind(condition.get("$eq", ())) is not None:
        return [condition["$eq"]]
    values = condition.get("$in")
    if isinstance(values, list) and all(simple_kind(v) is not None for v in values):
        return values
    return None


def range_of(condition: Any) -> tuple[str, Any, bool, Any, bool] | None:
    """(kind, low, low inclusive, high, high inclusive) of a string or number range condition."""
    if not isinstance(condition, dict):
        return None
    bounds = {op: condition[op] for op in _COMPARE if op in condition}
    kinds = {simple_kind(v) for v in bounds.values()}
    if not bounds or len(kinds) != 1 or not kinds <= {"str", "num"}:
        return None
    low = bounds.get("$gt", bounds.get("$gte"))
    high = bounds.get("$lt", bounds.get("$lte"))
    return kinds.pop(), low, "$gt" not in bounds, high, "$lt" not in bounds  # type: ignore[return-value]


def id_candidates(store: Any, condition: Any) -> list[Any] | None:
    values = equal_values(condition)
    if values is None or any(simple_kind(v) not in ("str", "num", "oid") for v in values):
        return None
    found = (store._documents.get(v) for v in dict.fromkeys(values))
    return [doc for doc in found if doc is not None]


def candidates(store: Any, spec: Any) -> list[Any]:
    """A superset of the stored documents matching spec, from `_id` or a field index if it can."""
    if not isinstance(spec, dict) or not spec:
        return list(store._documents.values())
    if "_id" in spec:
        docs = id_candidates(store, spec["_id"])
        if docs is not None:
            return docs
    indexes = field_indexes(store) if store.indexes else {}
    best: dict[Hashable, None] | None = None
    for path, condition in spec.items():
        index = indexes.get(path)
        if index is None:
            continue
        values = equal_values(condition)
        bounds = range_of(condition) if values is None else None
        ids = index.equal(values) if values is not None else index.between(*bounds) if bounds else None
        if ids is not None and (best is None or len(ids) < len(best)):
            best = ids
    if best is None:
        return list(store._documents.values())
    documents = store._documents
    return [doc for doc in map(documents.get, best) if doc is not None]


def forget_document(store: Any, doc: Mapping[str, Any]) -> None:
    """Drop a deleted document's entries from the store's field and unique indexes."""
    me = id_key(doc.get("_id"))
    for index in store.__dict__.get("_test_server_fields", (None, {}))[1].values():
        index.forget(me)
    for unique in unique_indexes(store).values():
        unique.forget(me)


# --------------------------------------------------------------------------- mongomock patches


def _ns(collection: Any) -> str:
    return f"{collection.database.name}.{collection.name}"


def _iter_documents(self: Any, spec: Any) -> Iterator[Any]:
    """Replacement for mongomock's Collection._iter_documents: index candidates, fast matcher."""
    store = self._store
    if store.is_empty:  # (this also expires TTL documents, like mongomock)
        mm_filtering.filter_applies(spec, {})  # validates the filter, like mongomock
        return iter(())
    matcher = compile_filter(spec)
    return (doc for doc in candidates(store, spec) if applies(matcher, spec, doc))


def _ensure_uniques(self: Any, new_data: Mapping[str, Any]) -> None:
    """Replacement for mongomock's Collection._ensure_uniques: check every index, then record."""
    store = self._store
    ns = _ns(self)
    entries = []
    for name, spec in list(store.indexes.items()):
        if spec.get("unique"):
            index = unique_index(store, name, spec, ns)
            entries.append((index, index.check(new_data, ns)))
    for index, entry in entries:
        index.register(entry)
    if store.indexes:
        for field_index in field_indexes(store).values():
            field_index.put(new_data)


class BsonSnapshot(dict):  # type: ignore[type-arg]
    """A copy of a stored document that compares like MongoDB: by its BSON bytes.

    mongomock snapshots a document before an update and skips the unique-index checks (and
    reports nModified 0) when `document != snapshot` is False. With plain dicts, {u: 1} and
    {u: true} are equal in Python; as the right-hand operand (a dict subclass) this class's
    __ne__ runs first, and there they differ, as in MongoDB.
    """

    def __eq__(self, other: object) -> bool:
        try:
            return bson.encode(self) == bson.encode(other)  # type: ignore[arg-type]
        except Exception:
            return dict.__eq__(self, other)

    def __ne__(self, other: object) -> bool:
        return not self.__eq__(other)

    __hash__ = None  # type: ignore[assignment]


class CopyModule:
    """Stands in for the `copy` module inside mongomock.collection: whole documents (dicts with
    an `_id`) are deep-copied into BsonSnapshot."""

    copy = staticmethod(copy.copy)

    @staticmethod
    def deepcopy(value: Any, memo: dict[int, Any] | None = None) -> Any:
        result = copy.deepcopy(value, memo)
        return BsonSnapshot(result) if type(result) is dict and "_id" in result else result


def _max_updater(doc: Any, field_name: str, value: Any) -> None:
    if isinstance(doc, dict):
        if field_name not in doc or mm_filtering.bson_compare(operator.gt, value, doc[field_name]):
            doc[field_name] = value


def _min_updater(doc: Any, field_name: str, value: Any) -> None:
    if isinstance(doc, dict):
        if field_name not in doc or mm_filtering.bson_compare(operator.lt, value, doc[field_name]):
            doc[field_name] = value


def _is_number(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _combined(op: str, combine: Callable[[Any, Any], Any], current: Any, value: Any, field_name: str) -> Any:
    """The new value of a field for $inc/$mul, with MongoDB's treatment of missing and non-numbers."""
    if current is _MISSING:
        return type(value)(0) if op == "$mul" else value
    if isinstance(current, Decimal128):
        raise NotImplementedError(f"{op} on a Decimal128 value")
    if not _is_number(current):
        raise WriteError(
            f"Cannot apply {op} to a value of non-numeric type. The field '{field_name}' "
            f"has non-numeric type {type(current).__name__}",
            14,
        )
    return combine(current, value)


def _arithmetic_updater(op: str, combine: Callable[[Any, Any], Any]) -> Callable[[Any, str, Any], None]:
    """A mongomock updater for $inc or $mul (mongomock's $inc adds to anything; $mul is missing)."""

    def updater(doc: Any, field_name: str, value: Any) -> None:
        if isinstance(value, Decimal128):
            raise NotImplementedError(f"{op} with a Decimal128 value")
        if not _is_number(value):
            raise WriteError(f"Cannot {op[1:]} with non-numeric argument: {{{field_name}: {value!r}}}", 14)
        if isinstance(doc, dict):
            doc[field_name] = _combined(op, combine, doc.get(field_name, _MISSING), value, field_name)
        elif isinstance(doc, list):
            index = int(field_name)
            if index < 0:
                raise WriteError("Negative index provided", 2)
            current = doc[index] if index < len(doc) else _MISSING
            new = _combined(op, combine, current, value, field_name)
            doc.extend([None] * (index + 1 - len(doc)))
            doc[index] = new

    return updater


def _aggregate_match(docs: list[Any], database: Any, spec: Any) -> list[Any]:
    matcher = compile_filter(spec)
    return [doc for doc in docs if applies(matcher, spec, doc)]


def _aggregate_sort(docs: list[Any], database: Any, spec: Any) -> list[Any]:
    return sort_documents(list(docs), sort_spec(spec))


def _aggregate_unset(docs: list[Any], database: Any, spec: Any) -> list[Any]:
    fields = [spec] if isinstance(spec, str) else list(spec)
    return mm_aggregate._PIPELINE_HANDLERS["$project"](docs, database, {f: 0 for f in fields})


def _aggregate_replace_with(docs: list[Any], database: Any, spec: Any) -> list[Any]:
    return mm_aggregate._PIPELINE_HANDLERS["$replaceRoot"](docs, database, {"newRoot": spec})


def patch_mongomock() -> None:
    """Make mongomock behave (and scale) closer to MongoDB; see the module docstring."""
    mm_collection.copy = CopyModule  # type: ignore[assignment]
    mm_collection.Collection._iter_documents = _iter_documents
    mm_collection.Collection._ensure_uniques = _ensure_uniques
    mm_collection._updaters["$max"] = _max_updater
    mm_collection._updaters["$min"] = _min_updater
    mm_collection._updaters["$inc"] = _arithmetic_updater("$inc", operator.add)
    mm_collection._updaters["$mul"] = _arithmetic_updater("$mul", operator.mul)
    handlers = mm_aggregate._PIPELINE_HANDLERS
    handlers["$match"] = _aggregate_match
    handlers["$sort"] = _aggregate_sort
    handlers["$unset"] = _aggregate_unset
    handlers["$replaceWith"] = _aggregate_replace_with


# --------------------------------------------------------------------------- updates

UPDATE_OPERATORS = {
    "$set", "$unset", "$inc", "$mul", "$max", "$min", "$pop", "$rename", "$setOnInsert",
    "$currentDate", "$addToSet", "$pull", "$pullAll", "$push",
}  # fmt: skip


def update_paths(update: Mapping[str, Any]) -> Iterator[str]:
    for op, fields in update.items():
        if not isinstance(fields, Mapping):
            raise CommandError(
                9, f"Modifiers operate on fields but we found type {type(fields).__name__} instead"
            )
        for path, value in fields.items():
            yield path
            if op == "$rename":
                if not isinstance(value, str) or not value:
                    raise CommandError(2, f"The 'to' field for $rename must be a string: {path}: {value!r}")
                yield value


def check_update_document(update: Mapping[str, Any]) -> None:
    """Refuse what mongomock would silently get wrong: unknown operators, array filters, conflicts."""
    for op in update:
        if op == "$bit":
            raise not_supported("the $bit update operator")
        if op not in UPDATE_OPERATORS:
            raise CommandError(
                9, f"Unknown modifier: {op}. Expected a valid update modifier or pipeline-style update"
            )
    seen: list[str] = []
    for path in update_paths(update):
        if "$[" in path:
            raise not_supported(f"the array update path {path!r} ($[] / arrayFilters)")
        for other in seen:
            if path == other or path.startswith(other + ".") or other.startswith(path + "."):
                raise CommandError(40, f"Updating the path '{path}' would create a conflict at '{other}'")
        seen.append(path)


def is_operator_update(update: Any) -> bool:
    return isinstance(update, Mapping) and bool(update) and all(str(k).startswith("$") for k in update)


def upsert_query(query: Doc) -> Doc:
    """An equivalent query from which mongomock seeds an upserted document as MongoDB does.

    mongomock seeds from top-level equalities only: fold a top-level $and into them, and turn a
    one-value $in into $eq (the same condition).
    """
    flat: Doc = {}
    for key, condition in query.items():
        and_parts = (
            key == "$and" and isinstance(condition, list) and all(isinstance(c, dict) for c in condition)
        )
        for part in condition if and_parts else [{key: condition}]:
            for name, value in part.items():
                if (
                    isinstance(value, dict)
                    and list(value) == ["$in"]
                    and isinstance(value["$in"], list)
                    and len(value["$in"]) == 1
                    and simple_kind(value["$in"][0]) is not None
                ):
                    value = {"$eq": value["$in"][0]}
                if name in flat:
                    return query  # the same field twice: leave it to mongomock
                flat[name] = value
    return flat


def apply_update(coll: Any, query: Doc, update: Any, *, multi: bool, upsert: bool) -> Doc:
    """Run one update statement through mongomock; returns its raw result (n, nModified, upserted)."""
    if upsert:
        query = upsert_query(query)
    if isinstance(update, list):
        method = coll.update_many if multi else coll.update_one
        return method(query, update, upsert=upsert).raw_result
    if is_operator_update(update):
        check_update_document(update)
        method = coll.update_many if multi else coll.update_one
        return method(query, update, upsert=upsert).raw_result
    if not isinstance(update, Mapping):
        raise CommandError(14, "the update must be a document or a pipeline")
    if multi:
        raise CommandError(9, "multi update is not supported for replacement-style update")
    if any(str(k).startswith("$") for k in update):
        raise CommandError(52, f"The dollar ($) prefixed field in {dict(update)!r} is not allowed here")
    return coll.replace_one(query, dict(update), upsert=upsert).raw_result


def reject_options(cmd: Mapping[str, Any], *names: str) -> None:
    for name in names:
        value = cmd.get(name)
        if value is None or value == {} or value == []:
            continue
        if name == "collation" and isinstance(value, Mapping) and value.get("locale") == "simple":
            continue
        raise not_supported(f"the {name!r} option")


# --------------------------------------------------------------------------- cursors


@dataclass
class Cursor:
    """Server-side results for getMore: stored documents are copied when their batch is sent."""

    cursor_id: int
    ns: str
    docs: list[Any]
    render: Callable[[Any], Any] | None = None
    pos: int = 0
    last_used: float = field(default_factory=time.monotonic)

    @property
    def exhausted(self) -> bool:
        return self.pos >= len(self.docs)

    def next_batch(self, max_docs: int | None) -> list[RawBSONDocument]:
        self.last_used = time.monotonic()
        batch: list[RawBSONDocument] = []
        size = 0
        while self.pos < len(self.docs) and (max_docs is None or len(batch) < max_docs):
            doc = self.docs[self.pos]
            raw = bson.encode(self.render(doc) if self.render else doc)
            if batch and size + len(raw) > BATCH_BYTES:
                break
            batch.append(RawBSONDocument(raw))
            size += len(raw)
            self.docs[self.pos] = None  # let it go
            self.pos += 1
        return batch


def batch_size_of(value: Any, default: int | None) -> int | None:
    if value is None:
        return default
    if not _is_number(value) or value < 0:
        raise CommandError(2, f"batchSize must be a non-negative number, not {value!r}")
    return int(value)


# --------------------------------------------------------------------------- the backend

TRANSACTION_FIELDS = ("txnNumber", "startTransaction", "autocommit")


class Backend:
    """One mongomock database shared by every connection; each command runs under one lock."""

    def __init__(self) -> None:
        patch_mongomock()
        self.client = mongomock.MongoClient()
        self.client._server_version = SERVER_VERSION
        self.lock = threading.Lock()
        self.cursors: dict[int, Cursor] = {}
        self.cursor_ids = itertools.count(1)
        self.collections: dict[tuple[str, str], Any] = {}
        self.commands: dict[str, Callable[[str, Doc], Doc]] = {
            "hello": self.cmd_hello,
            "isMaster": self.cmd_hello,
            "ismaster": self.cmd_hello,
            "ping": lambda db, cmd: {},
            "buildInfo": self.cmd_build_info,
            "buildinfo": self.cmd_build_info,
            "endSessions": lambda db, cmd: {},
            "find": self.cmd_find,
            "getMore": self.cmd_get_more,
            "killCursors": self.cmd_kill_cursors,
            "insert": self.cmd_insert,
            "update": self.cmd_update,
            "delete": self.cmd_delete,
            "findAndModify": self.cmd_find_and_modify,
            "findandmodify": self.cmd_find_and_modify,
            "aggregate": self.cmd_aggregate,
            "count": self.cmd_count,
            "distinct": self.cmd_distinct,
            "create": self.cmd_create,
            "drop": self.cmd_drop,
            "dropDatabase": self.cmd_drop_database,
            "createIndexes": self.cmd_create_indexes,
            "dropIndexes": self.cmd_drop_indexes,
            "listIndexes": self.cmd_list_indexes,
            "listCollections": self.cmd_list_collections,
            "listDatabases": self.cmd_list_databases,
            "renameCollection": self.cmd_rename_collection,
            "commitTransaction": self.cmd_transaction,
            "abortTransaction": self.cmd_transaction,
        }
        self.connection_ids = itertools.count(1)

    # ---- dispatch

    def run_command(self, db: str, cmd: Doc, connection_id: int) -> Doc:
        """Run one command document; always returns a reply document (errors included)."""
        if not cmd:
            return error_reply(CommandError(9, "empty command"))
        name = next(iter(cmd))
        handler = self.commands.get(name)
        started = time.perf_counter()
        try:
            if handler is None:
                raise CommandError(
                    59, f"no such command: '{name}' (not supported by the mongomock test server)"
                )
            if any(f in cmd for f in TRANSACTION_FIELDS):
                self.cmd_transaction(db, cmd)
            with self.lock:
                reply = handler(db, cmd)
            if name in ("hello", "isMaster", "ismaster"):
                reply["connectionId"] = connection_id
        except Exception as exc:  # every failure becomes an error reply; the server keeps going
            reply = error_reply(exc)
        else:
            reply.setdefault("ok", 1.0)
        if log.isEnabledFor(logging.DEBUG):
            log.debug("%s.%s %.2f ms ok=%s", db, name, (time.perf_counter() - started) * 1e3, reply.get("ok"))
        return reply

    def collection(self, db: str, name: Any) -> Any:
        if not isinstance(name, str) or not name:
            raise CommandError(73, f"collection name has invalid type {type(name).__name__}")
        coll = self.collections.get((db, name))
        if coll is None:
            coll = self.client.get_database(db).get_collection(name)
            self.collections[(db, name)] = coll
        return coll

    def store_of(self, db: str, name: str) -> Any:
        return self.client._store[db][name]

    def open_cursor(
        self,
        ns: str,
        docs: list[Any],
        first: int | None,
        single: bool,
        render: Callable[[Any], Any] | None = None,
    ) -> Doc:
        """Create a cursor over docs and return the `cursor` reply field with its first batch."""
        self.expire_cursors()
        cursor = Cursor(next(self.cursor_ids), ns, docs, render)
        batch = cursor.next_batch(first)
        cursor_id = 0
        if not single and not cursor.exhausted:
            self.cursors[cursor.cursor_id] = cursor
            cursor_id = cursor.cursor_id
        return {"firstBatch": batch, "id": Int64(cursor_id), "ns": ns}

    def expire_cursors(self) -> None:
        deadline = time.monotonic() - CURSOR_IDLE_SECONDS
        for cursor_id in [cid for cid, c in self.cursors.items() if c.last_used < deadline]:
            del self.cursors[cursor_id]

    # ---- handshake and misc

    def cmd_hello(self, db: str, cmd: Doc) -> Doc:
        reply: Doc = {
            "helloOk": True,
            "isWritablePrimary": True,
            "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
            "maxMessageSizeBytes": MAX_MESSAGE_SIZE,
            "maxWriteBatchSize": MAX_WRITE_BATCH_SIZE,
            "localTime": datetime.now(timezone.utc),
            "logicalSessionTimeoutMinutes": SESSION_TIMEOUT_MINUTES,
            "minWireVersion": 0,
            "maxWireVersion": MAX_WIRE_VERSION,
            "readOnly": False,
        }
        if next(iter(cmd)) != "hello":
            reply["ismaster"] = True
        return reply

    def cmd_build_info(self, db: str, cmd: Doc) -> Doc:
        return {
            "version": SERVER_VERSION,
            "gitVersion": "mongomock-test-server",
            "versionArray": [int(p) for p in SERVER_VERSION.split(".")] + [0],
            "bits": 64,
            "debug": False,
            "maxBsonObjectSize": MAX_BSON_OBJECT_SIZE,
            "storageEngines": ["mongomock"],
        }

    def cmd_transaction(self, db: str, cmd: Doc) -> Doc:
        raise CommandError(
            20,
            "Transaction numbers are only allowed on a replica set member or mongos "
            "(the mongomock test server is a standalone server without transactions)",
        )

    # ---- reads

    def matching(self, coll: Any, spec: Any, sort: list[tuple[str, Any]], skip: int, limit: int) -> list[Any]:
        """The stored documents matching spec, sorted, skipped and limited (not copies)."""
        if spec is None:
            spec = {}
        if not isinstance(spec, Mapping):
            raise CommandError(2, "the filter must be a document")
        docs = list(coll._iter_documents(dict(spec)))
        if sort:
            docs = sort_documents(docs, sort)
        if skip:
            docs = docs[skip:]
        if limit:
            docs = docs[:limit]
        return docs

    def renderer(self, coll: Any, projection: Any) -> Callable[[Any], Any] | None:
        if projection is None or projection == {}:
            return None
        if not isinstance(projection, Mapping):
            raise CommandError(2, "projection must be a document")
        spec = dict(projection)
        return lambda doc: coll._copy_only_fields(doc, dict(spec), dict)

    def cmd_find(self, db: str, cmd: Doc) -> Doc:
        reject_options(
            cmd, "collation", "let", "min", "max", "returnKey", "showRecordId", "tailable", "awaitData"
        )
        coll = self.collection(db, cmd["find"])
        skip = int(cmd.get("skip") or 0)
        limit = int(cmd.get("limit") or 0)
        if skip < 0 or limit < 0:
            raise CommandError(2, "skip and limit must be non-negative")
        docs = self.matching(coll, cmd.get("filter"), sort_spec(cmd.get("sort")), skip, limit)
        render = self.renderer(coll, cmd.get("projection"))
        if render is not None and docs:
            render(docs[0])  # a bad projection fails the command, not a later batch
        first = batch_size_of(cmd.get("batchSize"), DEFAULT_FIRST_BATCH)
        ns = f"{db}.{cmd['find']}"
        return {"cursor": self.open_cursor(ns, docs, first, bool(cmd.get("singleBatch")), render)}

    def cmd_get_more(self, db: str, cmd: Doc) -> Doc:
        cursor_id = int(cmd["getMore"])
        cursor = self.cursors.get(cursor_id)
        if cursor is None:
            raise CommandError(43, f"cursor id {cursor_id} not found")
        batch = cursor.next_batch(batch_size_of(cmd.get("batchSize"), None) or None)
        if cursor.exhausted:
            del self.cursors[cursor_id]
            cursor_id = 0
        return {"cursor": {"nextBatch": batch, "id": Int64(cursor_id), "ns": cursor.ns}}

    def cmd_kill_cursors(self, db: str, cmd: Doc) -> Doc:
        killed, not_found = [], []
        for cursor_id in cmd.get("cursors", []):
            if self.cursors.pop(int(cursor_id), None) is None:
                not_found.append(cursor_id)
            else:
                killed.append(cursor_id)
        return {
            "cursorsKilled": killed,
            "cursorsNotFound": not_found,
            "cursorsAlive": [],
            "cursorsUnknown": [],
        }

    def cmd_count(self, db: str, cmd: Doc) -> Doc:
        reject_options(cmd, "collation")
        coll = self.collection(db, cmd["count"])
        skip = int(cmd.get("skip") or 0)
        limit = abs(int(cmd.get("limit") or 0))
        return {"n": len(self.matching(coll, cmd.get("query"), [], skip, limit))}

    def cmd_distinct(self, db: str, cmd: Doc) -> Doc:
        reject_options(cmd, "collation")
        coll = self.collection(db, cmd["distinct"])
        key = cmd.get("key")
        if not isinstance(key, str):
            raise CommandError(14, "distinct key must be a string")
        return {"values": coll.distinct(key, cmd.get("query") or {})}

    def cmd_aggregate(self, db: str, cmd: Doc) -> Doc:
        reject_options(cmd, "collation", "let", "explain")
        target = cmd["aggregate"]
        if not isinstance(target, str):
            raise not_supported("a database-level aggregate ({aggregate: 1})")
        pipeline = cmd.get("pipeline")
        if not isinstance(pipeline, list):
            raise CommandError(14, "'pipeline' option must be specified as an array")
        if "cursor" not in cmd:
            raise CommandError(9, "The 'cursor' option is required")
        for stage in pipeline:
            if not isinstance(stage, Mapping) or len(stage) != 1:
                raise CommandError(
                    40323, "A pipeline stage specification object must contain exactly one field."
                )
            if "$merge" in stage:
                raise not_supported("the $merge stage")
        coll = self.collection(db, target)
        rest = pipeline
        spec: Any = {}
        if pipeline and "$match" in pipeline[0]:
            spec, rest = pipeline[0]["$match"], pipeline[1:]
        docs = [copy.deepcopy(doc) for doc in self.matching(coll, spec, [], 0, 0)]
        results = list(mm_aggregate.process_pipeline(docs, coll.database, rest, None))
        first = batch_size_of((cmd.get("cursor") or {}).get("batchSize"), DEFAULT_FIRST_BATCH)
        return {"cursor": self.open_cursor(f"{db}.{target}", results, first, False)}

    # ---- writes

    def cmd_insert(self, db: str, cmd: Doc) -> Doc:
        coll = self.collection(db, cmd["insert"])
        store = self.store_of(db, cmd["insert"])
        ordered = cmd.get("ordered", True)
        ns = f"{db}.{cmd['insert']}"
        inserted, errors = 0, []
        for index, doc in enumerate(cmd.get("documents") or []):
            try:
                if "_id" in doc and id_key(doc["_id"]) in store._documents:
                    raise duplicate_id(doc, ns)
                coll.insert_one(doc)
                inserted += 1
            except Exception as exc:
                errors.append(write_error(index, exc))
                if ordered:
                    break
        store.create()
        return self.write_reply({"n": inserted}, errors)

    def cmd_update(self, db: str, cmd: Doc) -> Doc:
        reject_options(cmd, "let")
        coll = self.collection(db, cmd["update"])
        ordered = cmd.get("ordered", True)
        matched, modified, upserted, errors = 0, 0, [], []
        for index, statement in enumerate(cmd.get("updates") or []):
            try:
                reject_options(statement, "collation", "arrayFilters", "sort")
                raw = apply_update(
                    coll,
                    statement.get("q") or {},
                    statement.get("u"),
                    multi=bool(statement.get("multi")),
                    upsert=bool(statement.get("upsert")),
                )
            except Exception as exc:
                errors.append(write_error(index, exc))
                if ordered:
                    break
                continue
            matched += raw.get("n", 0)
            modified += raw.get("nModified", 0) or 0
            if raw.get("upserted") is not None:
                upserted.append({"index": index, "_id": raw["upserted"]})
        if upserted:
            self.store_of(db, cmd["update"]).create()
        reply: Doc = {"n": matched, "nModified": modified}
        if upserted:
            reply["upserted"] = upserted
        return self.write_reply(reply, errors)

    def cmd_delete(self, db: str, cmd: Doc) -> Doc:
        reject_options(cmd, "let")
        coll = self.collection(db, cmd["delete"])
        store = self.store_of(db, cmd["delete"])
        ordered = cmd.get("ordered", True)
        deleted, errors = 0, []
        for index, statement in enumerate(cmd.get("deletes") or []):
            try:
                reject_options(statement, "collation")
                limit = int(statement.get("limit", 0))
                docs = self.matching(coll, statement.get("q") or {}, [], 0, 1 if limit == 1 else 0)
                for doc in docs:
                    del store[id_key(doc["_id"])]
                    forget_document(store, doc)
                deleted += len(docs)
            except Exception as exc:
                errors.append(write_error(index, exc))
                if ordered:
                    break
        return self.write_reply({"n": deleted}, errors)

    @staticmethod
    def write_reply(reply: Doc, errors: list[Doc]) -> Doc:
        if errors:
            reply["writeErrors"] = errors
        return reply

    def cmd_find_and_modify(self, db: str, cmd: Doc) -> Doc:
        reject_options(cmd, "collation", "arrayFilters", "let")
        name = next(iter(cmd))
        coll = self.collection(db, cmd[name])
        remove, update = bool(cmd.get("remove")), cmd.get("update")
        if remove and update is not None:
            raise CommandError(9, "Cannot specify both an update and remove=true")
        if not remove and update is None:
            raise CommandError(9, "Either an update or remove=true must be specified")
        if remove and cmd.get("new"):
            raise CommandError(9, "Cannot specify both new=true and remove=true")
        query = dict(cmd.get("query") or {})
        found = self.matching(coll, query, sort_spec(cmd.get("sort")), 0, 1)
        old = found[0] if found else None
        project = self.renderer(coll, cmd.get("fields")) or copy.deepcopy

        def render(doc: Any) -> Any:
            value = project(doc)
            return {"_id": value.pop("_id"), **value} if "_id" in value else value

        if remove:
            if old is not None:
                store = self.store_of(db, cmd[name])
                del store[id_key(old["_id"])]
                forget_document(store, old)
            return {
                "lastErrorObject": {"n": 0 if old is None else 1},
                "value": None if old is None else render(old),
            }
        before = None if old is None else render(old)
        if old is None and not cmd.get("upsert"):
            return {"lastErrorObject": {"n": 0, "updatedExisting": False}, "value": None}
        if old is not None:
            query["_id"] = old["_id"]  # the document the sort picked; other keys kept for `$`
        raw = apply_update(coll, query, update, multi=False, upsert=bool(cmd.get("upsert")))
        last_error: Doc = {"n": 1, "updatedExisting": old is not None}
        target = old["_id"] if old is not None else raw.get("upserted")
        if old is None:
            last_error["upserted"] = target
            self.store_of(db, cmd[name]).create()
        if cmd.get("new"):
            after = self.store_of(db, cmd[name])._documents.get(id_key(target))
            return {"lastErrorObject": last_error, "value": None if after is None else render(after)}
        return {"lastErrorObject": last_error, "value": before}

    # ---- collections, databases, indexes

    def cmd_create(self, db: str, cmd: Doc) -> Doc:
        extra = set(cmd) - {"create", "$db", "lsid", "writeConcern", "comment", "$readPreference"}
        if extra:
            raise not_supported(f"create with options {sorted(extra)}")
        coll = self.collection(db, cmd["create"])
        store = self.store_of(db, cmd["create"])
        if store.is_created:
            raise CommandError(48, f"Collection {db}.{coll.name} already exists.")
        store.create()
        return {}

    def cmd_drop(self, db: str, cmd: Doc) -> Doc:
        self.collection(db, cmd["drop"])
        store = self.store_of(db, cmd["drop"])
        count = len(store.indexes) + 1 if store.is_created else 0
        store.drop()
        unique_indexes(store).clear()
        return {"ns": f"{db}.{cmd['drop']}", "nIndexesWas": count}

    def cmd_drop_database(self, db: str, cmd: Doc) -> Doc:
        db_store = self.client._store[db]
        for name in list(db_store._collections):
            db_store[name].drop()
            unique_indexes(db_store[name]).clear()
        return {"dropped": db}

    def cmd_list_databases(self, db: str, cmd: Doc) -> Doc:
        names = self.client.list_database_names()
        docs = [{"name": n, "sizeOnDisk": 0, "empty": False} for n in names]
        spec = cmd.get("filter")
        if spec:
            docs = [d for d in docs if mm_filtering.filter_applies(spec, d)]
        if cmd.get("nameOnly"):
            docs = [{"name": d["name"]} for d in docs]
        return {"databases": docs, "totalSize": 0, "totalSizeMb": 0}

    def cmd_list_collections(self, db: str, cmd: Doc) -> Doc:
        names = self.client._store[db].list_created_collection_names()
        docs = [
            {
                "name": name,
                "type": "collection",
                "options": {},
                "info": {"readOnly": False},
                "idIndex": {"v": 2, "key": {"_id": 1}, "name": "_id_"},
            }
            for name in sorted(names)
        ]
        spec = cmd.get("filter")
        if spec:
            docs = [d for d in docs if mm_filtering.filter_applies(spec, d)]
        if cmd.get("nameOnly"):
            docs = [{"name": d["name"], "type": d["type"]} for d in docs]
        first = batch_size_of((cmd.get("cursor") or {}).get("batchSize"), None)
        return {"cursor": self.open_cursor(f"{db}.$cmd.listCollections", docs, first, False)}

    def cmd_list_indexes(self, db: str, cmd: Doc) -> Doc:
        coll = self.collection(db, cmd["listIndexes"])
        store = self.store_of(db, coll.name)
        if not store.is_created:
            raise CommandError(26, f"ns does not exist: {db}.{coll.name}")
        docs = [{"v": 2, "key": {"_id": 1}, "name": "_id_"}]
        for name, spec in store.indexes.items():
            entry: Doc = {"v": 2, "key": dict(spec["key"]), "name": name}
            entry.update((k, v) for k, v in spec.items() if k != "key")
            docs.append(entry)
        first = batch_size_of((cmd.get("cursor") or {}).get("batchSize"), None)
        return {"cursor": self.open_cursor(f"{db}.{coll.name}", docs, first, False)}

    def cmd_create_indexes(self, db: str, cmd: Doc) -> Doc:
        coll = self.collection(db, cmd["createIndexes"])
        store = self.store_of(db, coll.name)
        created_collection = not store.is_created
        before = len(store.indexes) + 1
        for model in cmd.get("indexes") or []:
            self.create_index(store, f"{db}.{coll.name}", model)
        store.create()
        return {
            "createdCollectionAutomatically": bool(created_collection),
            "numIndexesBefore": before,
            "numIndexesAfter": len(store.indexes) + 1,
        }

    def create_index(self, store: Any, ns: str, model: Mapping[str, Any]) -> None:
        key, name = model.get("key"), model.get("name")
        if not isinstance(key, Mapping) or not key:
            raise CommandError(9, "index key pattern must be a non-empty document")
        if not isinstance(name, str) or not name:
            raise CommandError(9, "index name must be a non-empty string")
        reject_options(model, "collation")
        spec: Doc = {"key": list(key.items())}
        for option, value in model.items():
            if option in ("key", "name", "v", "background", "ns"):
                continue
            if option in ("unique", "sparse") and not value:
                continue
            spec[option] = value
        if name == "_id_" or list(key.items()) == [("_id", 1)]:
            return  # the _id index always exists
        existing = store.indexes.get(name)
        if existing is not None:
            if existing == spec:
                return
            raise CommandError(86, f"An existing index has the same name as the requested index: {name}")
        for other_name, other in store.indexes.items():
            if other["key"] == spec["key"]:
                raise CommandError(85, f"Index already exists with a different name: {other_name}")
        if spec.get("unique"):
            index = UniqueIndex(name, spec, store._documents)
            index.build(list(store._documents.values()), ns)
            unique_indexes(store)[name] = index
        store.create_index(name, spec)

    def cmd_drop_indexes(self, db: str, cmd: Doc) -> Doc:
        coll = self.collection(db, cmd["dropIndexes"])
        store = self.store_of(db, coll.name)
        if not store.is_created:
            raise CommandError(26, f"ns not found {db}.{coll.name}")
        was = len(store.indexes) + 1
        wanted = cmd.get("index")
        if wanted == "*":
            names = list(store.indexes)
        elif isinstance(wanted, Mapping):
            names = [n for n, s in store.indexes.items() if s["key"] == list(wanted.items())]
            if not names:
                raise CommandError(27, f"can't find index with key: {dict(wanted)}")
        else:
            names = [wanted] if isinstance(wanted, str) else list(wanted or [])
            for name in names:
                if name == "_id_":
                    raise CommandError(72, "cannot drop _id index")
                if name not in store.indexes:
                    raise CommandError(27, f"index not found with name [{name}]")
        for name in names:
            store.drop_index(name)
            unique_indexes(store).pop(name, None)
        return {"nIndexesWas": was}

    def cmd_rename_collection(self, db: str, cmd: Doc) -> Doc:
        source, target = cmd.get("renameCollection"), cmd.get("to")
        if (
            not isinstance(source, str)
            or not isinstance(target, str)
            or "." not in source
            or "." not in target
        ):
            raise CommandError(2, "renameCollection and to must be full namespaces (db.collection)")
        source_db, source_name = source.split(".", 1)
        target_db, target_name = target.split(".", 1)
        if source_db != target_db:
            raise not_supported("renaming a collection to another database")
        self.collection(target_db, target_name)
        self.client.get_database(source_db).rename_collection(
            source_name, target_name, dropTarget=bool(cmd.get("dropTarget"))
        )
        return {}


# --------------------------------------------------------------------------- wire protocol


class ProtocolError(Exception):
    """A message this server cannot parse; the connection is closed."""


def read_cstring(data: bytes, pos: int) -> tuple[str, int]:
    end = data.index(b"\x00", pos)
    return data[pos:end].decode("utf-8"), end + 1


def parse_op_msg(payload: bytes) -> tuple[int, Doc]:
    """The flags and the command of an OP_MSG, document sequences merged into the body."""
    flags = int.from_bytes(payload[:4], "little")
    if flags & 0xFFFF & ~MSG_KNOWN_FLAGS:
        raise ProtocolError(f"unknown required OP_MSG flags {flags:#x}")
    end = len(payload) - 4 if flags & MSG_CHECKSUM_PRESENT else len(payload)
    pos, body, sequences = 4, None, {}
    while pos < end:
        kind = payload[pos]
        size = INT32.unpack_from(payload, pos + 1)[0]
        if kind == 0:
            body = bson.decode(payload[pos + 1 : pos + 1 + size], CODEC)
        elif kind == 1:
            section = payload[pos + 1 : pos + 1 + size]
            identifier, start = read_cstring(section, 4)
            sequences.setdefault(identifier, []).extend(bson.decode_all(section[start:], CODEC))
        else:
            raise ProtocolError(f"unknown OP_MSG section kind {kind}")
        pos += 1 + size
    if body is None:
        raise ProtocolError("OP_MSG without a body section")
    body.update(sequences)
    return flags, body


def op_msg_reply(request_id: int, response_to: int, reply: Doc) -> bytes:
    try:
        encoded = bson.encode(reply)
    except Exception as exc:  # e.g. a value mongomock produced that BSON cannot hold
        encoded = bson.encode(error_reply(exc))
    if len(encoded) > MAX_MESSAGE_SIZE - 64:
        encoded = bson.encode(error_reply(CommandError(10334, "reply too large")))
    return (
        HEADER.pack(16 + 5 + len(encoded), request_id, response_to, OP_MSG)
        + b"\x00\x00\x00\x00\x00"
        + encoded
    )


def parse_op_query(payload: bytes) -> tuple[str, Doc]:
    namespace, pos = read_cstring(payload, 4)
    pos += 8  # numberToSkip, numberToReturn
    size = INT32.unpack_from(payload, pos)[0]
    query = bson.decode(payload[pos : pos + size], CODEC)
    if "$query" in query:
        query = query["$query"]
    return namespace, query


def op_reply(request_id: int, response_to: int, doc: Doc, flags: int = 0) -> bytes:
    encoded = bson.encode(doc)
    body = struct.pack("<iqii", flags, 0, 0, 1) + encoded
    return HEADER.pack(16 + len(body), request_id, response_to, OP_REPLY) + body


class Connection:
    """Turns request messages into reply messages for one client connection."""

    def __init__(self, backend: Backend) -> None:
        self.backend = backend
        self.connection_id = next(backend.connection_ids)
        self.reply_ids = itertools.count(1)

    def handle(self, request_id: int, opcode: int, payload: bytes) -> bytes | None:
        if opcode == OP_MSG:
            flags, cmd = parse_op_msg(payload)
            db = cmd.pop("$db", "admin")
            reply = self.backend.run_command(db, cmd, self.connection_id)
            if flags & MSG_MORE_TO_COME:
                return None
            return op_msg_reply(next(self.reply_ids), request_id, reply)
        if opcode == OP_QUERY:
            namespace, query = parse_op_query(payload)
            if not namespace.endswith(".$cmd"):
                error = {"$err": "legacy OP_QUERY reads are not supported; use OP_MSG", "code": 238}
                return op_reply(next(self.reply_ids), request_id, error, REPLY_QUERY_FAILURE)
            reply = self.backend.run_command(namespace[: -len(".$cmd")], query, self.connection_id)
            return op_reply(next(self.reply_ids), request_id, reply)
        raise ProtocolError(f"unsupported opcode {opcode}")


class RequestHandler(socketserver.BaseRequestHandler):
    """One thread per client connection: read a message, answer it, repeat until EOF."""

    server: MongoWireServer

    def handle(self) -> None:
        sock: socket.socket = self.request
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.server.track(sock, True)
        connection = Connection(self.server.backend)
        reader = sock.makefile("rb")
        try:
            self.serve(sock, reader, connection)
        except OSError as exc:
            log.debug("connection %d closed: %s", connection.connection_id, exc)
        except Exception as exc:  # a message we cannot parse: drop this connection, keep serving
            log.warning("connection %d dropped: %s: %s", connection.connection_id, type(exc).__name__, exc)
        finally:
            reader.close()
            self.server.track(sock, False)

    @staticmethod
    def serve(sock: socket.socket, reader: Any, connection: Connection) -> None:
        while True:
            header = reader.read(HEADER.size)
            if len(header) < HEADER.size:
                return  # the client went away
            length, request_id, _, opcode = HEADER.unpack(header)
            if length < HEADER.size or length > MAX_MESSAGE_SIZE:
                raise ProtocolError(f"bad message length {length}")
            payload = reader.read(length - HEADER.size)
            if len(payload) < length - HEADER.size:
                return  # the client went away mid-message
            reply = connection.handle(request_id, opcode, payload)
            if reply is not None:
                sock.sendall(reply)


class MongoWireServer(socketserver.ThreadingTCPServer):
    daemon_threads = True
    allow_reuse_address = True
    block_on_close = False

    def __init__(self, host: str, port: int) -> None:
        self.address_family = socket.AF_INET6 if ":" in host else socket.AF_INET
        self.backend = Backend()
        self.clients: set[socket.socket] = set()
        self.clients_lock = threading.Lock()
        super().__init__((host, port), RequestHandler)

    def track(self, sock: socket.socket, active: bool) -> None:
        with self.clients_lock:
            (self.clients.add if active else self.clients.discard)(sock)

    def close_clients(self) -> None:
        with self.clients_lock:
            clients = list(self.clients)
        for sock in clients:
            try:
                sock.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def handle_error(self, request: Any, client_address: Any) -> None:
        log.exception("error on connection from %s", client_address)


# --------------------------------------------------------------------------- main


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default 127.0.0.1)")
    parser.add_argument("--port", type=int, required=True, help="port to listen on; 0 picks a free one")
    parser.add_argument("--exit-with-parent", action="store_true", help="stop when the parent process dies")
    parser.add_argument("--verbose", action="store_true", help="log every command to stderr")
    return parser.parse_args(argv)


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.WARNING,
        format="mongo_test_server %(levelname)s %(message)s",
        stream=sys.stderr,
    )
    parent = os.getppid()
    stop = threading.Event()
    for signum in (signal.SIGTERM, signal.SIGINT):
        signal.signal(signum, lambda *_: stop.set())
    server = MongoWireServer(args.host, args.port)
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.1}, daemon=True)
    thread.start()
    print(f"READY {server.server_address[1]}", flush=True)
    sys.stdout = sys.stderr  # nothing else may go to the pipe the starter may have closed
    while not stop.wait(0.5):
        if args.exit_with_parent and os.getppid() != parent:
            log.warning("parent process %d is gone; stopping", parent)
            break
    server.shutdown()
    server.server_close()
    server.close_clients()
    return 0


if __name__ == "__main__":
    sys.exit(main())
