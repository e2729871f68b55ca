"""The bytes of a remote store in S3, through boto3: one object per version, never rewritten.

Under the store's S3 prefix, objects follow the documented layout
`files/{namespace}/{project}/{experiment}/{prefix}/{id}/{filename}` (`object_key` maps a blob key to it),
with the SHA-256 of their bytes as metadata (`x-amz-meta-sha256`). One client and one transfer
manager serve every thread: boto3 clients are thread-safe, and the manager's pool bounds the parts in
flight across all transfers. Retries are boto3's own (its standard mode: exponential backoff on 5xx,
throttling and connection errors); what is left after them becomes Unavailable, a missing object
NotFound.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
import logging
import os
import re
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any
from urllib.parse import urlsplit

import boto3
from boto3.s3.transfer import ProgressCallbackInvoker, TransferConfig, create_transfer_manager
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError, FlexibleChecksumError, NoCredentialsError
from s3transfer.exceptions import RetriesExceededError

from .blobs import StoredBlob, is_blob_key
from .errors import ChecksumMismatch, InvalidPath, InvalidValue, NotFound, StoreError, Unavailable
from .hashing import hash_fd
from .paths import EXPERIMENT_DEPTH

log = logging.getLogger(__name__)

MiB = 1 << 20
#: S3's smallest part (except the last) of a multipart upload.
MIN_PART = 5 * MiB
#: The object metadata holding the SHA-256 of the bytes (sent as `x-amz-meta-sha256`).
SHA256_META = "sha256"
_BUCKET = re.compile(r"^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$")
_MISSING = {"404", "NoSuchKey", "NotFound"}
_DENIED = {"403", "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "ExpiredToken"}

Progress = Callable[[int], None]


def _code(e: ClientError) -> str:
    """S3's error code, e.g. `NoSuchKey` (a HEAD answers none: then the HTTP status, e.g. `404`)."""
    return str(e.response.get("Error", {}).get("Code", ""))


def parse_s3_url(url: str) -> tuple[str, str]:
    """`s3://bucket/some/prefix` as `(bucket, "some/prefix")` (prefix may be ""); InvalidValue naming the flaw."""
    if not isinstance(url, str) or not url.startswith("s3://"):
        raise InvalidValue(f"{url!r} is not an S3 location: expected s3://bucket or s3://bucket/prefix")
    parts = urlsplit(url)
    if parts.query or parts.fragment or "?" in url or "#" in url:
        raise InvalidValue(f"{url!r}: an S3 location has no '?' or '#' part")
    bucket, prefix = parts.netloc, parts.path.strip("/")
    if not _BUCKET.match(bucket) or ".." in bucket:
        raise InvalidValue(f"{url!r}: {bucket!r} is not a bucket name (3-63 lowercase letters, digits, '.', '-', "
                           "starting and ending with a letter or digit)")
    if prefix and any(seg in ("", ".", "..") for seg in prefix.split("/")):
        raise InvalidValue(f"{url!r}: the prefix {prefix!r} has an empty, '.' or '..' segment")
    return bucket, prefix


def object_key(key: str) -> str:
    """A blob key `{ns}/{project}/{exp}/files/{prefix}/{id}/{filename}` as the documented S3 layout
    `files/{ns}/{project}/{exp}/{prefix}/{id}/{filename}`, so a bucket browses like the ML-Dash docs say."""
    parts = key.split("/")
    if len(parts) < EXPERIMENT_DEPTH + 3 or parts[EXPERIMENT_DEPTH] != "files" or "" in parts:
        raise InvalidPath(f"{key!r} is not a blob key (namespace/project/experiment/files/[prefix/]id/filename)")
    return "/".join(["files", *parts[:EXPERIMENT_DEPTH], *parts[EXPERIMENT_DEPTH + 1 :]])


