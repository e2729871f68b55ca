"""The store commands of the `mldashfs` console script, run for real as a user would (subprocesses)."""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import json
import os
import shutil
import sqlite3
import struct
import subprocess
import sys
import tempfile
import termios
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest

from mldashfs.store import Store

EXP = "alice/cv/resnet"


@pytest.fixture
def work() -> Iterator[Path]:
    """A scratch folder holding the store (`store/`) and local files; removed even on failure."""
    d = Path(tempfile.mkdtemp(prefix="mldashfs-cli-"))
    try:
        yield d
    finally:
        shutil.rmtree(d, ignore_errors=True)


def cli(work: Path, *args: str, rc: int = 0, store: bool = True, **kw) -> subprocess.CompletedProcess[str]:
    """Run `python -m mldashfs.cli ARGS` in `work` (with --store work/store) and check its exit status."""
    env = {k: v for k, v in os.environ.items() if k != "ML_DASH_STORE"}
    env.update(kw.pop("env", {}))
    argv = [*args, "--store", str(work / "store")] if store else list(args)
    done = subprocess.run(
        [sys.executable, "-m", "mldashfs.cli", *argv],
        cwd=work,
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
        **kw,
    )
    assert done.returncode == rc, f"exit {done.returncode}, stdout={done.stdout!r} stderr={done.stderr!r}"
    return done


def as_json(done: subprocess.CompletedProcess[str]):
    return json.loads(done.stdout)


def write(path: Path, data: bytes) -> Path:
    path.write_bytes(data)
    return path


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def one_error_line(done: subprocess.CompletedProcess[str], *words: str) -> str:
    """The single stderr line of a failed command, checked to mention each of `words`."""
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("mldashfs: "), done.stderr
    for w in words:
        assert w in lines[0], lines[0]
    return lines[0]


def stored_paths(work: Path) -> list[str]:
    """Every file path in the test store (none when the store was never made)."""
    if not (work / "store").exists():
        return []
    with Store.open(str(work / "store")) as store:
        return [v.path for v in store.list("")]


def test_put_ls_versions_get(work: Path) -> None:
    one, two = b"weights v1\n", b"weights v2, longer\n"
    src = write(work / "best.pt", one)
    put = as_json(
        cli(
            work,
            "put",
            str(src),
            f"{EXP}/models/best.pt",
            "--create",
            "--json",
            "--tag",
            "best",
            "--tag",
            "v1",
            "--description",
            "first try",
            "--meta",
            "epoch=50",
            "--meta",
            "note=plain text",
            "--meta",
            'opt={"lr": 0.001}',
        )
    )
    assert (put["path"], put["filename"], put["experiment"]) == ("/models", "best.pt", EXP)
    assert put["sizeBytes"] == len(one) and put["checksum"] == sha(one)
    assert put["tags"] == ["best", "v1"] and put["description"] == "first try"
    assert put["metadata"] == {"epoch": 50, "note": "plain text", "opt": {"lr": 0.001}}
    write(src, two)
    second = cli(work, "put", str(src), f"{EXP}/models/best.pt").stdout
    assert f"{EXP}/models/best.pt" in second and sha(two)[:12] in second

    root = cli(work, "ls").stdout.splitlines()
    assert root[0].split() == ["NAME", "SIZE", "MODIFIED", "ID"] and root[1].startswith("alice/")
    exp = cli(work, "ls", EXP).stdout
    assert "models/" in exp
    listing = cli(work, "ls", f"{EXP}/models").stdout.splitlines()
    assert len(listing) == 2 and listing[1].split()[0] == "best.pt" and f"{len(two)} B" in listing[1]
    rows = as_json(cli(work, "ls", f"{EXP}/models", "--json"))
    assert [(r["type"], r["filename"], r["checksum"]) for r in rows] == [("file", "best.pt", sha(two))]
    assert listing[1].split()[-1] == rows[0]["id"]
    dirs = as_json(cli(work, "ls", EXP, "--json"))
    assert [(d["type"], d["name"], d["path"]) for d in dirs] == [("directory", "models", f"{EXP}/models")]
    deep = cli(work, "ls", "-r", "alice").stdout.splitlines()
    assert deep[0].split()[0] == "PATH" and deep[1].split()[0] == "cv/resnet/models/best.pt"

    history = as_json(cli(work, "versions", f"{EXP}/models/best.pt", "--json"))
    assert [h["checksum"] for h in history] == [sha(one), sha(two)]
    assert int(history[0]["id"]) < int(history[1]["id"])
    table = cli(work, "versions", f"{EXP}/models/best.pt").stdout.splitlines()
    assert table[0].split() == ["ID", "SIZE", "SHA256", "CREATED", "TAGS"]
    assert (
        table[1].split()[0] == history[0]["id"] and sha(one)[:12] in table[1] and table[1].endswith("best,v1")
    )

    out = work / "out"
    out.mkdir()
    got = cli(work, "get", f"{EXP}/models/best.pt", str(out)).stdout
    assert (out / "best.pt").read_bytes() == two and str(out / "best.pt") in got
    old = as_json(
        cli(work, "get", f"{EXP}/models/best.pt", "--id", history[0]["id"], str(out / "v1.pt"), "--json")
    )
    assert (out / "v1.pt").read_bytes() == one and old["dest"] == str(out / "v1.pt")
    assert sorted(p.name for p in out.iterdir()) == ["best.pt", "v1.pt"]


