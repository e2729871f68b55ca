"""The upload journal's claims: uploaders take the oldest free version, skip those a live process holds
or that wait for a retry, and take over those of a dead process."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

from mldashfs.journal import Journal
from mldashfs.records import Version


def version(i: int) -> Version:
    return Version(id=1000 + i, path=f"e/x/f{i}", size=2, sha256="a" * 64, content_type="application/octet-stream",
                   description=None, tags=(), metadata={}, created_at=0.0, updated_at=0.0, mtime=0.0, mode=0o644,
                   state="pending", key=f"e/x/{1000 + i}/f{i}")


def test_claims_take_the_oldest_free_version_once(tmp_path: Path) -> None:
    j = Journal(str(tmp_path), "s3://bucket/team")
    for i in range(5):
        j.add(version(i))
    me = os.getpid()
    got = [j.claim(f"{me}:{t}", {}) for t in range(3)]
    assert [v.id for v in got if v] == [1000, 1001, 1002]  # held by live workers: not taken again
    assert j.claim(f"{me}:9", {1003: time.monotonic() + 60}).id == 1004  # 1003 waits for its retry
    assert j.claim(f"{me}:9", {1003: time.monotonic() + 60}) is None
    j.release(1001, "S3: 503")
    assert j.claim(f"{me}:9", {}).id == 1001  # given back after a failure: free again
    assert j.claim(f"{me}:9", {}).id == 1003


def test_a_dead_processs_claims_are_taken_over(tmp_path: Path) -> None:
    j = Journal(str(tmp_path), "s3://bucket/team")
    for i in range(2):
        j.add(version(i))
    dead = subprocess.run([sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True,
                          text=True, check=True).stdout.strip()
    assert j.claim(f"{dead}:1", {}).id == 1000  # (as if that process had claimed it before it died)
    assert [j.claim(f"{os.getpid()}:{t}", {}).id for t in range(2)] == [1000, 1001]
    assert j.claim(f"{os.getpid()}:3", {}) is None
