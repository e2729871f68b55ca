"""Media encoders for the SDK: figures, images, videos and data objects written to a file path.

Each writer picks the format from the extension of `dest`; optional libraries are imported only
when needed and a missing one raises `MissingExtra` naming the extra to install.
"""

from .extras import MissingExtra
from .figures import write_figure
from .images import write_image
from .kinds import kind_of
from .objects import write_object, write_pickle, write_torch
from .videos import write_video

__all__ = [
    "MissingExtra",
    "kind_of",
    "write_figure",
    "write_image",
    "write_object",
    "write_pickle",
    "write_torch",
    "write_video",
]
