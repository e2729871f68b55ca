"""Bad input gets an exception naming the problem, and the store is left exactly as it was."""

from __future__ import annotations

import numpy as np
import pytest

from ml_dash import Experiment, errors

BAD_NAMES = [
    ("../x.txt", "'..'"),
    ("a/../../x.txt", "'..'"),
    ("/etc/x.txt", "absolute"),
    ("a\x00b.txt", "NUL"),
    ("a/./b.txt", "'.'"),
    ("", "name a file"),
    ("a//b.txt", "empty component"),
    ("dir/", "name a file"),
    ("x" * 256 + ".txt", "longer than 255 bytes"),
]

SAVERS = {
    "upload": lambda ref, to: ref.upload("local.bin", to=to),
    "save_text": lambda ref, to: ref.save_text("t", to=to),
    "save_json": lambda ref, to: ref.save_json({"a": 1}, to=to),
    "save_blob": lambda ref, to: ref.save_blob(b"b", to=to),
    "save_pkl": lambda ref, to: ref.save_pkl([1], to=to),
    "save_image": lambda ref, to: ref.save_image(np.zeros((4, 4)), to=to),
    "save_video": lambda ref, to: ref.save_video(np.zeros((2, 16, 16)), to=to),
    "save": lambda ref, to: ref.save(b"b", to=to),
}


@pytest.fixture
def seeded(exp, workdir, snapshot):
    """An experiment already holding a file and params, plus a local source file."""
    (workdir / "local.bin").write_bytes(b"local")
    exp.files("keep").save_text("kept", to="kept.txt")
    exp.params.set(lr=0.1)
    before = snapshot(exp)
    yield exp
    assert snapshot(exp) == before


@pytest.mark.parametrize("saver", list(SAVERS))
@pytest.mark.parametrize("name, message", BAD_NAMES, ids=[repr(n[:12]) for n, _ in BAD_NAMES])
def test_bad_to_names_are_refused(seeded, saver, name, message):
    with pytest.raises(errors.InvalidPath, match=message):
        SAVERS[saver](seeded.files("a"), name)


@pytest.mark.parametrize("prefix", ["../up", "a/../b", "a/./b", "a\x00b", "a//b", "y" * 300])
def test_bad_prefixes_are_refused(seeded, prefix):
    with pytest.raises(errors.InvalidPath):
        seeded.files(prefix).save_text("t", to="x.txt")


@pytest.mark.parametrize("saver", list(SAVERS))
def test_metadata_that_is_not_json_is_refused(seeded, saver):
    with pytest.raises(errors.InvalidValue, match="JSON"):
        SAVERS[saver](seeded.files(prefix="a", metadata={"f": object()}), "x.bin")


def test_metadata_that_is_not_json_is_refused_per_call(seeded):
    with pytest.raises(errors.InvalidValue, match="JSON"):
        seeded.files("a").save_text("t", to="x.txt", metadata={"when": {1, 2}})
    with pytest.raises(errors.InvalidValue, match="JSON"):
        seeded.files("a").save_json({"bad": object()}, to="x.json")


def test_missing_source_files_are_named(seeded):
    with pytest.raises(errors.NotFound, match="nope.bin"):
        seeded.files("a").upload("nope.bin")
    with pytest.raises(errors.NotFound, match="nope.bin"):
        seeded.files(file_path="nope.bin").save()
    with pytest.raises(errors.NotFound, match="nope.bin"):
        seeded.files("nope.bin", prefix="/models")
    with pytest.raises(errors.IsADirectory, match="upload_dir"):
        seeded.files("a").upload(".")


@pytest.mark.parametrize("file_id", ["abc123", "123", "0", 42, "9" * 30, "-1"])
def test_unknown_file_ids_are_named(seeded, file_id):
    for action in ("download", "delete", "read_text"):
        with pytest.raises(errors.NotFound, match=str(file_id)):
            getattr(seeded.files(file_id=file_id), action)()
    with pytest.raises(errors.NotFound, match=str(file_id)):
        seeded.files(file_id=file_id, tags=["x"]).update()
    assert not seeded.files(file_id=file_id).exists()


