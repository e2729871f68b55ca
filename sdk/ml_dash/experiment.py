"""`Experiment`: one experiment (`namespace/project/experiment`) in an mldashfs store (local or remote).

The store opens on first use and closes when the `with` block (`Experiment(...).run` or the
experiment itself) ends; a plain `exp = Experiment(...)` works too and may be closed by hand.
"""

from __future__ import annotations

import os
import threading
from types import TracebackType
from typing import Any

from mldashfs.store import Store

from . import locations
from .files import Files, upload_bar
from .run_data import LineBuffer, Metric, Metrics, Params, flush_lines, log_line


class Run:
    """`exp.run`: the run's lifecycle; `with exp.run as exp:` opens the store and closes it after."""

    def __init__(self, experiment: Experiment) -> None:
        self._experiment = experiment

    def start(self) -> Experiment:
        """Open the experiment's store (creating the experiment folder) and return the experiment."""
        return self._experiment.open()

    def complete(self) -> None:
        """Close the experiment's store."""
        self._experiment.close()

    def __enter__(self) -> Experiment:
        return self.start()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.complete()


class Experiment:
    """An experiment: `Experiment(prefix="alice/project/exp")`, or the older
    `Experiment(name="exp", project="project", local_path=".ml-dash")`.

    The older form's namespace is `namespace=`, else $ML_DASH_NAMESPACE, else "local". The store
    is `store=` / `local_path=` (or ml-dash 0.11's `dash_root=`), else $ML_DASH_STORE, else ./.ml-dash;
    `store="s3://bucket/prefix"` with `mongo=` (or $ML_DASH_MONGO_URI) is a remote store: saves return
    once the bytes are staged locally, upload in the background, and leaving the experiment (or
    `exp.files.wait()`) waits for them unless `wait_uploads=False`.
    """

    def __init__(
        self,
        prefix: str | None = None,
        *,
        name: str | None = None,
        project: str | None = None,
        namespace: str | None = None,
        local_path: str | os.PathLike[str] | None = None,
        dash_root: str | os.PathLike[str] | None = None,
        store: str | os.PathLike[str] | None = None,
        mongo: str | None = None,
        cache_dir: str | os.PathLike[str] | None = None,
        wait_uploads: bool = True,
    ) -> None:
        self.path = locations.experiment_path(prefix, name, project, namespace)
        given = [x for x in (store, local_path, dash_root) if x is not None]
        if len(given) > 1:
            raise ValueError("give the store once: store=, local_path= or dash_root=")
        self.root = locations.store_root(given[0] if given else None)
        self._options: dict[str, Any] = {k: os.fspath(v) if k == "cache_dir" else v
                                         for k, v in (("mongo", mongo), ("cache_dir", cache_dir)) if v is not None}
        self.wait_uploads = wait_uploads
        self.run_lines = LineBuffer()  # a remote store's appended run data, committed in batches
        self._store: Store | None = None
        self._lock = threading.Lock()
        self.run = Run(self)
        self.params = Params(self)
        self.metrics = Metrics(self)

    def __repr__(self) -> str:
        return f"Experiment({self.path!r}, store={self.root!r})"

    @property
    def namespace(self) -> str:
        return self.path.split("/")[0]

    @property
    def project(self) -> str:
        return self.path.split("/")[1]

    @property
    def name(self) -> str:
        return self.path.split("/")[2]

    @property
    def store(self) -> Store:
        """The open store (opened, and the experiment folder made, on first use)."""
        with self._lock:
            if self._store is None:
                store = Store.open(self.root, **self._options)
                store.mkdir(self.path, parents=True, exist_ok=True)
                self._store = store
            return self._store

    def open(self) -> Experiment:
        """Open the store now rather than on first use; returns the experiment."""
        _ = self.store
        return self

    def close(self) -> None:
        """Wait for background uploads (unless `wait_uploads=False`: they finish at the next open or
        `mldashfs sync`), then close the store; the experiment reopens it if used again."""
        if self._store is not None:
            flush_lines(self)
        with self._lock:
            if self._store is not None:
                if self.wait_uploads:
                    self._store.wait_uploads(upload_bar())
                self._store.close()
                self._store = None

    def __enter__(self) -> Experiment:
        return self.open()

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self.close()

    @property
    def files(self) -> Files:
        """The files API: `exp.files("models").upload(...)`, `exp.files.save_json(x, to="a/b.json")`."""
        return Files(self)

    #: The 001 name of `files`.
    file = files

    def parameters(self) -> Params:
        """The 001 name of `params`."""
        return self.params

    def metric(self, name: str) -> Metric:
        """The 001 name of `metrics(name)`."""
        return self.metrics(name)

    def log(self, message: Any, *, level: str = "info", metadata: dict[str, Any] | None = None) -> None:
        """Append a line to the run's log (`.ml_dash/logs.jsonl`)."""
        log_line(self, message, level, metadata)
