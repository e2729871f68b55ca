"""`scripts/crash_rounds.py --quick` (a local store, and a remote one on the test servers, with rounds in
which S3 fails and MongoDB goes away) runs end to end and reports no lost and no partial version: a
correctness check (no timing is asserted)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path

import pytest

from .mounting import require_fuse

SCRIPT = Path(__file__).resolve().parents[1] / "scripts" / "crash_rounds.py"


@pytest.mark.parametrize("where", [[], ["--remote"]], ids=["local", "remote"])
def test_crash_rounds_quick_loses_nothing_and_leaves_no_mount(where: list[str]) -> None:
    require_fuse()
    with tempfile.TemporaryDirectory(prefix="mldashfs-crash-smoke-") as d:
        raw = Path(d) / "figures.json"
        done = subprocess.run([sys.executable, str(SCRIPT), "--quick", *where, "--dir", d, "--json", str(raw)],
                              capture_output=True, text=True, timeout=600)
        assert done.returncode == 0, done.stdout + done.stderr
        figures = json.loads(raw.read_text())
        assert os.listdir(d) == ["figures.json"]  # the work folder, its store and mount point were removed
        with open("/proc/self/mountinfo") as mounts:
            assert d not in mounts.read()
    assert figures["rounds"] == 5 and figures["mount_rounds"] == 3 and figures["sdk_rounds"] == 2
    assert figures["versions_checked"] > 0 and figures["distinct_versions"] > 0
    assert figures["lost"] == 0, figures["evidence"]
    assert figures["partial"] == 0, figures["evidence"]
    assert "| versions lost | 0 (must be 0) |" in done.stdout
    if where:  # one round of each outage: S3, MongoDB, both (S3 and MongoDB behind proxies stopped by pid)
        assert (figures["s3_outage_rounds"], figures["mongo_outage_rounds"], figures["both_outage_rounds"]) == (2, 2, 1)
        assert figures["s3_gone_rounds"] == 1  # the other S3 round answers 503
        assert figures["sync_failed"] == 0, figures["evidence"]
