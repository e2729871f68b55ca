"""The SDK's media encoders: write figures, images, videos and objects, then decode them and check."""

from __future__ import annotations

import io
import json
import subprocess
import sys

import imageio.v2 as imageio
import matplotlib
import numpy as np
import pandas as pd
import plotly.graph_objects as go
import plotly.io
import pytest
import torch
from PIL import Image

from ml_dash.media import (
    MissingExtra,
    kind_of,
    write_figure,
    write_image,
    write_object,
    write_pickle,
    write_torch,
    write_video,
)

matplotlib.use("Agg")
import matplotlib.pyplot as plt  # noqa: E402  (after choosing the headless backend)


@pytest.fixture(autouse=True)
def no_figures_left():
    """Every test starts and ends with no open pyplot figure, even when it fails."""
    plt.close("all")
    yield
    plt.close("all")


def read_video(path):
    """All frames of a video file and its metadata, decoded by imageio's ffmpeg reader."""
    reader = imageio.get_reader(str(path), format="FFMPEG")
    try:
        return [frame for frame in reader], reader.get_meta_data()
    finally:
        reader.close()


def square(x, y, size=200):
    """The docs' test frame: a float canvas with a bright 9x9 square around (x, y)."""
    canvas = np.zeros((size, size))
    canvas[x - 4 : x + 5, y - 4 : y + 5] = 1.0
    return canvas


# --- images ---------------------------------------------------------------------------------


def test_float_grayscale_png_is_scaled_and_clipped(tmp_path):
    array = np.array([[0.0, 0.5, 1.0], [-0.2, 1.5, np.nan]])
    write_image(array, tmp_path / "gray.png")
    with Image.open(tmp_path / "gray.png") as image:
        assert image.format == "PNG"
        assert image.mode == "L"
        assert image.size == (3, 2)
        assert np.asarray(image).tolist() == [[0, 128, 255], [0, 255, 0]]


def test_uint8_rgb_png_round_trips_exactly(tmp_path):
    array = np.random.default_rng(0).integers(0, 256, size=(17, 23, 3), dtype=np.uint8)
    write_image(array, tmp_path / "rgb.png")
    with Image.open(tmp_path / "rgb.png") as image:
        assert image.mode == "RGB"
        assert image.size == (23, 17)
        assert np.array_equal(np.asarray(image), array)


def test_single_channel_and_rgba_shapes(tmp_path):
    write_image(np.full((4, 5, 1), 0.25), tmp_path / "one.png")
    rgba = np.zeros((4, 5, 4), dtype=np.uint8)
    rgba[..., 0] = 200
    rgba[..., 3] = 100
    write_image(rgba, tmp_path / "rgba.png")
    with Image.open(tmp_path / "one.png") as image:
        assert image.mode == "L"
        assert np.asarray(image)[0, 0] == 64
    with Image.open(tmp_path / "rgba.png") as image:
        assert image.mode == "RGBA"
        assert tuple(np.asarray(image)[2, 3]) == (200, 0, 0, 100)


def test_integer_and_bool_arrays_are_converted(tmp_path):
    write_image(np.array([[True, False]]), tmp_path / "bool.png")
    write_image(np.array([[7, 300, -5]], dtype=np.int64), tmp_path / "int.png")
    write_image(np.array([[65535, 256]], dtype=np.uint16), tmp_path / "wide.png")
    with Image.open(tmp_path / "bool.png") as image:
        assert np.asarray(image).tolist() == [[255, 0]]
    with Image.open(tmp_path / "int.png") as image:
        assert np.asarray(image).tolist() == [[7, 255, 0]]
    with Image.open(tmp_path / "wide.png") as image:
        assert np.asarray(image).tolist() == [[255, 1]]


def test_jpeg_drops_alpha_and_honours_quality(tmp_path):
    noise = np.random.default_rng(1).random((64, 64, 4))
    write_image(noise, tmp_path / "low.jpg", quality=10)
    write_image(noise, tmp_path / "high.jpeg", quality=95)
    for name in ("low.jpg", "high.jpeg"):
        with Image.open(tmp_path / name) as image:
            assert image.format == "JPEG"
            assert image.mode == "RGB"
            assert image.size == (64, 64)
    assert (tmp_path / "low.jpg").stat().st_size < (tmp_path / "high.jpeg").stat().st_size


