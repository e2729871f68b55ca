"""S3Blobs against the local S3 test server over HTTP (scripts/s3_test_server.py), plus its fault switch
and its fixes of moto's quirks. Nothing is mocked in-process: every call goes through boto3 to the server."""

from __future__ import annotations

import hashlib
import os
import socket
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import TYPE_CHECKING

import pytest
from botocore.config import Config

from mldashfs.blobs import blob_key
from mldashfs.errors import ChecksumMismatch, InvalidPath, InvalidValue, NotFound, Unavailable
from mldashfs.s3_blobs import MiB, S3Blobs, object_key, parse_s3_url

if TYPE_CHECKING:
    from tests.servers.s3 import S3Server

KEY = blob_key("ns/proj/exp/models/ckpt.pt", 7)  # ns/proj/exp/files/models/7/ckpt.pt


def sha(data: bytes) -> str:
    """The SHA-256 hex digest, as S3Blobs stores it in metadata."""
    return hashlib.sha256(data).hexdigest()


@pytest.fixture
def blobs(s3_endpoint: str, s3_bucket: str) -> Iterator[S3Blobs]:
    """S3Blobs under a prefix of the test's bucket, with 5 MiB parts so 20 MiB goes multipart in 4 parts."""
    b = S3Blobs(s3_bucket, "root/dir", s3_endpoint, multipart_threshold=5 * MiB, part_size=5 * MiB, concurrency=4)
    yield b
    b.close()


@pytest.fixture
def big_file(tmp_path: Path) -> tuple[Path, bytes]:
    """A 20 MiB file of random bytes."""
    data = os.urandom(20 * MiB)
    path = tmp_path / "big.bin"
    path.write_bytes(data)
    return path, data


#: Each request sent once: what the server answers, with no retry to hide it.
ONE_ATTEMPT = Config(retries={"total_max_attempts": 1})


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on (bound, then released)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


# -- names ----------------------------------------------------------------------------------------


def test_parse_s3_url() -> None:
    assert parse_s3_url("s3://bucket") == ("bucket", "")
    assert parse_s3_url("s3://my.bucket-1/some/prefix/") == ("my.bucket-1", "some/prefix")
    for bad in ("bucket/prefix", "http://bucket/x", "s3://", "s3://Bucket/x", "s3://ab", "s3://b_c/x",
                "s3://bucket/a//b", "s3://bucket/a/../b", "s3://bucket/x?versionId=1", "s3://-bucket"):
        with pytest.raises(InvalidValue, match="S3 location|bucket name|prefix|'\\?'"):
            parse_s3_url(bad)


def test_object_key_is_the_documented_layout() -> None:
    assert object_key(KEY) == "files/ns/proj/exp/models/7/ckpt.pt"
    assert object_key(blob_key("ns/proj/exp/a.txt", 1)) == "files/ns/proj/exp/1/a.txt"
    with pytest.raises(InvalidPath):
        object_key("ns/proj/exp/models/7/ckpt.pt")


def test_objects_land_under_prefix_in_documented_layout(blobs: S3Blobs, s3_server: S3Server, s3_bucket: str) -> None:
    blobs.upload_bytes(KEY, b"hello", sha(b"hello"))
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["root/dir/files/ns/proj/exp/models/7/ckpt.pt"]


# -- bytes ----------------------------------------------------------------------------------------


def test_small_blob_round_trip(blobs: S3Blobs, s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    data = b"small bytes" * 100
    blobs.upload_bytes(KEY, memoryview(data), sha(data))
    assert blobs.head(KEY) == (len(data), sha(data))
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=blobs.name(KEY))
    assert head["Metadata"] == {"sha256": sha(data)}
    assert blobs.get_range(KEY, 0, 5) == data[:5]
    assert blobs.download_to(KEY, str(tmp_path / "out")) == len(data)
    assert (tmp_path / "out").read_bytes() == data


def test_names_with_spaces_and_unicode(blobs: S3Blobs, s3_server: S3Server, s3_bucket: str) -> None:
    key = blob_key("ns/proj/exp/plots/loss curve ü+%.png", 9)
    blobs.upload_bytes(key, b"png", sha(b"png"))
    assert blobs.head(key) == (3, sha(b"png"))
    listed = s3_server.client().list_objects_v2(Bucket=s3_bucket)["Contents"]
    assert [o["Key"] for o in listed] == ["root/dir/files/ns/proj/exp/plots/9/loss curve ü+%.png"]


def test_upload_file_small_then_again(blobs: S3Blobs, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"x" * 1000)
    blobs.upload_file(KEY, str(path), sha(b"x" * 1000), 1000)
    blobs.upload_file(KEY, str(path), sha(b"x" * 1000), 1000)  # idempotent
    assert blobs.head(KEY) == (1000, sha(b"x" * 1000))


