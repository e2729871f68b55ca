"""Writing a matplotlib figure to a file (PNG, PDF, SVG, JPEG... by extension) and closing it."""

from __future__ import annotations

import os
from typing import Any

from .extras import require


def write_figure(fig: Any | None, dest: str | os.PathLike[str], **savefig_kwargs: Any) -> None:
    """Save `fig` (or pyplot's current figure when None) to `dest` and close it, even if saving fails.

    The format comes from the extension; `dpi`, `bbox_inches`, `transparent`... pass to `savefig`.
    Closing stops figures made in a training loop from piling up in pyplot's registry.
    """
    plt = require("matplotlib.pyplot", "save_fig")
    figure_class = require("matplotlib.figure", "save_fig").Figure
    figure = plt.gcf() if fig is None else fig
    if not isinstance(figure, figure_class):
        raise ValueError(f"save_fig takes a matplotlib Figure, not a {type(figure).__name__}")
    try:
        figure.savefig(os.fspath(dest), **savefig_kwargs)
    finally:
        plt.close(figure)
