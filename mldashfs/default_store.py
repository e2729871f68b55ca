"""The store every front end uses when none is named: $ML_DASH_STORE, else ./.ml-dash (the ML-Dash docs' folder)."""

from __future__ import annotations

import os

#: The folder used when neither a location nor $ML_DASH_STORE is given.
DEFAULT_STORE = ".ml-dash"


def default_store() -> str:
    """$ML_DASH_STORE if set and non-empty, else ./.ml-dash (relative to the current directory)."""
    return os.environ.get("ML_DASH_STORE") or DEFAULT_STORE