def test_put_into_folder_and_store_from_environment(work: Path) -> None:
    src = write(work / "config.json", b'{"lr": 0.1}')
    cli(work, "put", "--create", str(src), f"{EXP}/configs/", store=False, env={"ML_DASH_STORE": str(work / "store")})
    assert stored_paths(work) == [f"{EXP}/configs/config.json"]
    cli(work, "put", "--create", str(src), f"{EXP}/c.json", store=False)
    with Store.open(str(work / ".ml-dash")) as default:
        assert [v.path for v in default.list("")] == [f"{EXP}/c.json"]


def test_tag_and_describe_change_the_version_in_place(work: Path) -> None:
    src = write(work / "a.txt", b"a")
    path = f"{EXP}/a.txt"
    first = as_json(cli(work, "put", "--create", str(src), path, "--json", "--tag", "x"))
    cli(work, "put", str(src), path)
    newest = as_json(cli(work, "tag", path, "--add", "best", "--add", "keep", "--json"))
    assert newest["tags"] == ["best", "keep"] and newest["id"] != first["id"]
    shown = cli(work, "tag", path, "--remove", "keep").stdout
    assert shown.strip().endswith(": best")
    old = as_json(cli(work, "tag", path, "--id", first["id"], "--set", "a,b", "--add", "c", "--json"))
    assert old["id"] == first["id"] and old["tags"] == ["a", "b", "c"]
    assert cli(work, "tag", path, "--id", first["id"], "--set", "").stdout.strip().endswith("(no tags)")
    described = as_json(cli(work, "describe", path, "baseline run", "--json"))
    assert described["description"] == "baseline run" and described["id"] == newest["id"]
    assert "(no description)" in cli(work, "describe", path, "--id", first["id"], "").stdout
    history = as_json(cli(work, "versions", path, "--json"))
    assert [(h["id"], h["tags"], h["description"]) for h in history] == [
        (first["id"], [], None),
        (newest["id"], ["best"], "baseline run"),
    ]


def test_bad_input_is_one_line_and_stores_nothing(work: Path) -> None:
    src = write(work / "w.bin", b"w")
    one_error_line(cli(work, "ls", rc=1), "no store")
    one_error_line(cli(work, "put", str(work / "missing.bin"), f"{EXP}/m.bin", rc=1), "missing.bin")
    one_error_line(cli(work, "put", str(src), "alice/cv", rc=1), "alice/cv")
    one_error_line(cli(work, "put", str(src), f"{EXP}/../w.bin", rc=1), "..")
    one_error_line(cli(work, "put", str(src), f"{EXP}/w.bin", "--meta", "epoch", rc=1), "--meta", "epoch")
    one_error_line(cli(work, "put", str(src), f"{EXP}/w.bin", "--tag", "a,b", rc=1), "a,b")
    one_error_line(cli(work, "put", str(work), f"{EXP}/w.bin", rc=1), "directory")
    assert stored_paths(work) == []

    cli(work, "put", "--create", str(src), f"{EXP}/w.bin")
    one_error_line(cli(work, "get", f"{EXP}/w.bin", "--id", "12345", str(work / "x"), rc=1), "12345")
    one_error_line(cli(work, "get", f"{EXP}/w.bin", "--id", "latest", str(work / "x"), rc=1), "latest")
    one_error_line(cli(work, "get", f"{EXP}/nope.bin", str(work / "x"), rc=1))
    one_error_line(
        cli(work, "get", f"{EXP}/w.bin", str(work / "no" / "such" / "dir"), rc=1), "no such directory"
    )
    one_error_line(cli(work, "versions", f"{EXP}/nope.bin", rc=1))
    one_error_line(cli(work, "ls", f"{EXP}/nope", rc=1))
    one_error_line(cli(work, "tag", f"{EXP}/w.bin", "--id", "999", "--add", "t", rc=1), "999")
    assert not (work / "x").exists()
    assert stored_paths(work) == [f"{EXP}/w.bin"]


