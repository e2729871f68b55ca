"""Lazy imports of the optional libraries behind the savers.

Each optional library belongs to an extra of the mldashfs package; when it is
missing, the saver that needs it raises `MissingExtra` naming that extra.
"""

from __future__ import annotations

import importlib
from types import ModuleType

# The extra (in pyproject's optional-dependencies) that installs each optional library.
EXTRA_OF = {
    "matplotlib": "plots",
    "pandas": "data",
    "pyarrow": "data",
    "plotly": "data",
    "torch": "torch",
}


class MissingExtra(ImportError):
    """An optional library a saver needs is not installed; the message names the extra to install."""

    def __init__(self, feature: str, library: str) -> None:
        self.feature = feature
        self.library = library
        self.extra = EXTRA_OF[library]
        super().__init__(f"{feature} needs {library}: pip install 'mldashfs[{self.extra}]'", name=library)


def require(module: str, feature: str) -> ModuleType:
    """Import `module` (e.g. "matplotlib.pyplot") for `feature`, or raise MissingExtra naming its extra."""
    library = module.split(".", 1)[0]
    try:
        return importlib.import_module(module)
    except ImportError as exc:
        raise MissingExtra(feature, library) from exc
