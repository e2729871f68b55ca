"""The local S3 endpoint (scripts/s3_test_server.py) in a subprocess, its fault switch, and pytest fixtures.

tests/conftest.py imports the fixtures, so every test folder may use them. Tests get fake credentials
through the environment (`fake_aws_env`, which `s3_bucket` applies) so nothing reads ~/.aws;
`s3_client` and `S3Server.client` pass them explicitly.
"""

from __future__ import annotations

import json
import os
import select
import signal
import subprocess
import sys
import tempfile
import time
import urllib.request
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import boto3
import pytest
from botocore.config import Config

SCRIPT = Path(__file__).resolve().parents[2] / "scripts" / "s3_test_server.py"

#: The environment every S3 test runs with: fake credentials, a region, and no ~/.aws files or instance metadata.
FAKE_AWS_ENV = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_CONFIG_FILE": os.devnull,
    "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    "AWS_EC2_METADATA_DISABLED": "true",
}
#: Variables that would point a test elsewhere; cleared by `fake_aws_env`.
AWS_ENV_CLEARED = ("AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_REGION")


class S3Server:
    """A running test server: its endpoint, its pid, its fault switch, and `stop`."""

    def __init__(self, process: subprocess.Popen[bytes], port: int, log: Any) -> None:
        self.process = process
        self.port = port
        self.endpoint = f"http://127.0.0.1:{port}"
        self._log = log

    @property
    def pid(self) -> int:
        return self.process.pid

    def _control(self, method: str, path: str, body: dict[str, Any] | None = None) -> dict[str, Any]:
        """Call one of the fault switch's endpoints; returns its JSON answer."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(f"{self.endpoint}/_mldash/{path}", data=data, method=method)
        with urllib.request.urlopen(req, timeout=10) as r:
            return json.loads(r.read())

    def fault(self, status: int, *, count: int = 0, seconds: float = 0.0) -> None:
        """Make the next `count` S3 requests, or all of them for `seconds`, answer `status`."""
        self._control("POST", "faults", {"status": status, "count": count, "seconds": seconds})

    def clear_faults(self) -> None:
        """Cancel pending status faults."""
        self._control("DELETE", "faults")

    def corrupt(self, bucket: str, key: str, offset: int = 0) -> None:
        """Flip the bits of one stored byte of `bucket/key` (an S3 object name), keeping its size and metadata."""
        self._control("POST", "faults", {"corrupt": f"{bucket}/{key}", "offset": offset})

    def stats(self) -> dict[str, int]:
        """`faults_injected` (requests a fault answered) and `range_bytes_read` (object bytes read for ranged GETs)."""
        return self._control("GET", "stats")

    def client(self, config: Config | None = None) -> Any:
        """A boto3 S3 client of this server (see `s3_client`)."""
        return s3_client(self.endpoint, config)

    def stop(self, timeout: float = 10.0) -> None:
        """SIGTERM the process this harness started, then SIGKILL it if it has not exited within `timeout`."""
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stdout is not None:
            self.process.stdout.close()
        self._log.close()

    def stderr(self) -> str:
        """What the running server wrote to stderr so far (tracebacks of requests it failed on)."""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")


def start_s3_server(timeout: float = 60.0) -> S3Server:
    """Start scripts/s3_test_server.py on a free port and wait for its `READY <port>` line."""
    log = tempfile.TemporaryFile()
    proc = subprocess.Popen(
        [sys.executable, str(SCRIPT), "--port", "0"], stdout=subprocess.PIPE, stderr=log, stdin=subprocess.DEVNULL
    )
    assert proc.stdout is not None
    deadline = time.monotonic() + timeout
    line = b""
    while not line.startswith(b"READY ") and proc.poll() is None and time.monotonic() < deadline:
        if select.select([proc.stdout], [], [], 0.2)[0]:
            line = proc.stdout.readline()
    if not line.startswith(b"READY "):
        proc.kill()
        proc.wait()
        proc.stdout.close()
        log.seek(0)
        with log:
            raise RuntimeError(f"the S3 test server did not start; its stderr:\n{log.read().decode(errors='replace')}")
    return S3Server(proc, int(line.split()[1]), log)


def s3_client(endpoint: str, config: Config | None = None) -> Any:
    """A boto3 S3 client for `endpoint` with the fake credentials passed explicitly."""
    session = boto3.session.Session(
        aws_access_key_id=FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        region_name=FAKE_AWS_ENV["AWS_DEFAULT_REGION"],
    )
    return session.client("s3", endpoint_url=endpoint, config=config)


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """One S3 test server for the whole session, stopped at its end whatever happened."""
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def s3_endpoint(s3_server: S3Server) -> str:
    """The session's S3 endpoint URL, `http://127.0.0.1:PORT`."""
    return s3_server.endpoint


@pytest.fixture
def fake_aws_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fake credentials in the environment for this test, and nothing that points at real AWS."""
    for name in AWS_ENV_CLEARED:
        monkeypatch.delenv(name, raising=False)
    for name, value in FAKE_AWS_ENV.items():
        monkeypatch.setenv(name, value)


@pytest.fixture
def s3_bucket(s3_server: S3Server, fake_aws_env: None) -> Iterator[str]:
    """A fresh, empty bucket for this test; afterwards faults are cleared and the bucket is emptied and removed."""
    name = f"test-{uuid.uuid4().hex[:20]}"
    client = s3_server.client()
    client.create_bucket(Bucket=name)
    try:
        yield name
    finally:
        s3_server.clear_faults()
        for page in client.get_paginator("list_multipart_uploads").paginate(Bucket=name):
            for up in page.get("Uploads", []):
                client.abort_multipart_upload(Bucket=name, Key=up["Key"], UploadId=up["UploadId"])
        for page in client.get_paginator("list_objects_v2").paginate(Bucket=name):
            for obj in page.get("Contents", []):
                client.delete_object(Bucket=name, Key=obj["Key"])
        client.delete_bucket(Bucket=name)
        client.close()
