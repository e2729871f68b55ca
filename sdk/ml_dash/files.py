"""`exp.files`: the experiment's files API, in the direct style and as a `FileRef` factory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable
from typing import Any

from mldashfs.errors import NotFound

from .file_ref import FileRef


class Files(FileRef):
    """`exp.files`: the experiment's top folder (direct style) and, called, a `FileRef` factory.

    `exp.files("models")` is the folder `models` (002). `exp.files("model.pth", prefix="/models")`,
    i.e. a name together with prefix=, description=, tags= or metadata=, is the 000 form: it
    uploads the local file at once and returns its result dict. Without a name, keywords set the
    folder (prefix=/dir=) and defaults for saves, or name a version (file_id=) or a pending upload
    (file_path=, for `.save()`).
    """

    def __call__(
        self,
        path: str | os.PathLike[str] | None = None,
        *,
        prefix: str | os.PathLike[str] | None = None,
        dir: str | os.PathLike[str] | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
        file_path: str | os.PathLike[str] | None = None,
        file_id: int | str | None = None,
        dest_path: str | os.PathLike[str] | None = None,
    ) -> Any:
        if path is not None and any(x is not None for x in (prefix, description, tags, metadata)):
            source = os.fspath(path)
            if not os.path.isfile(source):
                raise NotFound(
                    f"no such local file to upload: {source!r} (files(name, prefix=/description=/tags=/"
                    f"metadata=...) uploads that file now; use files(prefix=...) to set save defaults)"
                )
            return FileRef(self._experiment, prefix).upload(
                source, description=description, tags=tags, metadata=metadata
            )
        given = [x for x in (path, dir, prefix) if x is not None]
        if len(given) > 1:
            raise ValueError("give the folder once: files('models'), files(dir='models') or files(prefix='/models')")
        return FileRef(
            self._experiment,
            given[0] if given else None,
            description=description,
            tags=tags,
            metadata=metadata,
            file_path=file_path,
            file_id=file_id,
            dest_path=dest_path,
        )

    def wait(self, timeout: float | None = None) -> bool:
        """Wait until every save of this process's store is uploaded (remote stores; local ones have
        nothing to wait for). Returns False if `timeout` seconds passed first."""
        return self._experiment.store.wait_uploads(upload_bar(), timeout)


def upload_bar() -> Callable[[int, int], None]:
    """A progress callback for pending uploads: a bar on a terminal, silent otherwise."""
    from mldashfs.cli.upload_commands import ProgressBar

    return ProgressBar().update
