"""The read-only `.versions` view: `<dir>/.versions/<file>/<id>` is one version of `<dir>/<file>`.

`.versions` is a reserved name, never listed by readdir but found by lookup, so a path with a
`.versions` component is always one of the three virtual kinds below and never a stored path.
"""

from __future__ import annotations

from dataclasses import dataclass

from ..paths import EXPERIMENT_DEPTH, RESERVED, depth, join

VERSIONS = next(iter(RESERVED))


@dataclass(frozen=True)
class VersionsPath:
    """A parsed virtual path: `<dir>/.versions`, `<dir>/.versions/<file>` or `.../<file>/<id>`."""

    dir: str
    file: str | None = None
    version_id: int | None = None

    @property
    def file_path(self) -> str:
        """The store path of the file whose versions are shown."""
        assert self.file is not None
        return join(self.dir, self.file)


def parse(path: str) -> VersionsPath | None:
    """The virtual path `path` denotes, or None for an ordinary store path.

    Raises ValueError for a `.versions` path that cannot exist (too shallow, too deep, bad id).
    """
    parts = path.split("/") if path else []
    if VERSIONS not in parts:
        return None
    i = parts.index(VERSIONS)
    rest = parts[i + 1 :]
    base = "/".join(parts[:i])
    if depth(base) < EXPERIMENT_DEPTH or len(rest) > 2:
        raise ValueError(path)
    if len(rest) == 2 and not rest[1].isdigit():
        raise ValueError(path)
    return VersionsPath(
        dir=base,
        file=rest[0] if rest else None,
        version_id=int(rest[1]) if len(rest) == 2 else None,
    )


def child(parent: str, name: str) -> str:
    """The path of `name` inside `parent` (works for the root '' too)."""
    return f"{parent}/{name}" if parent else name


def parse_lenient(path: str) -> VersionsPath | None:
    """`parse` that treats an impossible `.versions` path as a (missing) virtual one."""
    try:
        return parse(path)
    except ValueError:
        return VersionsPath(dir=path)