def test_a_foreign_catalog_is_one_line_and_left_as_it_is(work: Path) -> None:
    """A `.mldashfs/catalog.sqlite` that is some other program's database (its own `files` table)
    cannot take mldashfs's schema: one line, and that program's rows are left alone."""
    db = work / "store" / ".mldashfs" / "catalog.sqlite"
    db.parent.mkdir(parents=True)
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        con.execute("CREATE TABLE files (x)")
        con.execute("INSERT INTO files VALUES ('theirs')")
    one_error_line(cli(work, "ls", rc=1), "cannot open the catalog")
    one_error_line(cli(work, "put", str(write(work / "a.txt", b"a")), f"{EXP}/a.txt", rc=1), "cannot open the catalog")
    with contextlib.closing(sqlite3.connect(db)) as con:
        assert con.execute("SELECT * FROM files").fetchall() == [("theirs",)]


def test_get_refuses_bytes_that_do_not_match_their_checksum(work: Path) -> None:
    src = write(work / "model.pt", b"good bytes")
    cli(work, "put", "--create", str(src), f"{EXP}/model.pt")
    with Store.open(str(work / "store")) as store:
        blob = store.local_file(store.latest(f"{EXP}/model.pt"))
    assert blob is not None
    os.chmod(blob, 0o644)
    Path(blob).write_bytes(b"evil bytes")
    out = work / "out"
    out.mkdir()
    one_error_line(cli(work, "get", f"{EXP}/model.pt", str(out), rc=1), "model.pt", "nothing written")
    assert list(out.iterdir()) == []


def test_progress_bar_only_on_a_terminal(work: Path) -> None:
    src = write(work / "big.bin", os.urandom(6 << 20))
    quiet = cli(work, "put", "--create", str(src), f"{EXP}/big.bin")
    assert quiet.stderr == ""
    primary, secondary = os.openpty()
    fcntl.ioctl(secondary, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))  # a real terminal's size
    seen: list[bytes] = []

    def drain() -> None:
        while True:
            try:
                chunk = os.read(primary, 4096)
            except OSError:
                return
            if not chunk:
                return
            seen.append(chunk)

    reader = threading.Thread(target=drain, daemon=True)
    reader.start()
    try:
        env = {k: v for k, v in os.environ.items() if k != "ML_DASH_STORE"}
        done = subprocess.run(
            [
                sys.executable,
                "-m",
                "mldashfs.cli",
                "get",
                f"{EXP}/big.bin",
                str(work / "copy.bin"),
                "--store",
                str(work / "store"),
            ],
            cwd=work,
            env=env,
            stdout=subprocess.PIPE,
            stderr=secondary,
            timeout=60,
        )
    finally:
        os.close(secondary)
        reader.join(timeout=10)
        os.close(primary)
    assert done.returncode == 0
    assert (work / "copy.bin").read_bytes() == src.read_bytes()
    assert b"big.bin" in b"".join(seen) and b"%|" in b"".join(seen)


