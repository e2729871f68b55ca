"""Directory and list uploads (shared/seeds/003 and 004): relative paths, filters, all-or-nothing checks."""

from __future__ import annotations

import pytest

from ml_dash import errors

SYSTEM = ["blockMeshDict", "controlDict", "fvSchemes", "fvSolution"]


@pytest.fixture
def tree(workdir, make_file):
    """A `system/` folder as in the Simvue docs, with a subfolder, a .py and a .tmp file."""
    for name in SYSTEM:
        make_file(workdir / "system" / name, name.encode())
    make_file(workdir / "system" / "sub" / "deep.py", b"print(1)")
    make_file(workdir / "system" / "scratch.tmp", b"junk")
    make_file(workdir / "file1", b"one")
    make_file(workdir / "nested" / "file2", b"two")
    return workdir


def stored(exp):
    return [f["prefix"] + "/" + f["filename"] for f in exp.files().list()]


def test_upload_dir_with_preserve_path_keeps_the_folder_name(exp, tree):
    results = exp.files("inputs").upload_dir("system/", preserve_path=True)
    assert len(results) == 6
    assert stored(exp) == [f"inputs/system/{n}" for n in SYSTEM] + [
        "inputs/system/scratch.tmp",
        "inputs/system/sub/deep.py",
    ]
    assert exp.files("inputs/system/controlDict").read_text() == "controlDict"


def test_upload_dir_without_preserve_path_keeps_paths_inside_it(exp, tree):
    exp.files("inputs").upload_dir("system")
    assert stored(exp) == [f"inputs/{n}" for n in SYSTEM] + ["inputs/scratch.tmp", "inputs/sub/deep.py"]


def test_upload_dir_include_and_exclude(exp, tree):
    only_py = exp.files("code").upload_dir("system", include=["*.py"], tags=["code"])
    assert [(r["path"], r["filename"], r["tags"]) for r in only_py] == [("/code/sub", "deep.py", ["code"])]
    exp.files("inputs").upload_dir("system", exclude=["*.tmp", "sub/*"])
    assert [p for p in stored(exp) if p.startswith("inputs/")] == [f"inputs/{n}" for n in SYSTEM]


def test_upload_all_files_and_folders_in_one_call(exp, tree):
    results = exp.files("inputs").upload_all(["file1", "nested/file2", "system"], preserve_path=True, exclude=["*.tmp"])
    assert [r["prefix"] + "/" + r["filename"] for r in results] == [
        "inputs/file1",
        "inputs/nested/file2",
        *[f"inputs/system/{n}" for n in SYSTEM],
        "inputs/system/sub/deep.py",
    ]
    flat = exp.files("flat").save_all(["file1", "nested/file2"])
    assert [r["filename"] for r in flat] == ["file1", "file2"]
    assert {r["path"] for r in flat} == {"/flat"}


def test_a_bad_entry_stores_nothing_from_the_batch(exp, tree, snapshot):
    before = snapshot(exp)
    with pytest.raises(errors.NotFound, match="missing"):
        exp.files("inputs").upload_all(["file1", "system", "missing"])
    with pytest.raises(errors.InvalidPath, match="inside the current directory"):
        exp.files("inputs").upload_all(["file1", str(tree / "nested" / "file2")], preserve_path=True)
    with pytest.raises(errors.InvalidPath, match="inside the current directory"):
        exp.files("inputs").upload_dir("../work/system", preserve_path=True)
    with pytest.raises(errors.NotFound, match="nowhere"):
        exp.files("inputs").upload_dir("nowhere")
    with pytest.raises(errors.InvalidPath, match="not a directory"):
        exp.files("inputs").upload_dir("file1")
    with pytest.raises(TypeError, match="list"):
        exp.files("inputs").upload_all("file1")
    assert snapshot(exp) == before


def test_absolute_paths_are_fine_without_preserve_path(exp, tree):
    results = exp.files("abs").upload_all([str(tree / "nested" / "file2")])
    assert (results[0]["path"], results[0]["filename"]) == ("/abs", "file2")
    assert exp.files("abs").upload_dir(str(tree / "nested"))[0]["filename"] == "file2"
