"""The SDK's run data (`.ml_dash/`: params, logs, metrics) stays out of every listing of the experiment
(the SDK's `list()`, `mldashfs ls`, the mount's readdir) yet is reachable by name through each door."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

from ml_dash import Experiment
from tests.mounting import mounted

EXP = "alice/cv/resnet"
RUN_DATA = [".ml_dash/logs.jsonl", ".ml_dash/metrics/loss.jsonl", ".ml_dash/params.json"]


def seed(store_dir: Path) -> None:
    """An experiment with one file of its own and the three kinds of run data."""
    with Experiment(prefix=EXP, local_path=store_dir).run as exp:
        exp.params.set(lr=0.1)
        exp.metrics("loss").append(value=0.5, epoch=1)
        exp.log("started")
        exp.files("models").save_blob(b"w", to="best.pt")


def ls(store_dir: Path, *args: str) -> list[str]:
    """`mldashfs ls ARGS --json`: the names (files by their path relative to the listed folder)."""
    done = subprocess.run([sys.executable, "-m", "mldashfs.cli", "ls", *args, "--json", "--store", str(store_dir)],
                          capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    return [r["name"] if r["type"] == "directory" else r["prefix"] + "/" + r["filename"] for r in json.loads(done.stdout)]


def test_sdk_and_cli_leave_run_data_out_of_listings_but_find_it_by_name(store_dir, workdir):
    seed(store_dir)
    with Experiment(prefix=EXP, local_path=store_dir).run as exp:
        assert [f["filename"] for f in exp.files().list()] == ["best.pt"]
        assert sorted(f["prefix"] + "/" + f["filename"] for f in exp.files(".ml_dash").list()) == RUN_DATA
    assert ls(store_dir, EXP) == ["models"]
    assert ls(store_dir, "-r", EXP) == ["models/best.pt"]
    assert ls(store_dir, "-r", "alice") == ["models/best.pt"]
    assert ls(store_dir, "-r", f"{EXP}/.ml_dash") == RUN_DATA
    assert ls(store_dir, f"{EXP}/.ml_dash") == [".ml_dash/logs.jsonl", "metrics", ".ml_dash/params.json"]
    assert ls(store_dir, f"{EXP}/.ml_dash/params.json") == [".ml_dash/params.json"]
    done = subprocess.run([sys.executable, "-m", "mldashfs.cli", "get", f"{EXP}/.ml_dash/params.json", "p.json",
                           "--store", str(store_dir)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stderr
    assert json.loads((workdir / "p.json").read_text()) == {"lr": 0.1}


def test_the_mount_leaves_run_data_out_of_the_experiment_folder_but_finds_it_by_name(store_dir, tmp_path):
    seed(store_dir)
    with mounted(store_dir, tmp_path / "exp-mnt", experiment=EXP) as m:
        assert os.listdir(m.path) == ["models"]
        assert json.loads((m.path / ".ml_dash" / "params.json").read_text()) == {"lr": 0.1}
        assert sorted(os.listdir(m.path / ".ml_dash")) == ["logs.jsonl", "metrics", "params.json"]
        assert os.listdir(m.path / ".ml_dash" / "metrics") == ["loss.jsonl"]
    with mounted(store_dir, tmp_path / "root-mnt") as m:
        assert os.listdir(m.path / EXP) == ["models"]
        assert (m.path / EXP / ".ml_dash" / "params.json").is_file()
        assert [p for p in os.walk(m.path) if ".ml_dash" in p[0]] == []  # find/walk never step into it
