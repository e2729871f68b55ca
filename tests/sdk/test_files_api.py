"""The 002 files API as a user calls it: every saver in prefix and direct style, list, download,
delete, exists/read_text, update, versions, checksum checks, and visibility to another process."""

from __future__ import annotations

import hashlib
import io
import json
import os
import pickle
import subprocess
import sys
from collections.abc import Callable
from typing import Any

import imageio.v2 as imageio
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import pytest
import torch
from PIL import Image

from ml_dash import Experiment, errors

LOCAL = b"local bytes \x00\xff" * 10
PIXELS = (np.arange(16 * 16 * 3) % 256).astype(np.uint8).reshape(16, 16, 3)


def figure() -> Any:
    fig, ax = plt.subplots(figsize=(2, 2))
    ax.plot([0, 1, 2], [2, 1, 0])
    return fig


def png_pixels(data: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(data)))


def mp4_frames(data: bytes, tmp: str) -> int:
    with open(tmp, "wb") as f:
        f.write(data)
    return len(imageio.mimread(tmp))


# saver name -> (call(ref, to), file name, check(stored bytes, tmp path) -> bool)
SAVERS: dict[str, tuple[Callable[[Any, str], dict], str, Callable[[bytes, str], bool]]] = {
    "upload": (lambda ref, to: ref.upload("local.bin", to=to), "c.bin", lambda d, t: d == LOCAL),
    "save_text": (lambda ref, to: ref.save_text("yaml: content\n", to=to), "c.yaml", lambda d, t: d == b"yaml: content\n"),
    "save_json": (lambda ref, to: ref.save_json({"lr": 0.001}, to=to), "c.json", lambda d, t: json.loads(d) == {"lr": 0.001}),
    "save_blob": (lambda ref, to: ref.save_blob(b"\x00\x01", to=to), "c.bin", lambda d, t: d == b"\x00\x01"),
    "save_torch": (
        lambda ref, to: ref.save_torch({"w": torch.arange(3)}, to=to),
        "c.pt",
        lambda d, t: torch.load(io.BytesIO(d))["w"].tolist() == [0, 1, 2],
    ),
    "save_pkl": (lambda ref, to: ref.save_pkl({"a": (1, 2)}, to=to), "c.pkl", lambda d, t: pickle.loads(d) == {"a": (1, 2)}),
    "save_fig": (lambda ref, to: ref.save_fig(figure(), to=to, dpi=50), "c.png", lambda d, t: png_pixels(d).shape[:2] == (100, 100)),
    "save_image": (lambda ref, to: ref.save_image(PIXELS, to=to), "c.png", lambda d, t: (png_pixels(d) == PIXELS).all()),
    "save_video": (
        lambda ref, to: ref.save_video(np.random.default_rng(0).random((6, 32, 32, 3)), to=to, fps=10),
        "c.mp4",
        lambda d, t: mp4_frames(d, t) == 6,
    ),
    "save": (lambda ref, to: ref.save({"k": "v"}, to=to), "c.json", lambda d, t: json.loads(d) == {"k": "v"}),
}


@pytest.mark.parametrize("style", ["prefix", "direct"])
@pytest.mark.parametrize("saver", list(SAVERS))
def test_every_saver_stores_under_prefix_and_to_folders(exp, workdir, tmp_path, saver, style):
    call, name, check = SAVERS[saver]
    (workdir / "local.bin").write_bytes(LOCAL)
    if style == "prefix":
        result = call(exp.files("a"), f"b/{name}")
    else:
        result = call(exp.files, f"a/b/{name}")
    assert (result["path"], result["prefix"], result["filename"]) == ("/a/b", "a/b", name)
    data = exp.files(f"a/b/{name}").read_bytes()
    assert result["sizeBytes"] == len(data) > 0
    assert result["checksum"] == hashlib.sha256(data).hexdigest()
    assert check(data, str(tmp_path / f"check-{name}"))
    assert [(f["id"], f["path"], f["filename"]) for f in exp.files().list()] == [(result["id"], "/a/b", name)]


def test_result_dict_and_metadata_kwargs(exp):
    result = exp.files("models").save_torch(
        {"w": torch.zeros(2)},
        to="best_model.pt",
        description="Best model from epoch 50",
        tags=["checkpoint", "best"],
        metadata={"epoch": 50, "val_accuracy": 0.95},
    )
    for key in ("id", "filename", "path", "sizeBytes", "checksum", "contentType", "createdAt", "updatedAt"):
        assert result[key]
    assert result["description"] == "Best model from epoch 50"
    assert result["tags"] == ["checkpoint", "best"]
    assert result["metadata"] == {"epoch": 50, "val_accuracy": 0.95}
    assert exp.files().list(tags=["best"]) == [result]
    assert exp.files().list(tags=["best", "other"]) == []


