"""The catalog a remote store's front ends see: the remote catalog (MongoDB), plus the versions this
machine committed that are not published yet (the journal), plus a short-lived cache of remote answers.

- A commit goes to the journal only: it is visible here at once (state `pending`) and to other machines
  once its bytes are uploaded and its record published (writeback.py).
- Reads merge the two: a pending version is newer than what the remote catalog holds for its path,
  and paths with pending versions imply their parent directories.
- Changes of pending versions (metadata, delete, rename of a file that exists only here) change the
  journal; renames that involve published versions first wait for the pending ones to publish, then
  change the remote catalog.
- While MongoDB cannot be reached, commits are journaled without asking it (a new version then
  carries no metadata over from a published one) and publish when it answers again; reads of
  what it holds fail with Unavailable (EIO).
- Remote answers are cached (remote_answers.py): `ttl` seconds is what another machine's change may
  take to show. A commit leaves them valid (the journal answers first); a publish forgets those
  about its path, and any other change made here forgets them all.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Collection, Iterator
from dataclasses import replace
from typing import Any

from .catalog import Catalog, NewerExists, Usage
from .errors import AlreadyExists, IsADirectory, NotADirectory, NotEmpty, NotFound, Unavailable, WouldBlock
from .journal import Journal
from .paths import join, split
from .records import DIR_MODE, Dir, Entry, Stat, Version
from .remote_answers import KnownNames, RemoteAnswers
from .writeback import WriteBack

log = logging.getLogger(__name__)

#: Seconds a remote answer is reused (the bound on how late another machine's change shows here).
DEFAULT_TTL = 1.0
#: Longest wait for pending uploads before a rename that needs them published fails (EIO).
FLUSH_TIMEOUT = 120.0


class WriteBackCatalog(Catalog):
    """Remote catalog + journal of this cache folder, with a TTL cache of remote reads."""

    def __init__(self, remote: Catalog, journal: Journal, writeback: WriteBack, ttl: float = DEFAULT_TTL) -> None:
        self.remote = remote
        self.journal = journal
        self.writeback = writeback
        self._answers = RemoteAnswers(ttl)
        self._names = KnownNames(ttl)
        self._dropped: dict[str, float] = {}  # path -> when pending versions of it were deleted here
        writeback.published = self._published

    # -- the remote side, cached ---------------------------------------------------------------

    def _remote(self, method: str, path: str) -> Any:
        return self._answers.point(method, path, lambda: getattr(self.remote, method)(path))

    def _remote_page(self, method: str, path: str, after: str | None, limit: int) -> list[Any]:
        return self._answers.page(method, path, after, limit,
                                  lambda: getattr(self.remote, method)(path, after, limit))

    def _changed(self) -> None:
        """A change of the remote catalog made here: no cached answer is trusted after it."""
        self._answers.clear()
        self._names.clear()

    def _published(self, path: str) -> None:
        """A version of `path` was published and left the journal: ask MongoDB about it again."""
        self._answers.forget(path)
        self._names.published(path)

    def _list_names(self, folder: str, limit: int) -> list[str]:
        return [s.name for s in self.remote.list_stats(folder, None, limit)]

    # -- reads -------------------------------------------------------------------------------

    def claim_node(self) -> int:
        return self.remote.claim_node()

    def get_version(self, vid: int) -> Version | None:
        return self.journal.get(vid) or self.remote.get_version(vid)

    def latest(self, path: str) -> Version | None:
        return _newest(self.journal.latest(path), self._remote("latest", path))

    def history(self, path: str) -> list[Version]:
        byid = {v.id: v for v in self.remote.history(path)}
        byid.update((v.id, v) for v in self.journal.history(path))
        return [byid[i] for i in sorted(byid)]

    def deleted_since(self, path: str, since: float) -> bool:
        return self._dropped.get(path, 0.0) >= since or self.remote.deleted_since(path, since)

    def get_dir(self, path: str) -> Dir | None:
        d = self._remote("get_dir", path)
        if d is None and self.journal.any_below(path):
            return Dir(path=path, mtime=time.time())
        return d

    def lookup(self, path: str) -> Version | Dir | None:
        pending = self.journal.latest(path)  # first: a version published meanwhile is in one of the two
        return self._with_pending(path, pending, self._remote("lookup", path))

    def _with_pending(self, path: str, pending: Version | None, found: Version | Dir | None) -> Version | Dir | None:
        """What is at `path` given this machine's newest pending version and the remote answer `found`
        (asked after the journal: the other order could miss a version published in between)."""
        if pending is not None and not isinstance(found, Dir):
            return _newest(pending, found)
        if found is None and path and self.journal.any_below(path):
            return Dir(path=path, mtime=time.time())
        return found

    def _pending_children(self, path: str, after: str | None) -> dict[str, Entry]:
        """Entries of directory `path` that pending versions make: their files and implied folders."""
        out: dict[str, Entry] = {}
        cut = len(path) + 1 if path else 0
        for v in self.journal.below(path):
            rel = v.path[cut:]
            name, _, rest = rel.partition("/")
            if after is not None and name <= after:
                continue
            if rest:
                out.setdefault(name, Entry(name=name, dir=Dir(path=join(path, name), mtime=v.created_at)))
            else:
                out[name] = Entry(name=name, version=v)
        return out

    def _merged(self, path: str, after: str | None, limit: int, remote_rows: list[Entry]) -> list[Entry]:
        merged = {e.name: e for e in remote_rows}
        for name, e in self._pending_children(path, after).items():
            cur = merged.get(name)
            if cur is None or (e.version is not None and cur.version is not None and e.version.id > cur.version.id):
                merged[name] = e
        return [merged[n] for n in sorted(merged)][:limit]

    def listdir(self, path: str, after: str | None, limit: int) -> list[Entry]:
        return self._merged(path, after, limit, self._remote_page("listdir", path, after, limit))

    def list_stats(self, path: str, after: str | None, limit: int) -> list[Stat]:
        rows = self._remote_page("list_stats", path, after, limit)
        pending = self._pending_children(path, after)
        if not pending:
            return rows
        merged = {r.name: r for r in rows}
        for name, e in pending.items():  # a pending file is newer than what was published
            if e.version is not None or name not in merged:
                merged[name] = Stat.of(e)
        return [merged[n] for n in sorted(merged)][:limit]

    def iter_files(self, under: str) -> Iterator[Version]:
        pending = self.journal.below(under)
        last: Version | None = None
        for v in heapq.merge(self.remote.iter_files(under), pending, key=lambda v: (v.path, v.id)):
            if last is not None and last.path != v.path:
                yield last
            last = v  # of equal paths the later (higher id) one wins
        if last is not None:
            yield last

    # -- writes ------------------------------------------------------------------------------

    def insert_version(self, v: Version, inherit: Collection[str] = (), nowait: bool = False,
                       newest: bool = True, share: bool = False) -> Version:
        """Journal `v` (visible here at once); `share` is the uploader's, which asks before uploading."""
        if nowait:
            raise WouldBlock("a remote catalog is asked before a version is journaled")
        # No lock: adding a row changes no pending record, and reads see the journal before any
        # cached remote answer, so the remote answers stay valid (the remote catalog is unchanged).
        try:
            # a new name in a folder listed within the TTL asks nothing; else one round trip (the
            # parents' answers are usually cached)
            absent = self._names.absent(v.path, self._list_names)
            found = self._with_pending(v.path, self.journal.latest(v.path), None) if absent else self.lookup(v.path)
            if isinstance(found, Dir):
                raise IsADirectory(f"{v.path!r} is a directory")
            prev = found
            if prev is None:
                self._check_parents(v.path)
        except Unavailable as e:  # MongoDB unreachable: journal it anyway, it publishes later
            log.warning("committing %s without asking MongoDB (%s)", v.path, e)
            prev = self.journal.latest(v.path)
        if newest and prev is not None and prev.id >= v.id:
            raise NewerExists(prev.id)
        if prev is not None and inherit:
            v = replace(v, **{f: getattr(prev, f) for f in inherit})
        self.journal.add(v)
        self.writeback.notify()
        return v

    def _check_parents(self, path: str) -> None:
        """NotADirectory if an ancestor of `path` is a file (none is below a folder listed with entries
        within the TTL: a run of saves into one folder asks nothing)."""
        parent = split(path)[0]
        while parent and not self._names.is_folder(parent):
            found = self.lookup(parent)
            if isinstance(found, Dir):
                return
            if found is not None:
                raise NotADirectory(f"{parent!r} is a file, not a directory")
            parent = split(parent)[0]

    def update_version(self, vid: int, fields: dict[str, Any], now: float) -> Version:
        with self.writeback.lock:
            v = self.journal.get(vid)
            if v is not None:
                changes: dict[str, Any] = {k: tuple(val) if k == "tags" else val for k, val in fields.items()}
                v = replace(v, **changes, updated_at=now)
                if self.journal.replace(v):
                    self._changed()
                    return v
        v = self.remote.update_version(vid, fields, now)
        self._changed()
        return v

    def set_dir_attrs(self, path: str, mtime: float | None, mode: int | None) -> None:
        if self.remote.get_dir(path) is None and self.journal.any_below(path):
            self.writeback.wait_paths([path], FLUSH_TIMEOUT)  # a folder only pending files imply
        self.remote.set_dir_attrs(path, mtime, mode)
        self._changed()

    def _drop_pending(self, versions: list[Version], now: float) -> None:
        self.journal.remove([v.id for v in versions])
        for v in versions:
            self._dropped[v.path] = now
            if not self.journal.has_key(v.key):
                self.writeback.cache.drop(v.key)

    def delete_path(self, path: str, now: float) -> None:
        with self.writeback.lock:
            pending = self.journal.history(path)
            if pending:
                self._drop_pending(pending, now)
        if not pending or self.remote.latest(path) is not None:
            self.remote.delete_path(path, now)
        self._changed()

    def delete_version(self, vid: int, now: float) -> None:
        with self.writeback.lock:
            v = self.journal.get(vid)
            if v is not None:
                self._drop_pending([v], now)
        if v is None:
            self.remote.delete_version(vid, now)
        self._changed()

    def mkdir(self, path: str, now: float, parents: bool, exist_ok: bool, mode: int = DIR_MODE) -> None:
        parent = split(path)[0]
        implied = parent != "" and self.remote.get_dir(parent) is None and self.journal.any_below(parent)
        if self.journal.latest(path) is not None:
            raise AlreadyExists(f"{path!r} exists and is a file")
        if self.journal.any_below(path) and not exist_ok:
            raise AlreadyExists(f"directory {path!r} exists")
        self.remote.mkdir(path, now, parents or implied, exist_ok or self.journal.any_below(path), mode)
        self._changed()

    def rmdir(self, path: str) -> None:
        if self.journal.any_below(path):
            raise NotEmpty(f"directory {path!r} is not empty")
        self.remote.rmdir(path)
        self._changed()

    def rename_file(self, src: str, dst: str, new_id: int, now: float, replace_dst: bool) -> None:
        with self.writeback.lock:
            pending = self.journal.history(src)
            if pending and self.remote.latest(src) is None:
                self._rename_pending(pending, dst, new_id, now, replace_dst)
                self._changed()
                return
        self.writeback.wait_paths([src, dst], FLUSH_TIMEOUT)
        self.remote.rename_file(src, dst, new_id, now, replace_dst)
        self._changed()

    def _rename_pending(self, pending: list[Version], dst: str, new_id: int, now: float, replace_dst: bool) -> None:
        """Rename a file that exists only in the journal (e.g. rsync's temporary file): journal only."""
        src = pending[0].path
        if src == dst:
            return
        found = self.lookup(dst)
        if isinstance(found, Dir):
            raise IsADirectory(f"{dst!r} is a directory")
        parent = split(dst)[0]
        if parent and not isinstance(self.lookup(parent), Dir):
            raise NotFound(f"no directory {parent!r}") if self.lookup(parent) is None else NotADirectory(
                f"{parent!r} is a file, not a directory")
        if found is None:
            for v in pending:
                self.journal.replace(replace(v, path=dst))
        else:
            if not replace_dst:
                raise AlreadyExists(f"{dst!r} exists")
            head = pending[-1]
            self.journal.move(head, replace(head, id=new_id, path=dst, created_at=now, updated_at=now))
            self._drop_pending(pending[:-1], now)
        self._dropped[src] = now

    def rename_dir(self, src: str, dst: str, now: float, replace_dst: bool) -> None:
        self.writeback.wait_paths([src, dst], FLUSH_TIMEOUT)
        self.remote.rename_dir(src, dst, now, replace_dst)
        self._changed()

    def iter_versions(self, under: str) -> Iterator[Version]:
        """Published versions only: pending ones are newer than any of them and never expire, so a
        policy counting its newest N from the published ones keeps at least as much as it says."""
        return self.remote.iter_versions(under)

    def expire_versions(self, vids: list[int], now: float) -> list[Version]:
        gone = self.remote.expire_versions([vid for vid in vids if self.journal.get(vid) is None], now)
        self._changed()
        return gone

    def dead_keys(self) -> list[str]:
        """The remote catalog's dead keys, less any a pending version still needs (its upload reads them)."""
        pending = self.journal.keys()
        return [k for k in self.remote.dead_keys() if k not in pending]

    def forget_keys(self, keys: list[str]) -> None:
        self.remote.forget_keys(keys)
        self._dropped.clear()  # gc forgets deletions, and with them when they happened

    def claim_blob(self, sha256: str, size: int) -> str | None:
        return self.remote.claim_blob(sha256, size)

    def release_blob(self, key: str) -> None:
        self.remote.release_blob(key)

    def register_blob(self, v: Version) -> None:
        self.remote.register_blob(v)

    def usage(self, under: str) -> Usage:
        """Published versions only (pending ones: `status()["pending"]`)."""
        return self.remote.usage(under)

    def all_keys(self) -> set[str]:
        """Keys of published versions and of those pending here (other machines' pending ones are unknown)."""
        return self.remote.all_keys() | self.journal.keys()

    def live_versions(self) -> Iterator[Version]:
        """Published live versions only: pending ones are the journal's (see `Journal.stuck`)."""
        return self.remote.live_versions()

    def check(self) -> list[str]:
        return self.remote.check()

    def repair(self) -> int:
        return self.remote.repair()

    def close(self) -> None:
        """Stop the uploaders (pending versions stay journaled), then release the journal and MongoDB."""
        self.writeback.close()
        self.journal.close()
        self.remote.close()


def _newest(a: Version | None, b: Version | Dir | None) -> Version | None:
    if not isinstance(b, Version):
        return a
    if a is None:
        return b
    return a if a.id >= b.id else b
