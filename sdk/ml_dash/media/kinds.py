"""Recognising the objects the SDK's `save()` routes to a media writer, without importing optional libraries.

An object of torch, pandas, matplotlib or plotly can only exist once its library is imported, so
the checks look the classes up in `sys.modules` and never trigger an import themselves.
"""

from __future__ import annotations

import sys
from collections.abc import Mapping
from typing import Any

# How deep into dicts/lists `kind_of` looks for tensors (a checkpoint dict holding a state dict).
TENSOR_SEARCH_DEPTH = 3


def loaded_class(module: str, name: str) -> type | None:
    """The class `module.name` if that module is already imported, else None."""
    loaded = sys.modules.get(module)
    found = getattr(loaded, name, None) if loaded is not None else None
    return found if isinstance(found, type) else None


def holds_tensor(obj: Any, tensor: type, depth: int = TENSOR_SEARCH_DEPTH) -> bool:
    """Whether `obj` is a tensor or a dict/list/tuple holding one within `depth` levels."""
    if isinstance(obj, tensor):
        return True
    if depth == 0:
        return False
    if isinstance(obj, Mapping):
        return any(holds_tensor(value, tensor, depth - 1) for value in obj.values())
    if isinstance(obj, (list, tuple)):
        return any(holds_tensor(value, tensor, depth - 1) for value in obj)
    return False


def kind_of(obj: Any) -> str | None:
    """ "figure", "torch", "dataframe", "plotly", "ndarray", or None for anything else.

    "torch" covers tensors, modules, and dicts/lists that hold tensors (state dicts, checkpoints).
    """
    figure = loaded_class("matplotlib.figure", "Figure")
    if figure is not None and isinstance(obj, figure):
        return "figure"
    tensor = loaded_class("torch", "Tensor")
    module = loaded_class("torch.nn", "Module")
    if tensor is not None and (holds_tensor(obj, tensor) or (module is not None and isinstance(obj, module))):
        return "torch"
    dataframe = loaded_class("pandas", "DataFrame")
    if dataframe is not None and isinstance(obj, dataframe):
        return "dataframe"
    plotly_figure = loaded_class("plotly.basedatatypes", "BaseFigure")
    if plotly_figure is not None and isinstance(obj, plotly_figure):
        return "plotly"
    ndarray = loaded_class("numpy", "ndarray")
    if ndarray is not None and isinstance(obj, ndarray):
        return "ndarray"
    return None
