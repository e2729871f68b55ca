"""What the CLI prints is safe for a terminal: control characters in stored names (an escape sequence
in a file name, say) come out escaped as `\\xNN`, never raw."""

from __future__ import annotations

import re
from typing import Any, TextIO

#: C0 controls but tab and newline (the CLI's own layout), DEL, and C1 controls.
CONTROL = re.compile("[\x00-\x08\x0b-\x1f\x7f-\x9f]")


def escape(text: str) -> str:
    return CONTROL.sub(lambda m: f"\\x{ord(m.group()):02x}", text)


class Escaping:
    """A text stream that escapes control characters on their way to `stream`."""

    def __init__(self, stream: TextIO) -> None:
        self._stream = stream

    def write(self, text: str) -> int:
        self._stream.write(escape(text))
        return len(text)

    def __getattr__(self, name: str) -> Any:
        return getattr(self._stream, name)
