"""Write-back of a remote store, through the real servers: what each machine sees when, crashes,
faults, and the bytes and records that land in S3 and MongoDB."""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import textwrap
import threading
import time

import pytest

from mldashfs import errors
from mldashfs.records import Version
from mldashfs.store import Store
from tests.remote_stores import RemoteStore, with_database
from tests.servers.mongo import MONGO_URI_ENV, start_mongo_server
from tests.servers.s3 import s3_client

E = "alice/cv/resnet"


def objects(remote: RemoteStore) -> dict[str, dict[str, str]]:
    """Every object of the test bucket: key -> its user metadata."""
    c = s3_client(remote.endpoint)
    out = {}
    for page in c.get_paginator("list_objects_v2").paginate(Bucket=remote.bucket):
        for o in page.get("Contents", []):
            out[o["Key"]] = c.head_object(Bucket=remote.bucket, Key=o["Key"])["Metadata"]
    return out


def test_a_save_is_pending_here_then_uploaded_and_seen_by_another_machine(remote_store: RemoteStore) -> None:
    a, b = remote_store.open("a"), remote_store.open("b")
    remote_store.server.fault(503, seconds=1.5)  # hold the upload back, so "pending" can be seen
    v = a.put_bytes(f"{E}/models/best.pt", b"weights", tags=["best"], metadata={"epoch": 3})
    assert v.state == "pending" and a.latest(f"{E}/models/best.pt").id == v.id
    assert b.latest_or_none(f"{E}/models/best.pt") is None  # not published yet
    assert a.wait_uploads(timeout=60)
    seen = b.latest(f"{E}/models/best.pt")
    assert (seen.id, seen.sha256, seen.state, seen.tags, seen.metadata) == (v.id, v.sha256, "uploaded", ("best",),
                                                                           {"epoch": 3})
    assert b.read_bytes(seen) == b"weights"
    key = f"team/files/{E}/models/{v.id}/best.pt"
    assert objects(remote_store)[key]["sha256"] == v.sha256


def test_reads_of_another_machine_verify_and_fill_its_cache(remote_store: RemoteStore) -> None:
    a, b = remote_store.open("a"), remote_store.open("b")
    data = os.urandom(20 << 20)  # several ranged GETs
    v = a.put_bytes(f"{E}/data/big.bin", data)
    assert a.wait_uploads(timeout=60)
    assert b.local_file(v) is None
    with b.open_version(v) as f:
        assert f.read(4096) == data[:4096]  # the first bytes, before the rest is fetched
        f.seek(len(data) - 10)
        assert f.read() == data[-10:]
    local = b.local_file(v)
    assert local is not None and hashlib.sha256(open(local, "rb").read()).hexdigest() == v.sha256


def test_a_corrupted_object_fails_the_read_and_is_not_cached(remote_store: RemoteStore) -> None:
    a, b = remote_store.open("a"), remote_store.open("b")
    v = a.put_bytes(f"{E}/x.bin", os.urandom(1 << 20))
    assert a.wait_uploads(timeout=60)
    remote_store.server.corrupt(remote_store.bucket, f"team/files/{E}/{v.id}/x.bin", offset=1000)
    with pytest.raises(errors.ChecksumMismatch):
        b.read_bytes(v)
    assert b.local_file(v) is None
    assert a.read_bytes(v) != b""  # the writer's own cached copy is intact


def test_close_succeeds_while_s3_is_down_and_the_upload_follows(remote_store: RemoteStore) -> None:
    a, b = remote_store.open("a"), remote_store.open("b")
    remote_store.server.fault(500, seconds=4)
    vs = [a.put_bytes(f"{E}/f{i}.txt", b"x" * i) for i in range(5)]
    assert [a.read_bytes(v) for v in vs] == [b"x" * i for i in range(5)]  # from the cache meanwhile
    assert a.status()["pending"]["versions"] >= 1
    assert a.wait_uploads(timeout=60)
    assert [b.latest(f"{E}/f{i}.txt").sha256 for i in range(5)] == [v.sha256 for v in vs]
    assert a.status()["pending"]["versions"] == 0


