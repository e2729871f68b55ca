"""`scripts/bench_store.py --quick` runs end to end and prints every figure (a smoke run, no speed targets)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_store.py"


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