def test_files_defaults_apply_to_saves_and_calls_override_them(exp):
    ref = exp.files(prefix="/plots", description="d", tags=["plot"], metadata={"run": 1})
    first = ref.save_text("a", to="a.txt")
    second = ref.save_text("b", to="b.txt", description="own", tags=["x"])
    assert (first["description"], first["tags"], first["metadata"]) == ("d", ["plot"], {"run": 1})
    assert (second["description"], second["tags"], second["metadata"]) == ("own", ["x"], {"run": 1})


def test_saving_a_name_again_keeps_both_versions(exp):
    one = exp.files("configs").save_json({"v": 1}, to="config.json")
    two = exp.files("configs").save_json({"v": 2}, to="config.json")
    assert int(two["id"]) > int(one["id"])
    assert json.loads(exp.files("configs/config.json").read_text()) == {"v": 2}
    assert [f["id"] for f in exp.files().list()] == [two["id"]]
    old = exp.files(file_id=one["id"], dest_path="old.json").download()
    assert json.loads(open(old).read()) == {"v": 1}


def test_saver_without_to_uses_the_ref_as_the_file(exp):
    result = exp.files("notes/todo.txt").save_text("x")
    assert (result["path"], result["filename"]) == ("/notes", "todo.txt")
    with pytest.raises(ValueError, match="to= is required"):
        exp.files().save_text("x")


def test_upload_keeps_the_source_name_unless_to_renames_it(exp, workdir):
    (workdir / "model.pt").write_bytes(b"weights")
    assert exp.files("checkpoints").upload("./model.pt")["filename"] == "model.pt"
    assert exp.files("checkpoints").upload("./model.pt", to="best.pt")["filename"] == "best.pt"
    assert exp.files.upload("./model.pt", to="models/checkpoints/best.pt")["path"] == "/models/checkpoints"
    assert [f["prefix"] + "/" + f["filename"] for f in exp.files().list()] == [
        "checkpoints/best.pt",
        "checkpoints/model.pt",
        "models/checkpoints/best.pt",
    ]


@pytest.mark.parametrize(
    "content, to, check",
    [
        ("local.bin", None, lambda d: d == LOCAL),
        (b"\x01\x02", "x.bin", lambda d: d == b"\x01\x02"),
        ([1, 2], "x.json", lambda d: json.loads(d) == [1, 2]),
        (PIXELS, "x.png", lambda d: (png_pixels(d) == PIXELS).all()),
        (PIXELS, "x.npy", lambda d: (np.load(io.BytesIO(d)) == PIXELS).all()),
        (torch.nn.Linear(2, 1), "x.pt", lambda d: isinstance(torch.load(io.BytesIO(d), weights_only=False), torch.nn.Linear)),
        (pd.DataFrame({"a": [1, 2]}), "x.csv", lambda d: pd.read_csv(io.BytesIO(d))["a"].tolist() == [1, 2]),
        (go.Figure(go.Scatter(y=[1, 3])), "x.json", lambda d: json.loads(d)["data"][0]["y"] == [1, 3]),
    ],
    ids=["path", "bytes", "list", "image", "npy", "torch", "dataframe", "plotly"],
)
def test_save_dispatches_on_type(exp, workdir, content, to, check):
    (workdir / "local.bin").write_bytes(LOCAL)
    result = exp.files("out").save(content, to=to)
    assert check(exp.files("out/" + result["filename"]).read_bytes())


def test_save_dispatches_a_figure_to_save_fig(exp):
    fig = figure()
    result = exp.files("plots").save(fig, to="f.png")
    assert png_pixels(exp.files("plots/f.png").read_bytes()).ndim == 3
    assert result["contentType"] == "image/png"
    assert not plt.fignum_exists(fig.number)


def test_save_refuses_what_it_cannot_store(exp):
    with pytest.raises(TypeError, match="save_pkl"):
        exp.files("x").save(object(), to="o.bin")
    with pytest.raises(errors.NotFound, match="no-such-file.txt"):
        exp.files("x").save("no-such-file.txt")
    assert exp.files().list() == []


