"""Stores for the reliability scripts (crash_rounds.py, load_memory.py): a fresh local store, or S3 and
MongoDB test servers started here and stopped by the pid they started."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


def script_env() -> dict[str, str]:
    """The environment of the scripts' children: this tree first on the path."""
    return {**os.environ, "PYTHONPATH": os.pathsep.join([str(ROOT), str(ROOT / "sdk"), os.environ.get("PYTHONPATH", "")])}


def init_local_store(work: Path, env: dict[str, str]) -> Path:
    """A new empty local store in `work/store`."""
    store = work / "store"
    subprocess.run([sys.executable, "-m", "mldashfs.cli", "init", str(store)], check=True, env=env,
                   stdout=subprocess.DEVNULL)
    return store


@contextlib.contextmanager
def remote_servers(env: dict[str, str], bucket: str) -> Iterator[tuple[Any, str]]:
    """An S3 test server with `bucket` made and a MongoDB test server; fake credentials go into `env`
    and this process's environment. Yields (the S3 server, the MongoDB URI)."""
    sys.path.insert(0, str(ROOT))
    from tests.servers.mongo import start_mongo_server
    from tests.servers.s3 import FAKE_AWS_ENV, start_s3_server

    for k in ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_REGION"):
        env.pop(k, None)
    env.update(FAKE_AWS_ENV)
    os.environ.update(FAKE_AWS_ENV)
    s3 = start_s3_server()
    try:
        with start_mongo_server() as mongo:
            client = s3.client()
            client.create_bucket(Bucket=bucket)
            client.close()
            yield s3, mongo.uri
    finally:
        s3.stop()


def wait_mounted(proc: subprocess.Popen[bytes], mountpoint: Path, output: Path, who: str) -> None:
    """Return once the daemon `proc` serves `mountpoint`; SystemExit with its output if it cannot."""
    deadline = time.monotonic() + 60
    while not os.path.ismount(mountpoint):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise SystemExit(f"{who}: the mount did not start:\n{output.read_text()}")
        time.sleep(0.05)
