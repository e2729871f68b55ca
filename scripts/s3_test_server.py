#!/usr/bin/env python
"""A local S3 endpoint for tests: moto's threaded server on 127.0.0.1, with four of moto's quirks fixed and a fault switch.

    python scripts/s3_test_server.py --port PORT    # 0 picks a free port

Prints exactly one line, `READY <port>`, once the server answers; stops on SIGTERM or SIGINT. Any
credentials are accepted (use fake ones); objects live in this process's memory and temp files.

Quirks of moto 5.2.5, each patched here, in this process only (`patch_moto`):
(a) Part and ETag state is kept without locks. `FakeKey.etag` seeks and reads the object's buffer
    without the key's lock (`FakeKey.value` takes it), and `FakeMultipart.set_part` disposes of a
    part that a concurrent upload of the same part number (a client retrying after a timeout) is
    still hashing for its response: that request answers 500 ("ValueError: read of closed file").
    Fix: the ETag is computed under the key's lock; `set_part` and `complete_multipart_upload` run
    under one lock, and `set_part` hashes the new part before anyone can replace it.
(b) A ranged GET reads the whole object (`key.value`, from a temp file above 5 MiB) and then slices
    it, so each ranged GET of a large object costs the whole object. Fix: for a GET with a Range header the key's `value` is a
    lazy view, and moto's own range handling slices it by seeking in the key's buffer.
(c) CompleteMultipartUpload answers `x-amz-version-id: null` on an unversioned bucket, and HEAD
    `?versionId=null` on such a bucket answers 400 (GET accepts it), so a client that checks the
    version it just wrote fails. Fix: `x-amz-version-id: null` is never sent (as moto already does
    for PUT and GET), and HEAD treats `versionId=null` on an unversioned bucket as the object.
(d) ListMultipartUploads reports every upload as initiated at 2010-11-10T20:48:33Z, so a cleanup
    of stale uploads cannot tell them from ones in progress. Fix: each upload records when it was
    created, and the listing reports that.

Fault switch (plain HTTP on the same port, unsigned; bucket names cannot start with `_`):
    POST   /_mldash/faults  {"status": 503, "count": 5}     the next 5 S3 requests answer 503
    POST   /_mldash/faults  {"status": 500, "seconds": 2}   S3 requests answer 500 for 2 seconds
                            (as S3's XML errors: 500 InternalError, 503 SlowDown, else InjectedFault)
    POST   /_mldash/faults  {"corrupt": "bucket/key", "offset": 0}
                            flip the bits of one stored byte (size, ETag, metadata and checksums kept)
    DELETE /_mldash/faults  cancel pending status faults
    GET    /_mldash/stats   {"faults_injected": N, "range_bytes_read": N}: requests answered by a
                            fault, and object bytes read to answer ranged GETs (to check quirk b)
"""

from __future__ import annotations

import argparse
import http
import json
import logging
import signal
import threading
import time
import urllib.request
from collections.abc import Callable, Iterable
from typing import Any

from moto.core.responses import ActionResult
from moto.core.utils import utcnow
from moto.moto_server.werkzeug_app import DomainDispatcherApplication
from moto.s3.models import FakeKey, FakeMultipart, S3Backend, s3_backends
from moto.s3.responses import S3Response
from moto.server import ThreadedMotoServer

CONTROL = "/_mldash/"
ERROR_CODES = {500: "InternalError", 503: "SlowDown"}
StartResponse = Callable[[str, list[tuple[str, str]]], Any]


class Faults:
    """The switch's state, shared by the server's request threads."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.status = 0
        self.count = 0
        self.until = 0.0
        self.faults_injected = 0
        self.range_bytes_read = 0

    def arm(self, status: int, count: int = 0, seconds: float = 0.0) -> None:
        """Answer `status` to the next `count` S3 requests, or to all of them for `seconds`."""
        with self._lock:
            self.status, self.count, self.until = status, count, time.monotonic() + seconds

    def clear(self) -> None:
        """Cancel pending status faults."""
        self.arm(0)

    def take(self) -> int:
        """The status the current S3 request must answer, 0 for none (consumes one of `count`)."""
        with self._lock:
            if self.count > 0:
                self.count -= 1
            elif time.monotonic() >= self.until:
                return 0
            self.faults_injected += 1
            return self.status

    def read_for_range(self, n: int) -> None:
        """Count `n` object bytes read to answer a ranged GET."""
        with self._lock:
            self.range_bytes_read += n


FAULTS = Faults()


class ObjectBytes:
    """A stored object's bytes that are read only when sliced (quirk b): `len` is free, `[a:b]` seeks."""

    def __init__(self, key: FakeKey) -> None:
        self.key = key

    def __len__(self) -> int:
        return self.key.size

    def __getitem__(self, s: slice) -> bytes:
        start, stop, _ = s.indices(self.key.size)
        with self.key.lock:
            self.key._value_buffer.seek(start)
            data = self.key._value_buffer.read(max(stop - start, 0))
        FAULTS.read_for_range(len(data))
        return data


