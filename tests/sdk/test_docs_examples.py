"""The docs run: every code example of the ML-Dash files docs (shared/seeds 000, 001, 002) runs as written.

Each example is kept verbatim in docs_examples/ and run as a script in a fresh working folder
holding the files it expects; small stand-ins play `model`, the loaders and the training steps.
The test then checks what it printed and, through a fresh `Store.open()`, what it stored.
"""

from __future__ import annotations

import hashlib
import io
import json
import pickle
import runpy
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import imageio.v2 as imageio
import matplotlib
import numpy as np
import pytest
import torch
from PIL import Image

from ml_dash import Experiment
from mldashfs.errors import NotFound, StoreError
from mldashfs.records import Version
from mldashfs.store import Store

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)

EXAMPLES = Path(__file__).parent / "docs_examples"
# The experiment the 000/001 examples use (under the SDK's default namespace) and the 002 one.
OLD_EXPERIMENT = "project/my-experiment"
NEW_EXPERIMENT = "alice/project/my-experiment"


def run_example(name: str, **names: Any) -> dict[str, Any]:
    """Run docs_examples/<name>.py as a script with `names` predefined; return its globals.

    `Experiment` is always predefined: the docs import it once per page, not in every block.
    """
    return runpy.run_path(
        str(EXAMPLES / f"{name}.py"), init_globals={"Experiment": Experiment, **names}, run_name="__main__"
    )


class Stored:
    """What one experiment holds in a store folder, read through a fresh `Store.open()`."""

    def __init__(self, store: Store, experiment: str) -> None:
        self.store = store
        found = [
            v for v in store.list("") if v.experiment == experiment or v.experiment.endswith("/" + experiment)
        ]
        assert found, f"nothing stored for experiment {experiment!r}"
        self.experiment = found[0].experiment
        self.latest: dict[str, Version] = {v.path[len(self.experiment) + 1 :]: v for v in found}

    def read(self, rel: str) -> bytes:
        """The bytes of the newest version of `rel` (a path inside the experiment)."""
        return self.bytes_of(self.latest[rel])

    def bytes_of(self, version: Version) -> bytes:
        """The bytes of `version`, checked against the size and SHA-256 its catalog row records."""
        data = self.store.read_bytes(version)
        assert len(data) == version.size, version.path
        assert hashlib.sha256(data).hexdigest() == version.sha256, (
            f"recorded SHA-256 is wrong: {version.path}"
        )
        return data

    def history(self, rel: str) -> list[Version]:
        """Every live version of `rel`, oldest first."""
        return self.store.history(f"{self.experiment}/{rel}")

    def saved_as(self, version: Version, dest: Path) -> Path:
        """Write the bytes of `version` to `dest` (for decoders that need a named file)."""
        dest.write_bytes(self.bytes_of(version))
        return dest


@contextmanager
def stored(root: str | Path, experiment: str) -> Iterator[Stored]:
    """A fresh look at the store in `root`; `experiment` is "ns/project/name" or "project/name"."""
    with Store.open(str(root)) as store:
        yield Stored(store, experiment)


def sha256(path: str | Path) -> str:
    """The hex SHA-256 of a local file."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def png_bytes(width: int, height: int, value: int) -> bytes:
    """A small grey PNG, as the local image files the examples upload."""
    out = io.BytesIO()
    Image.new("L", (width, height), value).save(out, format="PNG")
    return out.getvalue()


def video_info(path: Path) -> tuple[int, float, tuple[int, int]]:
    """Frame count, fps and (width, height) of a video, decoded by imageio's ffmpeg reader."""
    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        meta = reader.get_meta_data()
        return reader.count_frames(), meta["fps"], meta["size"]
    finally:
        reader.close()


def square_frames() -> list[np.ndarray]:
    """Frames like the docs' video example: a bright square moving down a 200x200 canvas."""
    frames = []
    for i in range(20):
        canvas = np.zeros((200, 200))
        canvas[96 + i : 105 + i, 76:85] = 1.0
        frames.append(canvas)
    return frames


