"""Backings without a kernel: what the daemon does when the kernel refuses a backing file."""

from __future__ import annotations

import errno
import types

import pytest

from mldashfs.fs import passthrough
from mldashfs.fs.passthrough import Backings


def fake_module(refuse: bool) -> tuple[types.SimpleNamespace, list[int]]:
    """A stand-in for `_passthrough` on a mount whose INIT asked for passthrough."""
    calls: list[int] = []

    def open_backing(fd: int) -> int:
        calls.append(fd)
        if refuse:
            raise OSError(errno.EPERM, "Operation not permitted")
        return 40 + fd

    return types.SimpleNamespace(enabled=lambda: True, request=lambda wanted: None, open_backing=open_backing,
                                 close_backing=lambda i: None, MARK=1 << 63), calls


def test_the_first_refusal_turns_passthrough_off_for_the_mount(monkeypatch: pytest.MonkeyPatch,
                                                               caplog: pytest.LogCaptureFixture) -> None:
    module, calls = fake_module(refuse=True)
    monkeypatch.setattr(passthrough, "_passthrough", module)
    b = Backings()
    assert b.available
    with caplog.at_level("INFO", logger="mldashfs.fs"):
        assert b.open(3) is None
    assert "passthrough off" in caplog.text and not b.available
    assert b.open(4) is None and calls == [3]  # not asked again


def test_registered_blobs_and_marked_handles(monkeypatch: pytest.MonkeyPatch) -> None:
    module, calls = fake_module(refuse=False)
    monkeypatch.setattr(passthrough, "_passthrough", module)
    b = Backings()
    assert b.open(3) == 43 and b.open(5) == 45 and calls == [3, 5]
    fh = Backings.handle(7, 43)
    assert fh >> 63 == 1 and (fh >> 32) & 0x7FFFFFFF == 43 and fh & 0xFFFFFFFF == 7


def test_not_wanted_or_not_granted_means_no_registration(monkeypatch: pytest.MonkeyPatch) -> None:
    module, calls = fake_module(refuse=False)
    monkeypatch.setattr(passthrough, "_passthrough", module)
    assert Backings(wanted=False).open(3) is None
    module.enabled = lambda: False  # the kernel did not offer it, or the module was bound too late
    assert Backings().open(3) is None
    assert calls == []
