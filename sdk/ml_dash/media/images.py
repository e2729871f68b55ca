"""Writing one image (a numpy array or torch tensor) as PNG, JPEG or another Pillow format."""

from __future__ import annotations

import os
from typing import Any

from .pixels import to_pixels

# Pillow formats that take a `quality` setting.
QUALITY_FORMATS = {"JPEG", "WEBP"}
# Pillow formats that cannot hold an alpha channel; RGBA is saved as RGB there.
NO_ALPHA_FORMATS = {"JPEG"}


def image_format(dest: str | os.PathLike[str]) -> str:
    """The Pillow format name that the extension of `dest` selects (ValueError if none does)."""
    from PIL import Image

    ext = os.path.splitext(os.fspath(dest))[1].lower()
    fmt = Image.registered_extensions().get(ext)
    if fmt is None or fmt not in Image.SAVE:
        raise ValueError(f"cannot write an image as {ext or 'a file without extension'!r}: use .png or .jpg")
    return fmt


def write_image(array: Any, dest: str | os.PathLike[str], quality: int | None = None) -> None:
    """Write an HxW, HxWx1, HxWx3 or HxWx4 array to `dest`, in the format its extension names.

    Floats in [0, 1] are scaled to 0-255, uint8 is used as is; `quality` (1-95) is for JPEG and WebP.
    """
    from PIL import Image

    fmt = image_format(dest)
    if quality is not None and fmt not in QUALITY_FORMATS:
        raise ValueError(f"quality applies to JPEG and WebP images, not {fmt}")
    pixels = to_pixels(array)
    image = Image.fromarray(pixels)
    if image.mode == "RGBA" and fmt in NO_ALPHA_FORMATS:
        image = image.convert("RGB")
    options = {} if quality is None else {"quality": quality}
    image.save(os.fspath(dest), format=fmt, **options)