def test_multipart_upload_and_parallel_download(
    blobs: S3Blobs, big_file: tuple[Path, bytes], s3_server: S3Server, s3_bucket: str, tmp_path: Path
) -> None:
    path, data = big_file
    sent: list[int] = []
    blobs.upload_file(KEY, str(path), sha(data), len(data), progress=sent.append)
    assert sum(sent) == len(data)
    head = s3_server.client().head_object(Bucket=s3_bucket, Key=blobs.name(KEY))
    assert head["ETag"].endswith('-4"')  # 4 parts of 5 MiB
    assert head["Metadata"] == {"sha256": sha(data)}
    assert head["ContentLength"] == len(data)
    got: list[int] = []
    out = tmp_path / "copy.bin"
    assert blobs.download_to(KEY, str(out), progress=got.append) == len(data)
    assert sum(got) == len(data)
    assert out.read_bytes() == data


def test_upload_checks_the_stored_size(blobs: S3Blobs, tmp_path: Path) -> None:
    path = tmp_path / "f"
    path.write_bytes(b"abc")
    with pytest.raises(ChecksumMismatch, match="not"):
        blobs.upload_file(KEY, str(path), sha(b"abc"), 4)


def test_ranged_reads(blobs: S3Blobs, big_file: tuple[Path, bytes]) -> None:
    path, data = big_file
    blobs.upload_file(KEY, str(path), sha(data), len(data))
    assert blobs.get_range(KEY, 0, 4096) == data[:4096]  # [start, end)
    assert blobs.get_range(KEY, 7 * MiB - 10, 7 * MiB + 10) == data[7 * MiB - 10 : 7 * MiB + 10]
    assert blobs.get_range(KEY, len(data) - 3, len(data) + 100) == data[-3:]  # short at the end
    assert blobs.get_range(KEY, len(data), len(data) + 1) == b""
    assert blobs.get_range(KEY, 10, 10) == b""


def test_delete(blobs: S3Blobs) -> None:
    blobs.upload_bytes(KEY, b"12345", sha(b"12345"))
    assert blobs.delete(KEY) == 5
    assert blobs.delete(KEY) == 0
    assert blobs.head(KEY) is None


