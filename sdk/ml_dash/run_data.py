"""Parameters, log lines and metrics of a run, kept as files of the experiment under `.ml_dash/`.

- `.ml_dash/params.json`: one JSON object, nested keys flattened to dotted names ("model.lr"),
  merged on each `params.set(...)` (each set is a new version, so history is kept);
- `.ml_dash/logs.jsonl`: one JSON object per `exp.log(...)` line;
- `.ml_dash/metrics/<name>.jsonl`: one JSON object per data point of metric `<name>`.

An append stages a copy of the current version in the store (copied by the core, not read into
Python), writes the new lines at its end and commits it; the superseded version is then deleted,
so a long log keeps one live version. Appends assume one writing process per experiment.

On a remote store every commit is an upload of the whole file, so appends are gathered in memory
and committed together: at most every FLUSH_SECONDS or FLUSH_LINES lines, before the run data is
read, and when the experiment closes.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Mapping
from typing import TYPE_CHECKING, Any

from mldashfs import downloads, paths
from mldashfs.errors import InvalidValue, NotFound
from mldashfs.paths import RUN_DATA

from . import locations

if TYPE_CHECKING:
    from .experiment import Experiment

PARAMS = "params.json"
LOGS = "logs.jsonl"
METRICS = "metrics"
#: The metric that `metrics.log(...)` writes to when no keyword holds a dict.
DEFAULT_METRIC = "metrics"


def _scalar(value: Any) -> Any:
    """numpy/torch scalars (anything with .item()) as plain numbers, for JSON."""
    if hasattr(value, "item"):
        return value.item()
    raise TypeError(f"{type(value).__name__} is not JSON-serialisable")


def encode(record: Any) -> str:
    """One JSON document; numpy/torch scalars become numbers, anything else not JSON is refused."""
    try:
        return json.dumps(record, default=_scalar)
    except (TypeError, ValueError) as e:
        raise InvalidValue(f"run data must be JSON-serialisable: {e}") from e


def flatten(values: Mapping[str, Any], parent: str = "") -> dict[str, Any]:
    """{"model": {"lr": 1}} -> {"model.lr": 1}, as ml-dash stores parameters."""
    flat: dict[str, Any] = {}
    for key, value in values.items():
        name = f"{parent}.{key}" if parent else str(key)
        if isinstance(value, Mapping) and value:
            flat.update(flatten(value, name))
        else:
            flat[name] = value
    return flat


#: A remote store's run data is committed at least this often while appends come in...
FLUSH_SECONDS = 5.0
#: ... and whenever this many lines wait.
FLUSH_LINES = 1000


class LineBuffer:
    """Lines appended to run-data files of a remote store and not committed yet (thread-safe)."""

    def __init__(self) -> None:
        self._lines: dict[str, list[str]] = {}
        self._since = time.monotonic()
        self._lock = threading.Lock()

    def add(self, rel: str, lines: list[str]) -> bool:
        """Keep `lines` for `rel`; True when a flush is due."""
        with self._lock:
            self._lines.setdefault(rel, []).extend(lines)
            waiting = sum(len(v) for v in self._lines.values())
            return waiting >= FLUSH_LINES or time.monotonic() - self._since >= FLUSH_SECONDS

    def take(self, rel: str | None = None) -> dict[str, list[str]]:
        """The waiting lines (of `rel` only, if given), removed from the buffer."""
        with self._lock:
            if rel is not None:
                return {rel: self._lines.pop(rel)} if rel in self._lines else {}
            out, self._lines = self._lines, {}
            self._since = time.monotonic()
            return out


def flush_lines(experiment: Experiment, rel: str | None = None) -> None:
    """Commit the lines a remote store's appends gathered (those of `rel` only, if given)."""
    for name, lines in experiment.run_lines.take(rel).items():
        _commit_lines(experiment, name, "".join(lines).encode())


