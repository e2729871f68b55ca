"""The README's examples run as pasted: every ```python and ```sh block, in order, in one fresh folder.

The blocks build on each other as a reader would paste them: the SDK example makes the default
store `./.ml-dash`, the command-line example lists and copies what it saved, the mount example
mounts it. A block that cannot run here (it installs packages or edits /etc/fstab) says so in an
HTML comment on the line before it: `<!-- not run by tests/test_readme.py: REASON -->`.
```text blocks are synopses, not examples.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from mldashfs.store import Store
from tests.mounting import require_fuse

ROOT = Path(__file__).resolve().parent.parent
README = ROOT / "README.md"
NOT_RUN = re.compile(r"<!-- not run by tests/test_readme\.py: (.+) -->")
KINDS = {"python", "sh", "text"}


@dataclass
class Block:
    """One fenced block of the README: its language, first line number, code, and why it is not run."""

    kind: str
    line: int
    code: str
    not_run: str | None


def blocks(text: str) -> list[Block]:
    """Every fenced block of `text`, in order."""
    found: list[Block] = []
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        m = re.match(r"^```(\S*)\s*$", lines[i])
        if m is None:
            i += 1
            continue
        start = i
        end = next(j for j in range(i + 1, len(lines)) if lines[j].startswith("```"))
        before = next((lines[j] for j in range(start - 1, -1, -1) if lines[j].strip()), "")
        why = NOT_RUN.fullmatch(before.strip())
        found.append(Block(m.group(1), start + 1, "\n".join(lines[start + 1:end]) + "\n",
                           why.group(1) if why else None))
        i = end + 1
    return found


def test_every_block_is_python_sh_or_text_and_skipped_ones_say_why() -> None:
    found = blocks(README.read_text())
    assert found
    for b in found:
        assert b.kind in KINDS, f"README line {b.line}: a block of {b.kind!r}: use python, sh or text"
        assert b.kind != "text" or b.not_run is None, f"README line {b.line}: text blocks never run"
    assert any(b.kind == "python" and b.not_run is None for b in found), "the SDK example must run"


@pytest.fixture
def folder() -> Iterator[Path]:
    """An empty working folder; whatever is still mounted below it is unmounted at the end."""
    d = Path(tempfile.mkdtemp(prefix="mldashfs-readme-"))
    try:
        yield d
    finally:
        for mountpoint in _mounts_below(d):
            subprocess.run(["fusermount3", "-u", "-z", mountpoint], capture_output=True, check=False)
        shutil.rmtree(d, ignore_errors=True)


def _mounts_below(d: Path) -> list[str]:
    with open("/proc/self/mounts") as f:
        points = [line.split()[1].replace("\\040", " ") for line in f]
    return [p for p in points if p.startswith(str(d) + "/")]


def _environment(folder: Path) -> dict[str, str]:
    """A reader's shell: `mldashfs` and `python` are this tree's, no store or namespace preset."""
    bin_dir = folder.parent / f"{folder.name}-bin"
    bin_dir.mkdir()
    for name, argv in (("mldashfs", f'"{sys.executable}" -m mldashfs.cli'), ("python", f'"{sys.executable}"')):
        shim = bin_dir / name
        shim.write_text(f'#!/bin/sh\nexec {argv} "$@"\n')
        shim.chmod(0o755)
    env = {k: v for k, v in os.environ.items() if k not in ("ML_DASH_STORE", "ML_DASH_NAMESPACE")}
    env["PATH"] = f"{bin_dir}{os.pathsep}{env.get('PATH', '')}"
    env["PYTHONPATH"] = os.pathsep.join([str(ROOT), str(ROOT / "sdk"), env.get("PYTHONPATH", "")]).rstrip(os.pathsep)
    env["MPLBACKEND"] = "Agg"
    return env


def _run(block: Block, n: int, folder: Path, env: dict[str, str]) -> str:
    """Run one block in `folder` as pasted; returns its output, fails naming its README line."""
    if block.kind == "python":
        script = folder.parent / f"{folder.name}-bin" / f"block{n}.py"
        script.write_text(block.code)
        argv = [sys.executable, str(script)]
    else:
        argv = ["bash", "-e", "-o", "pipefail", "-c", block.code]
    done = subprocess.run(argv, cwd=folder, env=env, capture_output=True, text=True, timeout=240)
    assert done.returncode == 0, (f"README line {block.line} ({block.kind}) exited {done.returncode}\n"
                                  f"--- code\n{block.code}--- stdout\n{done.stdout}--- stderr\n{done.stderr}")
    return done.stdout


def test_the_readme_examples_run_as_pasted_against_a_fresh_store(folder: Path) -> None:
    require_fuse()
    env = _environment(folder)
    runnable = [b for b in blocks(README.read_text()) if b.kind in ("python", "sh") and b.not_run is None]
    outputs = [_run(b, n, folder, env) for n, b in enumerate(runnable)]

    sdk_output = outputs[0].split()
    assert len(sdk_output) == 3 and sdk_output[0].isdigit() and len(sdk_output[1]) == 64, outputs[0]
    assert (folder / "out" / "loss.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert not _mounts_below(folder), "the mount example leaves nothing mounted"
    with Store.open(str(folder / ".ml-dash"), create=False) as store:
        names = {v.path for v in store.list("alice/cv/resnet")}
        assert {"alice/cv/resnet/checkpoints/best.pt", "alice/cv/resnet/plots/loss.png",
                "alice/cv/resnet/videos/rollout.mp4", "alice/cv/resnet/configs/config.json"} <= names
        history = store.history("alice/cv/resnet/checkpoints/best.pt")
        assert len(history) >= 2, "the mount example saves a second version through the mount"
        assert history[0].metadata["epoch"] == "50"  # setfattr changed the version in place
        assert history[-1].metadata["epoch"] == "50"  # and a rewrite through the mount carries it over


def test_links_between_the_readme_and_docs_lead_to_files() -> None:
    pages = [README, *sorted((ROOT / "docs").glob("*.md"))]
    for page in pages:
        for target in re.findall(r"\]\(([^)#\s]+)(?:#[^)]*)?\)", page.read_text()):
            if "://" in target:
                continue
            path = (page.parent / target).resolve()
            assert path.exists(), f"{page.name} links to {target}"


def test_every_test_docs_semantics_names_exists() -> None:
    """docs/semantics.md names the test of each behaviour: each must be a test function of that file."""
    named = re.findall(r"`(tests/[\w/]+\.py)::(test_\w+)`", (ROOT / "docs" / "semantics.md").read_text())
    assert len(named) > 30
    for file, name in named:
        source = (ROOT / file).read_text()
        assert re.search(rf"^(async )?def {name}\(", source, re.M), f"docs/semantics.md names {file}::{name}"