class Training:
    """Stand-ins for a training script: a tiny model, loaders, and epochs that take no time.

    Validation accuracy climbs 0.5, 0.6, ... 0.9 and then stays at 0.95, so the best model is
    saved at epochs 1 to 6 only.
    """

    def __init__(self) -> None:
        torch.manual_seed(0)
        self.model = torch.nn.Linear(4, 2)
        self.optimizer = torch.optim.SGD(self.model.parameters(), lr=0.1)
        self.batch = (torch.randn(8, 4), torch.randint(0, 2, (8,)))
        self.loader = [self.batch]
        self.epochs_validated = 0

    def accuracy(self) -> float:
        accuracy = min(0.5 + 0.1 * self.epochs_validated, 0.95)
        self.epochs_validated += 1
        return accuracy

    def train_one_epoch(self, model: torch.nn.Module, loader: list) -> float:
        """One SGD step on the one batch; returns the loss (seeds 000/001)."""
        inputs, labels = loader[0]
        loss = torch.nn.functional.cross_entropy(model(inputs), labels)
        self.optimizer.zero_grad()
        loss.backward()
        self.optimizer.step()
        return loss.item()

    def validate(self, model: torch.nn.Module, loader: list) -> tuple[float, float]:
        """(val_loss, val_accuracy) (seeds 000/001)."""
        return 0.1, self.accuracy()

    def train_and_score(self, model: torch.nn.Module, loader: list) -> tuple[float, float]:
        """(loss, accuracy) of one epoch: seed 002's `train_one_epoch`."""
        return self.train_one_epoch(model, loader), self.accuracy()

    def names(self, seed: str) -> dict[str, Any]:
        """The names an example of `seed` expects to exist."""
        if seed == "002":
            return {"model": self.model, "loader": self.loader, "train_one_epoch": self.train_and_score}
        return {
            "model": self.model,
            "train_loader": self.loader,
            "val_loader": self.loader,
            "train_one_epoch": self.train_one_epoch,
            "validate": self.validate,
        }


def logged_messages(files: Stored) -> list[str]:
    """The messages of the run's log, as the SDK keeps it (`.ml_dash/logs.jsonl` in the experiment)."""
    return [json.loads(line)["message"] for line in files.read(".ml_dash/logs.jsonl").decode().splitlines()]


BEST_ACCURACIES = [0.5, 0.6, 0.7, 0.8, 0.9, 0.95]


