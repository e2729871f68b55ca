"""`mldashfs fsck` on remote stores: S3 objects, multipart uploads and the upload journal."""

from __future__ import annotations

import json
import subprocess
import sys
import time

from mldashfs.store import Store
from tests.remote_stores import RemoteStore

EXP = "alice/cv/resnet"


def fsck(remote: RemoteStore, *args: str, rc: int) -> dict:
    """`mldashfs fsck --json ARGS` as machine "a"; its report."""
    done = subprocess.run([sys.executable, "-m", "mldashfs.cli", "fsck", "--json", *args, *remote.cli_options("a")],
                          capture_output=True, text=True, timeout=300)
    assert done.returncode == rc, f"exit {done.returncode}, stdout={done.stdout!r} stderr={done.stderr!r}"
    return json.loads(done.stdout)


def kinds(report: dict) -> list[tuple[str, str, bool]]:
    return sorted((p["kind"], p["subject"], p["repaired"]) for p in report["problems"])


def published(remote: RemoteStore) -> Store:
    """The store as machine "a", with two files uploaded and published."""
    s = remote.open("a")
    s.put_bytes(f"{EXP}/models/best.pt", b"weights" * 1000)
    s.put_bytes(f"{EXP}/plots/loss.png", b"png")
    assert s.wait_uploads(timeout=60)
    return s


def test_clean_remote_store_is_clean(remote_store: RemoteStore) -> None:
    published(remote_store).close()
    r = fsck(remote_store, "--verify", rc=0)
    assert r["checked"]["versions"] == 2 and r["checked"]["verified_bytes"] == 7003


def test_corrupt_object_is_found_by_verify(remote_store: RemoteStore) -> None:
    s = published(remote_store)
    v = s.latest(f"{EXP}/models/best.pt")
    remote_store.server.corrupt(remote_store.bucket, s.blobs.s3.name(v.key), offset=100)  # type: ignore[attr-defined]
    s.close()
    fsck(remote_store, rc=0)  # size and metadata still agree: only reading the bytes tells
    assert kinds(fsck(remote_store, "--verify", rc=2)) == [("corrupt", f"{EXP}/models/best.pt", False)]


def test_missing_and_orphan_objects(remote_store: RemoteStore) -> None:
    s = published(remote_store)
    v = s.latest(f"{EXP}/plots/loss.png")
    s3 = s.blobs.s3  # type: ignore[attr-defined]
    s3.client.delete_object(Bucket=s3.bucket, Key=s3.name(v.key))
    orphan = f"{EXP}/files/models/917000000000000000/best.pt"  # uploaded, never published
    s3.upload_bytes(orphan, b"orphan", "0" * 64)
    s.close()
    r = fsck(remote_store, rc=2)  # a young orphan may be another machine's upload in progress
    assert kinds(r) == [("missing", f"{EXP}/plots/loss.png", False)] and r["checked"]["young_orphans"] == 1
    r = fsck(remote_store, "--repair", "--min-age", "0", rc=2)  # missing bytes stay reported
    assert kinds(r) == [("missing", f"{EXP}/plots/loss.png", False), ("orphan", orphan, True)]
    with remote_store.open("b") as other:
        assert other.blobs.s3.size_of(orphan) is None  # type: ignore[attr-defined]
        assert other.read_bytes(other.latest(f"{EXP}/models/best.pt")) == b"weights" * 1000


def test_stale_multipart_upload_is_aborted(remote_store: RemoteStore) -> None:
    s = published(remote_store)
    s3 = s.blobs.s3  # type: ignore[attr-defined]
    name = s3.name(f"{EXP}/files/models/917000000000000001/big.pt")
    upload = s3.client.create_multipart_upload(Bucket=s3.bucket, Key=name)["UploadId"]
    s.close()
    fsck(remote_store, rc=0)  # younger than the safety age: maybe an upload in progress
    assert kinds(fsck(remote_store, "--min-age", "0", rc=2)) == [("multipart", name, False)]
    assert kinds(fsck(remote_store, "--repair", "--min-age", "0", rc=1)) == [("multipart", name, True)]
    with remote_store.open("b") as other:
        uploads = other.blobs.s3.client.list_multipart_uploads(Bucket=s3.bucket).get("Uploads", [])  # type: ignore[attr-defined]
        assert upload not in [u["UploadId"] for u in uploads]
    fsck(remote_store, "--min-age", "0", rc=0)


def test_stuck_upload_is_reported_and_retried(remote_store: RemoteStore) -> None:
    s = remote_store.open("a", upload_workers=0)  # nothing uploads: the version stays pending
    v = s.put_bytes(f"{EXP}/models/best.pt", b"weights")
    journal = s.writeback.journal  # type: ignore[union-attr]
    for _ in range(5):
        journal.release(v.id, "Unavailable: S3 answered 503")
    s.close()
    r = fsck(remote_store, rc=2)
    assert kinds(r) == [("stuck", f"{EXP}/models/best.pt", False)]
    assert "5 failed attempts" in r["problems"][0]["detail"] and "503" in r["problems"][0]["detail"]
    assert kinds(fsck(remote_store, "--repair", rc=1)) == [("stuck", f"{EXP}/models/best.pt", True)]
    assert fsck(remote_store, "--verify", rc=0)["checked"]["verified_bytes"] == 7


def test_a_claim_a_dead_sharer_left_keeps_the_blob_until_fsck_repair_clears_it(remote_store: RemoteStore) -> None:
    s = published(remote_store)
    v = s.latest(f"{EXP}/models/best.pt")
    cat = s.catalog.remote  # type: ignore[attr-defined]
    assert cat.claim_blob(v.sha256, v.size) == v.key  # a sharer claims the blob, then is killed
    cat.coll("blobs").update_one({"_id": v.key}, {"$set": {"claimed_at": time.time() - 7200}})
    s.delete(f"{EXP}/models/best.pt")
    assert s.gc() == 0  # the claim keeps the blob: the sharer's version may be on its way
    s.close()
    assert kinds(fsck(remote_store, rc=2)) == [("catalog", v.key, False)]
    assert kinds(fsck(remote_store, "--repair", rc=1)) == [("catalog", v.key, True)]
    s = remote_store.open("a")
    assert s.gc() == v.size
    assert s.usage().as_dict() == {"versions": 1, "logical": 3, "blobs": 1, "stored": 3, "reclaimable": 0}