def test_pending_files_renamed_and_deleted_publish_as_the_user_left_them(remote_store: RemoteStore) -> None:
    a, b = remote_store.open("a"), remote_store.open("b")
    remote_store.server.fault(503, seconds=2)
    a.put_bytes(f"{E}/.tmp.ckpt", b"new")  # rsync's way: a temporary name, then a rename
    a.rename(f"{E}/.tmp.ckpt", f"{E}/ckpt.pt")
    gone = a.put_bytes(f"{E}/scratch.bin", b"scratch")
    a.delete(f"{E}/scratch.bin")
    a.update(a.latest(f"{E}/ckpt.pt").id, tags=["final"])
    assert [e.name for e in a.listdir(E)] == ["ckpt.pt"]
    assert a.wait_uploads(timeout=60)
    assert [e.name for e in b.listdir(E)] == ["ckpt.pt"]
    assert b.latest(f"{E}/ckpt.pt").tags == ("final",)
    assert b.read_bytes(b.latest(f"{E}/ckpt.pt")) == b"new"
    assert not any(str(gone.id) in k for k in objects(remote_store))


def test_rename_of_a_published_file_waits_for_its_pending_versions(remote_store: RemoteStore) -> None:
    a, b = remote_store.open("a"), remote_store.open("b")
    a.put_bytes(f"{E}/m.pt", b"v1")
    assert a.wait_uploads(timeout=60)
    a.put_bytes(f"{E}/m.pt", b"v2")  # pending on top of a published version
    a.rename(f"{E}/m.pt", f"{E}/n.pt")
    assert [v.size for v in b.history(f"{E}/n.pt")] == [2, 2]
    assert b.read_bytes(b.latest(f"{E}/n.pt")) == b"v2"
    assert b.latest_or_none(f"{E}/m.pt") is None


KILLED = """
import os, signal, sys
from mldashfs.store import Store
s = Store.open(sys.argv[1], mongo=sys.argv[2], cache_dir=sys.argv[3], s3_endpoint=sys.argv[4])
print("open", flush=True)
sys.stdin.readline()  # the test makes S3 fail now
for i in range(3):
    s.put_bytes(f"alice/cv/resnet/ckpt{i}.pt", bytes([i]) * (1 << 20))
print("saved", flush=True)
os.kill(os.getpid(), signal.SIGKILL)
"""


