"""Fixtures for the SDK tests: one store per test in tmp_path, a scratch working directory."""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path

import matplotlib
import pytest

matplotlib.use("Agg")

from ml_dash import Experiment  # noqa: E402  (after choosing the headless backend)


@pytest.fixture
def store_dir(tmp_path: Path) -> Path:
    """The folder of this test's store (made by the SDK on first use)."""
    return tmp_path / "store"


@pytest.fixture
def workdir(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory for files the test makes and downloads."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    for var in ("ML_DASH_STORE", "ML_DASH_NAMESPACE"):
        monkeypatch.delenv(var, raising=False)
    return work


@pytest.fixture
def exp(store_dir: Path, workdir: Path) -> Iterator[Experiment]:
    """An open experiment `alice/project/exp` in this test's store; closed after the test."""
    with Experiment(prefix="alice/project/exp", local_path=store_dir).run as experiment:
        yield experiment


@pytest.fixture
def blob_files(store_dir: Path) -> Callable[[str, str], list[Path]]:
    """Find the on-disk blob files of one version (laid out as .../<id>/<filename>)."""

    def find(version_id: str, filename: str) -> list[Path]:
        return [p for p in store_dir.rglob(filename) if p.parent.name == version_id and p.is_file()]

    return find


@pytest.fixture
def snapshot() -> Callable[[Experiment], list[tuple[str, str, str]]]:
    """List every live file of an experiment, run data included, as (path, id, checksum)."""

    def take(experiment: Experiment) -> list[tuple[str, str, str]]:
        everything = experiment.files().list() + experiment.files(".ml_dash").list()
        return sorted((f["prefix"] + "/" + f["filename"], f["id"], f["checksum"]) for f in everything)

    return take


@pytest.fixture
def make_file() -> Callable[[str | os.PathLike[str], bytes], str]:
    """Make a local file (and its folders) holding some bytes; returns its path as a str."""

    def make(path: str | os.PathLike[str], data: bytes) -> str:
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_bytes(data)
        return str(p)

    return make