class RangedKey:
    """Stands in for the FakeKey of a ranged GET: everything is the key's, except a lazy `value`."""

    def __init__(self, key: FakeKey) -> None:
        self._key = key

    def __getattr__(self, name: str) -> Any:
        return getattr(self._key, name)

    @property
    def value(self) -> ObjectBytes:
        return ObjectBytes(self._key)


def corrupt(where: str, offset: int = 0) -> None:
    """Flip every bit of the byte at `offset` of the stored object `bucket/key`, leaving all else as it was."""
    bucket, _, name = where.partition("/")
    partition, account = s3_backends.bucket_accounts.get(bucket, ("aws", ""))
    key = s3_backends[account][partition].get_object(bucket, name) if account else None
    if key is None:
        raise LookupError(f"no object {where!r}")
    if not 0 <= offset < key.size:
        raise ValueError(f"offset {offset} is outside {where!r} ({key.size} bytes)")
    with key.lock:
        buf = key._value_buffer
        buf.seek(offset)
        byte = buf.read(1)[0]
        buf.seek(offset)
        buf.write(bytes([byte ^ 0xFF]))


def patch_moto() -> None:
    """Fix quirks (a) to (d) of moto 5.2.5 and route the fault switch; see the module docstring."""
    parts_lock = threading.RLock()

    etag = FakeKey.etag.fget  # type: ignore[attr-defined]
    FakeKey.etag = property(lambda self: _locked(self.lock, etag, self))  # type: ignore[method-assign,assignment]

    set_part = FakeMultipart.set_part

    def set_part_locked(self: FakeMultipart, part_id: int, value: bytes) -> FakeKey:
        with parts_lock:
            key = set_part(self, part_id, value)
            key.etag  # noqa: B018 - hashed (and cached) before a retry of this part can dispose of it
            return key

    FakeMultipart.set_part = set_part_locked  # type: ignore[method-assign]
    complete = S3Backend.complete_multipart_upload
    S3Backend.complete_multipart_upload = lambda *a, **kw: _locked(parts_lock, complete, *a, **kw)  # type: ignore[method-assign]

    get_key = S3Response._get_key

    def get_key_lazily(self: S3Response, *args: Any, **kwargs: Any) -> tuple[Any, bool]:
        key: Any
        key, not_modified = get_key(self, *args, **kwargs)
        if self.method == "GET" and self.headers.get("range"):
            key = RangedKey(key)
        return key, not_modified

    S3Response._get_key = get_key_lazily  # type: ignore[method-assign]

    key_response = S3Response.key_response

    def key_response_fixed(self: S3Response, *args: Any, **kwargs: Any) -> Any:
        status, headers, body = key_response(self, *args, **kwargs)
        if isinstance(body, ObjectBytes):  # a range moto answered whole (several ranges, partNumber)
            body = body[:]
        for name in [h for h, v in headers.items() if h.lower() == "x-amz-version-id" and v == "null"]:
            del headers[name]
        return status, headers, body

    S3Response.key_response = key_response_fixed  # type: ignore[method-assign]

    head_object = S3Response.head_object

    def head_null_version(
        self: S3Response, bucket_name: str, query: dict[str, Any], *args: Any, **kwargs: Any
    ) -> Any:
        if query.get("versionId") == ["null"] and not self.backend.get_bucket(bucket_name).is_versioned:
            query = {k: v for k, v in query.items() if k != "versionId"}
        return head_object(self, bucket_name, query, *args, **kwargs)

    S3Response.head_object = head_null_version  # type: ignore[method-assign]

    init = FakeMultipart.__init__

    def init_timed(self: FakeMultipart, *args: Any, **kwargs: Any) -> None:
        init(self, *args, **kwargs)
        self.initiated = utcnow()  # type: ignore[attr-defined]

    FakeMultipart.__init__ = init_timed  # type: ignore[method-assign]
    list_uploads = S3Response.list_multipart_uploads

    def list_uploads_timed(self: S3Response) -> Any:
        uploads = self.backend.list_multipart_uploads(self.bucket_name).values()
        started = {u.id: u.initiated for u in uploads}  # type: ignore[attr-defined]
        serialized = self.serialized

        def with_times(result: ActionResult) -> Any:
            for upload in result.result.get("Uploads", []):  # type: ignore[attr-defined]
                upload["Initiated"] = started.get(upload["UploadId"], upload["Initiated"])
            return serialized(result)

        self.serialized = with_times  # type: ignore[method-assign,assignment]
        return list_uploads(self)

    S3Response.list_multipart_uploads = list_uploads_timed  # type: ignore[method-assign]

    dispatch = DomainDispatcherApplication.__call__

    def dispatch_with_faults(self: DomainDispatcherApplication, environ: dict, start: StartResponse) -> Any:
        if environ["PATH_INFO"].startswith(CONTROL):
            return control(environ, start)
        if status := FAULTS.take():
            return s3_error(environ, start, status)
        return dispatch(self, environ, start)

    DomainDispatcherApplication.__call__ = dispatch_with_faults  # type: ignore[method-assign,assignment]


