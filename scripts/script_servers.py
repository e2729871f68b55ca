"""Stores for the reliability scripts (crash_rounds.py, load_memory.py): a fresh local store, or S3 and
MongoDB test servers started here and stopped by the pid they started, and the TCP proxy (tcp_proxy.py)
that makes MongoDB or S3 go away and come back."""

from __future__ import annotations

import contextlib
import os
import select
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

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



@dataclass
class TcpProxy:
    """A running scripts/tcp_proxy.py (stopped by `tcp_proxy`): its relay port and off switch."""

    pid: int
    port: int
    control_port: int

    def command(self, line: str) -> str:
        """Send one control command; returns the proxy's one-line answer."""
        with socket.create_connection(("127.0.0.1", self.control_port), timeout=30) as s:
            s.sendall(line.encode() + b"\n")
            with s.makefile("rb") as answer:
                return answer.readline().decode().strip()

    def down(self) -> int:
        """Reset every relayed connection and refuse new ones; returns how many were reset."""
        answer = self.command("down")
        if not answer.startswith("ok down "):
            raise RuntimeError(f"tcp_proxy: down: {answer}")
        return int(answer.split()[2])

    def up(self) -> None:
        """Relay new connections again."""
        answer = self.command("up")
        if answer != "ok up":
            raise RuntimeError(f"tcp_proxy: up: {answer}")


@contextlib.contextmanager
def mongo_proxy(mongo_uri: str) -> Iterator[tuple[TcpProxy, str]]:
    """A TCP proxy in front of the MongoDB at `mongo_uri` (one host); yields it and the URI through it."""
    where = urlsplit(mongo_uri)
    with tcp_proxy(where.netloc) as proxy:
        yield proxy, f"mongodb://127.0.0.1:{proxy.port}{where.path or '/'}"


@contextlib.contextmanager
def s3_proxy(endpoint: str) -> Iterator[tuple[TcpProxy, str]]:
    """A TCP proxy in front of the S3 server at `endpoint` (http://host:port); yields it and the endpoint
    through it."""
    with tcp_proxy(urlsplit(endpoint).netloc) as proxy:
        yield proxy, f"http://127.0.0.1:{proxy.port}"


@contextlib.contextmanager
def tcp_proxy(target: str) -> Iterator[TcpProxy]:
    """A scripts/tcp_proxy.py relaying to `target` (host:port). Stopped by its pid on the way out
    (SIGTERM, then SIGKILL), whatever happened."""
    proc = subprocess.Popen([sys.executable, str(ROOT / "scripts" / "tcp_proxy.py"), "--target", target,
                             "--exit-with-parent"], stdout=subprocess.PIPE, stdin=subprocess.DEVNULL)
    assert proc.stdout is not None
    try:
        line = b""
        deadline = time.monotonic() + 30
        while not line.startswith(b"READY ") and proc.poll() is None and time.monotonic() < deadline:
            if select.select([proc.stdout], [], [], 0.2)[0]:
                line = proc.stdout.readline()
        proc.stdout.close()
        if not line.startswith(b"READY "):
            raise RuntimeError(f"tcp_proxy did not start (exit status {proc.poll()}, first line {line!r})")
        yield TcpProxy(proc.pid, int(line.split()[1]), int(line.split()[2]))
    finally:
        if proc.poll() is None:
            proc.send_signal(signal.SIGTERM)
            try:
                proc.wait(10)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait()
