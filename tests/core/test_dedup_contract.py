"""Dedup on every backend: versions with the same bytes share one blob, `usage` tells logical from
stored bytes, and gc frees a shared blob only once no live version uses it, also while others save."""

from __future__ import annotations

import hashlib
import threading
from collections.abc import Callable

from mldashfs import errors
from mldashfs.store import Store

E = "alice/cv/resnet"


def published(store: Store, path: str, data: bytes, **kw) -> int:
    """Save `data` at `path`, published (on a remote store) before returning; its version id."""
    vid = store.put_bytes(path, data, **kw).id
    assert store.wait_uploads(timeout=60)
    return vid


def test_the_same_bytes_saved_again_share_one_blob(store: Store) -> None:
    ckpt = bytes(range(256)) * 4096  # 1 MiB
    ids = [published(store, f"{E}/models/best.pt", ckpt) for _ in range(5)]
    ids.append(published(store, f"{E}/models/copy.pt", ckpt, tags=["copy"]))
    other = published(store, f"{E}/models/other.pt", b"other bytes")
    versions = [store.get_version(i) for i in ids]
    assert len({v.key for v in versions}) == 1 and store.get_version(other).key != versions[0].key
    assert all(store.read_bytes(v) == ckpt for v in versions)
    assert store.latest(f"{E}/models/copy.pt").tags == ("copy",)  # the record is its own; only bytes are shared
    u = store.usage(f"{E}/models")
    assert (u.versions, u.blobs, u.logical, u.stored) == (7, 2, 6 * len(ckpt) + 11, len(ckpt) + 11)
    assert store.usage(f"{E}/models/best.pt").logical == 5 * len(ckpt)
    assert store.status()["bytes"]["stored"] == len(ckpt) + 11


def test_the_same_bytes_saved_together_are_stored_once(store: Store) -> None:
    data = b"epoch weights " * 10_000
    for i in range(8):  # no wait between them: a remote store's uploaders take them at once
        store.put_bytes(f"{E}/burst/ckpt{i}.pt", data)
    assert store.wait_uploads(timeout=60)
    u = store.usage(f"{E}/burst")
    assert (u.versions, u.blobs, u.stored) == (8, 1, len(data))


def test_threads_saving_copies_into_one_folder_all_succeed(store: Store) -> None:
    data = b"the same bytes"
    published(store, f"{E}/first/original.bin", data)  # the shared blob lives in another folder
    errors_seen: list[BaseException] = []

    def save(t: int) -> None:
        for i in range(40):  # each commit writes its copy, then removes it and its emptied folders
            try:
                store.put_bytes(f"{E}/copies/t{t}-{i}.bin", data)
            except BaseException as e:  # noqa: BLE001 (reported below)
                errors_seen.append(e)

    threads = [threading.Thread(target=save, args=(t,)) for t in range(6)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors_seen == [] and store.wait_uploads(timeout=60)
    assert store.usage(f"{E}/copies").as_dict() == {"versions": 240, "logical": 240 * len(data), "blobs": 1,
                                                    "stored": len(data), "reclaimable": 0}


def test_gc_frees_a_shared_blob_once_no_live_version_uses_it(store: Store) -> None:
    data = b"checkpoint " * 1000
    published(store, f"{E}/a.pt", data)
    second = published(store, f"{E}/b.pt", data)
    store.delete(f"{E}/a.pt")
    assert store.gc() == 0  # b.pt uses the bytes
    assert store.read_bytes(store.get_version(second)) == data
    store.delete(f"{E}/b.pt")
    assert store.usage().reclaimable >= len(data)
    assert store.gc() == len(data)
    assert store.usage().reclaimable == 0
    again = store.get_version(published(store, f"{E}/c.pt", data))  # the blob is gone: stored anew
    assert store.read_bytes(again) == data and store.usage().stored == len(data)


def test_saves_of_the_same_bytes_racing_deletes_and_gc_lose_nothing(open_store: Callable[[], Store]) -> None:
    writer, collector = open_store(), open_store()
    data = [f"model {i % 3}".encode() * 500 for i in range(3)]
    stop, failures = threading.Event(), []

    def collect() -> None:
        while not stop.is_set():
            try:
                collector.gc()
            except errors.StoreError as e:  # reported at the end, not retried
                failures.append(e)

    gc = threading.Thread(target=collect)
    gc.start()
    try:
        for i in range(60):
            published(writer, f"{E}/race/f{i % 4}.pt", data[i % 3])
            if i % 5 == 4:
                writer.delete(f"{E}/race/f{(i + 1) % 4}.pt")
    finally:
        stop.set()
        gc.join()
    assert failures == []
    collector.gc()
    live = [v for e in writer.listdir(f"{E}/race") for v in writer.history(f"{E}/race/{e.name}")]
    assert live and all(hashlib.sha256(writer.read_bytes(v)).hexdigest() == v.sha256 for v in live)
    assert writer.usage(f"{E}/race").blobs <= 3
