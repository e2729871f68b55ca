"""The older ML-Dash forms of shared/seeds/000 and 001 (and ml-dash 0.11's), as their docs use them."""

from __future__ import annotations

import json
import os

import matplotlib.pyplot as plt
import numpy as np
import pytest
from PIL import Image

from ml_dash import Experiment, errors


@pytest.fixture
def legacy(store_dir, workdir):
    """The 000 form: Experiment(name=, project=, local_path=).run, with model.pth in the cwd."""
    (workdir / "model.pth").write_bytes(b"model weights")
    with Experiment(name="my-experiment", project="project", local_path=store_dir).run as experiment:
        yield experiment


def test_000_upload_at_once_returns_the_result(legacy):
    result = legacy.files("model.pth", prefix="/models")
    assert (result["filename"], result["path"], result["sizeBytes"]) == ("model.pth", "/models", 13)
    assert result["experiment"] == "local/project/my-experiment"
    assert len(result["checksum"]) == 64
    assert legacy.files("models/model.pth").read_bytes() == b"model weights"


def test_000_upload_with_description_tags_metadata(legacy):
    result = legacy.files(
        "model.pth",
        prefix="/models/checkpoints",
        description="Best model from epoch 50",
        tags=["checkpoint", "best"],
        metadata={"epoch": 50, "val_accuracy": 0.95, "optimizer_state": True},
    )
    assert result["path"] == "/models/checkpoints"
    assert (result["description"], result["tags"]) == ("Best model from epoch 50", ["checkpoint", "best"])
    assert result["metadata"] == {"epoch": 50, "val_accuracy": 0.95, "optimizer_state": True}
    best = next(f for f in legacy.files().list() if "best" in f.get("tags", []))
    assert best["id"] == result["id"]


def test_000_upload_without_prefix_goes_to_the_top(legacy):
    result = legacy.files("model.pth", tags=["t"])
    assert (result["path"], result["prefix"]) == ("/", "")


def test_000_upload_of_a_missing_file_says_so(legacy):
    with pytest.raises(errors.NotFound, match="missing.pth"):
        legacy.files("missing.pth", prefix="/models")
    assert legacy.files().list() == []


def test_000_file_path_save_then_download_by_id(legacy, workdir):
    upload = legacy.files(file_path="model.pth", prefix="/models").save()
    assert upload["path"] == "/models"
    downloaded = legacy.files(file_id=upload["id"], dest_path="./downloaded_model.pth").download()
    assert downloaded == "./downloaded_model.pth"
    assert (workdir / "downloaded_model.pth").read_bytes() == b"model weights"


def test_000_download_by_id_without_dest_uses_the_original_name(legacy, workdir):
    upload = legacy.files(file_path="model.pth", prefix="/models").save()
    os.remove(workdir / "model.pth")
    files = legacy.files().list()
    assert legacy.files(file_id=files[0]["id"]).download() == "model.pth"
    assert (workdir / "model.pth").read_bytes() == b"model weights"
    assert files[0]["checksum"] == upload["checksum"]


def test_000_save_fig_with_the_name_first(legacy):
    plt.plot([0.5, 0.4, 0.3, 0.25, 0.2])
    plt.title("Training Loss")
    result = legacy.files(
        prefix="/visualizations", description="Training loss over epochs", tags=["plot"]
    ).save_fig("loss_curve.png")
    assert (result["path"], result["filename"], result["tags"]) == ("/visualizations", "loss_curve.png", ["plot"])
    assert result["description"] == "Training loss over epochs"
    assert plt.get_fignums() == []
    xs = np.linspace(-5, 5, 100)
    plt.plot(xs, np.cos(xs), label="Cosine")
    plt.legend()
    pdf = legacy.files(prefix="/visualizations").save_fig(
        "cosine_function.pdf", dpi=150, transparent=True, bbox_inches="tight"
    )
    assert pdf["contentType"] == "application/pdf"
    assert legacy.files("visualizations/cosine_function.pdf").read_bytes().startswith(b"%PDF")


def test_000_save_video_with_the_name_second(legacy, tmp_path):
    frames = [np.eye(32)[np.roll(np.arange(32), i)] for i in range(10)]
    mp4 = legacy.files(prefix="/videos").save_video(frames, "animation.mp4", fps=30)
    gif = legacy.files(prefix="/videos").save_video(frames, "animation.gif")
    assert (mp4["filename"], mp4["contentType"]) == ("animation.mp4", "video/mp4")
    gif_path = legacy.files("videos/animation.gif").download(to=str(tmp_path / "a.gif"))
    with Image.open(gif_path) as im:
        assert im.n_frames == 10
    assert gif["sizeBytes"] == os.path.getsize(gif_path)