def append_lines(experiment: Experiment, rel: str, records: list[Any]) -> None:
    """Append one JSON line per record to the run-data file `rel` (gathered first on a remote store)."""
    lines = [encode(r) + "\n" for r in records]
    if experiment.store.remote:
        if experiment.run_lines.add(rel, lines):
            flush_lines(experiment)
        return
    _commit_lines(experiment, rel, "".join(lines).encode())


def _commit_lines(experiment: Experiment, rel: str, data: bytes) -> None:
    """Append `data` to the run-data file `rel` as a new version (the old one is deleted)."""
    store = experiment.store
    path = paths.join(experiment.path, RUN_DATA, rel)
    try:
        base = store.latest(path)
    except NotFound:
        base = None
    staged = store.stage(base)
    try:
        staged.write(base.size if base is not None else 0, data)
        store.commit(path, staged, content_type="application/x-ndjson")
    except BaseException:
        staged.discard()
        raise
    if base is not None:
        store.delete_version(base.id)


def read_lines(experiment: Experiment, rel: str) -> list[Any]:
    """The records of a run-data .jsonl file, oldest first ([] if none yet)."""
    flush_lines(experiment, rel)
    try:
        version = experiment.store.latest(paths.join(experiment.path, RUN_DATA, rel))
    except NotFound:
        return []
    text = downloads.read_verified(experiment.store, version).decode()
    return [json.loads(line) for line in text.splitlines() if line]


class Params:
    """`exp.params` / `exp.parameters()`: the run's parameters, merged on each `set`."""

    def __init__(self, experiment: Experiment) -> None:
        self._experiment = experiment

    def set(self, **values: Any) -> Params:
        """Merge `values` (nested dicts flattened to dotted keys) into params.json."""
        merged = {**self.get(), **flatten(values)}
        data = encode(merged).encode()
        self._experiment.store.put_bytes(
            paths.join(self._experiment.path, RUN_DATA, PARAMS), data, content_type="application/json"
        )
        return self

    def get(self) -> dict[str, Any]:
        """The parameters stored so far, with dotted keys."""
        try:
            version = self._experiment.store.latest(paths.join(self._experiment.path, RUN_DATA, PARAMS))
        except NotFound:
            return {}
        return json.loads(downloads.read_verified(self._experiment.store, version))


class Metric:
    """`exp.metrics("train_loss")`: one named series of data points."""

    def __init__(self, experiment: Experiment, name: str) -> None:
        self._experiment = experiment
        self.name = name
        self._rel = paths.join(METRICS, locations.relative(f"{name}.jsonl"))

    def append(self, **fields: Any) -> Metric:
        """Store one data point (e.g. value=0.5, epoch=3); a `timestamp` is added if not given."""
        append_lines(self._experiment, self._rel, [{**fields, "timestamp": fields.get("timestamp", time.time())}])
        return self

    log = append

    def read(self) -> list[dict[str, Any]]:
        """Every data point stored so far, oldest first."""
        return read_lines(self._experiment, self._rel)


class Metrics:
    """`exp.metrics`: `exp.metrics("name")` gives a `Metric`; `exp.metrics.log(...)` logs several."""

    def __init__(self, experiment: Experiment) -> None:
        self._experiment = experiment

    def __call__(self, name: str) -> Metric:
        return Metric(self._experiment, name)

    def log(self, **values: Any) -> Metrics:
        """`log(epoch=3, train=dict(loss=.1), eval=dict(loss=.2))` appends {loss, epoch} to the
        metrics "train" and "eval"; with no dict values, the point goes to the metric "metrics".
        """
        groups = {k: v for k, v in values.items() if isinstance(v, Mapping)}
        shared = {k: v for k, v in values.items() if k not in groups}
        for name, fields in (groups or {DEFAULT_METRIC: {}}).items():
            Metric(self._experiment, name).append(**{**shared, **fields})
        return self


def log_line(experiment: Experiment, message: str, level: str, metadata: dict[str, Any] | None) -> None:
    """Append one line to the run's log."""
    record: dict[str, Any] = {"timestamp": time.time(), "level": level, "message": str(message)}
    if metadata is not None:
        record["metadata"] = metadata
    append_lines(experiment, LOGS, [record])