def test_a_file_id_of_another_experiment_is_unknown_here(seeded, store_dir):
    with Experiment(prefix="bob/other/exp", local_path=store_dir).run as other:
        foreign = other.files.save_text("theirs", to="t.txt")["id"]
    with pytest.raises(errors.NotFound, match=foreign):
        seeded.files(file_id=foreign).download()


def test_an_encoder_failure_stores_nothing(seeded):
    with pytest.raises(ValueError):
        seeded.files("a").save_image(np.zeros((2, 3, 4, 5)), to="x.png")
    with pytest.raises(Exception, match="pickle|Pickl"):
        seeded.files("a").save_pkl(lambda: 1, to="x.pkl")


def test_update_needs_an_id_and_something_to_change(seeded):
    with pytest.raises(ValueError, match="file_id"):
        seeded.files("keep/kept.txt").update()
    kept = seeded.files().list()[0]["id"]
    with pytest.raises(ValueError, match="description"):
        seeded.files(file_id=kept).update()
    with pytest.raises(errors.InvalidValue, match="JSON"):
        seeded.files(file_id=kept, metadata={"x": object()}).update()


def test_bad_globs_and_missing_paths(seeded):
    with pytest.raises(errors.NotFound, match="missing.txt"):
        seeded.files("missing.txt").download()
    with pytest.raises(errors.NotFound, match="missing.txt"):
        seeded.files("missing.txt").delete()
    with pytest.raises(errors.NotFound, match=r"\*\.nothing"):
        seeded.files().delete("*.nothing")


def test_bad_run_data_is_refused(seeded):
    with pytest.raises(errors.InvalidValue, match="JSON"):
        seeded.params.set(model=object())
    with pytest.raises(errors.InvalidValue, match="JSON"):
        seeded.metrics("loss").append(value=object())
    with pytest.raises(errors.InvalidPath):
        seeded.metrics("../escape").append(value=1)


@pytest.mark.parametrize(
    "kwargs, message",
    [
        ({"prefix": "only/two"}, "three names"),
        ({"prefix": "a/b/c/d"}, "three names"),
        ({"prefix": "a/../c"}, "'..'"),
        ({"name": "e"}, "project="),
        ({"name": "e", "project": "p", "prefix": "a/b/c"}, "not both"),
        ({"name": "e/f", "project": "p"}, "'/'"),
        ({"prefix": ""}, "three names"),
        ({"prefix": "alice/cv/resnet "}, "white space"),
        ({"prefix": "alice/ cv/resnet"}, "white space"),
        ({"name": "run1 ", "project": "p"}, "white space"),
        ({"name": "run\udcff", "project": "p"}, "UTF-8"),
    ],
)
def test_bad_experiments_are_refused(store_dir, kwargs, message):
    with pytest.raises((ValueError, errors.StoreError), match=message):
        Experiment(local_path=store_dir, **kwargs)
    assert not store_dir.exists()


@pytest.mark.parametrize("bad", [float("nan"), float("inf"), float("-inf"), {"deep": [1, float("nan")]}])
def test_nan_and_infinities_in_metadata_are_refused(seeded, bad):
    with pytest.raises(errors.InvalidValue, match="NaN or an infinity"):
        seeded.files("a").save_text("t", to="x.txt", metadata={"loss": bad})
    with pytest.raises(errors.InvalidValue, match="NaN or an infinity"):
        seeded.files(prefix="a", metadata={"loss": bad}).save_text("t", to="x.txt")
    kept = seeded.files("keep/kept.txt").versions()[-1]
    with pytest.raises(errors.InvalidValue, match="NaN or an infinity"):
        seeded.files(file_id=kept["id"], metadata={"loss": bad}).update()
    assert seeded.files("keep/kept.txt").versions()[-1] == kept


def test_names_with_white_space_at_either_end_are_refused(seeded):
    for to in ("x.txt ", " x.txt", "dir /x.txt", "x.txt\n"):
        with pytest.raises(errors.InvalidPath, match="white space"):
            seeded.files("a").save_text("t", to=to)
    with pytest.raises(errors.InvalidPath, match="white space"):
        seeded.files("models ").save_text("t", to="x.txt")
