"""64-bit snowflake ids: 41 bits of milliseconds since EPOCH_MS, 10 bits of node, 12 bits of sequence.

Ids are monotonic within a process even when the wall clock steps back (the generator keeps
using its last millisecond and borrows the next one when the sequence runs out). Uniqueness
across processes comes from the node: each process leases a node number from the store it
writes to (see `Catalog.claim_node`), so two live writers of one store never share a node.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable

EPOCH_MS = 1_577_836_800_000  # 2020-01-01T00:00:00Z
NODE_BITS = 10
SEQ_BITS = 12
MAX_NODE = (1 << NODE_BITS) - 1
MAX_SEQ = (1 << SEQ_BITS) - 1


#: Ids are 63-bit non-negative numbers (they fit SQLite's signed 64-bit integers); nothing at or
#: above this names a version.
ID_LIMIT = 1 << 63


def parse_id(vid: int | str) -> int | None:
    """The id `vid` names (an int, or its decimal digits), or None when it cannot name a version."""
    if isinstance(vid, str):
        if not (vid.isascii() and vid.isdigit()):
            return None
        vid = int(vid)
    if not isinstance(vid, int) or isinstance(vid, bool) or not 0 <= vid < ID_LIMIT:
        return None
    return vid


def _now_ms() -> int:
    return time.time_ns() // 1_000_000


class Snowflake:
    """Thread-safe id generator for one node; re-leases its node after a fork (a child must not share it)."""

    def __init__(self, claim_node: Callable[[], int], clock: Callable[[], int] = _now_ms) -> None:
        self._claim_node = claim_node
        self._clock = clock
        self._lock = threading.Lock()
        self._pid = os.getpid()
        self._node = self._checked(claim_node())
        self._last_ms = -1
        self._seq = 0

    @staticmethod
    def _checked(node: int) -> int:
        if not 0 <= node <= MAX_NODE:
            raise ValueError(f"snowflake node must be in 0..{MAX_NODE}, got {node}")
        return node

    @property
    def node(self) -> int:
        return self._node

    def next(self, after: int = -1) -> int:
        """The next id: strictly greater than every id this generator returned before, and than
        `after` (another node's id: a version must be newer than the newest it replaces, even when
        both were made in the same millisecond)."""
        with self._lock:
            self._last_ms = max(self._last_ms, after >> (NODE_BITS + SEQ_BITS))
            if os.getpid() != self._pid:  # forked child: take a node of its own
                self._pid = os.getpid()
                self._node = self._checked(self._claim_node())
            now = self._clock() - EPOCH_MS
            if now > self._last_ms:
                self._last_ms = now
                self._seq = 0
            else:  # same millisecond, or the clock stepped back: keep counting on the last one
                self._seq += 1
                if self._seq > MAX_SEQ:
                    self._last_ms += 1
                    self._seq = 0
            return (self._last_ms << (NODE_BITS + SEQ_BITS)) | (self._node << SEQ_BITS) | self._seq


def timestamp_ms(snowflake: int) -> int:
    """Wall-clock milliseconds (Unix epoch) encoded in an id."""
    return (snowflake >> (NODE_BITS + SEQ_BITS)) + EPOCH_MS


def node_of(snowflake: int) -> int:
    return (snowflake >> SEQ_BITS) & MAX_NODE