def _locked(lock: Any, fn: Callable[..., Any], *args: Any, **kwargs: Any) -> Any:
    """`fn(*args, **kwargs)` holding `lock`."""
    with lock:
        return fn(*args, **kwargs)


def reply(start: StartResponse, status: int, body: bytes, content_type: str) -> Iterable[bytes]:
    """A complete WSGI answer."""
    phrase = http.HTTPStatus(status).phrase
    start(f"{status} {phrase}", [("Content-Type", content_type), ("Content-Length", str(len(body)))])
    return [body]


def s3_error(environ: dict, start: StartResponse, status: int) -> Iterable[bytes]:
    """An injected failure, in S3's XML error form so clients treat it as S3 would answer it."""
    code = ERROR_CODES.get(status, "InjectedFault")
    xml = f"<?xml version='1.0' encoding='UTF-8'?><Error><Code>{code}</Code><Message>injected by the fault switch</Message></Error>"
    body = b"" if environ["REQUEST_METHOD"] == "HEAD" else xml.encode()
    return reply(start, status, body, "application/xml")


def control(environ: dict, start: StartResponse) -> Iterable[bytes]:
    """The fault switch's endpoints (see the module docstring)."""
    method, path = environ["REQUEST_METHOD"], environ["PATH_INFO"]
    length = int(environ.get("CONTENT_LENGTH") or 0)
    try:
        if (method, path) == ("GET", CONTROL + "stats"):
            answer: dict[str, Any] = {
                "faults_injected": FAULTS.faults_injected,
                "range_bytes_read": FAULTS.range_bytes_read,
            }
        elif (method, path) == ("DELETE", CONTROL + "faults"):
            FAULTS.clear()
            answer = {"ok": True}
        elif (method, path) == ("POST", CONTROL + "faults"):
            spec = json.loads(environ["wsgi.input"].read(length) or b"{}")
            if "corrupt" in spec:
                corrupt(spec["corrupt"], int(spec.get("offset", 0)))
            elif "status" in spec and ("count" in spec or "seconds" in spec):
                FAULTS.arm(int(spec["status"]), int(spec.get("count", 0)), float(spec.get("seconds", 0)))
            else:
                raise ValueError(
                    'expected {"status": S, "count": N}, {"status": S, "seconds": T} or {"corrupt": "bucket/key"}'
                )
            answer = {"ok": True}
        else:
            return reply(
                start, 404, json.dumps({"error": f"no {method} {path}"}).encode(), "application/json"
            )
    except LookupError as e:
        return reply(start, 404, json.dumps({"error": str(e)}).encode(), "application/json")
    except (ValueError, TypeError) as e:
        return reply(start, 400, json.dumps({"error": str(e)}).encode(), "application/json")
    return reply(start, 200, json.dumps(answer).encode(), "application/json")


def wait_until_answering(port: int, timeout: float = 30.0) -> None:
    """Poll the stats endpoint until the server answers it."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}{CONTROL}stats", timeout=2) as r:
                r.read()
            return
        except OSError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.05)


def main() -> None:
    """Serve until SIGTERM or SIGINT."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0, help="TCP port on 127.0.0.1 (0: a free one)")
    parser.add_argument("--verbose", action="store_true", help="log every request to stderr")
    args = parser.parse_args()
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    patch_moto()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=args.port, verbose=False)
    server.start()
    port = server.get_host_and_port()[1]
    wait_until_answering(port)
    print(f"READY {port}", flush=True)
    stop.wait()
    server.stop()


if __name__ == "__main__":
    main()