@pytest.fixture
def work(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Path]:
    """A fresh working folder holding the local files the examples upload; 002's store goes to
    $ML_DASH_STORE in the test's temp folder. Figures are closed afterwards, even on failure."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    monkeypatch.setenv("ML_DASH_STORE", str(tmp_path / "store"))
    torch.manual_seed(1)
    torch.save(torch.nn.Linear(4, 2).state_dict(), work / "model.pth")
    torch.save(torch.nn.Linear(4, 2).state_dict(), work / "best_model.pth")
    torch.save(torch.nn.Linear(4, 2).state_dict(), work / "model.pt")
    torch.save(torch.nn.Linear(4, 2).state_dict(), work / "best.pth")
    (work / "loss_curve.png").write_bytes(png_bytes(8, 8, 100))
    (work / "confusion_matrix.png").write_bytes(png_bytes(10, 10, 200))
    (work / "config.json").write_text(json.dumps({"lr": 0.01}))
    (work / "results.csv").write_text("epoch,loss\n1,0.5\n2,0.25\n")
    plt.close("all")
    yield work
    plt.close("all")


# --- seeds 000 and 001: the same examples, in the two older forms ---------------------------


@pytest.mark.parametrize("seed", ["000", "001"])
def test_basic_upload(work, capsys, seed):
    run_example(f"seed{seed}_01_basic_upload")
    with stored(".ml-dash", OLD_EXPERIMENT) as files:
        version = files.latest["models/model.pth"]
        assert files.read("models/model.pth") == (work / "model.pth").read_bytes()
    assert capsys.readouterr().out.splitlines() == [
        "Uploaded: model.pth",
        f"Size: {version.size} bytes",
        f"Checksum: {sha256(work / 'model.pth')}",
    ]
    assert version.size == (work / "model.pth").stat().st_size


@pytest.mark.parametrize("seed", ["000", "001"])
def test_organizing_files(work, seed):
    run_example(f"seed{seed}_02_organizing_files")
    expected = {
        "models/model.pth": "model.pth",
        "models/checkpoints/best_model.pth": "best_model.pth",
        "visualizations/loss_curve.png": "loss_curve.png",
        "visualizations/confusion_matrix.png": "confusion_matrix.png",
        "config/config.json": "config.json",
        "results/results.csv": "results.csv",
    }
    with stored(".ml-dash", OLD_EXPERIMENT) as files:
        assert sorted(files.latest) == sorted(expected)
        for rel, local in expected.items():
            assert files.read(rel) == (work / local).read_bytes(), rel
            assert files.latest[rel].sha256 == sha256(work / local)


@pytest.mark.parametrize("seed", ["000", "001"])
def test_file_metadata(work, seed):
    name = "seed000_07_file_metadata" if seed == "000" else "seed001_03_file_metadata"
    run_example(name)
    with stored(".ml-dash", OLD_EXPERIMENT) as files:
        version = files.latest["models/best_model.pth"]
        assert files.read("models/best_model.pth") == (work / "best_model.pth").read_bytes()
    assert version.description == "Best model from epoch 50"
    assert sorted(version.tags) == ["best", "checkpoint"]
    assert version.metadata == {"epoch": 50, "val_accuracy": 0.95, "optimizer_state": True}


@pytest.mark.parametrize("seed", ["000", "001"])
def test_training_with_checkpoints(work, seed):
    training = Training()
    name = "seed000_08_training_with_checkpoints" if seed == "000" else "seed001_04_training_with_checkpoints"
    run_example(name, **training.names(seed))
    assert training.epochs_validated == 100
    with stored(".ml-dash", "cv/resnet-training") as files:
        checkpoints = sorted(rel for rel in files.latest if rel.startswith("checkpoints/"))
        assert checkpoints == sorted(f"checkpoints/checkpoint_epoch_{n}.pth" for n in range(10, 101, 10))
        last = files.latest["checkpoints/checkpoint_epoch_100.pth"]
        assert last.tags == ("checkpoint",)
        assert last.metadata == {"epoch": 100, "val_accuracy": 0.95}
        state = torch.load(files.saved_as(last, work / "restored.pth"))
        assert torch.equal(state["weight"], training.model.weight.detach())
        best = files.history("models/best_model.pth")
        assert [v.metadata["epoch"] for v in best] == [1, 2, 3, 4, 5, 6]
        assert best[-1].description == "Best model (accuracy: 0.9500)"
        assert best[-1].tags == ("best",)
        assert best[-1].metadata == {"epoch": 6, "accuracy": 0.95}
        assert files.latest["models/best_model.pth"].id == best[-1].id
        assert logged_messages(files) == [
            "Starting training",
            *(f"New best model saved (accuracy: {a:.4f})" for a in BEST_ACCURACIES),
            "Training complete",
        ]
    with Experiment(name="resnet-training", project="cv", local_path=".ml-dash") as experiment:
        assert experiment.params.get() == {"model": "resnet50", "epochs": 100}
        train_loss = experiment.metrics("train_loss").read()
        val_accuracy = experiment.metrics("val_accuracy").read()
    assert [point["epoch"] for point in train_loss] == list(range(100))
    assert all(isinstance(point["value"], float) for point in train_loss)
    assert [point["value"] for point in val_accuracy] == [min(0.5 + 0.1 * n, 0.95) for n in range(100)]


@pytest.mark.parametrize("seed", ["000", "001"])
def test_uploading_configuration(work, seed):
    name = "seed000_13_uploading_configuration" if seed == "000" else "seed001_06_uploading_configuration"
    globals_ = run_example(name)
    with stored(".ml-dash", OLD_EXPERIMENT) as files:
        version = files.latest["config/config.json"]
        assert json.loads(files.read("config/config.json")) == globals_["config"]
        assert files.read("config/config.json") == (work / "config.json").read_bytes()
    assert version.description == "Experiment configuration"
    assert version.tags == ("config",)
    with Experiment(name="my-experiment", project="project", local_path=".ml-dash") as experiment:
        assert experiment.params.get() == {
            "model.architecture": "resnet50",
            "model.pretrained": True,
            "training.epochs": 100,
            "training.batch_size": 32,
            "training.lr": 0.001,
        }


def test_saving_visualizations_001(work):
    run_example("seed001_05_saving_visualizations")
    assert plt.get_fignums() == []
    with stored(".ml-dash", OLD_EXPERIMENT) as files:
        version = files.latest["visualizations/loss_curve.png"]
        assert files.read("visualizations/loss_curve.png") == (work / "loss_curve.png").read_bytes()
        with Image.open(files.saved_as(version, work / "stored.png")) as image:
            assert image.size == (640, 480)  # the plot, not the 8x8 stand-in file it replaced
    assert version.description == "Training loss over epochs"
    assert version.tags == ("plot",)


# --- seed 000 only: downloads, save_fig and save_video -------------------------------------


def upload_first(*uploads: tuple[str, str, dict[str, Any]]) -> None:
    """Store local files with the 000 API before an example that lists or downloads them."""
    with Experiment(name="my-experiment", project="project", local_path=".ml-dash").run as experiment:
        for local, prefix, extra in uploads:
            experiment.files(local, prefix=prefix, **extra)


def printed_path(out: str, label: str) -> Path:
    """The path an example printed after `label`, resolved against the working folder."""
    lines = [line for line in out.splitlines() if line.startswith(label)]
    assert len(lines) == 1, out
    return Path(lines[0][len(label) :]).resolve()


def test_downloading_files(work, capsys):
    run_example("seed000_03_downloading_files")
    downloaded = work / "downloaded_model.pth"
    assert downloaded.read_bytes() == (work / "model.pth").read_bytes()
    assert printed_path(capsys.readouterr().out, "Downloaded to: ") == downloaded
    with stored(".ml-dash", OLD_EXPERIMENT) as files:
        assert sorted(files.latest) == ["models/model.pth"]


def test_download_to_current_directory(work, capsys):
    original = (work / "model.pth").read_bytes()
    upload_first(("model.pth", "/models", {}))
    (work / "model.pth").unlink()
    run_example("seed000_04_download_to_current_directory")
    assert (work / "model.pth").read_bytes() == original
    assert printed_path(capsys.readouterr().out, "Downloaded: ") == work / "model.pth"


def test_list_and_download(work, capsys):
    best_bytes = (work / "best_model.pth").read_bytes()
    upload_first(
        ("model.pth", "/models", {}), ("best_model.pth", "/models", {"tags": ["checkpoint", "best"]})
    )
    (work / "best_model.pth").unlink()
    run_example("seed000_05_list_and_download")
    out = capsys.readouterr().out
    with stored(".ml-dash", OLD_EXPERIMENT) as files:
        for rel in ("models/model.pth", "models/best_model.pth"):
            version = files.latest[rel]
            block = f"File: {version.name}\n  Path: /models\n  Size: {version.size} bytes\n  ID: {version.id_str}\n"
            assert block in out
    assert (work / "best_model.pth").read_bytes() == best_bytes
    assert printed_path(out, "Downloaded best model to: ") == work / "best_model.pth"


def test_checksum_verification(work, capsys):
    run_example("seed000_06_checksum_verification")
    out = capsys.readouterr().out
    assert f"Original checksum: {sha256(work / 'model.pth')}" in out.splitlines()
    assert (work / "verified_model.pth").read_bytes() == (work / "model.pth").read_bytes()
    assert printed_path(out, "Download verified and saved to: ") == work / "verified_model.pth"


def test_saving_visualizations_with_save_fig(work):
    run_example("seed000_09_saving_visualizations")
    assert plt.get_fignums() == []  # save_fig closed both figures
    with stored(".ml-dash", OLD_EXPERIMENT) as files:
        png = files.latest["visualizations/loss_curve.png"]
        pdf = files.latest["visualizations/cosine_function.pdf"]
        with Image.open(files.saved_as(png, work / "stored.png")) as image:
            assert image.size == (640, 480)  # the plot at the default dpi, not the local stand-in file
        assert files.read("visualizations/cosine_function.pdf").startswith(b"%PDF")
    assert png.description == "Training loss over epochs"
    assert png.tags == ("plot",)
    assert png.content_type == "image/png"
    assert pdf.content_type == "application/pdf"


def test_saving_videos(work):
    run_example("seed000_10_saving_videos")
    with stored(".ml-dash", OLD_EXPERIMENT) as files:
        mp4s = files.history("videos/animation.mp4")
        assert len(mp4s) == 2
        assert video_info(files.saved_as(mp4s[0], work / "first.mp4")) == (20, 20.0, (200, 200))
        assert video_info(files.saved_as(mp4s[1], work / "second.mp4")) == (20, 30.0, (200, 200))
        gif = files.latest["videos/animation.gif"]
        with Image.open(files.saved_as(gif, work / "stored.gif")) as image:
            assert image.n_frames == 20
            assert image.size == (200, 200)
            assert image.info["duration"] == 50


def test_frame_format_support(work):
    with Experiment(name="my-experiment", project="project", local_path=".ml-dash").run as experiment:
        run_example("seed000_11_frame_format_support", experiment=experiment, np=np)
    with stored(".ml-dash", OLD_EXPERIMENT) as files:
        assert sorted(files.latest) == ["videos/grayscale.mp4", "videos/rgb.mp4", "videos/stacked.mp4"]
        for rel, version in files.latest.items():
            assert video_info(files.saved_as(version, work / Path(rel).name)) == (30, 20.0, (640, 480))


def test_custom_video_options(work):
    with Experiment(name="my-experiment", project="project", local_path=".ml-dash").run as experiment:
        run_example("seed000_12_custom_video_options", experiment=experiment, frames=square_frames())
    with stored(".ml-dash", OLD_EXPERIMENT) as files:
        mp4 = files.saved_as(files.latest["videos/high_quality.mp4"], work / "high_quality.mp4")
        assert video_info(mp4) == (20, 30.0, (200, 200))
        with Image.open(files.saved_as(files.latest["videos/animation.gif"], work / "a.gif")) as image:
            assert image.n_frames == 20
            assert image.info["duration"] == 100


# --- seed 002: Experiment(prefix=...) with the store in $ML_DASH_STORE ---------------------


@pytest.fixture
def store_root(work: Path, tmp_path: Path) -> Path:
    """Where 002's examples store: $ML_DASH_STORE, set by the `work` fixture."""
    return tmp_path / "store"