def test_one_store_two_doors(work: Path) -> None:
    from ml_dash import Experiment

    data = os.urandom(100_000)
    src = write(work / "best.pt", data)
    put = as_json(cli(work, "put", "--create", str(src), f"{EXP}/models/", "--json", "--tag", "best"))
    with Store.open(str(work / "store")) as store:
        v = store.latest(f"{EXP}/models/best.pt")
        assert (v.id_str, v.sha256, store.read_bytes(v)) == (put["id"], sha(data), data)
    with Experiment(prefix=EXP, local_path=str(work / "store")).run as exp:
        assert exp.files("models/best.pt").read_bytes() == data
        listed = exp.files("models").list()
        assert [(r["id"], r["checksum"], r["tags"]) for r in listed] == [(put["id"], sha(data), ["best"])]
        saved = exp.files("configs").save_json({"lr": 0.001}, to="config.json")
    shown = as_json(cli(work, "versions", f"{EXP}/configs/config.json", "--json"))
    assert [(s["id"], s["checksum"]) for s in shown] == [(saved["id"], saved["checksum"])]
    cli(work, "get", f"{EXP}/configs/config.json", str(work))
    assert json.loads((work / "config.json").read_text()) == {"lr": 0.001}


def test_gc_reclaims_the_bytes_of_deleted_versions_only(work: Path) -> None:
    src = write(work / "ckpt.bin", b"x" * 5000)
    first = as_json(cli(work, "put", "--create", str(src), f"{EXP}/models/ckpt.bin", "--json"))
    write(src, b"y" * 3000)
    cli(work, "put", str(src), f"{EXP}/models/ckpt.bin")
    assert as_json(cli(work, "gc", "--json"))["reclaimedBytes"] == 0  # nothing deleted yet
    with Store.open(work / "store") as store:
        old = store.get_version(first["id"])
        blob = Path(store.local_file(old))
        store.delete_version(old.id)
    assert blob.exists()  # deletes are soft: the bytes stay until gc
    assert as_json(cli(work, "gc", "--json")) == {"dryRun": False, "reclaimedBytes": 5000, "removedVersions": []}
    assert not blob.exists()
    assert cli(work, "gc").stdout.strip() == "removed 0 versions, reclaimed 0 B"
    got = work / "out.bin"
    cli(work, "get", f"{EXP}/models/ckpt.bin", str(got))
    assert got.read_bytes() == b"y" * 3000  # the live version is untouched


def test_du_and_status_tell_logical_from_stored_bytes(work: Path) -> None:
    src = write(work / "ckpt.bin", b"w" * 4096)
    for name in ("a.bin", "b.bin", "a.bin"):  # the same bytes three times: one blob
        cli(work, "put", "--create", str(src), f"{EXP}/models/{name}")
    cli(work, "put", str(write(work / "cfg.json", b"{}")), f"{EXP}/cfg.json")
    assert as_json(cli(work, "du", EXP, "--json")) == {
        "path": EXP, "versions": 4, "logical": 3 * 4096 + 2, "blobs": 2, "stored": 4096 + 2, "reclaimable": 0}
    assert cli(work, "du", f"{EXP}/models/a.bin").stdout.strip() == (
        "2 versions: 8.0 KiB logical, 4.0 KiB stored in 1 blob (dedup saves 4.0 KiB)")
    cli(work, "du", "--store", str(work / "store"), store=False)  # the whole store
    with Store.open(work / "store") as store:
        store.delete(f"{EXP}/cfg.json")
    assert "; 2 B of deleted versions for gc" in cli(work, "status").stdout
    one_error_line(cli(work, "du", f"{EXP}/nothing", rc=1), "nothing")


# -- the store a command opens ---------------------------------------------------------------


def test_a_mistyped_store_is_refused_by_every_command_and_nothing_is_made(work: Path) -> None:
    src = write(work / "w.bin", b"w")
    typo = work / "sotre"
    commands = [
        ("put", str(src), f"{EXP}/w.bin"),
        ("ls",),
        ("ls", EXP, "-r"),
        ("versions", f"{EXP}/w.bin"),
        ("get", f"{EXP}/w.bin", str(work / "out.bin")),
        ("tag", f"{EXP}/w.bin", "--add", "t"),
        ("describe", f"{EXP}/w.bin", "text"),
        ("gc",),
    ]
    for args in commands:
        for where in ("after", "before"):  # --store after the subcommand, and before it
            argv = [*args, "--store", str(typo)] if where == "after" else ["--store", str(typo), *args]
            one_error_line(cli(work, *argv, rc=1, store=False), "no store at", str(typo), "mldashfs init")
    (work / "plain").mkdir()
    (work / "plain" / "notes.txt").write_text("mine")
    one_error_line(cli(work, "put", str(src), f"{EXP}/w.bin", "--store", str(work / "plain"), rc=1, store=False),
                   "no store at", "holds no mldashfs store")
    one_error_line(cli(work, "put", str(src), f"{EXP}/w.bin", rc=1, store=False, env={"ML_DASH_STORE": str(typo)}),
                   str(typo))
    assert not typo.exists() and not (work / ".ml-dash").exists()
    assert sorted(p.name for p in (work / "plain").iterdir()) == ["notes.txt"]


