"""`scripts/bench_store.py --quick` and `scripts/bench_fs.py --quick` run end to end and print every figure
(smoke runs: no speed targets are checked here)."""

from __future__ import annotations

import json
import math
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .mounting import require_fuse

SCRIPTS = Path(__file__).resolve().parents[1] / "scripts"
SCRIPT = SCRIPTS / "bench_store.py"


def test_bench_store_quick_prints_the_table() -> None:
    with tempfile.TemporaryDirectory(prefix="mldashfs-bench-smoke-") as d:
        raw = Path(d) / "figures.json"
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--quick", "--no-published", "--dir", d, "--json", str(raw)],
            capture_output=True,
            text=True,
            timeout=120,
        )
        assert done.returncode == 0, done.stderr
        figures = json.loads(raw.read_text())
        assert os.listdir(d) == ["figures.json"]  # the work folder was removed
    lines = done.stdout.splitlines()
    assert lines[0].split() == ["WORKLOAD", "CONTENDER", "RESULT", "RATIO"]
    for contender in ("cp", "sha256sum + cp (by hand)", "mldashfs Store.put_file", "mldashfs SDK: last 100"):
        assert any(contender in line for line in lines), contender
    upload, save_json = figures["upload"], figures["save_json"]
    assert upload["bytes"] == 64 << 20
    assert all(upload[k] > 0 for k in ("cp", "by_hand", "mldashfs", "hashlib_bytes_per_s"))
    assert save_json["mldashfs"]["done"] == save_json["calls"] == 500
    assert save_json["mldashfs"]["first"] > 0 and save_json["mldashfs"]["last"] > 0


def test_bench_fs_quick_prints_the_table_and_leaves_no_mount() -> None:
    require_fuse()
    with tempfile.TemporaryDirectory(prefix="mldashfs-benchfs-smoke-") as d:
        raw = Path(d) / "figures.json"
        done = subprocess.run([sys.executable, str(SCRIPTS / "bench_fs.py"), "--quick", "--dir", d, "--json", str(raw)],
                              capture_output=True, text=True, timeout=300)
        assert done.returncode == 0, done.stdout + done.stderr
        figures = json.loads(raw.read_text())
        assert os.listdir(d) == ["figures.json"]  # the work folder, its mounts and their store were removed
        with open("/proc/self/mountinfo") as mounts:
            assert d not in mounts.read()
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert len(rows) == 1 + 15 and all(line.count("|") == 8 for line in rows)
    for rates in (figures["write_bytes_per_s"], figures["cold_read_bytes_per_s"], figures["small_files"]):
        assert set(rates) >= {"bare", "passthrough", "mldashfs"} and all(v > 0 for v in rates.values())
    rounds = figures["cold_read_rounds_bytes_per_s"]  # every round, the best of which is the figure
    assert {k: max(v) for k, v in rounds.items()} == figures["cold_read_bytes_per_s"]
    assert "Cold reads, every round in order (MB/s): " in done.stdout
    for n, listing in figures["listing"].items():
        assert all(0 < listing[k] < math.inf for k in ("mldashfs", "bare")), n  # inf: stopped, never listed
        assert set(listing["cpu_seconds"]["mldashfs"]) == {"ls_user", "ls_kernel", "daemon"}