def test_api_at_a_glance(work, store_root):
    model = torch.nn.Linear(4, 2)
    obj = {"vocab": ["a", "b"], "sizes": (1, 2)}
    fig, ax = plt.subplots()
    ax.plot([0.5, 0.4, 0.3])
    run_example("seed002_01_api_at_a_glance", model=model, obj=obj, fig=fig, frames=square_frames())
    assert plt.get_fignums() == []
    with stored(store_root, NEW_EXPERIMENT) as files:
        assert files.experiment == NEW_EXPERIMENT
        assert sorted(files.latest) == [
            "checkpoints/best.pt",
            "checkpoints/model.pt",
            "configs/config.json",
            "configs/view.yaml",
            "data/data.bin",
            "data/data.pkl",
            "plots/loss.png",
            "videos/rollout.mp4",
        ]
        uploaded, saved = files.history("checkpoints/model.pt")
        assert files.bytes_of(uploaded) == (work / "model.pt").read_bytes()
        assert files.read("checkpoints/best.pt") == (work / "model.pt").read_bytes()
        whole = torch.load(files.saved_as(saved, work / "whole.pt"), weights_only=False)
        assert isinstance(whole, torch.nn.Linear)
        assert torch.equal(whole.weight, model.weight)
        assert json.loads(files.read("configs/config.json")) == {"lr": 1e-3}
        assert files.read("configs/view.yaml") == b"yaml: content\n"
        assert files.read("data/data.bin") == b"\x00\x01"
        assert pickle.loads(files.read("data/data.pkl")) == obj
        with Image.open(files.saved_as(files.latest["plots/loss.png"], work / "loss.png")) as image:
            assert image.format == "PNG"
        assert video_info(files.saved_as(files.latest["videos/rollout.mp4"], work / "r.mp4")) == (
            20,
            30.0,
            (200, 200),
        )