def test_init_and_create_make_a_store_explicitly(work: Path) -> None:
    src = write(work / "w.bin", b"w")
    made = cli(work, "init", str(work / "store"), store=False).stdout
    assert "made an empty store" in made and str(work / "store") in made
    assert "already holds a store" in cli(work, "init", store=True).stdout  # DIR from --store
    cli(work, "put", str(src), f"{EXP}/w.bin")
    assert "already holds a store" in cli(work, "init", str(work / "store"), store=False).stdout
    assert stored_paths(work) == [f"{EXP}/w.bin"]  # init left the store as it was
    cli(work, "init", store=False, env={"ML_DASH_STORE": str(work / "from-env")})
    assert as_json(cli(work, "--store", str(work / "from-env"), "ls", "--json", store=False)) == []
    cli(work, "put", "--create", str(src), f"{EXP}/w.bin", "--store", str(work / "new"), store=False)
    assert as_json(cli(work, "--store", str(work / "new"), "ls", f"{EXP}/w.bin", "--json", store=False))[0][
        "checksum"
    ] == sha(b"w")
    # a --store after the subcommand wins over one before it
    rows = as_json(cli(work, "--store", str(work / "from-env"), "ls", "-r", "--json", "--store", str(work / "new"),
                       store=False))
    assert [r["filename"] for r in rows] == ["w.bin"]


def test_version(work: Path) -> None:
    from importlib.metadata import version

    assert cli(work, "--version", store=False).stdout.strip() == f"mldashfs {version('mldashfs')}"


def test_mount_refuses_a_mistyped_store_and_a_bad_log_file_or_experiment(work: Path) -> None:
    """Checked before anything is mounted: one line each, and nothing made."""
    mnt = work / "mnt"
    mnt.mkdir()
    typo = work / "sotre"
    one_error_line(cli(work, "mount", "--store", str(typo), str(mnt), rc=1, store=False), "no store at", str(typo))
    assert not typo.exists()
    cli(work, "init")
    one_error_line(cli(work, "mount", "--log-file", str(work / "missing" / "dir" / "log"), str(mnt), rc=1),
                   "log file", str(work / "missing"))
    try:
        for bad, why in [("", "NAMESPACE/PROJECT/EXPERIMENT"), ("alice/cv", "NAMESPACE/PROJECT/EXPERIMENT"),
                         ("alice/cv/resnet/x", "NAMESPACE/PROJECT/EXPERIMENT"), ("alice/cv/resnet ", "white space"),
                         ("alice/ cv/resnet", "white space")]:
            one_error_line(cli(work, "mount", "--experiment", bad, str(mnt), rc=1), why)
    finally:
        if os.path.ismount(mnt):  # a failed check mounted after all: never leave a mount behind
            subprocess.run(["fusermount3", "-u", str(mnt)], check=False)
    assert stored_paths(work) == []
    with Store.open(str(work / "store")) as store:
        assert store.listdir("") == []  # no experiment was made either


# -- bad input: one line, never a traceback, nothing lost --------------------------------------


def strict_json(done: subprocess.CompletedProcess[str]):
    """stdout parsed as standard JSON: NaN and Infinity, which Python's json accepts, fail the test."""
    return json.loads(done.stdout, parse_constant=lambda c: pytest.fail(f"not JSON: {c}"))


