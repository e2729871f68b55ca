"""fsck of a remote store: the checks of fsck.py against S3 (through `S3Blobs`) and MongoDB, plus this
machine's cache folder, unfinished multipart uploads and the upload journal.

Only this machine's journal is visible: another machine's upload in progress, or uploaded and waiting
for MongoDB to come back to be published, looks like an orphan object from here. Hence REMOTE_MIN_AGE.
"""

from __future__ import annotations

import time
from typing import TYPE_CHECKING

from .fsck import LOCAL_MIN_AGE, ProgressBar, Report, age, check_bytes, check_staging
from .staging import Staging

if TYPE_CHECKING:
    from .remote_blobs import RemoteBlobs
    from .store import Store

#: Objects and multipart uploads younger than this are left alone: another machine may still publish
#: them (its uploads wait out a MongoDB outage), and a week outlasts any outage worth waiting out.
REMOTE_MIN_AGE = 7 * 86400.0
#: A pending upload that failed this often, or was committed this long ago, is reported as stuck.
STUCK_ATTEMPTS = 5
STUCK_AGE = 3600.0
#: How long repair waits for the stuck uploads it retries.
RETRY_WAIT = 60.0


def check(store: Store, report: Report, verify: bool, repair: bool, min_age: float,
          progress_bar: ProgressBar) -> None:
    """Every remote check; the caller has checked the catalog and staging."""
    assert store.writeback is not None
    blobs: RemoteBlobs = store.blobs  # type: ignore[assignment]
    journal = store.writeback.journal
    pending = journal.keys()
    check_bytes(store.catalog, blobs.s3, pending, report, verify, repair, min_age, progress_bar)
    check_staging(blobs.cache.leftover_partials(LOCAL_MIN_AGE), repair, report)
    # cache files: pinned ones are written before their journal row, so the local safety age applies
    for f in blobs.cache.unowned(store.catalog.all_keys() | journal.keys(), min(min_age, LOCAL_MIN_AGE)):
        p = report.add("orphan", f, "a cache file no version or pending upload names")
        if repair:
            Staging.remove(f)
            p.repaired = True
    now = time.time()
    for name, upload_id, started in blobs.s3.multipart_uploads(min_age):
        p = report.add("multipart", name, f"unfinished multipart upload {upload_id}, started {age(now - started)} ago")
        if repair:
            blobs.s3.abort_upload(name, upload_id)
            p.repaired = True
    check_journal(store, report, repair)


def check_journal(store: Store, report: Report, repair: bool) -> None:
    """Pending uploads that keep failing or wait too long; repair retries them (for RETRY_WAIT at most,
    with this process's uploaders) and reports those that are still pending."""
    assert store.writeback is not None
    journal = store.writeback.journal
    stuck = journal.stuck(STUCK_ATTEMPTS, STUCK_AGE)
    found = []
    for v, attempts, error in stuck:
        found.append((v, report.add("stuck", v.path, f"version {v.id}: pending upload, {attempts} failed "
                                    f"attempts, last error: {error or 'none'}")))
        if repair:
            journal.retry(v.id)
    if repair and found:
        store.writeback.add_workers(4)  # fsck opens the store without uploaders, so it sees what is stuck
        store.writeback.notify()
        store.writeback.wait(lambda: all(journal.get(v.id) is None for v, _ in found), RETRY_WAIT)
        for v, p in found:
            p.repaired = journal.get(v.id) is None