def test_versions_a_killed_process_closed_upload_at_the_next_open(remote_store: RemoteStore) -> None:
    p = subprocess.Popen([sys.executable, "-c", textwrap.dedent(KILLED), remote_store.location, remote_store.mongo,
                          str(remote_store.cache("a")), remote_store.endpoint], stdin=subprocess.PIPE,
                         stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert p.stdout is not None and p.stdout.readline() == "open\n", p.stderr.read() if p.stderr else ""
        remote_store.server.fault(503, seconds=30)  # nothing can upload before the kill
        out, err = p.communicate("go\n", timeout=120)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
    assert p.returncode == -9 and "saved" in out, err
    remote_store.server.clear_faults()
    b = remote_store.open("b")
    assert b.latest_or_none(f"{E}/ckpt0.pt") is None
    a = remote_store.open("a")  # the same cache folder: its uploaders take the journal over
    assert a.status()["pending"]["versions"] == 3
    assert a.wait_uploads(timeout=60)
    for i in range(3):
        v = b.latest(f"{E}/ckpt{i}.pt")
        assert v.sha256 == hashlib.sha256(bytes([i]) * (1 << 20)).hexdigest()
        assert b.read_bytes(v) == bytes([i]) * (1 << 20)


def test_an_unreachable_mongodb_is_a_clear_error_soon(remote_store: RemoteStore) -> None:
    start = time.monotonic()
    with pytest.raises(errors.Unavailable, match="MongoDB"):
        Store.open(remote_store.location, mongo="mongodb://127.0.0.1:9/db", cache_dir=str(remote_store.cache("x")),
                   s3_endpoint=remote_store.endpoint)
    assert time.monotonic() - start < 60


def test_a_missing_bucket_is_a_clear_error(remote_store: RemoteStore) -> None:
    with pytest.raises(errors.Unavailable, match="no-such-bucket"):
        Store.open("s3://no-such-bucket/x", mongo=remote_store.mongo, cache_dir=str(remote_store.cache("x")),
                   s3_endpoint=remote_store.endpoint)


def test_the_cache_evicts_uploaded_copies_beyond_its_bound(remote_store: RemoteStore) -> None:
    a = remote_store.open("a", cache_size="3M")
    vs = [a.put_bytes(f"{E}/c{i}.bin", os.urandom(1 << 20)) for i in range(6)]
    assert a.wait_uploads(timeout=60)
    b = remote_store.open("b", cache_size="3M")
    for v in vs:  # reading everything through a 3 MiB cache evicts the oldest copies
        assert hashlib.sha256(b.read_bytes(v)).hexdigest() == v.sha256
    b.blobs.cache.evict()
    assert b.status()["cache"]["bytes"] <= 3 << 20


def test_bytes_that_pass_s3s_own_checks_are_still_checked_against_the_sha256(remote_store: RemoteStore) -> None:
    """S3 checks a transfer against the object's stored checksum; an object wrong since it was
    written passes that, and only the version's SHA-256 catches it."""
    a, b = remote_store.open("a"), remote_store.open("b")
    v = a.put_bytes(f"{E}/y.bin", os.urandom(3 << 20))
    assert a.wait_uploads(timeout=60)
    s3 = b.blobs.s3
    get_range = s3.get_range

    def wrong(key: str, start: int, end: int) -> bytes:  # what a bad object would give
        data = bytearray(get_range(key, start, end))
        data[0] ^= 0xFF
        return bytes(data)

    s3.get_range = wrong
    with pytest.raises(errors.ChecksumMismatch, match="do not match their SHA-256"):
        b.read_bytes(v)
    assert b.local_file(v) is None
    s3.get_range = get_range
    assert hashlib.sha256(b.read_bytes(v)).hexdigest() == v.sha256  # fetched again, whole and right


def test_a_full_cache_makes_commits_wait_for_uploads_not_fail(remote_store: RemoteStore) -> None:
    a = remote_store.open("a", cache_size="2M")
    remote_store.server.fault(503, seconds=120)  # nothing uploads: pending bytes pile up
    done: list[Version] = []
    saver = threading.Thread(target=lambda: done.extend(a.put_bytes(f"{E}/p{i}.bin", os.urandom(900_000))
                                                         for i in range(4)))
    saver.start()
    try:
        deadline = time.monotonic() + 60
        while a.status()["pending"]["versions"] < 2 and time.monotonic() < deadline:
            time.sleep(0.05)
        saver.join(1.0)
        assert saver.is_alive()  # the third commit waits: two pending versions fill the 2 MiB
        assert a.status()["pending"]["bytes"] <= 2 << 20
    finally:
        remote_store.server.clear_faults()
        saver.join(120)
    assert len(done) == 4
    assert a.wait_uploads(timeout=60)
    b = remote_store.open("b")
    assert [b.latest(f"{E}/p{i}.bin").sha256 for i in range(4)] == [v.sha256 for v in done]


def test_a_multipart_upload_a_crash_left_is_aborted_before_the_upload_again(remote_store: RemoteStore) -> None:
    data = os.urandom(20 << 20)  # above the multipart threshold
    remote_store.server.fault(503, seconds=120)
    a = remote_store.open("a")
    v = a.put_bytes(f"{E}/big.ckpt", data)
    a.close()  # as a killed process would: the version stays journaled
    remote_store.opened.remove(a)
    remote_store.server.clear_faults()
    c = s3_client(remote_store.endpoint)
    name = f"team/files/{E}/{v.id}/big.ckpt"
    up = c.create_multipart_upload(Bucket=remote_store.bucket, Key=name)  # what a crash mid-upload leaves
    c.upload_part(Bucket=remote_store.bucket, Key=name, UploadId=up["UploadId"], PartNumber=1, Body=data[:5 << 20])
    again = remote_store.open("a")
    assert again.wait_uploads(timeout=120)
    assert c.list_multipart_uploads(Bucket=remote_store.bucket).get("Uploads", []) == []
    b = remote_store.open("b")
    assert hashlib.sha256(b.read_bytes(b.latest(f"{E}/big.ckpt"))).hexdigest() == v.sha256


@pytest.mark.skipif(bool(os.environ.get(MONGO_URI_ENV)), reason="stops and restarts its own MongoDB test server")
def test_commits_while_mongodb_is_down_are_journaled_and_publish_when_it_returns(
        remote_store: RemoteStore) -> None:
    server = start_mongo_server()
    try:
        uri = with_database(server.uri, "outage")
        a = remote_store.open("a", mongo=uri)
        a.put_bytes(f"{E}/before.txt", b"0")
        assert a.wait_uploads(timeout=60)
        port = server.port
        server.stop()
        v = a.put_bytes(f"{E}/during.txt", b"1")  # close succeeds: the version waits in the journal
        assert a.read_bytes(v) == b"1"
        with pytest.raises(errors.Unavailable, match="MongoDB"):
            a.latest(f"{E}/before.txt")  # what only MongoDB knows: a clear error
        deadline = time.monotonic() + 60  # the uploader's publish fails, and says why
        while "MongoDB" not in " ".join(e["message"] for e in a.status()["errors"]):
            assert time.monotonic() < deadline, a.status()
            time.sleep(0.2)
        assert a.status()["pending"]["versions"] == 1 and a.status()["bytes"] is None
        server = start_mongo_server(port=port)  # back (empty: the test server keeps nothing)
        assert a.wait_uploads(timeout=120)
        b = remote_store.open("b", mongo=uri)
        assert b.read_bytes(b.latest(f"{E}/during.txt")) == b"1"
    finally:
        server.stop()


def test_a_published_version_stays_visible_here_through_the_metadata_ttl(remote_store: RemoteStore) -> None:
    a = remote_store.open("a", metadata_ttl=60.0)  # remote answers cached for a minute
    remote_store.server.fault(503, seconds=2)
    v = a.put_bytes(f"{E}/ttl.txt", b"x")
    assert a.latest(f"{E}/ttl.txt").id == v.id and [e.name for e in a.listdir(E)] == ["ttl.txt"]  # from
    # the journal, while MongoDB's answer ("no such file") is cached
    assert a.wait_uploads(timeout=60)  # the version leaves the journal for MongoDB
    assert a.latest(f"{E}/ttl.txt").id == v.id
    assert [e.name for e in a.listdir(E)] == ["ttl.txt"]


def test_a_version_leaving_the_journal_is_not_shadowed_by_an_answer_cached_before_it_was_published(
        remote_store: RemoteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    a = remote_store.open("a", metadata_ttl=60.0)
    path = f"{E}/ckpt.pt"
    v1 = a.put_bytes(path, b"1")
    assert a.wait_uploads(timeout=60) and a.latest(path).id == v1.id  # MongoDB's answer (v1) is cached
    journal, seen = a.writeback.journal, []
    remove = journal.remove

    def remove_then_read(vids: list[int]) -> None:  # a read the moment the published row leaves the journal
        remove(vids)
        seen.append(a.latest(path).id)

    monkeypatch.setattr(journal, "remove", remove_then_read)
    v2 = a.put_bytes(path, b"2")
    assert a.wait_uploads(timeout=60)
    assert seen == [v2.id]  # found crash_rounds.py --remote: a getxattr after close read v1's checksum


def test_an_answer_fetched_before_a_publish_is_not_cached_after_it(
        remote_store: RemoteStore, monkeypatch: pytest.MonkeyPatch) -> None:
    a = remote_store.open("a", metadata_ttl=60.0, upload_workers=0)  # publishes only when told below
    path = f"{E}/new.pt"
    v = a.put_bytes(path, b"x")
    a.mkdir(f"{E}/other")  # a change made here: the answers cached so far are forgotten
    remote = a.catalog.remote
    fetch = remote.lookup

    def slow_fetch(p: str) -> object:  # MongoDB answers "no such file", and the version is published
        answer = fetch(p)  # before that answer reaches the cache
        a.writeback.add_workers(1)
        assert answer is None and a.wait_uploads(timeout=60)
        return answer

    monkeypatch.setattr(remote, "lookup", slow_fetch)
    assert a.stat(path).id == v.id  # the journal still answered this one
    monkeypatch.setattr(remote, "lookup", fetch)
    assert a.stat(path).id == v.id  # was NotFound until the TTL ran out


def test_a_version_published_after_a_newer_one_from_another_machine_joins_the_history(
        remote_store: RemoteStore) -> None:
    a = remote_store.open("a", upload_workers=0)  # a's uploads wait for its next open
    va = a.put_bytes(f"{E}/shared.pt", b"from a")
    b = remote_store.open("b")
    vb = b.put_bytes(f"{E}/shared.pt", b"from b")
    assert vb.id > va.id and b.wait_uploads(timeout=60)
    a.close()
    remote_store.opened.remove(a)
    assert remote_store.open("a").wait_uploads(timeout=60)
    assert [v.id for v in b.history(f"{E}/shared.pt")] == [va.id, vb.id]
    assert b.read_bytes(b.latest(f"{E}/shared.pt")) == b"from b"


def test_a_rewrite_just_after_the_publish_carries_the_published_metadata_over(remote_store: RemoteStore) -> None:
    a = remote_store.open("a", metadata_ttl=60.0)  # the folder's names, listed at the first save, last a minute
    first = a.put_bytes(f"{E}/runs/r1.json", b"1", description="run one", tags=["keep"])
    assert a.put_bytes(f"{E}/runs/r2.json", b"2").id > first.id  # a new name: answered from the listing
    assert a.wait_uploads(timeout=60)  # r1 leaves the journal for MongoDB, after the listing lacking it
    staged = a.stage(a.latest(f"{E}/runs/r1.json"))
    staged.write(1, b"1")
    again = a.commit(f"{E}/runs/r1.json", staged)
    assert (again.description, again.tags) == ("run one", ("keep",)) and again.id > first.id
    assert [v.id for v in a.history(f"{E}/runs/r1.json")] == [first.id, again.id]


def test_a_version_published_onto_a_shared_blob_reads_from_this_machines_cache(remote_store: RemoteStore) -> None:
    a = remote_store.open("a", cache_size="64M")
    data = os.urandom(1 << 20)
    a.put_bytes(f"{E}/first.pt", data)
    assert a.wait_uploads(timeout=60)
    a.blobs.cache.drop(a.latest(f"{E}/first.pt").key)  # type: ignore[attr-defined]  # first's copy evicted
    v = a.put_bytes(f"{E}/second.pt", data)
    assert a.wait_uploads(timeout=60)
    shared = a.latest(f"{E}/second.pt")
    assert shared.id == v.id and shared.key == a.latest(f"{E}/first.pt").key != v.key
    before = remote_store.server.stats()["range_bytes_read"]
    assert a.read_bytes(shared) == data and a.read_bytes(a.latest(f"{E}/first.pt")) == data
    assert remote_store.server.stats()["range_bytes_read"] == before  # both from second's copy, now the blob's
    assert len(os.listdir(os.path.join(a.root, "blobs"))) == 1 and os.listdir(os.path.join(a.root, "pinned")) == []


def test_a_record_read_while_pending_still_reads_after_its_upload_moved_or_shared_the_bytes(
        remote_store: RemoteStore) -> None:
    """A reader that looked a version up while it was pending opens it after the upload: its copy moved
    from pinned to cached, or (dedup) was published onto another blob and its own copy dropped."""
    a = remote_store.open("a")
    data = os.urandom(100_000)
    a.put_bytes(f"{E}/first.pt", data)
    assert a.wait_uploads(timeout=60)
    moved = a.put_bytes(f"{E}/own.pt", b"own bytes")
    shared = a.put_bytes(f"{E}/second.pt", data)
    assert moved.state == shared.state == "pending"
    assert a.wait_uploads(timeout=60)
    assert a.latest(f"{E}/second.pt").key != shared.key  # published onto first's blob
    before = remote_store.server.stats()["range_bytes_read"]
    for v, want in ((moved, b"own bytes"), (shared, data)):
        fd = a.open_copy(v)
        assert fd is not None
        try:
            assert os.pread(fd, v.size + 1, 0) == want
        finally:
            os.close(fd)
        assert a.read_bytes(v) == want
    assert remote_store.server.stats()["range_bytes_read"] == before  # all from this machine's cache
    remote_store.server.fault(503, seconds=1.5)  # no upload before the delete
    gone = a.put_bytes(f"{E}/gone.pt", b"deleted while pending")
    a.delete(f"{E}/gone.pt")
    assert a.open_copy(gone) is None
    with pytest.raises(errors.NotFound):
        a.read_bytes(gone)