def test_nan_and_infinities_in_meta_are_refused_so_json_output_stays_json(work: Path) -> None:
    src = write(work / "w.bin", b"w")
    path = f"{EXP}/w.bin"
    for value in ("NaN", "Infinity", "-Infinity", "[1, NaN]", '{"a": Infinity}'):
        one_error_line(cli(work, "put", "--create", str(src), path, "--meta", f"loss={value}", rc=1), "loss=", "NaN")
    one_error_line(cli(work, "put", "--create", str(src), path, "--meta", "loss=1e999", rc=1), "NaN or an infinity")
    assert stored_paths(work) == []
    put = strict_json(cli(work, "put", "--create", str(src), path, "--meta", 'note="NaN"', "--meta", "x=1.5", "--json"))
    assert put["metadata"] == {"note": "NaN", "x": 1.5}
    assert strict_json(cli(work, "ls", EXP, "-r", "--json"))[0]["metadata"] == {"note": "NaN", "x": 1.5}


def test_a_version_id_too_large_for_an_id_is_one_line(work: Path) -> None:
    src = write(work / "w.bin", b"w")
    cli(work, "put", "--create", str(src), f"{EXP}/w.bin")
    huge = "99999999999999999999"
    for args in (("get", f"{EXP}/w.bin", "--id", huge, str(work / "x")),
                 ("tag", f"{EXP}/w.bin", "--id", huge, "--add", "t"),
                 ("describe", f"{EXP}/w.bin", "--id", huge, "text"),
                 ("get", f"{EXP}/w.bin", "--id", str(1 << 63), str(work / "x")),
                 ("get", f"{EXP}/w.bin", "--id", "-1", str(work / "x"))):
        one_error_line(cli(work, *args, rc=1), args[3], "not a file id")
    assert not (work / "x").exists()


def test_names_that_are_not_utf8_are_one_line_and_such_local_paths_work(work: Path) -> None:
    raw = "w\udcff.bin"  # the bytes b"w\xff.bin", as Python gives a name that is not UTF-8
    src = write(work / raw, b"bytes")
    one_error_line(cli(work, "put", "--create", str(src), f"{EXP}/", rc=1), "UTF-8")
    one_error_line(cli(work, "put", "--create", str(src), f"{EXP}/{raw}", rc=1), "UTF-8")
    one_error_line(cli(work, "ls", f"{EXP}/{raw}", rc=1), "UTF-8")
    assert stored_paths(work) == []
    cli(work, "put", "--create", str(src), f"{EXP}/w.bin")  # a local name that is not UTF-8 is fine as a source
    out = work / f"out{raw}"
    printed = cli(work, "get", f"{EXP}/w.bin", str(out), errors="surrogateescape").stdout  # the name as it is
    assert out.read_bytes() == b"bytes" and str(out) in printed


def test_a_catalog_that_refuses_a_write_is_one_line_and_loses_nothing(work: Path) -> None:
    src = write(work / "w.bin", b"first")
    path = f"{EXP}/w.bin"
    first = as_json(cli(work, "put", "--create", str(src), path, "--json", "--tag", "a"))
    db = work / "store" / ".mldashfs" / "catalog.sqlite"
    with contextlib.closing(sqlite3.connect(db)) as con, con:
        con.execute("CREATE TRIGGER refuse_insert BEFORE INSERT ON versions BEGIN SELECT RAISE(ABORT, 'no room'); END")
        con.execute("CREATE TRIGGER refuse_update BEFORE UPDATE ON versions BEGIN SELECT RAISE(ABORT, 'no room'); END")
    blobs_before = sorted(p for p in (work / "store").rglob("*") if p.is_file() and ".mldashfs" not in p.parts)
    write(src, b"second")
    one_error_line(cli(work, "put", str(src), path, rc=1), "refused", "no room")
    one_error_line(cli(work, "put", str(src), f"{EXP}/new.bin", rc=1), "refused", "no room")
    one_error_line(cli(work, "tag", path, "--add", "b", rc=1), "refused", "no room")
    one_error_line(cli(work, "describe", path, "text", rc=1), "refused", "no room")
    blobs_after = sorted(p for p in (work / "store").rglob("*") if p.is_file() and ".mldashfs" not in p.parts)
    assert blobs_after == blobs_before  # the bytes of the refused versions were removed again
    assert as_json(cli(work, "versions", path, "--json")) == [first]
    got = work / "got.bin"
    cli(work, "get", path, str(got))
    assert got.read_bytes() == b"first"


