"""The writing half of a `FileRef`: upload, the save_* savers and batch uploads.

Each call validates its target name first, then stores exactly one new version per file (an
encoder that fails stores nothing) and returns the result dict of what was stored.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Iterable, Sequence
from typing import TYPE_CHECKING, Any

from mldashfs import paths
from mldashfs.errors import InvalidValue, IsADirectory, NotFound
from mldashfs.store import check_tags

from . import batches, locations

if TYPE_CHECKING:
    from .experiment import Experiment

Result = dict[str, Any]
#: Savers for numpy arrays store the raw array (not an image) when `to` ends in one of these.
ARRAY_SUFFIXES = (".npy", ".npz")


class Savers:
    """Save methods shared by every `FileRef`; targets are relative to the ref's folder."""

    _experiment: Experiment
    _path: str
    _description: str | None
    _tags: tuple[str, ...] | None
    _metadata: dict[str, Any] | None
    _file_path: str | os.PathLike[str] | None

    # -- where things go -------------------------------------------------------------------

    def _full(self, *rel: str) -> str:
        return paths.join(self._experiment.path, self._path, *rel)

    def _target(self, to: str | os.PathLike[str] | None) -> str:
        """The store path a saver writes: `to` below this folder, or this path itself if `to` is None."""
        if to is not None:
            return self._full(locations.relative(to))
        if not self._path:
            raise ValueError("to= is required here: name the file, e.g. to='config.json'")
        return self._full()

    def _kw(self, description: str | None, tags: Iterable[str] | None, metadata: dict[str, Any] | None) -> dict[str, Any]:
        """Per-call description/tags/metadata, falling back to the ones given to files(...)."""
        return {
            "description": description if description is not None else self._description,
            "tags": check_tags(tags) if tags is not None else self._tags,
            "metadata": metadata if metadata is not None else self._metadata,
        }

    def _put(self, to: str | os.PathLike[str] | None, data: bytes, kw: dict[str, Any]) -> Result:
        return self._experiment.store.put_bytes(self._target(to), data, **kw).to_dict()

    def _encode(
        self, to: str | os.PathLike[str] | None, encoder: Callable[[Any], None], kw: dict[str, Any]
    ) -> Result:
        """Store what `encoder(writer)` writes; an exception stores nothing."""
        with self._experiment.store.open_writer(self._target(to), **kw) as writer:
            encoder(writer)
        assert writer.version is not None  # a clean exit of `with` committed it
        return writer.version.to_dict()

    # -- savers ----------------------------------------------------------------------------

    def upload(
        self,
        src: str | os.PathLike[str],
        to: str | os.PathLike[str] | None = None,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Result:
        """Store a copy of the local file `src` under this folder (as `to`, else its own name)."""
        source = os.fspath(src)
        if not os.path.exists(source):
            raise NotFound(f"no such local file to upload: {source!r}")
        if os.path.isdir(source):
            raise IsADirectory(f"{source!r} is a directory: use upload_dir() or upload_all()")
        target = self._full(locations.relative(to if to is not None else os.path.basename(source)))
        version = self._experiment.store.put_file(target, source, **self._kw(description, tags, metadata))
        return version.to_dict()

    def save_text(
        self,
        text: str,
        to: str | os.PathLike[str] | None = None,
        *,
        encoding: str = "utf-8",
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Result:
        """Store a string as a text file."""
        if not isinstance(text, str):
            raise TypeError(f"save_text() takes a str, not {type(text).__name__}")
        return self._put(to, text.encode(encoding), self._kw(description, tags, metadata))

    def save_json(
        self,
        obj: Any,
        to: str | os.PathLike[str] | None = None,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Result:
        """Store a JSON-serialisable object as indented JSON."""
        try:
            data = json.dumps(obj, indent=2).encode()
        except (TypeError, ValueError) as e:
            raise InvalidValue(f"save_json() content is not JSON-serialisable: {e}") from e
        return self._put(to, data, self._kw(description, tags, metadata))

    def save_blob(
        self,
        data: bytes | bytearray | memoryview,
        to: str | os.PathLike[str] | None = None,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Result:
        """Store raw bytes."""
        if not isinstance(data, (bytes, bytearray, memoryview)):
            raise TypeError(f"save_blob() takes bytes, not {type(data).__name__}")
        return self._put(to, bytes(data), self._kw(description, tags, metadata))

    def save_torch(
        self,
        obj: Any,
        to: str | os.PathLike[str] | None = None,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Result:
        """Store a model, tensor or state dict with `torch.save`."""
        from . import media

        return self._encode(to, lambda w: media.write_torch(obj, w), self._kw(description, tags, metadata))

    def save_pkl(
        self,
        obj: Any,
        to: str | os.PathLike[str] | None = None,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Result:
        """Store any picklable object with pickle."""
        from . import media

        return self._encode(to, lambda w: media.write_pickle(obj, w), self._kw(description, tags, metadata))

    def save_fig(
        self,
        fig: Any = None,
        to: str | os.PathLike[str] | None = None,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **savefig_kwargs: Any,
    ) -> Result:
        """Store a matplotlib figure (the current one if `fig` is None) and close it.

        The extension of `to` picks the format; other keywords (dpi=, bbox_inches=...) go to
        `savefig`. The 000 form `save_fig("loss.png", dpi=150)` passes the name first.
        """
        from . import media

        if isinstance(fig, (str, os.PathLike)) and to is None:
            fig, to = None, fig
        return self._encode(
            to,
            lambda w: media.write_figure(fig, w.fspath, **savefig_kwargs),
            self._kw(description, tags, metadata),
        )

    def save_image(
        self,
        array: Any,
        to: str | os.PathLike[str] | None = None,
        *,
        quality: int | None = None,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Result:
        """Store an array (H×W, H×W×3/4; floats in [0, 1] or uint8) as an image, format from `to`."""
        from . import media

        return self._encode(
            to, lambda w: media.write_image(array, w.fspath, quality=quality), self._kw(description, tags, metadata)
        )

    def save_video(
        self,
        frames: Any,
        to: str | os.PathLike[str] | None = None,
        fps: float = 20,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
        **video_kwargs: Any,
    ) -> Result:
        """Store a list or stack of frames as a video (.mp4, .gif, ...); other keywords go to the encoder."""
        from . import media

        return self._encode(
            to,
            lambda w: media.write_video(frames, w.fspath, fps=fps, **video_kwargs),
            self._kw(description, tags, metadata),
        )

    def _save_object(self, obj: Any, to: str | os.PathLike[str] | None, kw: dict[str, Any]) -> Result:
        from . import media

        return self._encode(to, lambda w: media.write_object(obj, w.fspath), kw)

    def save(
        self,
        content: Any = None,
        to: str | os.PathLike[str] | None = None,
        *,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> Result:
        """Store `content` by its type: a local file path is uploaded, bytes saved as a blob,
        dict/list as JSON, a numpy array as an image (raw .npy/.npz if `to` says so), a figure
        with save_fig, a torch object with save_torch, a pandas/plotly object in the format of `to`.
        With no content, uploads the `file_path=` given to files(...) (the 000 form).
        """
        from . import media

        kw: dict[str, Any] = {"description": description, "tags": tags, "metadata": metadata}
        if content is None:
            if self._file_path is None:
                raise ValueError("save() needs content, or files(file_path=...) to upload")
            return self.upload(self._file_path, to, **kw)
        if isinstance(content, (str, os.PathLike)):
            if not os.path.isfile(content):
                raise NotFound(f"save() got a str, which means a local file to upload, but there is none: {content!r}")
            return self.upload(content, to, **kw)
        if isinstance(content, (bytes, bytearray, memoryview)):
            return self.save_blob(content, to, **kw)
        kind = media.kind_of(content)
        if kind == "figure":
            return self.save_fig(content, to, **kw)
        if kind == "torch":
            return self.save_torch(content, to, **kw)
        if kind == "ndarray" and not os.fspath(to or self._path).endswith(ARRAY_SUFFIXES):
            return self.save_image(content, to, **kw)
        if kind in ("ndarray", "dataframe", "plotly"):
            return self._save_object(content, to, self._kw(description, tags, metadata))
        if isinstance(content, (dict, list)):
            return self.save_json(content, to, **kw)
        raise TypeError(
            f"save() cannot store a {type(content).__name__}: use save_pkl() for arbitrary objects"
        )

    # -- batches ---------------------------------------------------------------------------

    def _upload_plan(self, plan: list[tuple[str, str]], kw: dict[str, Any]) -> list[Result]:
        store = self._experiment.store
        return [store.put_file(self._full(rel), src, **kw).to_dict() for src, rel in plan]

    def upload_dir(
        self,
        src: str | os.PathLike[str],
        *,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        preserve_path: bool = False,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[Result]:
        """Store every file below the local directory `src`, keeping relative paths.

        `files("inputs").upload_dir("system/")` stores `inputs/<file>`; with preserve_path=True,
        `inputs/system/<file>`. include/exclude are globs on the relative path or the file name.
        """
        plan = batches.plan_dir(src, include, exclude, preserve_path)
        return self._upload_plan(plan, self._kw(description, tags, metadata))

    def upload_all(
        self,
        sources: Iterable[str | os.PathLike[str]],
        *,
        include: Sequence[str] | None = None,
        exclude: Sequence[str] | None = None,
        preserve_path: bool = False,
        description: str | None = None,
        tags: Iterable[str] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> list[Result]:
        """Store a list of local files and directories in one call; returns one result per file."""
        plan = batches.plan_all(sources, include, exclude, preserve_path)
        return self._upload_plan(plan, self._kw(description, tags, metadata))

    save_all = upload_all