def test_save_with_metadata(work, store_root):
    model = torch.nn.Linear(4, 2)
    with Experiment(prefix=NEW_EXPERIMENT).run as exp:
        globals_ = run_example("seed002_02_save_with_metadata", exp=exp, model=model)
    result = globals_["result"]
    with stored(store_root, NEW_EXPERIMENT) as files:
        version = files.latest["models/best_model.pt"]
        assert result["id"] == version.id_str
        assert (
            result["checksum"]
            == version.sha256
            == hashlib.sha256(files.read("models/best_model.pt")).hexdigest()
        )
    assert result["filename"] == "best_model.pt"
    assert result["sizeBytes"] == version.size
    assert version.description == "Best model from epoch 50"
    assert sorted(version.tags) == ["best", "checkpoint"]
    assert version.metadata == {"epoch": 50, "val_accuracy": 0.95}


def test_paths_and_organization(work, store_root):
    config = {"model": "resnet50", "lr": 1e-3}
    with Experiment(prefix=NEW_EXPERIMENT).run as exp:
        run_example("seed002_03_paths_and_organization", exp=exp, config=config)
    with stored(store_root, NEW_EXPERIMENT) as files:
        assert sorted(files.latest) == [
            "config/config.json",
            "models/checkpoints/best.pth",
            "models/model.pth",
            "results/results.csv",
        ]
        assert files.read("models/model.pth") == (work / "model.pth").read_bytes()
        assert files.read("models/checkpoints/best.pth") == (work / "best.pth").read_bytes()
        assert files.read("results/results.csv") == (work / "results.csv").read_bytes()
        assert json.loads(files.read("config/config.json")) == config


