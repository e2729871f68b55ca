"""Progress bars for long transfers, shown only to a person watching a terminal."""

from __future__ import annotations

import contextlib
import sys
from collections.abc import Callable, Iterator

#: Transfers smaller than this finish too fast for a bar to help.
MIN_BYTES = 4 * 1024 * 1024


@contextlib.contextmanager
def progress_bar(total: int, desc: str) -> Iterator[Callable[[int], None] | None]:
    """Yield a callback taking each chunk's byte count, or None when stderr is no terminal or `total` is small."""
    if total < MIN_BYTES or not sys.stderr.isatty():
        yield None
        return
    from tqdm import tqdm  # imported only when a bar is shown: it costs every command ~35 ms

    with tqdm(
        total=total, desc=desc, unit="B", unit_scale=True, unit_divisor=1024, file=sys.stderr, leave=False
    ) as bar:
        yield bar.update
