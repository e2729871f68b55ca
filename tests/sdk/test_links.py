"""Symbolic links (made through the mount, here by the Store) as the SDK shows and copies them."""

from __future__ import annotations

import os
from pathlib import Path

from ml_dash import Experiment


def test_list_and_versions_show_links_and_download_writes_them_as_links(exp: Experiment, workdir: Path) -> None:
    exp.files("models").save_blob(b"weights", to="best.pt")
    exp.store.symlink(f"{exp.path}/models/latest.pt", "best.pt")
    exp.store.symlink(f"{exp.path}/models/gone.pt", "../missing.pt")
    rows = {r["filename"]: r for r in exp.files("models").list()}
    assert not rows["best.pt"]["isLink"] and "linkTarget" not in rows["best.pt"]
    assert rows["latest.pt"]["isLink"] and rows["latest.pt"]["linkTarget"] == "best.pt"
    assert rows["latest.pt"]["contentType"] == "inode/symlink" and rows["latest.pt"]["sizeBytes"] == 7

    exp.store.symlink(f"{exp.path}/models/latest.pt", "epoch2.pt")
    assert [r["linkTarget"] for r in exp.files("models/latest.pt").versions()] == ["best.pt", "epoch2.pt"]

    written = exp.files("models").download("*.pt", to="out")
    assert sorted(os.path.basename(p) for p in written) == ["best.pt", "gone.pt", "latest.pt"]
    assert os.readlink(workdir / "out" / "latest.pt") == "epoch2.pt"
    assert os.readlink(workdir / "out" / "gone.pt") == "../missing.pt"  # dangling, as it was stored
    assert (workdir / "out" / "best.pt").read_bytes() == b"weights"
    exp.files("models/latest.pt").download(to="out/again.pt")
    assert os.readlink(workdir / "out" / "again.pt") == "epoch2.pt"