def test_one_name_rule_for_the_cli_and_the_sdk(work: Path) -> None:
    """A leading '/' means the store's top for both (one is dropped); '//', white space at either end
    of a name, and '' as an experiment are refused by both."""
    from ml_dash import Experiment, errors

    src = write(work / "a.txt", b"a")
    put = as_json(cli(work, "put", "--create", str(src), f"/{EXP}/a.txt", "--json"))
    assert (put["experiment"], put["filename"]) == (EXP, "a.txt")
    assert [r["filename"] for r in as_json(cli(work, "ls", f"/{EXP}", "--json"))] == ["a.txt"]
    with Experiment(prefix=f"/{EXP}", local_path=str(work / "store")).run as exp:
        assert exp.path == EXP and [f["filename"] for f in exp.files().list()] == ["a.txt"]
    for bad, why in [(f"//{EXP}", "empty component"), ("alice/cv /resnet", "white space"),
                     ("alice/cv/resnet ", "white space"), ("", "three names")]:
        with pytest.raises(errors.InvalidPath, match=why):
            Experiment(prefix=bad, local_path=str(work / "store"))
        if bad:
            one_error_line(cli(work, "put", str(src), f"{bad}/a.txt", rc=1), why)
    one_error_line(cli(work, "put", str(src), f"{EXP}/a.txt ", rc=1), "white space")
    assert stored_paths(work) == [f"{EXP}/a.txt"]


def test_ls_shows_links_as_ls_l_does_and_get_writes_a_link(work: Path) -> None:
    cli(work, "init")
    with Store.open(work / "store") as s:
        s.put_bytes(f"{EXP}/models/best.pt", b"weights")
        s.symlink(f"{EXP}/models/latest.pt", "best.pt")
        s.symlink(f"{EXP}/models/gone.pt", "/nowhere/x.pt")
    out = cli(work, "ls", f"{EXP}/models").stdout
    assert "latest.pt -> best.pt" in out and "gone.pt -> /nowhere/x.pt" in out and "best.pt  " in out
    assert "latest.pt -> best.pt" in cli(work, "ls", "-r", EXP).stdout
    rows = {r["filename"]: r for r in as_json(cli(work, "ls", "--json", f"{EXP}/models"))}
    assert rows["latest.pt"]["type"] == "link" and rows["latest.pt"]["linkTarget"] == "best.pt"
    assert rows["best.pt"]["type"] == "file" and "linkTarget" not in rows["best.pt"]
    assert [r["linkTarget"] for r in as_json(cli(work, "versions", "--json", f"{EXP}/models/gone.pt"))] == [
        "/nowhere/x.pt"
    ]
    done = cli(work, "get", f"{EXP}/models/gone.pt", "out.pt")
    assert os.readlink(work / "out.pt") == "/nowhere/x.pt" and "out.pt -> /nowhere/x.pt" in done.stdout
    cli(work, "get", f"{EXP}/models/latest.pt", "out.pt")  # replaces the link it wrote before
    assert os.readlink(work / "out.pt") == "best.pt"


def test_control_characters_in_names_are_printed_escaped(work: Path) -> None:
    """A stored name with an escape sequence never reaches the terminal raw (it would recolour or
    rewrite the screen): tables, messages and errors show it as \\xNN."""
    cli(work, "init")
    src = work / "f.txt"
    src.write_text("abc")
    name = "bad\x1b[31mname\x07"
    put = cli(work, "put", str(src), f"{EXP}/{name}")
    listed = cli(work, "ls", EXP)
    history = cli(work, "versions", f"{EXP}/{name}")
    for out in (put.stdout, listed.stdout, history.stdout):
        assert "\x1b" not in out and "\x07" not in out
    assert "bad\\x1b[31mname\\x07" in put.stdout + listed.stdout
    lines = listed.stdout.splitlines()
    assert lines[1].index("3 B") == lines[0].index("SIZE") + len("SIZE") - len("3 B")  # columns still align
    err = cli(work, "get", f"{EXP}/missing\x1b[2J", str(work / "x"), rc=1).stderr
    assert "\x1b" not in err
