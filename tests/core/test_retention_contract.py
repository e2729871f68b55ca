"""The retention calls (Store.iter_versions / expire_versions and retention.run), on every backend."""

from __future__ import annotations

import hashlib
import json

import pytest

from mldashfs import errors, retention
from mldashfs.retention import Policy
from mldashfs.store import Store

E = "alice/cv/resnet"


def saves(store: Store, path: str, n: int, **kw) -> list[int]:
    """Save `n` versions of `path` (published before returning, on a remote store); their ids."""
    ids = [store.put_bytes(path, f"{path} v{i}".encode(), **kw).id for i in range(n)]
    store.wait_uploads()
    return ids


def live_ids(store: Store, path: str) -> list[int]:
    return [v.id for v in store.history(path)]


def test_iter_versions_lists_live_versions_below_a_folder_by_path_then_id(store: Store) -> None:
    b = saves(store, f"{E}/b.txt", 2)
    a = saves(store, f"{E}/sub/a.txt", 3)
    other = saves(store, "alice/cv/other/c.txt", 1)
    store.delete_version(a[1])
    assert [v.id for v in store.iter_versions(E)] == [b[0], b[1], a[0], a[2]]
    assert [v.id for v in store.iter_versions("")] == [*other, b[0], b[1], a[0], a[2]]
    assert all(not v.deleted for v in store.iter_versions(""))


def test_expire_versions_never_takes_a_paths_newest_version(store: Store) -> None:
    p = f"{E}/ckpt.pt"
    ids = saves(store, p, 3)
    gone = store.expire_versions([ids[2], ids[0], 12345])  # the newest, an old one, an unknown id
    assert [v.id for v in gone] == [ids[0]] and gone[0].deleted
    assert live_ids(store, p) == ids[1:]
    assert [v.id for v in store.expire_versions(ids)] == [ids[1]]  # again: deleted ones are skipped
    assert live_ids(store, p) == ids[2:] and store.latest(p).id == ids[2]
    with pytest.raises(errors.NotFound):
        store.get_version(ids[0])
    assert store.gc() == len(f"{p} v0") + len(f"{p} v1")
    assert store.read_bytes(store.latest(p)) == f"{p} v2".encode()


def test_keep_last_keeps_the_newest_n_of_every_path_and_gc_reclaims_the_rest(store: Store) -> None:
    x, y = saves(store, f"{E}/x.bin", 4), saves(store, f"{E}/y.bin", 1)
    report = retention.run(store, Policy(keep_last=2))
    assert sorted(v.id for v in report.expired) == x[:2] and not report.dry_run
    assert report.reclaimed_bytes == 2 * len(f"{E}/x.bin v0")
    assert live_ids(store, f"{E}/x.bin") == x[2:] and live_ids(store, f"{E}/y.bin") == y
    for v in store.iter_versions(""):
        assert hashlib.sha256(store.read_bytes(v)).hexdigest() == v.sha256


def test_older_than_and_keep_tagged_combine_with_keep_last(store: Store) -> None:
    p = f"{E}/m.pt"
    ids = [store.put_bytes(p, b"%d" % i, tags=["best"] if i == 1 else None).id for i in range(4)]
    store.wait_uploads()
    now = store.latest(p).created_at
    assert retention.run(store, Policy(older_than=3600), now=now).expired == []  # all are recent
    assert retention.run(store, Policy(), now=now + 10**6).expired == []  # no rule: nothing expires
    report = retention.run(store, Policy(older_than=60, keep_last=3, keep_tagged=True), now=now + 3600)
    assert [v.id for v in report.expired] == [ids[0]]
    report = retention.run(store, Policy(older_than=60, keep_tagged=True), now=now + 3600)
    assert [v.id for v in report.expired] == [ids[2]]  # the tagged one and the newest stay
    assert live_ids(store, p) == [ids[1], ids[3]]


def test_dry_run_changes_nothing_and_reports_what_would_go(store: Store) -> None:
    ids = saves(store, f"{E}/d.bin", 3)
    report = retention.run(store, Policy(keep_last=1), dry_run=True)
    assert report.dry_run and sorted(v.id for v in report.expired) == ids[:2]
    assert report.reclaimed_bytes == 2 * len(f"{E}/d.bin v0")
    assert live_ids(store, f"{E}/d.bin") == ids


def test_an_experiments_policy_file_overrides_the_given_policy_key_by_key(store: Store) -> None:
    mine, theirs = f"{E}/w.bin", "alice/cv/other/w.bin"
    store.put_bytes(f"{E}/.ml_dash/retention.json", json.dumps({"keep_last": 3}).encode())
    m, t = saves(store, mine, 4), saves(store, theirs, 4)
    report = retention.run(store, Policy(keep_last=1))
    assert sorted(v.id for v in report.expired) == sorted([m[0], *t[:3]])
    store.put_bytes(f"{E}/.ml_dash/retention.json", b'{"keep_last": 0}')
    store.wait_uploads()
    with pytest.raises(errors.InvalidValue, match="retention.json"):
        retention.run(store, Policy(keep_last=1))
    assert live_ids(store, mine) == m[1:]  # a bad policy file stops gc before anything changes


def test_a_renamed_versions_shared_bytes_stay_while_it_lives(store: Store) -> None:
    saves(store, f"{E}/best.pt", 2)
    tmp = store.put_bytes(f"{E}/best.pt.tmp", b"renamed in")
    store.rename(f"{E}/best.pt.tmp", f"{E}/best.pt")  # the new version shares the .tmp version's key
    store.wait_uploads()
    report = retention.run(store, Policy(keep_last=1))
    assert report.reclaimed_bytes == 2 * len(f"{E}/best.pt v0")  # the deleted .tmp version's key is live
    [head] = store.history(f"{E}/best.pt")
    assert head.key == tmp.key and store.read_bytes(head) == b"renamed in"
