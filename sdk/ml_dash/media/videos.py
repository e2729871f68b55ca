"""Writing a sequence of frames as a video: MP4, MOV, WebM, AVI, MKV through ffmpeg, GIF through Pillow.

Frames are converted in numpy (see pixels.py); odd frame sizes are padded by edge replication to
the codec's macro block (2 by default, what H.264 in yuv420p needs) instead of being rescaled.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from typing import Any

import numpy as np

from .pixels import as_array, to_pixels

# Video extensions ffmpeg writes -> the codec used when the caller names none (None: imageio's H.264).
FFMPEG_CODECS: dict[str, str | None] = {
    ".mp4": None,
    ".m4v": None,
    ".mov": None,
    ".mkv": None,
    ".avi": None,
    ".webm": "libvpx-vp9",
}
# Frame sizes are padded to a multiple of this unless the caller passes macro_block_size.
DEFAULT_MACRO_BLOCK = 2


def to_frames(frames: Any) -> list[np.ndarray]:
    """The frames as uint8 arrays of one shape: from a list of HxW[xC] frames or an NxHxW[xC] array."""
    if hasattr(frames, "shape"):
        stacked = as_array(frames)
        if stacked.ndim not in (3, 4):
            raise ValueError(f"a stacked array of frames must be NxHxW or NxHxWxC, got shape {stacked.shape}")
        frames = list(stacked)
    elif isinstance(frames, Iterable):
        frames = list(frames)
    else:
        raise ValueError(f"frames must be a list of arrays or a stacked array, not {type(frames).__name__}")
    if not frames:
        raise ValueError("no frames to write: the video would be empty")
    out: list[np.ndarray] = []
    for index, frame in enumerate(frames):
        try:
            pixels = to_pixels(frame)
        except ValueError as exc:
            raise ValueError(f"frame {index}: {exc}") from None
        if out and pixels.shape != out[0].shape:
            raise ValueError(
                f"frame {index} has shape {pixels.shape} but frame 0 has {out[0].shape}: "
                "all frames must have the same shape"
            )
        out.append(pixels)
    return out


def pad_to_block(frame: np.ndarray, block: int) -> np.ndarray:
    """`frame` grown at the bottom and right (repeating the edge) so height and width divide by `block`."""
    extra_h = -frame.shape[0] % block
    extra_w = -frame.shape[1] % block
    if not (extra_h or extra_w):
        return frame
    widths = ((0, extra_h), (0, extra_w)) + ((0, 0),) * (frame.ndim - 2)
    return np.pad(frame, widths, mode="edge")


def write_video(frames: Any, dest: str | os.PathLike[str], fps: float = 20, **kwargs: Any) -> None:
    """Write `frames` as a video at `dest`, in the format its extension names.

    For ffmpeg formats, `codec`, `quality`, `pixelformat`, `bitrate`, `macro_block_size`... pass to
    imageio's ffmpeg writer; for GIF, `duration` (seconds per frame, overrides fps) and `loop`
    (0 = forever) and any other Pillow GIF option.
    """
    path = os.fspath(dest)
    ext = os.path.splitext(path)[1].lower()
    if ext != ".gif" and ext not in FFMPEG_CODECS:
        names = ", ".join([*FFMPEG_CODECS, ".gif"])
        raise ValueError(f"cannot write a video as {ext or 'a file without extension'!r}: use one of {names}")
    if fps <= 0:
        raise ValueError(f"fps must be positive, got {fps}")
    pixels = to_frames(frames)
    if ext == ".gif":
        write_gif(pixels, path, fps, **kwargs)
    else:
        write_ffmpeg(pixels, path, fps, **kwargs)


def write_ffmpeg(frames: list[np.ndarray], path: str, fps: float, **kwargs: Any) -> None:
    """Encode uint8 frames with imageio-ffmpeg; the container comes from the extension of `path`."""
    import imageio.v2 as imageio

    block = kwargs.pop("macro_block_size", DEFAULT_MACRO_BLOCK) or 1
    codec = FFMPEG_CODECS[os.path.splitext(path)[1].lower()]
    if codec is not None:
        kwargs.setdefault("codec", codec)
    with imageio.get_writer(
        path, format="FFMPEG", mode="I", fps=fps, macro_block_size=block, **kwargs
    ) as writer:
        for frame in frames:
            writer.append_data(pad_to_block(frame, block))  # type: ignore[attr-defined]  # an FFMPEG writer


def write_gif(
    frames: list[np.ndarray],
    path: str,
    fps: float,
    duration: float | None = None,
    loop: int = 0,
    **kwargs: Any,
) -> None:
    """Write uint8 frames as an animated GIF with Pillow (identical consecutive frames are merged)."""
    from PIL import Image

    seconds = 1.0 / fps if duration is None else duration
    images = [Image.fromarray(frame) for frame in frames]
    images[0].save(
        path,
        format="GIF",
        save_all=True,
        append_images=images[1:],
        duration=round(seconds * 1000),
        loop=loop,
        **kwargs,
    )