def test_torch_tensor_image(tmp_path):
    tensor = torch.full((6, 8, 3), 1.0, requires_grad=True)
    write_image(tensor, tmp_path / "tensor.png")
    with Image.open(tmp_path / "tensor.png") as image:
        assert image.size == (8, 6)
        assert np.asarray(image).min() == 255


def test_bfloat16_tensor_image(tmp_path):
    write_image(torch.full((2, 3), 0.5, dtype=torch.bfloat16), tmp_path / "half.png")
    with Image.open(tmp_path / "half.png") as image:
        assert np.asarray(image).tolist() == [[128, 128, 128], [128, 128, 128]]


@pytest.mark.parametrize(
    ("array", "name", "kwargs", "message"),
    [
        (np.zeros((4, 4, 2)), "x.png", {}, "HxWx3"),
        (np.zeros((2, 4, 4, 3)), "x.png", {}, "HxWx3"),
        (np.zeros((0, 4)), "x.png", {}, "empty"),
        (np.zeros((4, 4)), "x.txt", {}, ".txt"),
        (np.zeros((4, 4)), "x.png", {"quality": 50}, "quality"),
        (np.zeros((4, 4), dtype=complex), "x.png", {}, "complex"),
    ],
)
def test_bad_images_raise_clear_errors(tmp_path, array, name, kwargs, message):
    with pytest.raises(ValueError, match=message):
        write_image(array, tmp_path / name, **kwargs)
    assert not (tmp_path / name).exists()


# --- videos ---------------------------------------------------------------------------------


def test_docs_frames_as_mp4_decode_with_the_square_moving(tmp_path):
    frames = [square(100 + i, 80) for i in range(20)]
    write_video(frames, tmp_path / "animation.mp4")
    decoded, meta = read_video(tmp_path / "animation.mp4")
    assert len(decoded) == 20
    assert meta["fps"] == 20
    assert meta["size"] == (200, 200)
    for i in (0, 19):
        frame = decoded[i].mean(axis=2)
        assert frame[100 + i, 80] > 200  # inside the square
        assert frame[20, 20] < 30  # far outside it


def test_mp4_fps_and_stacked_rgb_uint8(tmp_path):
    frames = np.zeros((12, 48, 64, 3), dtype=np.uint8)
    frames[:, :, :, 1] = np.linspace(0, 255, 64, dtype=np.uint8)
    write_video(frames, tmp_path / "stacked.mp4", fps=30)
    decoded, meta = read_video(tmp_path / "stacked.mp4")
    assert len(decoded) == 12
    assert meta["fps"] == 30
    assert decoded[0].shape == (48, 64, 3)
    assert decoded[5][24, 60, 1] > 200  # the green ramp survives encoding
    assert decoded[5][24, 2, 1] < 40


def test_grayscale_480x640_and_single_channel_frames(tmp_path):
    ramp = np.tile(np.linspace(0, 1, 640), (480, 1))
    write_video([ramp] * 3, tmp_path / "gray.mp4")
    write_video(np.stack([ramp[:64, :64, None]] * 4), tmp_path / "one.mp4")
    gray, _ = read_video(tmp_path / "gray.mp4")
    one, _ = read_video(tmp_path / "one.mp4")
    assert [len(gray), gray[0].shape] == [3, (480, 640, 3)]
    assert [len(one), one[0].shape] == [4, (64, 64, 3)]


def test_stacked_torch_tensor_video(tmp_path):
    frames = torch.rand(6, 32, 48, 3, requires_grad=True)
    write_video(frames, tmp_path / "tensor.gif")
    with Image.open(tmp_path / "tensor.gif") as gif:
        assert gif.n_frames == 6
        assert gif.size == (48, 32)


def test_odd_sizes_are_padded_not_rescaled(tmp_path):
    frames = np.full((5, 101, 77, 3), 0.5)
    write_video(frames, tmp_path / "odd.mp4")
    decoded, meta = read_video(tmp_path / "odd.mp4")
    assert len(decoded) == 5
    assert meta["size"] == (78, 102)
    assert abs(int(decoded[0][101, 77, 0]) - 128) < 10  # the padded edge repeats the content