def test_direct_style(work, store_root):
    with Experiment(prefix=NEW_EXPERIMENT).run as exp:
        run_example("seed002_04_direct_style", exp=exp)
    with stored(store_root, NEW_EXPERIMENT) as files:
        assert sorted(files.latest) == [
            "configs/config.json",
            "models/checkpoints/best.pt",
            "notes/view.yaml",
        ]
        assert files.read("models/checkpoints/best.pt") == (work / "model.pt").read_bytes()
        assert json.loads(files.read("configs/config.json")) == {"k": "v"}
        assert files.read("notes/view.yaml") == b"content"


def test_listing_downloading_deleting(work, store_root):
    model_bytes = (work / "model.pt").read_bytes()
    pngs = {"a.png": png_bytes(4, 4, 10), "b.png": png_bytes(4, 4, 20)}
    with Experiment(prefix=NEW_EXPERIMENT).run as exp:
        exp.files.upload("./model.pt", to="model.pt")
        exp.files.save_text("scratch", to="some.txt")
        for name, data in pngs.items():
            exp.files("images").save_blob(data, to=name)
        exp.files("images/nested").save_blob(png_bytes(4, 4, 30), to="c.png")
        exp.files("models").upload("model.pth")
        exp.files("configs").save_json({"lr": 0.1}, to="config.json")
        exp.files("configs/sweep").save_json({"lr": 0.2}, to="run1.json")
        (work / "model.pt").unlink()
        found = run_example("seed002_05_listing_downloading_deleting", exp=exp)

    def names(results: list[dict[str, Any]]) -> list[str]:
        return sorted(f"{r['prefix']}/{r['filename']}".lstrip("/") for r in results)

    assert names(found["all_files"]) == [
        "configs/config.json",
        "configs/sweep/run1.json",
        "images/a.png",
        "images/b.png",
        "images/nested/c.png",
        "model.pt",
        "models/model.pth",
        "some.txt",
    ]
    assert names(found["model_files"]) == ["models/model.pth"]
    assert names(found["pngs"]) == ["images/a.png", "images/b.png"]  # `*` does not cross '/'
    assert names(found["configs"]) == ["configs/config.json", "configs/sweep/run1.json"]
    assert (work / "model.pt").read_bytes() == model_bytes
    assert (work / "local.pt").read_bytes() == model_bytes
    assert sorted(Path(p).resolve() for p in found["paths"]) == [
        work / "out" / "a.png",
        work / "out" / "b.png",
    ]
    for name, data in pngs.items():
        assert (work / "out" / name).read_bytes() == data
    with stored(store_root, NEW_EXPERIMENT) as files:
        assert sorted(files.latest) == [
            "configs/config.json",
            "configs/sweep/run1.json",
            "images/nested/c.png",
            "model.pt",
            "models/model.pth",
        ]
        with pytest.raises(NotFound):
            files.store.latest(f"{NEW_EXPERIMENT}/some.txt")


