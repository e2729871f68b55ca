"""Hostile input, by property: no accepted path escapes, only known errors come out, and the catalog
stays consistent after any sequence of bad and good calls."""

from __future__ import annotations

import errno
import hashlib
import json
import os
import tempfile
from collections.abc import Iterator
from typing import Any

import pyfuse3
import pytest
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from mldashfs import paths
from mldashfs.cli.store_commands import parse_meta
from mldashfs.errors import InvalidPath, StoreError
from mldashfs.fs.operations import Operations
from mldashfs.store import INTERNAL, Store
from tests.fs.conftest import Driver

EXP = "alice/cv/resnet"
FUZZ = settings(max_examples=300, deadline=None, derandomize=True)
STATEFUL = settings(max_examples=120, deadline=None, derandomize=True, suppress_health_check=[HealthCheck.function_scoped_fixture])

PARTS = st.sampled_from(["a", "b", ".", "..", "", " ", " a", "a ", "x" * 255, "y" * 256, "é" * 128, "é" * 127 + "e",
                         "\x00", "a\x00b", "\udcff", ".versions", paths.RUN_DATA, INTERNAL, "~", "\\", "c d", "\n",
                         "z" * 200])
PATHS = st.one_of(
    st.text(max_size=60),
    st.tuples(st.sampled_from(["", "/", "//"]), st.lists(PARTS, max_size=8).map("/".join),
              st.sampled_from(["", "/", "//"])).map("".join),
)


def check_clean(p: str) -> None:
    """`p` is a normalised store path: relative, no empty/`.`/`..` part, NUL-free, each part fits."""
    assert not p.startswith("/") and not p.endswith("/") and "\x00" not in p
    for part in p.split("/") if p else []:
        assert part not in ("", ".", "..") and part == part.strip()
        assert len(part.encode("utf-8")) <= paths.NAME_MAX


@FUZZ
@example("a/..")
@example("/" + "/".join(["x" * 255] * 8))
@given(PATHS)
def test_an_accepted_path_is_clean_and_round_trips(text: str) -> None:
    try:
        p = paths.check_path(text)
    except InvalidPath as e:
        assert e.errno in (errno.EINVAL, errno.ENAMETOOLONG)
        return
    check_clean(p)
    assert paths.check_path(p) == p and paths.check_path("/" + p + "/") == p
    assert text.strip("/") == p or text[1:-1] == p or text[1:] == p or text[:-1] == p


@FUZZ
@given(PATHS)
def test_a_path_accepted_for_a_new_file_fits_and_stays_below_an_experiment(text: str) -> None:
    try:
        p = Store.check_new_path(text, is_file=True)
    except StoreError:
        return
    check_clean(p)
    assert len(p.encode("utf-8")) <= paths.STORE_PATH_MAX
    parts = p.split("/")
    assert len(parts) > paths.EXPERIMENT_DEPTH and parts[0] != INTERNAL and ".versions" not in parts


@FUZZ
@given(st.text(max_size=300))
def test_an_accepted_name_is_one_clean_component(text: str) -> None:
    try:
        name = paths.check_name(text)
    except InvalidPath:
        return
    assert name == text and "/" not in name
    check_clean(name)


@FUZZ
@given(st.lists(st.text(max_size=30), max_size=5))
def test_meta_parsing_gives_json_metadata_or_invalid_value(items: list[str]) -> None:
    try:
        meta = parse_meta(items)
    except StoreError as e:
        assert e.errno == errno.EINVAL
        return
    assert json.loads(json.dumps(meta, allow_nan=False)) == meta
    assert all(k == k.strip() and k for k in meta)


def assert_consistent(store: Store) -> None:
    """Every listed version is the newest of its path, inside the experiment, and its bytes match."""
    listed = store.list("")
    for v in listed:
        assert paths.is_below(v.path, EXP) and v.path != EXP
        assert store.latest(v.path).id == v.id
        assert hashlib.sha256(store.read_bytes(v)).hexdigest() == v.sha256
        json.dumps(v.metadata, allow_nan=False)
    assert sorted(v.path for v in listed) == sorted({v.path for v in listed})


