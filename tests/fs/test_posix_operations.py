"""POSIX details at the Operations level (no mount): names the store cannot keep."""

from __future__ import annotations

import errno
import os
import stat

import pyfuse3

from tests.fs.conftest import Driver


def test_a_name_that_is_not_utf8_gets_eilseq_from_every_call(fs: Driver) -> None:
    root, bad = pyfuse3.ROOT_INODE, b"bad\xff"
    fs.write_file("good", b"g")
    assert fs.errno("lookup", root, bad, fs.ctx) == errno.EILSEQ
    assert fs.errno("create", root, bad, stat.S_IFREG | 0o644, os.O_WRONLY, fs.ctx) == errno.EILSEQ
    assert fs.errno("mkdir", root, bad, 0o755, fs.ctx) == errno.EILSEQ
    assert fs.errno("rename", root, b"good", root, bad, 0, fs.ctx) == errno.EILSEQ
    assert fs.errno("unlink", root, bad, fs.ctx) == errno.EILSEQ
    assert [name for name, _ in fs.listdir("")] == ["good"]
