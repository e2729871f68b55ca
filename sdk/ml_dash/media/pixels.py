"""Conversion of array-like pixel data (numpy arrays, torch tensors, lists) to uint8 numpy arrays.

Shared by the image and video writers so both read values the same way.
"""

from __future__ import annotations

from typing import Any

import numpy as np


def as_array(data: Any) -> np.ndarray:
    """A numpy array of `data`; torch tensors are detached and moved to the CPU first."""
    if hasattr(data, "detach") and hasattr(data, "cpu"):
        tensor = data.detach().cpu()
        if tensor.is_floating_point():
            tensor = tensor.float()  # numpy has no bfloat16
        return tensor.numpy()
    return np.asarray(data)


def to_uint8(array: np.ndarray) -> np.ndarray:
    """Pixel values as uint8: floats in [0, 1] scaled to 0-255 (clipped, NaN -> 0), uint8 as is,
    bools to 0/255, uint16 shifted down to 8 bits, other integers clipped to 0-255."""
    if array.dtype == np.uint8:
        return array
    if array.dtype == np.bool_:
        return array.astype(np.uint8) * 255
    if array.dtype == np.uint16:
        return (array >> 8).astype(np.uint8)
    if np.issubdtype(array.dtype, np.integer):
        return np.clip(array, 0, 255).astype(np.uint8)
    if np.issubdtype(array.dtype, np.floating):
        scaled = np.nan_to_num(array.astype(np.float32), nan=0.0, posinf=1.0, neginf=0.0)
        return np.rint(np.clip(scaled, 0.0, 1.0) * 255.0).astype(np.uint8)
    raise ValueError(f"cannot read pixel values of dtype {array.dtype}: use floats in [0, 1] or uint8")


def to_pixels(data: Any) -> np.ndarray:
    """One image as a uint8 array of shape HxW (grayscale), HxWx3 (RGB) or HxWx4 (RGBA)."""
    array = as_array(data)
    if array.ndim == 3 and array.shape[2] == 1:
        array = array[:, :, 0]
    if array.ndim != 2 and not (array.ndim == 3 and array.shape[2] in (3, 4)):
        raise ValueError(f"an image must be HxW, HxWx1, HxWx3 or HxWx4, got an array of shape {array.shape}")
    if array.shape[0] == 0 or array.shape[1] == 0:
        raise ValueError(f"an image must not be empty, got an array of shape {array.shape}")
    return to_uint8(array)
