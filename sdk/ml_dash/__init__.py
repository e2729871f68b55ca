"""ml_dash: the ML-Dash files API over an mldashfs store (`from ml_dash import Experiment`).

`ml_dash.errors` holds the exceptions; `ml_dash.media` the encoders the savers use.
"""

from . import errors
from .experiment import Experiment

__all__ = ["Experiment", "errors"]
