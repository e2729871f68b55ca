"""`mldashfs gc` with retention, run as a user would: options, policy files, dry runs, a remote store's
pending uploads, and gc while a mount and an SDK process keep saving the same files."""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mldashfs import retention
from mldashfs.retention import Policy
from mldashfs.store import Store
from tests.mounting import mounted
from tests.remote_stores import RemoteStore
from tests.test_cli import EXP, as_json, cli, one_error_line, write


@pytest.fixture
def work() -> Iterator[Path]:
    """A scratch folder holding the store (`store/`) and local files; removed even on failure."""
    d = Path(tempfile.mkdtemp(prefix="mldashfs-gc-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def put_versions(work: Path, path: str, *datas: bytes, tags: tuple[str, ...] = ()) -> list[str]:
    """Store each of `datas` as a new version of `path`; their ids."""
    src = work / "src.bin"
    ids = []
    for data in datas:
        write(src, data)
        ids.append(as_json(cli(work, "put", "--create", str(src), path, "--json",
                               *[a for t in tags for a in ("--tag", t)]))["id"])
    return ids


def history(work: Path, path: str) -> list[str]:
    return [v["id"] for v in as_json(cli(work, "versions", path, "--json"))]


def test_keep_last_dry_run_then_for_real(work: Path) -> None:
    p, other = f"{EXP}/models/ckpt.bin", f"{EXP}/models/one.bin"
    ids = put_versions(work, p, b"a" * 1000, b"b" * 2000, b"c" * 3000)
    put_versions(work, other, b"only")
    dry = as_json(cli(work, "gc", "--keep-last", "1", "--dry-run", "--json"))
    assert dry["dryRun"] and dry["reclaimedBytes"] == 3000
    assert sorted(v["id"] for v in dry["removedVersions"]) == sorted(ids[:2])
    assert history(work, p) == ids  # a dry run changes nothing
    assert "would remove 2 versions, reclaim 2.9 KiB" in cli(work, "gc", "--keep-last", "1", "--dry-run").stdout
    out = cli(work, "gc", "--keep-last", "1").stdout.splitlines()
    assert out[0].split() == ["PATH", "ID", "SIZE", "CREATED", "TAGS"]
    assert sorted(line.split()[1] for line in out[1:3]) == sorted(ids[:2]) and all(p in line for line in out[1:3])
    assert out[-1] == "removed 2 versions, reclaimed 2.9 KiB"
    assert history(work, p) == ids[2:] and len(history(work, other)) == 1
    cli(work, "get", p, str(work / "out.bin"))
    assert (work / "out.bin").read_bytes() == b"c" * 3000


def test_older_than_and_keep_tagged(work: Path) -> None:
    p = f"{EXP}/m.pt"
    tagged = put_versions(work, p, b"1", tags=("best",))
    ids = put_versions(work, p, b"2", b"3")
    assert as_json(cli(work, "gc", "--older-than", "7d", "--json"))["removedVersions"] == []  # all are new
    gone = as_json(cli(work, "gc", "--keep-last", "1", "--keep-tagged", "--json"))["removedVersions"]
    assert [v["id"] for v in gone] == [ids[0]] and history(work, p) == [*tagged, ids[1]]


def test_bad_options_are_refused_before_anything_changes(work: Path) -> None:
    p = f"{EXP}/m.pt"
    ids = put_versions(work, p, b"1", b"2")
    for args, words in ((("--older-than", "7 days"), ("duration", "7d")), (("--keep-last", "0"), ("keep_last",))):
        one_error_line(cli(work, "gc", *args, rc=1), *words)
    assert history(work, p) == ids


def test_an_experiments_policy_file_applies_without_options_and_overrides_them(work: Path) -> None:
    p, q = f"{EXP}/w.bin", "alice/cv/other/w.bin"
    put_versions(work, f"{EXP}/.ml_dash/retention.json", b'{"keep_last": 2, "keep_tagged": false}')
    ids = put_versions(work, p, b"1", b"2", b"3")
    others = put_versions(work, q, b"1", b"2", b"3")
    gone = as_json(cli(work, "gc", "--json"))["removedVersions"]
    assert [v["id"] for v in gone] == [ids[0]] and history(work, q) == others  # no policy: nothing goes
    put_versions(work, p, b"4")
    gone = as_json(cli(work, "gc", "--keep-last", "1", "--json"))["removedVersions"]
    assert sorted(v["id"] for v in gone) == sorted([ids[1], *others[:2]])  # the file's 2 beats the option's 1
    write(work / "bad.json", b"{not json")
    cli(work, "put", str(work / "bad.json"), f"{EXP}/.ml_dash/retention.json")
    one_error_line(cli(work, "gc", "--keep-last", "1", rc=1), "retention.json", "not JSON")


def test_a_pending_upload_and_its_bytes_stay(remote_store: RemoteStore) -> None:
    p = f"{EXP}/ckpt.bin"
    published = remote_store.open("b")  # another machine
    old = [published.put_bytes(p, b"old %d" % i) for i in range(3)]
    assert published.wait_uploads(timeout=60)
    a = remote_store.open("a", upload_workers=0)  # no uploaders here: what it saves stays pending
    pending = a.put_bytes(p, b"pending")
    assert a.latest(p).state == "pending"
    assert a.expire_versions([pending.id]) == []
    report = retention.run(a, Policy(keep_last=1))
    # pending versions are not counted: of the published ones the newest stays too
    assert sorted(v.id for v in report.expired) == [old[0].id, old[1].id]
    assert report.reclaimed_bytes == 2 * len(b"old 0")
    assert a.read_bytes(a.latest(p)) == b"pending" and a.latest(p).state == "pending"
    assert remote_store.open("a").wait_uploads(timeout=60)  # its uploaders take the journal over
    assert [(v.id, published.read_bytes(v)) for v in published.history(p)] == [(old[2].id, b"old 2"),
                                                                              (pending.id, b"pending")]


def payload(who: str, i: int) -> bytes:
    """Bytes that tell whether they arrived whole: a header, then a body the header determines."""
    head = f"{who}:{i}:".encode()
    return head + hashlib.sha256(head).digest() * 4000  # 128 KiB: above what the mount keeps in memory


def whole(data: bytes) -> bool:
    who, i, _ = data.split(b":", 2)
    return data == payload(who.decode(), int(i))


SDK_WRITER = """
import os, sys
from ml_dash import Experiment
from tests.test_gc import payload
store, stop = sys.argv[1], sys.argv[2]
i = 0
with Experiment(prefix="alice/cv/run", local_path=store).run as exp:
    while not os.path.exists(stop):
        for name in ("shared.bin", "sdk.bin"):
            exp.files.save_blob(payload("sdk", i), to=name)
        i += 1
"""


def test_gc_while_a_mount_and_an_sdk_process_save_the_same_files(work: Path) -> None:
    store, stop = work / "store", work / "stop"
    errors: list[BaseException] = []
    removed = 0
    with mounted(store, work / "mnt", experiment="alice/cv/run") as m:
        done = threading.Event()

        def mount_writer() -> None:
            i = 0
            try:
                while not done.is_set():
                    for name in ("shared.bin", "mount.bin"):
                        (m.path / name).write_bytes(payload("mount", i))
                        assert whole((m.path / name).read_bytes())  # whatever is newest, it is whole
                    i += 1
            except BaseException as e:
                errors.append(e)

        env = {**os.environ, "PYTHONPATH": os.pathsep.join([str(Path(__file__).parent.parent), *sys.path])}
        sdk = subprocess.Popen([sys.executable, "-c", SDK_WRITER, str(store), str(stop)], env=env,
                               stderr=subprocess.PIPE, text=True)
        thread = threading.Thread(target=mount_writer)
        thread.start()
        try:
            for _ in range(5):
                removed += len(as_json(cli(work, "gc", "--keep-last", "1", "--json"))["removedVersions"])
        finally:
            done.set()
            stop.touch()
            thread.join()
            _, err = sdk.communicate(timeout=120)
        assert not errors, errors
        assert sdk.returncode == 0, err
        assert removed > 0  # gc did run into the writers' versions
        for name in ("shared.bin", "mount.bin", "sdk.bin"):
            assert whole((m.path / name).read_bytes())
    with Store.open(store) as s:
        paths = [v.path for v in s.list("alice/cv/run")]
        assert sorted(paths) == [f"alice/cv/run/{n}" for n in ("mount.bin", "sdk.bin", "shared.bin")]
        for v in s.iter_versions("alice/cv/run"):
            data = s.read_bytes(v)
            assert hashlib.sha256(data).hexdigest() == v.sha256 and whole(data)
