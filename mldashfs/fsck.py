"""Checking a store (`mldashfs fsck`): what a crash, a lost disk or a bug left behind, found by comparing
the catalog with the bytes the backend holds; with `repair`, fixed where fixing is safe.

What is checked (remote-only checks: fsck_remote.py):
- the catalog's own invariants (`Catalog.check`; fixed by `Catalog.repair`);
- every live version has its bytes, of its size (`--verify`: of its SHA-256). Missing or corrupt bytes
  are reported, never repaired: hiding the version would lose the record that says what to restore;
- bytes no version row names (orphans: the blob step 2 of a commit leaves when the process dies before
  step 3, see store.py). Removed by repair only once older than `min_age`: a commit in flight writes
  its row moments after its blob, and its blob is never older than that;
- staging files a crash left (their process is gone, or is younger than the file). Removed by repair.

Invariant: repair never removes bytes a live version or a pending upload names, nor an orphan younger
than `min_age`; it is safe while a mount or an SDK process uses the store.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterator
from contextlib import AbstractContextManager
from dataclasses import asdict, dataclass, field
from typing import Any, Protocol

from .blobs import StoredBlob
from .catalog import Catalog
from .errors import ChecksumMismatch, NotFound
from .records import Version
from .staging import Staging
from .store import Store

#: Orphans (local blobs, cache files) younger than this are left alone: a commit in flight writes its
#: row within moments of its bytes, so an hour is far beyond any commit and short enough to reclaim soon.
LOCAL_MIN_AGE = 3600.0
#: Exit statuses of `mldashfs fsck`.
CLEAN, REPAIRED, DAMAGED, UNUSABLE = 0, 1, 2, 3

#: `progress_bar(total bytes, label)`: a context giving a per-chunk callback, or None (no terminal).
ProgressBar = Callable[[int, str], AbstractContextManager[Callable[[int], None] | None]]


class CheckedBlobs(Protocol):
    """What fsck asks of a blob backend (LocalBlobs, S3Blobs)."""

    def list_keys(self) -> Iterator[StoredBlob]: ...
    def size_of(self, key: str) -> int | None: ...
    def sha256_of(self, key: str, progress: Callable[[int], None] | None = None) -> str: ...
    def delete(self, key: str) -> int: ...


@dataclass
class Problem:
    """One finding: `kind` is catalog, missing, corrupt, orphan, staging, multipart or stuck."""

    kind: str
    subject: str  # a path, blob key, file or object name
    detail: str
    repaired: bool = False


@dataclass
class Report:
    """What one fsck found and did."""

    store: str
    problems: list[Problem] = field(default_factory=list)
    checked: dict[str, int] = field(default_factory=lambda: {"versions": 0, "blobs": 0, "verified_bytes": 0,
                                                             "young_orphans": 0})

    def add(self, kind: str, subject: str, detail: str) -> Problem:
        p = Problem(kind, subject, detail)
        self.problems.append(p)
        return p

    @property
    def status(self) -> int:
        """CLEAN, REPAIRED (everything found was fixed) or DAMAGED (something is left)."""
        if not self.problems:
            return CLEAN
        return REPAIRED if all(p.repaired for p in self.problems) else DAMAGED

    def as_json(self) -> dict[str, Any]:
        return {"store": self.store, "status": self.status, "checked": self.checked,
                "problems": [asdict(p) for p in self.problems]}


def no_progress(total: int, label: str) -> AbstractContextManager[None]:
    return contextlib.nullcontext()


def fsck(store: Store, *, verify: bool = False, repair: bool = False, min_age: float | None = None,
         progress_bar: ProgressBar = no_progress) -> Report:
    """Check `store` (and with `repair` fix what is safe to fix); see the module docstring."""
    from . import fsck_remote

    report = Report(store.location)
    check_catalog(store.catalog, repair, report)
    if store.writeback is not None:
        fsck_remote.check(store, report, verify, repair, fsck_remote.REMOTE_MIN_AGE if min_age is None else min_age,
                          progress_bar)
    else:
        blobs: Any = store.blobs
        check_bytes(store.catalog, blobs, set(), report, verify, repair,
                    LOCAL_MIN_AGE if min_age is None else min_age, progress_bar)
    check_staging(store.staging.leftovers(LOCAL_MIN_AGE), repair, report)
    return report


def check_catalog(catalog: Catalog, repair: bool, report: Report) -> None:
    """The catalog's invariants; repair runs the catalog's own idempotent fixes."""
    found = catalog.check()
    left = set(found)
    if found and repair:
        catalog.repair()
        left = set(catalog.check())
    for line in found:
        report.add("catalog", line.split(": ", 1)[-1], line).repaired = line not in left


def check_bytes(catalog: Catalog, blobs: CheckedBlobs, pending: set[str], report: Report, verify: bool,
                repair: bool, min_age: float, progress_bar: ProgressBar) -> None:
    """Missing, corrupt and orphan bytes; `pending` are keys whose bytes still wait in a cache for upload.

    Order matters for a store in use: blobs are listed first, then the keys rows name, so a blob committed
    meanwhile has its row read (no false orphan); a key missing from the listing is confirmed by asking
    for it alone (no false missing bytes for a version committed after the listing)."""
    listing = {b.key: b for b in blobs.list_keys()}
    owned = catalog.all_keys() | pending
    to_verify: list[Version] = []
    seen: set[str] = set()
    for v in catalog.live_versions():
        report.checked["versions"] += 1
        if v.key in seen or v.key in pending:  # a rename shares its source's bytes
            continue
        seen.add(v.key)
        size = listing[v.key].size if v.key in listing else blobs.size_of(v.key)
        if size is None:
            report.add("missing", v.path, f"version {v.id}: no bytes at {v.key}")
        elif size != v.size:
            report.add("corrupt", v.path, f"version {v.id}: {size} bytes at {v.key}, {v.size} recorded")
        elif verify:
            to_verify.append(v)
    report.checked["blobs"] = len(listing)
    if to_verify:
        verify_versions(catalog, blobs, to_verify, report, progress_bar)
    now = time.time()
    for b in listing.values():
        if b.key in owned:
            continue
        if now - b.mtime < min_age:
            report.checked["young_orphans"] += 1  # maybe a commit in flight: not a finding
            continue
        p = report.add("orphan", b.key, f"{b.size} bytes no version names, written {age(now - b.mtime)} ago")
        if repair:
            blobs.delete(b.key)
            p.repaired = True


def verify_versions(catalog: Catalog, blobs: CheckedBlobs, versions: list[Version], report: Report,
                    progress_bar: ProgressBar) -> None:
    """Read every byte of each version and compare its SHA-256 with the recorded one."""
    with progress_bar(sum(v.size for v in versions), "verifying") as progress:
        for v in versions:
            try:
                digest = blobs.sha256_of(v.key, progress)
            except NotFound:
                current = catalog.get_version(v.id)
                if current is not None and not current.deleted:  # else gc reclaimed it meanwhile
                    report.add("missing", v.path, f"version {v.id}: no bytes at {v.key}")
                continue
            except ChecksumMismatch as e:  # S3's own checksum of the transfer caught it first
                report.add("corrupt", v.path, f"version {v.id}: {e}")
                continue
            report.checked["verified_bytes"] += v.size
            if digest != v.sha256:
                report.add("corrupt", v.path, f"version {v.id}: the bytes at {v.key} have SHA-256 {digest}, "
                           f"not {v.sha256} as recorded")


def check_staging(files: list[str], repair: bool, report: Report) -> None:
    """Files a crash left in a private area (staging, partial downloads): nothing will ever use them."""
    for f in files:
        p = report.add("staging", f, "left by a crash: its process is gone")
        if repair:
            Staging.remove(f)
            p.repaired = True


def age(seconds: float) -> str:
    """`3 d`, `5 h`, `12 min`, `40 s`: how long ago, roughly."""
    for unit, n in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= n:
            return f"{seconds / n:.0f} {unit}"
    return f"{max(0, seconds):.0f} s"