def test_list_with_prefixes_and_globs(exp):
    exp.files("images").save_blob(b"1", to="a.png")
    exp.files("images").save_blob(b"2", to="deep/b.png")
    exp.files("images").save_blob(b"3", to="c.jpg")
    exp.files("configs").save_json({}, to="config.json")
    exp.files().save_json({}, to="top.json")
    exp.params.set(lr=1)

    def names(files):
        return [f["prefix"] + "/" + f["filename"] for f in files]

    assert names(exp.files().list()) == [
        "configs/config.json",
        "images/a.png",
        "images/c.jpg",
        "images/deep/b.png",
        "/top.json",
    ]
    assert names(exp.files("images").list("*.png")) == ["images/a.png"]
    assert names(exp.files("images").list("**/*.png")) == ["images/a.png", "images/deep/b.png"]
    assert names(exp.files().list("**/*.json")) == ["configs/config.json", "/top.json"]
    assert names(exp.files("configs").list()) == ["configs/config.json"]
    assert names(exp.files(".ml_dash").list()) == [".ml_dash/params.json"]


def test_download_single_file_to_cwd_to_a_file_and_into_a_folder(exp, workdir):
    exp.files("models").save_blob(b"weights", to="model.pt")
    assert exp.files("models/model.pt").download() == "model.pt"
    assert (workdir / "model.pt").read_bytes() == b"weights"
    assert exp.files("models/model.pt").download(to="./local.pt") == "./local.pt"
    assert (workdir / "local.pt").read_bytes() == b"weights"
    (workdir / "dir").mkdir()
    assert exp.files("models").download("model.pt", to="dir") == os.path.join("dir", "model.pt")
    assert exp.files("models/model.pt").download(to="new/") == os.path.join("new/", "model.pt")
    assert (workdir / "new" / "model.pt").read_bytes() == b"weights"


def test_a_bare_file_name_finds_a_unique_file_anywhere(exp, workdir):
    exp.files("checkpoints").save_blob(b"w", to="model.pt")
    assert exp.files("model.pt").exists()
    assert exp.files("model.pt").download() == "model.pt"
    exp.files("other").save_blob(b"v", to="model.pt")
    with pytest.raises(errors.NotFound, match="ambiguous"):
        exp.files("model.pt").download()


def test_glob_download_keeps_relative_paths(exp, workdir):
    exp.files("images").save_blob(b"a", to="a.png")
    exp.files("images").save_blob(b"b", to="sub/b.png")
    exp.files("images").save_blob(b"c", to="c.jpg")
    got = exp.files("images").download("**/*.png", to="./out")
    assert sorted(got) == [os.path.join("./out", "a.png"), os.path.join("./out", "sub", "b.png")]
    assert (workdir / "out" / "a.png").read_bytes() == b"a"
    assert (workdir / "out" / "sub" / "b.png").read_bytes() == b"b"
    assert not (workdir / "out" / "c.jpg").exists()
    with pytest.raises(errors.NotFound, match=r"\*\.gif"):
        exp.files("images").download("*.gif", to="./out")


def test_download_detects_a_damaged_blob_and_leaves_nothing(exp, workdir, blob_files):
    result = exp.files("models").save_blob(b"good bytes", to="model.pt")
    (blob,) = blob_files(result["id"], "model.pt")
    blob.chmod(0o644)
    blob.write_bytes(b"evil bytes")
    with pytest.raises(errors.ChecksumMismatch, match=result["checksum"]):
        exp.files("models/model.pt").download(to="got.pt")
    with pytest.raises(errors.ChecksumMismatch):
        exp.files("models").download("*.pt", to="globbed")
    with pytest.raises(errors.ChecksumMismatch):
        exp.files("models/model.pt").read_text()
    assert sorted(os.listdir(workdir)) == ["globbed"]
    assert os.listdir(workdir / "globbed") == []


def test_delete_a_file_and_a_glob(exp):
    exp.files().save_text("x", to="some.txt")
    exp.files("images").save_blob(b"1", to="a.png")
    exp.files("images").save_blob(b"2", to="b.png")
    exp.files("images").save_blob(b"3", to="c.jpg")
    deleted = exp.files("some.txt").delete()
    assert deleted["filename"] == "some.txt"
    assert not exp.files("some.txt").exists()
    assert [f["filename"] for f in exp.files("images").delete("*.png")] == ["a.png", "b.png"]
    assert [f["filename"] for f in exp.files().list()] == ["c.jpg"]
    with pytest.raises(errors.NotFound):
        exp.files("some.txt").delete()


def test_delete_one_version_by_id(exp):
    one = exp.files().save_text("1", to="v.txt")
    two = exp.files().save_text("2", to="v.txt")
    exp.files(file_id=two["id"]).delete()
    assert exp.files("v.txt").read_text() == "1"
    assert exp.files().list()[0]["id"] == one["id"]