@pytest.mark.parametrize(("name", "codec"), [("a.mov", "h264"), ("a.webm", "vp9"), ("a.avi", "h264")])
def test_other_ffmpeg_containers(tmp_path, name, codec):
    write_video([square(50 + i, 60, size=96) for i in range(6)], tmp_path / name, fps=10)
    decoded, meta = read_video(tmp_path / name)
    assert len(decoded) == 6
    assert meta["size"] == (96, 96)
    assert meta["codec"] == codec


def test_encoder_options_pass_through(tmp_path):
    frames = [np.random.default_rng(i).random((64, 64, 3)) for i in range(8)]
    write_video(frames, tmp_path / "mpeg4.mp4", codec="mpeg4", quality=8, pixelformat="yuv420p")
    write_video(frames, tmp_path / "best.mp4", quality=10)
    write_video(frames, tmp_path / "worst.mp4", quality=1)
    _, meta = read_video(tmp_path / "mpeg4.mp4")
    assert meta["codec"] == "mpeg4"
    assert (tmp_path / "worst.mp4").stat().st_size < (tmp_path / "best.mp4").stat().st_size


def test_gif_has_every_frame_with_fps_duration_and_loop(tmp_path):
    frames = [square(100 + i, 80) for i in range(20)]
    write_video(frames, tmp_path / "fps.gif")
    write_video(frames, tmp_path / "duration.gif", fps=10, duration=0.2, loop=3)
    with Image.open(tmp_path / "fps.gif") as gif:
        assert gif.format == "GIF"
        assert gif.n_frames == 20
        assert gif.size == (200, 200)
        assert gif.info["duration"] == 50
        assert gif.info["loop"] == 0
        gif.seek(19)
        last = np.asarray(gif.convert("L"))
        assert last[119, 80] > 200
        assert last[100, 80] < 30
    with Image.open(tmp_path / "duration.gif") as gif:
        assert gif.n_frames == 20
        assert gif.info["duration"] == 200
        assert gif.info["loop"] == 3


@pytest.mark.parametrize(
    ("frames", "name", "message"),
    [
        ([], "x.mp4", "no frames"),
        (np.zeros((0, 8, 8)), "x.gif", "no frames"),
        ([np.zeros((8, 8)), np.zeros((8, 9))], "x.mp4", "frame 1 has shape"),
        ([np.zeros((8, 8)), np.zeros((8, 8, 3))], "x.gif", "frame 1 has shape"),
        ([np.zeros((8, 8, 5))], "x.mp4", "frame 0"),
        (np.zeros((8, 8)), "x.mp4", "NxHxW"),
        ([np.zeros((8, 8))], "x.png", ".png"),
    ],
)
def test_bad_videos_raise_clear_errors(tmp_path, frames, name, message):
    with pytest.raises(ValueError, match=message):
        write_video(frames, tmp_path / name)
    assert not (tmp_path / name).exists()


# --- figures --------------------------------------------------------------------------------


def test_figure_dpi_changes_pixel_size_and_figure_is_closed(tmp_path):
    fig = plt.figure(figsize=(4, 3))
    plt.plot([0.5, 0.4, 0.3])
    write_figure(fig, tmp_path / "low.png", dpi=50)
    assert not plt.fignum_exists(fig.number)
    fig = plt.figure(figsize=(4, 3))
    plt.plot([0.5, 0.4, 0.3])
    write_figure(fig, tmp_path / "high.png", dpi=100)
    with Image.open(tmp_path / "low.png") as low, Image.open(tmp_path / "high.png") as high:
        assert low.size == (200, 150)
        assert high.size == (400, 300)


def test_current_figure_is_used_when_none_given(tmp_path):
    plt.plot([1, 2, 3])
    number = plt.gcf().number
    write_figure(None, tmp_path / "current.png", dpi=20)
    assert not plt.fignum_exists(number)
    assert plt.get_fignums() == []
    with Image.open(tmp_path / "current.png") as image:
        assert image.size == (128, 96)  # matplotlib's default 6.4x4.8 inches


def test_transparent_gives_alpha(tmp_path):
    for name, transparent in (("clear.png", True), ("solid.png", False)):
        fig, ax = plt.subplots()
        ax.plot([1, 2])
        write_figure(fig, tmp_path / name, dpi=20, transparent=transparent)
    with Image.open(tmp_path / "clear.png") as clear, Image.open(tmp_path / "solid.png") as solid:
        assert clear.mode == "RGBA"
        assert np.asarray(clear)[0, 0, 3] == 0
        assert np.asarray(solid.convert("RGBA"))[0, 0, 3] == 255


