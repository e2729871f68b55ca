"""Snowflake node leases in MongoDB: a node number is unique among the live processes of all machines
sharing one catalog database.

A lease is one document `nodes/{_id: node}` naming its holder (`owner`, a random token) and when it lapses
(`expires_at`). Taking a node is one atomic write that succeeds only if the node is free: an insert of
a node nobody ever held, or an update conditioned on `expires_at` being past. A daemon thread renews the
lease every `renew_every` seconds (update conditioned on `owner`), `release` deletes it.

If renewal fails for longer than the lease lasts, another process may take the node. The Store's id
generator keeps the node it was given (the catalog cannot change it), so the catalog refuses instead:
`check(id)` raises Unavailable for an id carrying this lease's node once the lease is not known to be
valid for another `SAFETY` seconds. That state ends by itself if a later renewal finds the document
still naming this owner (then nobody can have taken the node in between); if the node was taken, the
refusal is permanent and the store must be reopened (which claims a fresh node).

Times are the holders' wall clocks: machines must agree within `SAFETY` seconds (NTP does much better;
snowflake ids assume synchronised clocks anyway).
"""

from __future__ import annotations

import os
import random
import secrets
import socket
import threading
import time
from collections.abc import Callable

from pymongo.collection import Collection
from pymongo.errors import DuplicateKeyError, PyMongoError

from .errors import Unavailable
from .ids import MAX_NODE, node_of

#: Seconds a lease lasts without renewal, and between renewals.
LEASE_TTL = 60.0
RENEW_EVERY = 20.0
#: Seconds of validity a lease must have left for this process to use its node (covers clock skew).
SAFETY = 5.0
#: Seconds between renewal attempts after one failed.
RETRY_EVERY = 2.0


class NodeLease:
    """The node lease of one catalog object (one process); thread-safe."""

    def __init__(self, nodes: Callable[[], Collection], where: str, ttl: float = LEASE_TTL,
                 renew_every: float = RENEW_EVERY) -> None:
        self._nodes = nodes
        self._where = where
        self._ttl = ttl
        self._renew_every = renew_every
        self._lock = threading.Lock()
        self._node: int | None = None
        self._token = ""
        self._valid_until = 0.0
        self._lost = False
        self._pid = os.getpid()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    @property
    def node(self) -> int | None:
        return self._node

    def claim(self) -> int:
        """Take a free node (random among the free ones), start renewing it, and return it."""
        self.release()
        coll = self._nodes()
        taken = {d["_id"] for d in coll.find({"expires_at": {"$gt": time.time()}}, {"_id": 1})}
        free = [n for n in range(MAX_NODE + 1) if n not in taken]
        random.shuffle(free)
        for node in free:
            token = secrets.token_hex(12)
            until = self._take(coll, node, token)
            if until is not None:
                with self._lock:
                    self._node, self._token, self._valid_until, self._lost = node, token, until, False
                self._start_renewal()
                return node
        raise Unavailable(f"all {MAX_NODE + 1} snowflake nodes of the MongoDB catalog at {self._where} are leased")

    def _take(self, coll: Collection, node: int, token: str) -> float | None:
        """One atomic attempt at `node`: returns the lease's end, or None if someone holds it."""
        now = time.time()
        doc = {"owner": token, "expires_at": now + self._ttl, "host": socket.gethostname(), "pid": os.getpid(),
               "claimed_at": now}
        try:
            coll.insert_one({"_id": node, **doc})
            return now + self._ttl
        except DuplicateKeyError:
            pass
        got = coll.find_one_and_update({"_id": node, "expires_at": {"$lt": now}}, {"$set": doc})
        return None if got is None else now + self._ttl

    def check(self, vid: int) -> None:
        """Raise Unavailable if `vid` carries this process's node and the lease may have lapsed."""
        if self._node is None or node_of(vid) != self._node:
            return
        if self._lost:
            raise Unavailable(
                f"snowflake node {self._node} was taken over by another process (this one could not renew its "
                f"lease at {self._where} in time); reopen the store")
        left = self._valid_until - time.time()
        if left < SAFETY:
            raise Unavailable(
                f"cannot renew the lease of snowflake node {self._node} at MongoDB {self._where}: "
                f"it {'lapsed' if left < 0 else 'is about to lapse'}, so its ids are not safe to use")

    def renew(self) -> bool:
        """Extend the lease once; False if it failed (network) or was lost (someone else holds it)."""
        with self._lock:
            node, token = self._node, self._token
        if node is None or self._lost:
            return False
        start = time.time()
        try:
            r = self._nodes().update_one({"_id": node, "owner": token}, {"$set": {"expires_at": start + self._ttl}})
        except PyMongoError:
            return False
        with self._lock:
            if token != self._token:
                return False
            if r.matched_count == 1:
                self._valid_until = start + self._ttl
                return True
            self._lost = True
            return False

    def _start_renewal(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._renew_loop, args=(self._stop,), name="mldashfs-node-lease",
                                        daemon=True)
        self._thread.start()

    def _renew_loop(self, stop: threading.Event) -> None:
        wait = self._renew_every
        while not stop.wait(wait):
            ok = self.renew()
            if self._lost:
                return
            wait = self._renew_every if ok else min(RETRY_EVERY, self._renew_every)

    def release(self) -> None:
        """Stop renewing and free the node (a forked child forgets its parent's lease without freeing it)."""
        self._stop.set()
        thread, self._thread = self._thread, None
        if thread is not None and thread is not threading.current_thread() and self._pid == os.getpid():
            thread.join(timeout=5)
        with self._lock:
            node, token, mine = self._node, self._token, self._pid == os.getpid()
            self._node, self._token, self._valid_until, self._pid = None, "", 0.0, os.getpid()
        if node is not None and mine and not self._lost:
            try:
                self._nodes().delete_one({"_id": node, "owner": token})
            except PyMongoError:
                pass  # the lease lapses by itself