@pytest.fixture(scope="module")
def experiment() -> Iterator[Any]:
    """One SDK experiment every example writes into (the state the catalog must keep consistent)."""
    from ml_dash import Experiment

    with tempfile.TemporaryDirectory(prefix="fuzz-") as d:
        exp = Experiment(prefix=EXP, local_path=os.path.join(d, "store"))
        yield exp
        assert_consistent(exp.store)


JSONISH = st.recursive(st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=10),
                       lambda kids: st.lists(kids, max_size=3) | st.dictionaries(st.text(max_size=5), kids, max_size=3),
                       max_leaves=8)


@STATEFUL
@given(prefix=st.one_of(st.none(), PATHS), to=PATHS,
       metadata=st.one_of(st.none(), st.dictionaries(st.text(max_size=8), JSONISH, max_size=3), JSONISH),
       tags=st.one_of(st.none(), st.text(max_size=8), st.lists(st.text(max_size=8), max_size=3)))
def test_sdk_saves_stay_in_the_experiment_or_fail_with_documented_errors(
        experiment: Any, prefix: str | None, to: str, metadata: Any, tags: Any) -> None:
    try:
        result = experiment.files(prefix).save_text("fuzz", to=to, metadata=metadata, tags=tags)
    except (StoreError, ValueError, TypeError):
        return
    v = experiment.store.get_version(result["id"])
    assert v.path.startswith(EXP + "/")
    assert experiment.store.read_bytes(v) == b"fuzz"


XATTR_NAMES = st.one_of(
    st.sampled_from([b"user.mldash.tags", b"user.mldash.description", b"user.mldash.metadata", b"user.xdg.tags",
                     b"user.xdg.comment", b"user.mldash.id", b"user.mldash.checksum", b"security.selinux",
                     b"trusted.x", b"user.", b"user.\xff", b"user.a,b", b"user.\x00"]),
    st.binary(max_size=20).map(lambda b: b"user." + b),
    st.binary(max_size=20),
)
XATTR_VALUES = st.one_of(st.binary(max_size=60), st.sampled_from([b"", b"{}", b"[]", b"{\"a\": NaN}", b"a,,b", b",",
                                                                  b"\xff\xfe", b"x" * 70_000, b"{\"k\": 1e999}"]),
                         JSONISH.map(lambda o: json.dumps(o).encode()))
XATTR_ERRNOS = {errno.ENOTSUP, errno.E2BIG, errno.EINVAL, errno.ENODATA, errno.EILSEQ}


@pytest.fixture(scope="module")
def mounted_ops() -> Iterator[Driver]:
    """Operations over one store, shared by every example (state accumulates, as on a mount)."""
    with tempfile.TemporaryDirectory(prefix="fuzz-xattr-") as d:
        store = Store.open(os.path.join(d, "store"), create=True)
        try:
            store.mkdir(EXP, parents=True)
            fs = Driver(Operations(store, root=EXP))
            fs.write_file("f.bin", b"bytes")
            yield fs
            assert_consistent(store)
        finally:
            store.close()


@STATEFUL
@example(calls=[(b"user.mldash.description", b"x" * 70_000), (b"user.\xff", b"\xff"), (b"user.mldash.metadata", b"[]")])
@given(st.lists(st.tuples(XATTR_NAMES, st.one_of(st.none(), XATTR_VALUES)), min_size=1, max_size=6))
def test_xattrs_take_any_name_and_value_with_known_errnos_only(mounted_ops: Driver,
                                                               calls: list[tuple[bytes, bytes | None]]) -> None:
    fs = mounted_ops
    ino = fs.ino("f.bin")
    for name, value in calls:
        try:
            if value is None:
                fs("removexattr", ino, name, fs.ctx)
            else:
                fs("setxattr", ino, name, value, fs.ctx)
        except pyfuse3.FUSEError as e:
            assert e.errno in XATTR_ERRNOS, (name, value, errno.errorcode.get(e.errno))
    for listed in fs("listxattr", ino, fs.ctx):
        fs("getxattr", ino, listed, fs.ctx)
    assert fs.read_file("f.bin") == b"bytes"
    v = fs.ops.store.latest(f"{EXP}/f.bin")
    assert json.loads(json.dumps(v.metadata, allow_nan=False)) == v.metadata