class S3Blobs:
    """Blob bytes in one bucket under one prefix; every method may be called from any thread."""

    def __init__(
        self,
        bucket: str,
        prefix: str = "",
        endpoint_url: str | None = None,
        *,
        multipart_threshold: int = 16 * MiB,
        part_size: int = 8 * MiB,
        concurrency: int = 4,
        region: str | None = None,
        max_connections: int = 32,
        max_attempts: int = 5,
        retry_mode: str = "standard",
        connect_timeout: float = 5.0,
        read_timeout: float = 60.0,
    ) -> None:
        """`endpoint_url` falls back to $AWS_ENDPOINT_URL_S3, then $AWS_ENDPOINT_URL, then AWS itself;
        credentials and region come from boto3's usual chain. `max_connections` is shared by transfers
        and ranged reads; `max_attempts` counts the first try (boto3's `total_max_attempts`)."""
        if part_size < MIN_PART:
            raise InvalidValue(f"part_size {part_size} is below S3's minimum part of {MIN_PART} bytes")
        if max_connections < concurrency:
            raise InvalidValue(f"max_connections {max_connections} cannot carry {concurrency} parts at once")
        self.bucket = bucket
        self.prefix = prefix.strip("/")
        self.endpoint_url = endpoint_url or os.environ.get("AWS_ENDPOINT_URL_S3") or os.environ.get("AWS_ENDPOINT_URL")
        self.multipart_threshold = multipart_threshold
        self._root = f"{self.prefix}/" if self.prefix else ""
        config = Config(
            retries={"mode": retry_mode, "total_max_attempts": max_attempts},  # type: ignore[typeddict-item]
            max_pool_connections=max_connections,
            connect_timeout=connect_timeout,
            read_timeout=read_timeout,
            tcp_keepalive=True,
            # S3-compatible servers at an explicit endpoint rarely resolve bucket subdomains
            s3={"addressing_style": "path"} if self.endpoint_url else None,
        )
        self.client: Any = boto3.session.Session().client(
            "s3", endpoint_url=self.endpoint_url, region_name=region, config=config
        )
        self._transfers = create_transfer_manager(
            self.client,
            TransferConfig(
                multipart_threshold=multipart_threshold,
                multipart_chunksize=part_size,
                max_concurrency=concurrency,
                use_threads=True,
                preferred_transfer_client="classic",  # the CRT client would ignore this configuration
            ),
        )

    def name(self, key: str) -> str:
        """The S3 object name of blob `key`: `{prefix}/` + `object_key(key)`."""
        return self._root + object_key(key)

    def _where(self, name: str) -> str:
        """`s3://bucket/name at endpoint`, for messages."""
        at = f" at {self.endpoint_url}" if self.endpoint_url else ""
        return f"s3://{self.bucket}/{name}{at}"

    def _error(self, e: Exception, name: str) -> StoreError:
        """The project's exception for what boto3 raised about object `name` (after its retries)."""
        where = self._where(name)
        if isinstance(e, RetriesExceededError):  # a download's streaming retries ran out
            e = e.last_exception
        if isinstance(e, ClientError):
            code = _code(e)
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if code == "NoSuchBucket":
                return Unavailable(f"{where}: the bucket {self.bucket!r} does not exist")
            if code in _MISSING or status == 404:
                return NotFound(f"{where}: no such object")
            if code in _DENIED or status == 403:
                return Unavailable(f"{where}: access denied ({code}); check the AWS credentials")
            return Unavailable(f"{where}: S3 refused the request: {e}")
        if isinstance(e, FlexibleChecksumError):
            return ChecksumMismatch(f"{where}: the bytes received fail S3's checksum: {e}")
        if isinstance(e, NoCredentialsError):
            return Unavailable(f"{where}: no AWS credentials (set AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY, "
                               "or AWS_PROFILE)")
        return Unavailable(f"{where}: S3 cannot be reached: {e}")

    @contextmanager
    def _errors(self, name: str) -> Iterator[None]:
        """Translate boto3's exceptions about object `name` into the project's."""
        try:
            yield
        except (ClientError, BotoCoreError, RetriesExceededError) as e:
            raise self._error(e, name) from e

    def upload_file(self, key: str, path: str, sha256: str, size: int, progress: Progress | None = None) -> None:
        """Upload the file `path` as blob `key` (multipart above `multipart_threshold`, parts in parallel),
        with `sha256` as its metadata; then HEAD it to confirm. Uploading a key again replaces it.
        `progress(n)` is called, from transfer threads, as each `n` bytes are sent."""
        name = self.name(key)
        subscribers = [ProgressCallbackInvoker(progress)] if progress else None
        with self._errors(name):
            future = self._transfers.upload(path, self.bucket, name, {"Metadata": {SHA256_META: sha256}}, subscribers)
            future.result()
        self._confirm(key, name, size, sha256)

    def upload_bytes(self, key: str, data: bytes | bytearray | memoryview, sha256: str) -> None:
        """Store a small blob in one PUT, with `sha256` as its metadata."""
        name = self.name(key)
        with self._errors(name):
            self.client.put_object(Bucket=self.bucket, Key=name, Body=bytes(data), Metadata={SHA256_META: sha256})

    def _confirm(self, key: str, name: str, size: int, sha256: str) -> None:
        """ChecksumMismatch unless the stored object has `size` bytes and `sha256` as its metadata."""
        got = self.head(key)
        if got != (size, sha256):
            raise ChecksumMismatch(f"{self._where(name)}: stored as (size, sha256) {got}, not {(size, sha256)}")

    def head(self, key: str) -> tuple[int, str | None] | None:
        """`(size, sha256 metadata or None)` of blob `key`, or None if there is no such object."""
        name = self.name(key)
        try:
            with self._errors(name):
                r = self.client.head_object(Bucket=self.bucket, Key=name)
        except NotFound:
            return None
        return r["ContentLength"], r.get("Metadata", {}).get(SHA256_META)

    def get_range(self, key: str, start: int, end: int) -> bytes:
        """Bytes `[start, end)` of blob `key` (end exclusive, like a slice) in one ranged GET; fewer if
        the object ends sooner, b"" when `start` is at or past its end."""
        if end <= start:
            return b""
        name = self.name(key)
        with self._errors(name):
            try:
                r = self.client.get_object(Bucket=self.bucket, Key=name, Range=f"bytes={start}-{end - 1}")
            except ClientError as e:
                if _code(e) != "InvalidRange":
                    raise
                return b""
            return r["Body"].read()

    def download_to(self, key: str, path: str, progress: Progress | None = None) -> int:
        """Download blob `key` whole to `path` (ranged GETs in parallel; `path` appears only when complete)
        and check it against its sha256 metadata (ChecksumMismatch, and no file, if it differs).
        Returns the size. `progress(n)` is called, from transfer threads, as bytes arrive."""
        name = self.name(key)
        found = self.head(key)
        if found is None:
            raise NotFound(f"{self._where(name)}: no such object")
        subscribers = [ProgressCallbackInvoker(progress)] if progress else None
        with self._errors(name):
            self._transfers.download(self.bucket, name, path, None, subscribers).result()
        fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC)
        try:
            digest, size = hash_fd(fd)
        finally:
            os.close(fd)
        if found[1] is not None and digest != found[1]:
            os.unlink(path)
            raise ChecksumMismatch(f"{self._where(name)}: the downloaded bytes have SHA-256 {digest}, "
                                   f"not {found[1]} as recorded")
        return size

    def delete(self, key: str) -> int:
        """Remove blob `key`; returns the bytes reclaimed (0 if it was already gone)."""
        found = self.head(key)
        if found is None:
            return 0
        name = self.name(key)
        with self._errors(name):
            self.client.delete_object(Bucket=self.bucket, Key=name)
        return found[0]

    def _uploads(self, prefix: str) -> Iterator[dict[str, Any]]:
        """The multipart uploads in progress whose object names start with `prefix`."""
        with self._errors(prefix):
            for page in self.client.get_paginator("list_multipart_uploads").paginate(Bucket=self.bucket, Prefix=prefix):
                yield from page.get("Uploads", [])

    def _abort(self, upload: dict[str, Any]) -> bool:
        """Abort one multipart upload, freeing its parts; False if it was already gone (completed or aborted)."""
        try:
            with self._errors(upload["Key"]):
                self.client.abort_multipart_upload(Bucket=self.bucket, Key=upload["Key"], UploadId=upload["UploadId"])
        except NotFound:
            return False
        return True

    def abort_uploads_of(self, key: str) -> int:
        """Abort every unfinished multipart upload of blob `key` (one a crash left behind); returns how many."""
        name = self.name(key)
        return sum(self._abort(u) for u in list(self._uploads(name)) if u["Key"] == name)

    def abort_stale_multipart_uploads(self, older_than_seconds: float) -> int:
        """Abort the multipart uploads under this store's prefix started more than `older_than_seconds`
        ago, so a crashed daemon's parts stop costing storage; returns how many. Choose an age well
        beyond the longest upload: another daemon's upload in progress looks the same."""
        cutoff = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=older_than_seconds)
        stale = [u for u in self._uploads(self._root + "files/") if u["Initiated"] < cutoff]
        return sum(self._abort(u) for u in stale)

    # -- fsck -------------------------------------------------------------------------------------

    def list_keys(self) -> Iterator[StoredBlob]:
        """Every object under `{prefix}/files/` laid out like a blob key, as its blob key."""
        top = self._root + "files/"
        with self._errors(top):
            for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.bucket, Prefix=top):
                for o in page.get("Contents", []):
                    parts = o["Key"][len(top):].split("/")
                    key = "/".join([*parts[:EXPERIMENT_DEPTH], "files", *parts[EXPERIMENT_DEPTH:]])
                    if is_blob_key(key) and self.name(key) == o["Key"]:
                        yield StoredBlob(key, o["Size"], o["LastModified"].timestamp())

    def size_of(self, key: str) -> int | None:
        """The size of blob `key` (one HEAD), None when there is no such object."""
        found = self.head(key)
        return None if found is None else found[0]

    def sha256_of(self, key: str, progress: Progress | None = None) -> str:
        """SHA-256 of every byte of object `key`, streamed (nothing lands on disk); `progress(n)` per chunk."""
        name = self.name(key)
        h = hashlib.sha256()
        with self._errors(name):
            body = self.client.get_object(Bucket=self.bucket, Key=name)["Body"]
            for chunk in body.iter_chunks(MiB):
                h.update(chunk)
                if progress:
                    progress(len(chunk))
        return h.hexdigest()

    def multipart_uploads(self, older_than_seconds: float) -> list[tuple[str, str, float]]:
        """`(object name, upload id, start time)` of the multipart uploads under this store's prefix
        started more than `older_than_seconds` ago."""
        cutoff = _dt.datetime.now(_dt.timezone.utc) - _dt.timedelta(seconds=older_than_seconds)
        return [(u["Key"], u["UploadId"], u["Initiated"].timestamp())
                for u in self._uploads(self._root + "files/") if u["Initiated"] <= cutoff]

    def abort_upload(self, name: str, upload_id: str) -> bool:
        """Abort one multipart upload; False if it was already gone."""
        return self._abort({"Key": name, "UploadId": upload_id})

    def check(self, tolerate_outage: bool = False) -> None:
        """Unavailable, saying why, unless the bucket exists and these credentials may use it. With
        `tolerate_outage`, an S3 that answers with server errors (it is there, but failing now) only
        logs a warning: a remote store works from its cache meanwhile and uploads when S3 is back."""
        where = f"s3://{self.bucket}" + (f" at {self.endpoint_url}" if self.endpoint_url else "")
        try:
            self.client.head_bucket(Bucket=self.bucket)
        except ClientError as e:
            status = e.response.get("ResponseMetadata", {}).get("HTTPStatusCode")
            if status == 404:
                raise Unavailable(f"{where}: the bucket {self.bucket!r} does not exist") from e
            if status == 403:
                raise Unavailable(f"{where}: access to the bucket is denied; check the AWS credentials") from e
            if tolerate_outage and isinstance(status, int) and status >= 500:
                log.warning("%s is failing now (%s): working from the cache until it answers", where, status)
                return
            raise Unavailable(f"{where}: S3 refused the request: {e}") from e
        except NoCredentialsError as e:
            raise self._error(e, "") from e
        except BotoCoreError as e:
            raise Unavailable(f"{where}: the endpoint cannot be reached: {e}") from e

    def close(self) -> None:
        """Stop the transfer threads and close the connections."""
        self._transfers.shutdown()
        self.client.close()