def test_exists_and_read_text(exp):
    assert not exp.files("configs/view.yaml").exists()
    exp.files("configs").save_text("yaml: content\n", to="view.yaml")
    assert exp.files("configs/view.yaml").exists()
    assert not exp.files("configs").exists()
    assert exp.files("configs/view.yaml").read_text() == "yaml: content\n"
    exp.files().save_blob("é".encode("latin-1"), to="latin.txt")
    assert exp.files("latin.txt").read_text(encoding="latin-1") == "é"
    with pytest.raises(errors.NotFound, match="missing.txt"):
        exp.files("missing.txt").read_text()


def test_update_by_file_id_changes_that_version_in_place(exp):
    result = exp.files("models").save_blob(b"w", to="m.pt", description="old", tags=["a"])
    updated = exp.files(
        file_id=result["id"], description="Updated description", tags=["new", "tags"], metadata={"updated": True}
    ).update()
    assert updated["id"] == result["id"]
    assert (updated["description"], updated["tags"], updated["metadata"]) == (
        "Updated description",
        ["new", "tags"],
        {"updated": True},
    )
    assert exp.files().list() == [updated]
    only_tags = exp.files(file_id=result["id"], tags=["only"]).update()
    assert (only_tags["description"], only_tags["tags"]) == ("Updated description", ["only"])


def test_plain_experiment_without_run(store_dir, workdir):
    exp = Experiment(prefix="alice/project/plain", local_path=store_dir)
    try:
        exp.files("a").save_text("hi", to="b.txt")
        assert exp.files("a/b.txt").read_text() == "hi"
    finally:
        exp.close()
    with Experiment(prefix="alice/project/plain", local_path=store_dir).run as again:
        assert again.files("a/b.txt").read_text() == "hi"


def test_a_file_saved_by_the_sdk_is_seen_by_another_process(exp, store_dir):
    result = exp.files("configs").save_json({"lr": 0.1}, to="config.json", tags=["cfg"])
    code = (
        "import sys, json\n"
        "from mldashfs.store import Store\n"
        "with Store.open(sys.argv[1]) as s:\n"
        "    v = s.latest('alice/project/exp/configs/config.json')\n"
        "    print(json.dumps([v.id_str, v.sha256, list(v.tags), json.loads(s.read_bytes(v))]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code, str(store_dir)], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == [result["id"], result["checksum"], ["cfg"], {"lr": 0.1}]


def test_download_gives_the_mode_the_umask_gives_like_mldashfs_get(exp, workdir, store_dir):
    exp.files("models").save_blob(b"weights", to="model.pt")
    old = os.umask(0o022)
    try:
        sdk = exp.files("models/model.pt").download(to="sdk.pt")
        subprocess.run([sys.executable, "-m", "mldashfs.cli", "get", "alice/project/exp/models/model.pt",
                        "cli.pt", "--store", str(store_dir)], check=True, capture_output=True)
        os.umask(0o077)
        private = exp.files("models/model.pt").download(to="private.pt")
    finally:
        os.umask(old)
    assert [os.stat(p).st_mode & 0o777 for p in (sdk, "cli.pt", private)] == [0o644, 0o644, 0o600]
    assert sorted(os.listdir(workdir)) == ["cli.pt", "private.pt", "sdk.pt"]  # no temporary file left


def test_versions_of_one_file_oldest_first(exp):
    first = exp.files("models").save_blob(b"v1", to="best.pt", tags=["a"])
    second = exp.files("models").save_blob(b"v2, longer", to="best.pt")
    exp.files("models").save_blob(b"other", to="last.pt")
    history = exp.files("models/best.pt").versions()
    assert [(h["id"], h["sizeBytes"], h["tags"]) for h in history] == [(first["id"], 2, ["a"]), (second["id"], 10, [])]
    assert history == [first, second]
    assert [h["id"] for h in exp.files(file_id=first["id"]).versions()] == [first["id"], second["id"]]
    with pytest.raises(errors.NotFound, match="nope.pt"):
        exp.files("models/nope.pt").versions()


def test_a_string_of_tags_is_one_tag(exp):
    r = exp.files("models").save_blob(b"w", to="best.pt", tags="best")
    assert r["tags"] == ["best"]
    assert exp.files(prefix="models", tags="keep").save_blob(b"v", to="other.pt")["tags"] == ["keep"]
    assert [f["filename"] for f in exp.files("models").list(tags="best")] == ["best.pt"]
    assert exp.files(file_id=r["id"], tags="final").update()["tags"] == ["final"]
    assert exp.files("models").upload_all([], tags="x") == []
    with pytest.raises(errors.InvalidValue, match="a,b"):
        exp.files("models").save_blob(b"w", to="c.pt", tags="a,b")
    assert [f["filename"] for f in exp.files("models").list()] == ["best.pt", "other.pt"]
