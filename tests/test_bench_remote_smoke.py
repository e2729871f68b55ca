"""`scripts/bench_remote.py --quick --skip-others` runs end to end against its own S3 and MongoDB test
servers and prints every figure (a smoke run: no speed targets are checked here)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

from .mounting import require_fuse

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "bench_remote.py"
#: The first cell of every row of the table, in order (s3fs and rclone rows say n/a when skipped).
WORKLOADS = [
    "S3 endpoint: boto3 upload_file 64 MiB",
    "S3 endpoint: boto3 download_fileobj 64 MiB",
    *["close() of a 64 MiB write (time)"] * 3,
    *["open -> readable elsewhere, 64 MiB"] * 3,
    "open -> uploaded and published (writer), 64 MiB",
    *["cold read 64 MiB, fresh mount"] * 3,
    "warm re-read 64 MiB (best of 3)",
    "first re-read 64 MiB after the cold read",
    "re-read 64 MiB from the cache folder, page cache dropped",
    *["ls -l 500 files, fresh mount (time)"] * 3,
    *["second ls -l 500 files, right after (TTL 1 s) (time)"] * 2,
    *["200 x SDK save_json: calls returned"] * 2,
    "200 x save_json, first call -> exit returns, all uploaded (time)",
    "200 x save_json: the exit alone (time)",
]


def test_bench_remote_quick_prints_every_figure_and_leaves_nothing_behind() -> None:
    require_fuse()
    with tempfile.TemporaryDirectory(prefix="mldashfs-benchremote-smoke-") as d:
        raw = Path(d) / "figures.json"
        done = subprocess.run(
            [sys.executable, str(SCRIPT), "--quick", "--skip-others", "--dir", d, "--json", str(raw)],
            capture_output=True, text=True, timeout=180,
        )
        assert done.returncode == 0, done.stdout + done.stderr
        figures = json.loads(raw.read_text())
        assert os.listdir(d) == ["figures.json"]  # the work folder, its mounts and caches were removed
        with open("/proc/self/mountinfo") as mounts:
            assert d not in mounts.read()
    rows = [line for line in done.stdout.splitlines() if line.startswith("| ") and "---" not in line]
    assert rows[0].startswith("| workload |") and all(line.count("|") == 8 for line in rows)
    assert [line.split(" | ")[0].removeprefix("| ") for line in rows[1:]] == WORKLOADS
    assert sum("n/a: skipped (--skip-others)" in line for line in rows) == 8  # close, readable, cold read, ls -l
    assert all(row.split(" | ")[1].strip() for row in rows[1:])  # every row has an mldashfs figure
    assert "Traceback" not in done.stderr
    # every figure was measured (times are positive), each with the quick run's one round
    assert figures["endpoint"]["bytes"] == 64 << 20
    assert all(len(v) == 1 and v[0] > 0 for k, v in figures["endpoint"].items() if k.endswith("seconds"))
    for key in ("close", "published", "visible"):
        assert figures["write"]["mldashfs"][key][0] > 0, key
    assert figures["write"]["local"]["close"][0] > 0
    for key in ("cold", "first_warm", "warm", "cached"):
        assert figures["read"]["mldashfs"][key][0] > 0, key
    for who in ("mldashfs", "local"):
        assert len(figures["listing"][who]["first"]) == 2 and len(figures["listing"][who]["second"]) == 2
        assert all(0 < x < float("inf") for x in figures["listing"][who]["first"]), who  # inf: stopped
    assert figures["sdk"]["calls"] == 200 and figures["sdk"]["mldashfs"]["calls"][0] > 0
    assert figures["others"] == {"s3fs": "skipped (--skip-others)", "rclone": "skipped (--skip-others)"}