def test_updating_metadata(work, store_root):
    example = EXAMPLES / "seed002_06_updating_metadata.py"
    with Experiment(prefix=NEW_EXPERIMENT).run as exp:
        saved = exp.files("notes").save_text("hello", to="a.txt", description="first", tags=["old"])
        # As written, the docs' placeholder id names no file: a clear NotFound naming it.
        with pytest.raises(StoreError, match="abc123"):
            run_example("seed002_06_updating_metadata", exp=exp)
        # With the placeholder replaced by a real id it updates that version in place.
        code = example.read_text().replace('"abc123"', repr(saved["id"]))
        assert repr(saved["id"]) in code
        exec(compile(code, str(example), "exec"), {"exp": exp})
    with stored(store_root, NEW_EXPERIMENT) as files:
        versions = files.history("notes/a.txt")
        assert [v.id_str for v in versions] == [saved["id"]]
        assert versions[0].description == "Updated description"
        assert versions[0].tags == ("new", "tags")
        assert versions[0].metadata == {"updated": True}
        assert files.read("notes/a.txt") == b"hello"


def test_end_to_end(work, store_root):
    training = Training()
    run_example("seed002_07_end_to_end", **training.names("002"))
    assert training.epochs_validated == 100
    with stored(store_root, "alice/cv/resnet") as files:
        checkpoints = sorted(rel for rel in files.latest if rel.startswith("checkpoints/"))
        assert checkpoints == sorted(f"checkpoints/epoch_{n}.pt" for n in range(10, 101, 10))
        assert files.latest["checkpoints/epoch_50.pt"].metadata == {"epoch": 50, "accuracy": 0.95}
        assert files.latest["checkpoints/epoch_50.pt"].tags == ("checkpoint",)
        state = torch.load(files.saved_as(files.latest["checkpoints/epoch_100.pt"], work / "e100.pt"))
        assert torch.equal(state["bias"], training.model.bias.detach())
        best = files.history("models/best.pt")
        assert [v.metadata["epoch"] for v in best] == [1, 2, 3, 4, 5, 6]
        assert best[-1].description == "Best model (acc=0.9500)"
        assert best[-1].tags == ("best",)
    with Experiment(prefix="alice/cv/resnet") as exp:
        assert exp.params.get() == {"model": "resnet50", "epochs": 100}
        train = exp.metrics("train").read()
    assert [point["epoch"] for point in train] == list(range(100))
    assert [point["accuracy"] for point in train] == [min(0.5 + 0.1 * n, 0.95) for n in range(100)]
    assert all(isinstance(point["loss"], float) for point in train)