def test_000_params_log_and_metrics_are_stored(legacy):
    config = {"model": {"architecture": "resnet50", "pretrained": True}, "training": {"epochs": 100}}
    legacy.params.set(**config)
    legacy.params.set(training={"lr": 0.001})
    legacy.log("Starting training")
    for epoch in range(3):
        legacy.metrics("train_loss").append(value=1.0 / (epoch + 1), epoch=epoch)
    legacy.log("Training complete", level="info", metadata={"epochs": 3})
    assert legacy.params.get() == {
        "model.architecture": "resnet50",
        "model.pretrained": True,
        "training.epochs": 100,
        "training.lr": 0.001,
    }
    assert json.loads(legacy.files(".ml_dash/params.json").read_text())["training.lr"] == 0.001
    logs = [json.loads(line) for line in legacy.files(".ml_dash/logs.jsonl").read_text().splitlines()]
    assert [r["message"] for r in logs] == ["Starting training", "Training complete"]
    assert logs[1]["metadata"] == {"epochs": 3}
    points = legacy.metrics("train_loss").read()
    assert [(p["epoch"], p["value"]) for p in points] == [(0, 1.0), (1, 0.5), (2, 1 / 3)]
    assert legacy.files(".ml_dash/metrics/train_loss.jsonl").exists()


def test_002_metrics_log_with_groups_and_numpy_scalars(store_dir, workdir):
    with Experiment(prefix="alice/cv/resnet", local_path=store_dir).run as exp:
        exp.metrics.log(epoch=0, train=dict(loss=np.float32(0.5), accuracy=0.8))
        exp.metrics.log(epoch=1, train=dict(loss=0.25, accuracy=0.9), eval=dict(loss=0.3))
        exp.metrics.log(step=7)
        assert [(p["epoch"], p["loss"]) for p in exp.metrics("train").read()] == [(0, 0.5), (1, 0.25)]
        assert [(p["epoch"], p["loss"]) for p in exp.metrics("eval").read()] == [(1, 0.3)]
        assert [p["step"] for p in exp.metrics("metrics").read()] == [7]


def test_001_form_without_run_and_its_aliases(store_dir, workdir):
    (workdir / "config.json").write_text("{}")
    with Experiment(name="resnet-training", project="cv", local_path=store_dir) as experiment:
        result = experiment.file("config.json", prefix="/config", description="Experiment configuration", tags=["config"])
        experiment.parameters().set(model="resnet50", epochs=100)
        experiment.metric("val_accuracy").append(value=0.9, epoch=0)
        assert result["path"] == "/config"
        assert experiment.parameters().get() == {"model": "resnet50", "epochs": 100}
        assert experiment.metric("val_accuracy").read()[0]["value"] == 0.9
    plain = Experiment(name="resnet-training", project="cv", local_path=store_dir)
    try:
        assert plain.file("config/config.json").exists()
    finally:
        plain.close()


def test_namespace_comes_from_the_environment_else_local(store_dir, workdir, monkeypatch):
    assert Experiment(name="e", project="p", local_path=store_dir).path == "local/p/e"
    monkeypatch.setenv("ML_DASH_NAMESPACE", "bob")
    assert Experiment(name="e", project="p", local_path=store_dir).path == "bob/p/e"
    assert Experiment(name="e", project="p", namespace="carol", local_path=store_dir).path == "carol/p/e"


def test_store_location_local_path_else_env_else_dot_ml_dash(workdir, tmp_path, monkeypatch):
    exp = Experiment(prefix="a/b/c")
    try:
        exp.files.save_text("x", to="x.txt")
    finally:
        exp.close()
    assert (workdir / ".ml-dash").is_dir()
    monkeypatch.setenv("ML_DASH_STORE", str(tmp_path / "env-store"))
    exp = Experiment(prefix="a/b/c")
    try:
        assert not exp.files("x.txt").exists()
        exp.files.save_text("y", to="y.txt")
    finally:
        exp.close()
    assert (tmp_path / "env-store").is_dir()
    with Experiment(prefix="a/b/c", local_path=workdir / ".ml-dash").run as exp:
        assert exp.files("x.txt").read_text() == "x"
        assert not exp.files("y.txt").exists()


def test_0_11_dir_keyword_and_files_in_the_direct_style(store_dir, workdir):
    with Experiment(prefix="alice/p/e", dash_root=store_dir).run as exp:
        exp.files(dir="models").save_blob(b"w", to="m.pt")
        assert exp.files.download("models/m.pt", to="m.pt") == "m.pt"
        exp.files.delete("models/m.pt")
        assert exp.files().list() == []
    assert (store_dir).is_dir()