def test_format_comes_from_the_extension(tmp_path):
    for name in ("plot.pdf", "plot.svg", "plot.jpg"):
        fig, ax = plt.subplots()
        ax.plot([1, 2])
        write_figure(fig, tmp_path / name, bbox_inches="tight")
    assert (tmp_path / "plot.pdf").read_bytes().startswith(b"%PDF")
    assert b"<svg" in (tmp_path / "plot.svg").read_bytes()
    with Image.open(tmp_path / "plot.jpg") as image:
        assert image.format == "JPEG"


def test_something_else_than_a_figure_is_refused(tmp_path):
    with pytest.raises(ValueError, match="matplotlib Figure, not a Figure"):
        write_figure(go.Figure(), tmp_path / "plot.png")
    assert not (tmp_path / "plot.png").exists()


def test_figure_is_closed_even_when_saving_fails(tmp_path):
    fig, ax = plt.subplots()
    ax.plot([1, 2])
    with pytest.raises(ValueError, match="xyz"):
        write_figure(fig, tmp_path / "plot.xyz")
    assert plt.get_fignums() == []


# --- objects --------------------------------------------------------------------------------


def test_numpy_arrays_round_trip(tmp_path):
    array = np.arange(12, dtype=np.float32).reshape(3, 4)
    write_object(array, tmp_path / "a.npy")
    write_object(array, tmp_path / "a.npz")
    write_object({"weights": array, "bias": [1, 2], "step": torch.tensor(7)}, tmp_path / "d.npz")
    assert np.array_equal(np.load(tmp_path / "a.npy"), array)
    with np.load(tmp_path / "a.npz") as single:
        assert np.array_equal(single["arr_0"], array)
    with np.load(tmp_path / "d.npz") as named:
        assert sorted(named.files) == ["bias", "step", "weights"]
        assert named["step"] == 7
        assert np.array_equal(named["weights"], array)
        assert named["bias"].tolist() == [1, 2]


def test_dataframes_round_trip_as_csv_and_parquet(tmp_path):
    frame = pd.DataFrame({"epoch": [1, 2, 3], "loss": [0.5, 0.25, 0.125]})
    write_object(frame, tmp_path / "results.csv")
    write_object(frame, tmp_path / "results.parquet")
    assert (tmp_path / "results.csv").read_text().splitlines()[0] == "epoch,loss"
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "results.csv"), frame)
    pd.testing.assert_frame_equal(pd.read_parquet(tmp_path / "results.parquet"), frame)


def test_dataframe_with_a_meaningful_index_keeps_it_in_csv(tmp_path):
    frame = pd.DataFrame({"loss": [0.5, 0.25]}, index=pd.Index(["a", "b"], name="run"))
    write_object(frame, tmp_path / "runs.csv")
    pd.testing.assert_frame_equal(pd.read_csv(tmp_path / "runs.csv", index_col="run"), frame)


def test_plotly_figures_as_html_and_json(tmp_path):
    fig = go.Figure(go.Scatter(x=[1, 2, 3], y=[0.5, 0.25, 0.125], name="loss"))
    write_object(fig, tmp_path / "loss.html")
    write_object(fig, tmp_path / "loss.json")
    page = (tmp_path / "loss.html").read_text()
    assert page.lstrip().lower().startswith("<!doctype html>")
    assert "Plotly.newPlot" in page
    assert '<script src="http' not in page  # plotly.js is embedded: the page works offline
    assert len(page) > 1_000_000
    back = plotly.io.read_json(tmp_path / "loss.json")
    assert list(back.data[0].y) == [0.5, 0.25, 0.125]
    assert json.loads((tmp_path / "loss.json").read_text())["data"][0]["name"] == "loss"


@pytest.mark.parametrize(
    ("obj", "name", "message"),
    [
        (np.zeros(3), "a.csv", r"\.npy or \.npz"),
        (pd.DataFrame({"a": [1]}), "a.npy", r"\.csv or \.parquet"),
        (go.Figure(), "a.png", r"\.html or \.json"),
        ([1, 2, 3], "a.npy", "numpy arrays, pandas DataFrames and plotly figures"),
        ({1: np.zeros(2)}, "a.npz", "keys"),
    ],
)
def test_object_extension_mismatch_raises(tmp_path, obj, name, message):
    with pytest.raises(ValueError, match=message):
        write_object(obj, tmp_path / name)
    assert not (tmp_path / name).exists()