def test_missing_object_is_not_found(blobs: S3Blobs, s3_bucket: str, tmp_path: Path) -> None:
    assert blobs.head(KEY) is None
    with pytest.raises(NotFound, match=f"s3://{s3_bucket}/root/dir/files/ns/proj/exp/models/7/ckpt.pt"):
        blobs.get_range(KEY, 0, 10)
    with pytest.raises(NotFound, match=s3_bucket):
        blobs.download_to(KEY, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


def test_check(blobs: S3Blobs, s3_endpoint: str) -> None:
    blobs.check()
    missing = S3Blobs("no-such-bucket-here", "", s3_endpoint)
    with pytest.raises(Unavailable, match="'no-such-bucket-here' does not exist"):
        missing.check()
    missing.close()


def test_endpoint_from_environment(s3_endpoint: str, s3_bucket: str, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("AWS_ENDPOINT_URL", s3_endpoint)
    b = S3Blobs(s3_bucket)
    b.check()
    b.upload_bytes(KEY, b"env", sha(b"env"))
    assert b.get_range(KEY, 0, 3) == b"env"
    assert b.name(KEY) == "files/ns/proj/exp/models/7/ckpt.pt"  # no prefix
    b.close()


# -- failures -------------------------------------------------------------------------------------


def test_retries_ride_out_503s(blobs: S3Blobs, s3_server: S3Server, big_file: tuple[Path, bytes]) -> None:
    before = s3_server.stats()["faults_injected"]
    s3_server.fault(503, count=3)
    blobs.upload_bytes(KEY, b"retried", sha(b"retried"))
    assert blobs.get_range(KEY, 0, 7) == b"retried"
    assert s3_server.stats()["faults_injected"] - before == 3
    path, data = big_file
    s3_server.fault(503, count=4)  # somewhere in the multipart upload's requests
    blobs.upload_file(KEY, str(path), sha(data), len(data))
    assert blobs.head(KEY) == (len(data), sha(data))
    assert s3_server.stats()["faults_injected"] - before == 7


def test_unavailable_when_retries_run_out(s3_endpoint: str, s3_bucket: str, s3_server: S3Server) -> None:
    b = S3Blobs(s3_bucket, "p", s3_endpoint, max_attempts=2)
    s3_server.fault(500, seconds=60)
    with pytest.raises(Unavailable, match=f"s3://{s3_bucket}/p/files/ns/proj/exp/models/7/ckpt.pt.*InternalError"):
        b.get_range(KEY, 0, 1)
    s3_server.clear_faults()
    b.close()


def test_unavailable_when_endpoint_is_down(fake_aws_env: None) -> None:
    endpoint = f"http://127.0.0.1:{free_port()}"
    b = S3Blobs("some-bucket", "", endpoint, max_attempts=2, connect_timeout=1)
    with pytest.raises(Unavailable, match=f"s3://some-bucket at {endpoint}: the endpoint cannot be reached"):
        b.check()
    with pytest.raises(Unavailable, match=f"s3://some-bucket/files/ns/proj/exp/models/7/ckpt.pt at {endpoint}"):
        b.head(KEY)
    b.close()


def test_stale_multipart_uploads_are_aborted(blobs: S3Blobs, s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    mine = blobs.name(KEY)
    upload = client.create_multipart_upload(Bucket=s3_bucket, Key=mine)["UploadId"]
    client.upload_part(Bucket=s3_bucket, Key=mine, UploadId=upload, PartNumber=1, Body=b"p" * 1000)
    other = client.create_multipart_upload(Bucket=s3_bucket, Key="elsewhere/x")["UploadId"]
    # quirk (d): the young upload has its real start time, so an hour's threshold spares it
    assert blobs.abort_stale_multipart_uploads(3600) == 0
    assert blobs.abort_stale_multipart_uploads(0) == 1
    left = client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert [(u["Key"], u["UploadId"]) for u in left] == [("elsewhere/x", other)]  # outside the prefix


def test_abort_uploads_of_one_key(blobs: S3Blobs, s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client()
    for key in (KEY, blob_key("ns/proj/exp/models/ckpt.pt", 8)):
        client.create_multipart_upload(Bucket=s3_bucket, Key=blobs.name(key))
    assert blobs.abort_uploads_of(KEY) == 1
    left = client.list_multipart_uploads(Bucket=s3_bucket).get("Uploads", [])
    assert [u["Key"] for u in left] == ["root/dir/files/ns/proj/exp/models/8/ckpt.pt"]


def test_corruption_switch(blobs: S3Blobs, s3_server: S3Server, s3_bucket: str, tmp_path: Path) -> None:
    data = bytes(range(256)) * 4
    blobs.upload_bytes(KEY, data, sha(data))
    s3_server.corrupt(s3_bucket, blobs.name(KEY), offset=5)
    assert blobs.get_range(KEY, 0, 8) == data[:5] + bytes([data[5] ^ 0xFF]) + data[6:8]
    assert blobs.head(KEY) == (len(data), sha(data))  # size and metadata unchanged
    with pytest.raises(ChecksumMismatch):
        blobs.download_to(KEY, str(tmp_path / "out"))
    assert not (tmp_path / "out").exists()


# -- moto's quirks, as fixed by the test server -----------------------------------------------------


def test_quirk_a_concurrent_uploads_of_one_part(s3_server: S3Server, s3_bucket: str) -> None:
    """Each part number sent three times at once (as retries after timeouts do), in a few uploads:
    every request succeeds, the parts list keeps one entry per part, and the object is right."""
    client = s3_server.client(ONE_ATTEMPT)
    parts = [bytes([i]) * (5 * MiB) for i in range(1, 5)]
    for key in ("k1", "k2", "k3"):
        upload = client.create_multipart_upload(Bucket=s3_bucket, Key=key)["UploadId"]

        def send(i: int, key: str = key, upload: str = upload) -> tuple[int, str]:
            n = i % 4 + 1
            return n, client.upload_part(Bucket=s3_bucket, Key=key, UploadId=upload, PartNumber=n, Body=parts[n - 1])["ETag"]

        with ThreadPoolExecutor(6) as pool:
            etags = dict(pool.map(send, range(12)))
        listed = client.list_parts(Bucket=s3_bucket, Key=key, UploadId=upload)["Parts"]
        assert [(p["PartNumber"], p["ETag"]) for p in listed] == [
            (n, f'"{hashlib.md5(parts[n - 1]).hexdigest()}"') for n in range(1, 5)
        ]
        client.complete_multipart_upload(Bucket=s3_bucket, Key=key, UploadId=upload, MultipartUpload={
            "Parts": [{"PartNumber": n, "ETag": etags[n]} for n in range(1, 5)]})
        assert client.get_object(Bucket=s3_bucket, Key=key)["Body"].read() == b"".join(parts)


def test_quirk_b_ranged_get_reads_only_the_range(
    blobs: S3Blobs, s3_server: S3Server, big_file: tuple[Path, bytes]
) -> None:
    path, data = big_file
    blobs.upload_file(KEY, str(path), sha(data), len(data))
    before = s3_server.stats()["range_bytes_read"]
    assert blobs.get_range(KEY, 0, 100) == data[:100]
    assert s3_server.stats()["range_bytes_read"] - before == 100  # not 20 MiB


def test_quirk_c_no_null_version_after_multipart(s3_server: S3Server, s3_bucket: str) -> None:
    client = s3_server.client(ONE_ATTEMPT)
    upload = client.create_multipart_upload(Bucket=s3_bucket, Key="k")["UploadId"]
    etag = client.upload_part(Bucket=s3_bucket, Key="k", UploadId=upload, PartNumber=1, Body=b"z" * 10)["ETag"]
    done = client.complete_multipart_upload(Bucket=s3_bucket, Key="k", UploadId=upload,
                                            MultipartUpload={"Parts": [{"PartNumber": 1, "ETag": etag}]})
    assert "VersionId" not in done
    assert client.head_object(Bucket=s3_bucket, Key="k", VersionId="null")["ContentLength"] == 10
