"""Writing data objects to files: numpy arrays, pandas DataFrames, plotly figures, torch objects, pickles."""

from __future__ import annotations

import os
import pickle
from collections.abc import Mapping
from typing import IO, Any

from .extras import require
from .kinds import kind_of
from .pixels import as_array

# The extensions each kind of object can be written as.
EXTENSIONS_OF_KIND = {
    "ndarray": (".npy", ".npz"),
    "dataframe": (".csv", ".parquet"),
    "plotly": (".html", ".json"),
}


def write_object(obj: Any, dest: str | os.PathLike[str]) -> None:
    """Write a numpy array (.npy/.npz; .npz also takes a dict of arrays), a DataFrame (.csv/.parquet)
    or a plotly figure (.html/.json) to `dest`; ValueError when the extension does not fit `obj`."""
    path = os.fspath(dest)
    ext = os.path.splitext(path)[1].lower()
    kind = kind_of(obj)
    if ext == ".npz" and isinstance(obj, Mapping):
        write_npz_dict(obj, path)
        return
    if kind not in EXTENSIONS_OF_KIND:
        raise ValueError(
            f"cannot write a {type(obj).__name__} with write_object: it takes numpy arrays, "
            "pandas DataFrames and plotly figures"
        )
    if ext not in EXTENSIONS_OF_KIND[kind]:
        choices = " or ".join(EXTENSIONS_OF_KIND[kind])
        raise ValueError(
            f"a {type(obj).__name__} can be written as {choices}, not as {ext or 'a file without extension'!r}"
        )
    if kind == "ndarray":
        write_array(obj, path, ext)
    elif kind == "dataframe":
        write_dataframe(obj, path, ext)
    else:
        write_plotly(obj, path, ext)


def write_array(array: Any, path: str, ext: str) -> None:
    """A numpy array as .npy (no pickled objects) or as the single array `arr_0` of an .npz."""
    import numpy as np

    with open(path, "wb") as out:
        if ext == ".npy":
            np.save(out, array, allow_pickle=False)
        else:
            np.savez(out, array)


def write_npz_dict(arrays: Mapping[Any, Any], path: str) -> None:
    """A dict of arrays as an .npz whose member names are the dict's (string) keys."""
    import numpy as np

    bad = [key for key in arrays if not isinstance(key, str)]
    if bad:
        raise ValueError(f"the keys of a dict written as .npz must be strings, got {bad[0]!r}")
    with open(path, "wb") as out:
        members: dict[str, Any] = {key: as_array(value) for key, value in arrays.items()}
        np.savez(out, **members)


def write_dataframe(frame: Any, path: str, ext: str) -> None:
    """A DataFrame as CSV (its index only when it is not the default 0..n-1) or Parquet."""
    pd = require("pandas", "saving a DataFrame")
    if ext == ".parquet":
        require("pyarrow", "saving a DataFrame as Parquet")
        frame.to_parquet(path)
        return
    default_index = frame.index.equals(pd.RangeIndex(len(frame)))
    frame.to_csv(path, index=not default_index)


def write_plotly(figure: Any, path: str, ext: str) -> None:
    """A plotly figure as a self-contained HTML page (plotly.js embedded, works offline) or as JSON."""
    require("plotly", "saving a plotly figure")
    if ext == ".html":
        figure.write_html(path, include_plotlyjs=True)
    else:
        figure.write_json(path)


def write_torch(obj: Any, dest: str | os.PathLike[str] | IO[bytes]) -> None:
    """`torch.save` of a tensor, state dict, checkpoint dict or whole module to a path or binary file."""
    torch = require("torch", "save_torch")
    torch.save(obj, dest)


def write_pickle(obj: Any, dest: str | os.PathLike[str] | IO[bytes]) -> None:
    """Pickle `obj` (highest protocol) to a path or binary file."""
    if isinstance(dest, (str, os.PathLike)):
        with open(dest, "wb") as out:
            pickle.dump(obj, out, protocol=pickle.HIGHEST_PROTOCOL)
    else:
        pickle.dump(obj, dest, protocol=pickle.HIGHEST_PROTOCOL)