def test_torch_objects_round_trip_to_paths_and_files(tmp_path):
    model = torch.nn.Linear(3, 2)
    write_torch(model.state_dict(), tmp_path / "state.pt")
    write_torch(model, tmp_path / "model.pt")
    buffer = io.BytesIO()
    write_torch(torch.arange(4), buffer)
    state = torch.load(tmp_path / "state.pt")
    assert torch.equal(state["weight"], model.weight.detach())
    whole = torch.load(tmp_path / "model.pt", weights_only=False)
    assert isinstance(whole, torch.nn.Linear)
    assert torch.equal(whole.bias, model.bias)
    buffer.seek(0)
    assert torch.load(buffer).tolist() == [0, 1, 2, 3]


def test_pickles_to_paths_and_files(tmp_path):
    import pickle

    obj = {"vocab": ["a", "b"], "sizes": (1, 2)}
    write_pickle(obj, tmp_path / "obj.pkl")
    buffer = io.BytesIO()
    write_pickle(obj, buffer)
    assert pickle.loads((tmp_path / "obj.pkl").read_bytes()) == obj
    assert pickle.loads(buffer.getvalue()) == obj


# --- missing extras -------------------------------------------------------------------------


def hide(monkeypatch, *modules):
    """Make `import module` fail for each module, as if it were not installed (undone after the test)."""
    for module in modules:
        monkeypatch.setitem(sys.modules, module, None)


def test_missing_matplotlib_names_the_plots_extra(tmp_path, monkeypatch):
    hide(monkeypatch, "matplotlib", "matplotlib.pyplot")
    with pytest.raises(
        MissingExtra, match=r"save_fig needs matplotlib: pip install 'mldashfs\[plots\]'"
    ) as info:
        write_figure(None, tmp_path / "x.png")
    assert isinstance(info.value, ImportError)
    assert info.value.extra == "plots"


def test_missing_torch_names_the_torch_extra(tmp_path, monkeypatch):
    hide(monkeypatch, "torch")
    with pytest.raises(MissingExtra, match=r"mldashfs\[torch\]"):
        write_torch({"a": 1}, tmp_path / "x.pt")
    assert not (tmp_path / "x.pt").exists()


def test_missing_pyarrow_names_the_data_extra(tmp_path, monkeypatch):
    frame = pd.DataFrame({"a": [1]})
    hide(monkeypatch, "pyarrow")
    with pytest.raises(MissingExtra, match=r"pyarrow: pip install 'mldashfs\[data\]'"):
        write_object(frame, tmp_path / "x.parquet")


def test_missing_plotly_names_the_data_extra(tmp_path, monkeypatch):
    fig = go.Figure()
    hide(monkeypatch, "plotly")
    with pytest.raises(MissingExtra, match=r"plotly: pip install 'mldashfs\[data\]'"):
        write_object(fig, tmp_path / "x.html")


# --- kind_of --------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("make", "kind"),
    [
        (lambda: plt.figure(), "figure"),
        (lambda: torch.zeros(2), "torch"),
        (lambda: torch.nn.Linear(2, 2), "torch"),
        (lambda: torch.nn.Linear(2, 2).state_dict(), "torch"),
        (lambda: {"model": torch.nn.Linear(2, 2).state_dict(), "epoch": 3}, "torch"),
        (lambda: pd.DataFrame({"a": [1]}), "dataframe"),
        (lambda: go.Figure(), "plotly"),
        (lambda: np.zeros((2, 2)), "ndarray"),
        (lambda: {"lr": 1e-3}, None),
        (lambda: [1, 2], None),
        (lambda: "model.pth", None),
        (lambda: b"\x00", None),
    ],
)
def test_kind_of(make, kind):
    assert kind_of(make()) == kind


def test_kind_of_imports_no_optional_library():
    code = (
        "import sys, ml_dash.media as media\n"
        "before = set(sys.modules)\n"
        "kinds = [media.kind_of(x) for x in ({'a': [1, {'b': 2}]}, 'x', 3.0)]\n"
        "new = sorted(m for m in set(sys.modules) - before if m.split('.')[0] in "
        "{'torch', 'pandas', 'matplotlib', 'plotly', 'pyarrow'})\n"
        "print(kinds, new)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[None, None, None] []"
