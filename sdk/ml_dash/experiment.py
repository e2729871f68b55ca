"""`Experiment`: one experiment (`namespace/project/experiment`) in a local mldashfs store.

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
from .files import Files
from .run_data import Metric, Metrics, Params, log_line


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
    folder is `local_path=` (or ml-dash 0.11's `dash_root=`), else $ML_DASH_STORE, else ./.ml-dash.
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
    ) -> None:
        self.path = locations.experiment_path(prefix, name, project, namespace)
        self.root = locations.store_root(local_path if local_path is not None else dash_root)
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
                store = Store.open(self.root)
                store.mkdir(self.path, parents=True, exist_ok=True)
                self._store = store
            return self._store

    def open(self) -> Experiment:
        """Open the store now rather than on first use; returns the experiment."""
        _ = self.store
        return self

    def close(self) -> None:
        """Close the store; the experiment reopens it if used again."""
        with self._lock:
            if self._store is not None:
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
