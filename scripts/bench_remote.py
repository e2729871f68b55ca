#!/usr/bin/env python
"""Remote-mode benchmark: mldashfs on S3 + MongoDB against the endpoint itself, local mode, s3fs and rclone.

One run starts its own S3 endpoint (scripts/s3_test_server.py, moto over HTTP) and MongoDB
(scripts/mongo_test_server.py, mongomock behind the wire protocol) on 127.0.0.1, measures every
contender against that same endpoint and bucket, and prints each figure as a ratio to a baseline
measured in the same run, next to its target. The servers are stopped by pid at the end and every
mount is unmounted, also when something fails.

Figures (each the best and the median of several rounds; rounds rotate who goes first):
1. the endpoint's own limit: boto3 `upload_file` and `download_fileobj` of one file (default
   transfer settings), the baselines of 3 and 4;
2. `close()` of a sequential write through the mount (open to close returning, 1 MiB writes):
   remote mode against local mode (a local store mounted in the same run);
3. from `open` until the version is readable elsewhere, as a rate: for mldashfs a second mount with
   its own cache folder polls for the file and its `user.mldash.checksum`; for s3fs and rclone,
   whose second mounts cache listings for minutes, a HEAD of the object (the least any other client
   needs); against boto3's upload rate;
4. cold sequential read through a fresh mount (fresh cache folder, page cache dropped where root
   may) against boto3's download rate, s3fs and rclone; the warm re-read against the bare disk;
5. `ls -l` of N files on a fresh mount against the first listing of s3fs and rclone (the same names
   and sizes as plain objects), and a second `ls -l` right after it (meant to be served within the
   metadata TTL) against the local-mode figure (`ls -l` of a local store on a fresh mount, as
   bench_fs.py measures it);
6. N SDK `save_json` calls on a remote store: calls returned per second, and the time until the
   Experiment's exit returns with everything uploaded (boto3 `put_object` of as many objects from
   4 threads, the uploader's count, is the baseline).

s3fs (`s3fs`) and rclone (`rclone mount --vfs-cache-mode writes`) are installed with apt-get when
missing; a tool that cannot be installed or mounted is reported as such and the run goes on.
`--skip-others` leaves them out. Usage:

    .venv/bin/python scripts/bench_remote.py                  # full run (1 GiB, about 15 minutes)
    .venv/bin/python scripts/bench_remote.py --quick          # smoke run (64 MiB, about a minute)
    .venv/bin/python scripts/bench_remote.py --size 256M --json figures.json
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import math
import os
import platform
import shutil
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import Any, TypeVar

ROOT = Path(__file__).resolve().parents[1]
for _path in (ROOT / "scripts", ROOT):  # bench_fs.py beside this script; tests/servers for the endpoints
    if str(_path) not in sys.path:
        sys.path.insert(0, str(_path))

from bench_fs import (  # noqa: E402
    BLOCK,
    EXPERIMENT,
    cold_cache_method,
    cpu_seconds,
    drop_cache,
    fuse_mount,
    ls_l,
    mldashfs_command,
    read_file,
    rotated,
    secs,
    timed,
    write_file,
)

from mldashfs.backends import parse_size  # noqa: E402
from mldashfs.journal import Journal  # noqa: E402
from mldashfs.store import Store  # noqa: E402
from mldashfs.writeback_catalog import DEFAULT_TTL  # noqa: E402
from tests.servers.mongo import start_mongo_server  # noqa: E402
from tests.servers.s3 import AWS_ENV_CLEARED, FAKE_AWS_ENV, S3Server, start_s3_server  # noqa: E402

BUCKET = "bench"
LOCATION = f"s3://{BUCKET}/team"  # the remote store: bytes under team/, metadata in database DATABASE
DATABASE = "bench"
PLAIN = "plain"  # the prefix s3fs and rclone mount: plain objects, one per file
MiB = 1 << 20
POLL = 0.02  # seconds between two looks for a version on another mount
CHECKSUM = "user.mldash.checksum"
WARM_READS = 3  # re-reads after each cold read: the first also pays for dropping the mount's own pages
OTHERS = ("s3fs", "rclone")
#: Targets of the brief, as (comparison, bound).
T_CLOSE = 1.2  # remote close() time <= 1.2x local mode
T_VISIBLE = 0.8  # open -> readable elsewhere, rate >= 0.8x boto3 upload_file
T_COLD = 0.8  # cold read rate >= 0.8x boto3 download_fileobj
T_WARM = 0.8  # warm re-read rate >= 0.8x the bare disk
T_LS_SECOND = 3.0  # second ls -l <= 3x the local-mode ls -l
T_SAVES = 200.0  # SDK save_json calls per second

M = TypeVar("M")  # one round's measurement


@dataclass(frozen=True)
class Settings:
    """The sizes of one run: `--quick` shrinks all of them."""

    size: int  # bytes of the large file (transfers, write, read)
    rounds: int  # rounds of the costly figures (large transfers, SDK saves, s3fs/rclone listings)
    cheap_rounds: int  # rounds of mldashfs' listings
    files: int  # files listed with ls -l
    saves: int  # SDK save_json calls per round
    ls_timeout: float  # seconds after which one ls -l is stopped (reported as stopped)
    transfer_timeout: float  # seconds a version may take to show on the other mount


FULL = Settings(size=1 << 30, rounds=3, cheap_rounds=5, files=10_000, saves=1_000, ls_timeout=240.0,
                transfer_timeout=600.0)
QUICK = Settings(size=64 << 20, rounds=1, cheap_rounds=2, files=500, saves=200, ls_timeout=60.0,
                 transfer_timeout=120.0)


class Unavailable(Exception):
    """s3fs or rclone cannot be used in this run (not installed, cannot mount, failed)."""


@dataclass
class Bench:
    """One run's places and servers: the work folder, the S3 and MongoDB endpoints, and the state of
    s3fs and rclone (None: usable, else why not)."""

    work: Path
    s3: S3Server
    mongo: str  # MongoDB URI with the database
    s: Settings
    others: dict[str, str | None]
    block: bytes = field(default_factory=lambda: os.urandom(BLOCK))
    _count: int = 0

    def round_block(self, r: int) -> bytes:
        """`block` with round `r` in its first bytes: each round writes new bytes (dedup would make a
        write of bytes already stored skip its upload)."""
        return r.to_bytes(8, "little") + self.block[8:]

    def fresh(self, name: str) -> Path:
        """A path in the work folder that no earlier call gave (mount points, cache folders)."""
        self._count += 1
        return self.work / f"{name}-{self._count}"

    def remote_command(self, mountpoint: Path, cache: Path) -> list[str]:
        """`mldashfs mount` of the remote store (experiment EXPERIMENT) with its cache in `cache`."""
        return [sys.executable, "-m", "mldashfs.cli", "mount", "--foreground", "--store", LOCATION, "--mongo",
                self.mongo, "--cache-dir", str(cache), "--s3-endpoint", self.s3.endpoint, "--experiment", EXPERIMENT,
                "--log-file", str(mountpoint.with_suffix(".log")), str(mountpoint)]

    @contextlib.contextmanager
    def remote_mount(self, name: str, cache: Path | None = None) -> Iterator[tuple[Path, int]]:
        """A mount of the remote store (a fresh cache folder unless `cache`), as (mount point, daemon pid)."""
        mountpoint = self.fresh(name)
        folder = cache or self.fresh(f"{name}-cache")
        with fuse_mount(self.remote_command(mountpoint, folder), mountpoint) as pid:
            yield mountpoint, pid
        mountpoint.rmdir()
        if cache is None:  # a fresh cache folder is this mount's alone: free its disk space now
            shutil.rmtree(folder, ignore_errors=True)

    @contextlib.contextmanager
    def local_mount(self) -> Iterator[tuple[Path, int]]:
        """A mount of the local store `work/store` (made before), started now."""
        mountpoint = self.fresh("local")
        with fuse_mount(mldashfs_command(self.work, mountpoint), mountpoint) as pid:
            yield mountpoint, pid
        mountpoint.rmdir()

    @contextlib.contextmanager
    def other_mount(self, tool: str) -> Iterator[tuple[Path, int]]:
        """s3fs or rclone mounting s3://BUCKET/PLAIN, started now with empty caches; Unavailable if it
        cannot mount (fuse_mount unmounts and stops it either way)."""
        if self.others[tool] is not None:
            raise Unavailable(self.others[tool])
        mountpoint = self.fresh(tool)
        if tool == "s3fs":
            tmp = self.fresh("s3fs-tmp")
            tmp.mkdir()
            cmd = ["s3fs", f"{BUCKET}:/{PLAIN}", str(mountpoint), "-f", "-o",
                   f"url={self.s3.endpoint},use_path_request_style,passwd_file={self.work / 's3fs.passwd'},"
                   f"tmpdir={tmp}"]
        else:
            cmd = ["rclone", "mount", f"bench:{BUCKET}/{PLAIN}", str(mountpoint), "--vfs-cache-mode", "writes",
                   "--cache-dir", str(self.fresh("rclone-cache"))]
        with contextlib.ExitStack() as stack:
            try:
                pid = stack.enter_context(fuse_mount(cmd, mountpoint))
            except SystemExit as e:  # fuse_mount gives up that way
                raise Unavailable(f"did not mount: {last_line(str(e))}") from e
            yield mountpoint, pid
        mountpoint.rmdir()

    def attempt(self, tool: str, fn: Callable[[], M]) -> M | None:
        """`fn()` for s3fs or rclone; None if the tool is unavailable. A failure makes it unavailable for
        the rest of the run, and says so on stderr (the table says it too)."""
        if self.others[tool] is not None:
            return None
        try:
            return fn()
        except (Exception, SystemExit) as e:  # SystemExit: bench_fs helpers (ls_l) give up that way
            self.others[tool] = f"failed: {last_line(str(e)) or type(e).__name__}"
            progress(f"{tool} {self.others[tool]}; going on without it")
            return None


def last_line(text: str) -> str:
    """The last non-empty line of `text`, at most 200 characters (an error's gist)."""
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    return lines[-1][:200] if lines else ""


def progress(message: str) -> None:
    """One line on stderr, so a long run shows where it is (stdout is the table)."""
    print(f"bench_remote: {message}", file=sys.stderr, flush=True)


def run_rounds(measure: dict[str, Callable[[], M | None]], rounds: int,
               limit: dict[str, int] | None = None) -> dict[str, list[M]]:
    """Every round's measurement of each contender, rounds led in turn by each contender (the VM's
    speed drifts, so none always goes first or last); `limit` caps the rounds of costly contenders.
    A contender that gives None (unavailable) has no entry for that round."""
    out: dict[str, list[M]] = {name: [] for name in measure}
    for r in range(rounds):
        for name in rotated(list(measure), r):
            if r < (limit or {}).get(name, rounds):
                m = measure[name]()
                if m is not None:
                    out[name].append(m)
    return out


# ---- setting up ---------------------------------------------------------------------------


def interrupted(signum: int, frame: Any) -> None:
    """SIGTERM unwinds like Ctrl-C, so the servers are stopped and the mounts unmounted."""
    raise KeyboardInterrupt


def prepare_environment() -> None:
    """Fake credentials and nothing pointing at real AWS, for this process and every child; no proxy
    for 127.0.0.1. AWS_CA_BUNDLE is dropped: the endpoint is plain HTTP, and rclone refuses to start
    with a CA bundle set for its S3 client."""
    for name in (*AWS_ENV_CLEARED, "AWS_CA_BUNDLE"):
        os.environ.pop(name, None)
    os.environ.update(FAKE_AWS_ENV)
    os.environ["NO_PROXY"] = os.environ["no_proxy"] = "127.0.0.1,localhost"


def install_others(skip: bool) -> dict[str, str | None]:
    """s3fs and rclone: None for each that is installed (with apt-get if missing), else why not."""
    if skip:
        return {tool: "skipped (--skip-others)" for tool in OTHERS}
    missing = [tool for tool in OTHERS if shutil.which(tool) is None]
    why: dict[str, str | None] = {tool: None for tool in OTHERS}
    if missing:
        progress(f"installing {' '.join(missing)} with apt-get")
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        try:
            subprocess.run(["apt-get", "update", "-qq"], env=env, capture_output=True, timeout=300, check=False)
            done = subprocess.run(["apt-get", "install", "-y", "-qq", *missing], env=env, capture_output=True,
                                  text=True, timeout=600, check=False)
            detail = last_line(done.stderr) or f"exit status {done.returncode}"
        except (OSError, subprocess.TimeoutExpired) as e:
            detail = str(e)
        for tool in missing:
            if shutil.which(tool) is None:
                why[tool] = f"not installed (apt-get install {tool}: {detail})"
    return why


def tool_versions() -> dict[str, str]:
    """The first line of `s3fs --version` and `rclone version`, where installed."""
    out = {}
    for tool, cmd in (("s3fs", ["s3fs", "--version"]), ("rclone", ["rclone", "version"])):
        if shutil.which(tool):
            with contextlib.suppress(OSError, subprocess.TimeoutExpired):
                done = subprocess.run(cmd, capture_output=True, text=True, timeout=30)
                out[tool] = (done.stdout or done.stderr).strip().splitlines()[0] if (done.stdout or done.stderr) else "?"
    return out


def configure_others(b: Bench) -> None:
    """s3fs's password file and rclone's remote `bench:` (environment variables), both for the endpoint."""
    passwd = b.work / "s3fs.passwd"
    passwd.write_text(f"{FAKE_AWS_ENV['AWS_ACCESS_KEY_ID']}:{FAKE_AWS_ENV['AWS_SECRET_ACCESS_KEY']}\n")
    passwd.chmod(0o600)
    os.environ.update({
        "RCLONE_CONFIG_BENCH_TYPE": "s3", "RCLONE_CONFIG_BENCH_PROVIDER": "Other",
        "RCLONE_CONFIG_BENCH_ENDPOINT": b.s3.endpoint, "RCLONE_CONFIG_BENCH_FORCE_PATH_STYLE": "true",
        "RCLONE_CONFIG_BENCH_ACCESS_KEY_ID": FAKE_AWS_ENV["AWS_ACCESS_KEY_ID"],
        "RCLONE_CONFIG_BENCH_SECRET_ACCESS_KEY": FAKE_AWS_ENV["AWS_SECRET_ACCESS_KEY"],
        "RCLONE_CONFIG_BENCH_REGION": FAKE_AWS_ENV["AWS_DEFAULT_REGION"],
    })


def main() -> int:
    """Run every figure and print the table; exit 0 even when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="64 MiB, fewer files and rounds: a smoke run")
    parser.add_argument("--size", help="size of the large file, e.g. 256M or 2G (default: 1G, --quick: 64M)")
    parser.add_argument("--rounds", type=int, help="rounds of the costly figures (default: 3, --quick: 1)")
    parser.add_argument("--skip-others", action="store_true", help="leave out s3fs and rclone")
    parser.add_argument("--dir", help="work folder on the disk to measure (default: a temp folder in /tmp)")
    parser.add_argument("--json", metavar="FILE", help="also write every figure (all rounds) to FILE")
    args = parser.parse_args()
    s = QUICK if args.quick else FULL
    if args.size:
        s = replace(s, size=max(BLOCK, parse_size(args.size) // BLOCK * BLOCK))
    if args.rounds:
        s = replace(s, rounds=args.rounds, cheap_rounds=max(args.rounds, s.cheap_rounds))
    signal.signal(signal.SIGTERM, interrupted)
    prepare_environment()
    others = install_others(args.skip_others)
    started = time.monotonic()
    work = Path(tempfile.mkdtemp(prefix="mldashfs-benchremote-", dir=args.dir))
    try:
        need = 6 * s.size + (2 << 30)
        if shutil.disk_usage(work).free < need:
            raise SystemExit(f"bench_remote: need {need >> 20} MiB free in {work}")
        figures = run_all(work, s, others)
    finally:
        clean_up(work)
    figures["seconds"] = time.monotonic() - started
    print(report(figures, s))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


def run_all(work: Path, s: Settings, others: dict[str, str | None]) -> dict[str, Any]:
    """Start the endpoints, make the bucket and the local store, then measure every figure."""
    with contextlib.ExitStack() as stack:
        s3 = start_s3_server()
        stack.callback(s3.stop)
        mongo = start_mongo_server()
        stack.callback(mongo.stop)
        os.environ["AWS_ENDPOINT_URL"] = s3.endpoint  # the SDK's Experiment takes the endpoint from here
        b = Bench(work=work, s3=s3, mongo=f"{mongo.uri}{DATABASE}", s=s, others=others)
        configure_others(b)
        client = s3.client()
        stack.callback(client.close)
        client.create_bucket(Bucket=BUCKET)
        client.put_object(Bucket=BUCKET, Key=f"{PLAIN}/", Body=b"")  # s3fs mounts a prefix that exists
        Store.open(work / "store").close()  # the local store of the local-mode mounts
        figures: dict[str, Any] = {"settings": asdict(s), "cold_cache": cold_cache_method(),
                                   "tools": tool_versions(), "cores": os.cpu_count(),
                                   "kernel": platform.release()}
        src = work / "src.bin"
        write_file(src, s.size, b.block)
        figures["endpoint"] = bench_endpoint(b, client, src)
        figures["write"] = bench_write(b, client)
        figures["read"] = bench_read(b, src)
        figures["listing"] = bench_listing(b, client)
        figures["sdk"] = bench_sdk(b, client)
        figures["others"] = dict(b.others)
        figures["load_average"] = os.getloadavg()[0]
        return figures


def clean_up(work: Path) -> None:
    """Lazily unmount anything still mounted under `work` (never delete through a mount), then remove it."""
    with open("/proc/self/mountinfo") as f:
        mounted = [line.split()[4] for line in f if line.split()[4].startswith(str(work) + "/")]
    for mountpoint in mounted:
        subprocess.run(["fusermount3", "-u", "-z", mountpoint], stderr=subprocess.DEVNULL, check=False)
    with open("/proc/self/mountinfo") as f:
        if any(line.split()[4].startswith(str(work) + "/") for line in f):
            progress(f"something is still mounted under {work}: left in place")
            return
    shutil.rmtree(work, ignore_errors=True)


# ---- 1. the endpoint ----------------------------------------------------------------------


def bench_endpoint(b: Bench, client: Any, src: Path) -> dict[str, Any]:
    """Seconds of boto3 upload_file and download_fileobj (default transfer settings) of `src`, each
    round one of each; the download starts with the page cache dropped, as the cold reads do. The
    object stays as s3://BUCKET/PLAIN/cold.bin for s3fs's and rclone's cold reads."""
    dst = b.work / "download.bin"
    up: list[float] = []
    down: list[float] = []
    for r in range(b.s.rounds):
        progress(f"endpoint round {r + 1}/{b.s.rounds}")
        up.append(timed(lambda: client.upload_file(str(src), BUCKET, f"{PLAIN}/cold.bin")))
        dst.unlink(missing_ok=True)
        drop_cache(src)

        def download() -> None:
            with open(dst, "wb") as f:
                client.download_fileobj(BUCKET, f"{PLAIN}/cold.bin", f)

        down.append(timed(download))
    if dst.stat().st_size != b.s.size:
        raise SystemExit("bench_remote: boto3 downloaded a different number of bytes")
    dst.unlink()
    return {"bytes": b.s.size, "upload_seconds": up, "download_seconds": down}


# ---- 2 and 3. writes ----------------------------------------------------------------------


def expected_sha256(block: bytes, size: int) -> str:
    """SHA-256 of `size` bytes made of `block` repeated, as write_file writes them."""
    h = hashlib.sha256()
    for _ in range(size // len(block)):
        h.update(block)
    return h.hexdigest()


def checksum_of(path: Path) -> str | None:
    """`user.mldash.checksum` of `path` on a mount, None while it is not there."""
    try:
        return os.getxattr(path, CHECKSUM).decode()
    except OSError:
        return None


def s3_size(client: Any, key: str) -> int | None:
    """Size of object `key` in the bucket, None if there is none."""
    try:
        return int(client.head_object(Bucket=BUCKET, Key=key)["ContentLength"])
    except Exception:
        return None


def wait_for(check: Callable[[], bool], t0: float, timeout: float, what: str) -> float:
    """Seconds from `t0` (a perf_counter time) until `check()` holds, looking every POLL seconds."""
    while not check():
        if time.perf_counter() - t0 > timeout:
            raise SystemExit(f"bench_remote: {what} did not happen within {timeout:.0f} s")
        time.sleep(POLL)
    return time.perf_counter() - t0


def bench_write(b: Bench, client: Any) -> dict[str, Any]:
    """Each round writes a new file of `size` bytes through every contender: seconds from open to
    close returning, and (except local mode) until it is readable elsewhere. mldashfs: writer mount A,
    and reader mount B with its own cache folder polling for the file and its checksum; also when A's
    journal is empty (uploaded to S3 and published to MongoDB). s3fs and rclone: until a HEAD shows
    the whole object. Each round's file is deleted in the next; the last stays for the cold reads."""
    s = b.s
    out: dict[str, Any] = {"bytes": s.size}
    with contextlib.ExitStack() as stack:
        local, _ = stack.enter_context(b.local_mount())
        writer_cache = b.fresh("writer-cache")
        a, a_pid = stack.enter_context(b.remote_mount("writer", writer_cache))
        reader, _ = stack.enter_context(b.remote_mount("reader"))
        journal = Journal(str(writer_cache))
        mounts = {tool: b.attempt(tool, lambda t=tool: stack.enter_context(b.other_mount(t))[0]) for tool in OTHERS}
        local_store = stack.enter_context(Store.open(b.work / "store"))

        def on_local(r: int) -> dict[str, float]:
            path = local / f"w{r}.bin"
            t = timed(lambda: write_file(path, s.size, b.round_block(r)))
            path.unlink()
            local_store.gc()
            return {"close": t}

        def on_mldashfs(r: int) -> dict[str, float]:
            name, block = f"w{r}.bin", b.round_block(r)
            sha = expected_sha256(block, s.size)
            cpu = cpu_seconds(a_pid)
            os.sync()
            t0 = time.perf_counter()
            write_file(a / name, s.size, block)
            close = time.perf_counter() - t0
            cpu_close = cpu_seconds(a_pid) - cpu
            published = visible = None
            while visible is None:
                now = time.perf_counter() - t0
                if published is None and journal.counts()[0] == 0:
                    published = now
                if checksum_of(reader / name) == sha:
                    visible = now
                elif now > s.transfer_timeout:
                    raise SystemExit(f"bench_remote: {name} did not show on the second mount within "
                                     f"{s.transfer_timeout:.0f} s")
                else:
                    time.sleep(POLL)
            if published is None:  # seen on B before the writer's next look at its journal
                published = wait_for(lambda: journal.counts()[0] == 0, t0, s.transfer_timeout, "the upload")
            if r:
                (a / f"w{r - 1}.bin").unlink()
            return {"close": close, "published": published, "visible": visible,
                    "writer_cpu_to_close": cpu_close}

        def on_other(tool: str, r: int) -> dict[str, float]:
            mountpoint = mounts[tool]
            assert mountpoint is not None
            name = f"{tool}-w{r}.bin"
            os.sync()
            t0 = time.perf_counter()
            write_file(mountpoint / name, s.size, b.round_block(r))
            close = time.perf_counter() - t0
            visible = wait_for(lambda: s3_size(client, f"{PLAIN}/{name}") == s.size, t0, s.transfer_timeout,
                               f"{tool}'s upload of {name}")
            if r:
                client.delete_object(Bucket=BUCKET, Key=f"{PLAIN}/{tool}-w{r - 1}.bin")
            return {"close": close, "visible": visible}

        counter: dict[str, int] = {}

        def each(name: str, fn: Callable[[int], dict[str, float]]) -> Callable[[], dict[str, float] | None]:
            def measure() -> dict[str, float] | None:
                r = counter.setdefault(name, 0)
                counter[name] = r + 1
                if name in OTHERS and (mounts[name] is None or b.others[name] is not None):
                    return None
                progress(f"write {name} round {r + 1}/{s.rounds}")
                return b.attempt(name, lambda: fn(r)) if name in OTHERS else fn(r)
            return measure

        contenders = {"local": each("local", on_local), "mldashfs": each("mldashfs", on_mldashfs),
                      **{tool: each(tool, lambda r, t=tool: on_other(t, r)) for tool in OTHERS}}
        rounds = run_rounds(contenders, s.rounds)
        out.update({name: {k: [m[k] for m in ms] for k in (ms[0] if ms else {})} for name, ms in rounds.items()})
    return out


# ---- 4. reads -----------------------------------------------------------------------------


def bench_read(b: Bench, src: Path) -> dict[str, Any]:
    """Seconds of a sequential read of `size` bytes: mldashfs on a mount started for the round with a
    fresh cache folder (cold: the bytes come from S3), then WARM_READS times warm (the first re-read,
    and the best), then once with the page cache dropped (from the cache folder); s3fs and rclone on
    fresh mounts (PLAIN/cold.bin, boto3's object); the bare disk cold, then warm (the best of
    WARM_READS). The page cache is dropped before every cold read."""
    s = b.s
    counter: dict[str, int] = {}

    def note(name: str) -> None:
        counter[name] = counter.get(name, 0) + 1
        progress(f"read {name} round {counter[name]}/{s.rounds}")

    def on_mldashfs() -> dict[str, float]:
        note("mldashfs")
        with b.remote_mount("cold") as (mountpoint, pid):
            path = mountpoint / f"w{s.rounds - 1}.bin"
            os.stat(path)  # the lookup is not the read (it costs a MongoDB query once)
            drop_cache()
            cpu = cpu_seconds(pid)
            cold = timed(lambda: read_file(path))
            cpu = cpu_seconds(pid) - cpu
            warm = [timed(lambda: read_file(path)) for _ in range(WARM_READS)]
            drop_cache()
            cached = timed(lambda: read_file(path))
        return {"cold": cold, "first_warm": warm[0], "warm": min(warm), "cached": cached, "daemon_cpu_cold": cpu}

    def on_bare() -> dict[str, float]:
        note("bare")
        drop_cache(src)
        cold = timed(lambda: read_file(src))
        return {"cold": cold, "warm": min(timed(lambda: read_file(src)) for _ in range(WARM_READS))}

    def on_other(tool: str) -> dict[str, float] | None:
        if b.others[tool] is not None:
            return None
        note(tool)

        def go() -> dict[str, float]:
            with b.other_mount(tool) as (mountpoint, _):
                path = mountpoint / "cold.bin"
                os.stat(path)
                drop_cache()
                return {"cold": timed(lambda: read_file(path))}

        return b.attempt(tool, go)

    rounds = run_rounds({"mldashfs": on_mldashfs, "bare": on_bare,
                         **{tool: lambda t=tool: on_other(t) for tool in OTHERS}}, s.rounds)
    out: dict[str, Any] = {"bytes": s.size}
    out.update({name: {k: [m[k] for m in ms] for k in (ms[0] if ms else {})} for name, ms in rounds.items()})
    return out


# ---- 5. listings --------------------------------------------------------------------------


def bench_listing(b: Bench, client: Any) -> dict[str, Any]:
    """`ls -l` of a folder of `files` small files: the remote store's (filled through a Store with a
    remote location, then wait_uploads), the local store's, and plain objects of the same names and
    sizes for s3fs and rclone (boto3 put_object). Each round lists on mounts started for it (nothing
    cached), twice in a row; s3fs and rclone list in the first `rounds` rounds only (they are slow)."""
    s = b.s
    n = s.files
    names = [f"f{i:06d}.json" for i in range(n)]
    fill: dict[str, float] = {}
    progress(f"listing: filling {n:,} files in each store")
    with Store.open(LOCATION, mongo=b.mongo, cache_dir=str(b.fresh("fill-cache")), s3_endpoint=b.s3.endpoint) as st:
        t = time.perf_counter()
        with ThreadPoolExecutor(8) as pool:
            list(pool.map(lambda name: st.put_bytes(f"{EXPERIMENT}/ls/{name}", b"{}"), names))
        fill["remote_calls"] = time.perf_counter() - t
        if not st.wait_uploads(timeout=1800):
            raise SystemExit("bench_remote: the listing's files were not uploaded within 30 minutes")
        fill["remote_uploaded"] = time.perf_counter() - t
    with Store.open(b.work / "store") as st, ThreadPoolExecutor(4) as pool:
        fill["local"] = timed(lambda: list(pool.map(lambda name: st.put_bytes(f"{EXPERIMENT}/ls/{name}", b"{}"), names)))
    if any(b.others[tool] is None for tool in OTHERS):
        with ThreadPoolExecutor(8) as pool:
            fill["plain"] = timed(lambda: list(pool.map(
                lambda name: client.put_object(Bucket=BUCKET, Key=f"{PLAIN}/ls/{name}", Body=b"{}"), names)))

    def twice(mountpoint: Path, pid: int) -> dict[str, Any]:
        first = ls_l(mountpoint / "ls", n, s.ls_timeout, daemon=pid)
        end = time.perf_counter()
        second = ls_l(mountpoint / "ls", n, s.ls_timeout, daemon=pid)
        return {"first": first.seconds, "second": second.seconds, "cpu_first": first.cpu,
                "gap": time.perf_counter() - end - second.seconds}

    counter: dict[str, int] = {}

    def note(name: str, rounds: int) -> None:
        counter[name] = counter.get(name, 0) + 1
        progress(f"listing {name} round {counter[name]}/{rounds}")

    def on_remote() -> dict[str, Any]:
        note("mldashfs", s.cheap_rounds)
        with b.remote_mount("ls") as (mountpoint, pid):
            return twice(mountpoint, pid)

    def on_local() -> dict[str, Any]:
        note("local", s.cheap_rounds)
        with b.local_mount() as (mountpoint, pid):
            return twice(mountpoint, pid)

    def on_other(tool: str) -> dict[str, Any] | None:
        if b.others[tool] is not None:
            return None
        note(tool, s.rounds)

        def go() -> dict[str, Any]:
            with b.other_mount(tool) as (mountpoint, pid):
                return twice(mountpoint, pid)

        return b.attempt(tool, go)

    rounds = run_rounds({"mldashfs": on_remote, "local": on_local, **{t: lambda t=t: on_other(t) for t in OTHERS}},
                        s.cheap_rounds, limit={t: s.rounds for t in OTHERS})
    out: dict[str, Any] = {"files": n, "fill_seconds": fill}
    out.update({name: {k: [m[k] for m in ms] for k in (ms[0] if ms else {})} for name, ms in rounds.items()})
    return out


# ---- 6. the SDK ---------------------------------------------------------------------------


def bench_sdk(b: Bench, client: Any) -> dict[str, Any]:
    """`saves` SDK save_json calls into a new experiment per round: seconds of the calls and of the
    Experiment's exit (which waits for the uploads), on the remote store (a fresh cache folder each
    round) and on a local store; and boto3 put_object of as many objects of the same size from 4
    threads (the uploader's count), the endpoint's own time for that many small objects."""
    from ml_dash import Experiment

    s = b.s
    counter: dict[str, int] = {}

    def saves(name: str, **where: Any) -> dict[str, float]:
        r = counter[name] = counter.get(name, 0) + 1
        progress(f"sdk {name} round {r}/{s.rounds}")
        t0 = time.perf_counter()
        with Experiment(prefix=f"bench/sdk/{name}{r}", **where).run as exp:
            t1 = time.perf_counter()
            for i in range(s.saves):
                exp.files("results").save_json({"round": r, "step": i, "loss": 1 / (i + 1)}, to=f"r{i:05d}.json")
            t2 = time.perf_counter()
        t3 = time.perf_counter()
        if "cache_dir" in where and Journal(where["cache_dir"]).counts()[0]:
            raise SystemExit("bench_remote: the Experiment's exit returned with uploads pending")
        return {"open": t1 - t0, "calls": t2 - t1, "exit": t3 - t2}

    def on_boto3() -> dict[str, float]:
        r = counter["boto3"] = counter.get("boto3", 0) + 1
        progress(f"sdk boto3 round {r}/{s.rounds}")
        body = json.dumps({"step": 0, "loss": 1.0}).encode()
        with ThreadPoolExecutor(4) as pool:
            return {"put": timed(lambda: list(pool.map(
                lambda i: client.put_object(Bucket=BUCKET, Key=f"{PLAIN}/sdk{r}/r{i:05d}.json", Body=body),
                range(s.saves))))}

    rounds = run_rounds({
        "mldashfs": lambda: saves("remote", store=LOCATION, mongo=b.mongo, cache_dir=str(b.fresh("sdk-cache"))),
        "local": lambda: saves("local", store=str(b.work / "sdk-store")),
        "boto3": on_boto3,
    }, s.rounds)
    out: dict[str, Any] = {"calls": s.saves}
    out.update({name: {k: [m[k] for m in ms] for k in ms[0]} for name, ms in rounds.items()})
    return out


# ---- the report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Fig:
    """A figure over rounds: its best and its median (seconds, or a rate made from them)."""

    best: float
    median: float

    @classmethod
    def seconds(cls, xs: list[float]) -> Fig | None:
        """Best (least) and median of round times; None without rounds."""
        return cls(min(xs), statistics.median(xs)) if xs else None

    @classmethod
    def rate(cls, amount: float, xs: list[float]) -> Fig | None:
        """`amount` per second at the best and the median round time; None without rounds."""
        t = cls.seconds(xs)
        return None if t is None else cls(amount / t.best if t.best else math.inf, amount / t.median)


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure of mldashfs against one baseline, with its target."""

    workload: str
    ours: str
    baseline: str
    theirs: str
    ratio: str
    target: str
    met: bool | None  # None: no target (context), or no baseline figure


def mibps(x: float) -> str:
    return f"{x / MiB:,.0f} MiB/s"


def per_s(x: float) -> str:
    return f"{x:,.0f}/s"


def both(f: Fig, unit: Callable[[float], str]) -> str:
    """`best (median m)` in one unit."""
    return f"{unit(f.best)} (median {unit(f.median).split(' ')[0]})"


def compare(workload: str, ours: Fig, unit: Callable[[float], str], baseline: str, theirs: Fig | None,
            target: str = "", check: Callable[[float], bool] | None = None, missing: str = "n/a") -> Row:
    """A row: ours against theirs as best/best (median/median); `check` judges the best ratio."""
    if theirs is None:
        return Row(workload, both(ours, unit), baseline, missing, "", target, None)
    best, med = ours.best / theirs.best, ours.median / theirs.median
    ratio = f"{best:.2f}x ({med:.2f}x)" if math.isfinite(best) and math.isfinite(med) else "n/a (stopped)"
    return Row(workload, both(ours, unit), baseline, both(theirs, unit), ratio, target,
               None if check is None or not math.isfinite(best) else check(best))


def report(f: dict[str, Any], s: Settings) -> str:
    """The markdown table and notes: throughput ratios above 1x beat the baseline, time ratios
    (rows marked 'time') below 1x beat it. Ratios: best against best (median against median)."""
    size = f["endpoint"]["bytes"]
    label = f"{size / (1 << 30):g} GiB" if size >= 1 << 30 else f"{size >> 20} MiB"
    ep, w, rd, ls, sdk = f["endpoint"], f["write"], f["read"], f["listing"], f["sdk"]
    others = f["others"]

    def why(tool: str) -> str:
        return f"n/a: {others[tool]}" if others.get(tool) else "n/a"

    def rate(group: dict[str, Any], who: str, key: str) -> Fig | None:
        return Fig.rate(size, group.get(who, {}).get(key, []))

    def secs_of(group: dict[str, Any], who: str, key: str) -> Fig | None:
        return Fig.seconds(group.get(who, {}).get(key, []))

    up, down = Fig.rate(size, ep["upload_seconds"]), Fig.rate(size, ep["download_seconds"])
    assert up is not None and down is not None
    rows = [
        Row(f"S3 endpoint: boto3 upload_file {label}", both(up, mibps), "", "", "", "", None),
        Row(f"S3 endpoint: boto3 download_fileobj {label}", both(down, mibps), "", "", "", "", None),
    ]
    close = secs_of(w, "mldashfs", "close")
    vis = rate(w, "mldashfs", "visible")
    assert close is not None and vis is not None
    rows.append(compare(f"close() of a {label} write (time)", close, secs, "local mode", secs_of(w, "local", "close"),
                        f"<= {T_CLOSE}x", lambda x: x <= T_CLOSE))
    for tool in OTHERS:
        rows.append(compare(f"close() of a {label} write (time)", close, secs, tool, secs_of(w, tool, "close"),
                            missing=why(tool)))
    rows.append(compare(f"open -> readable elsewhere, {label}", vis, mibps, "boto3 upload_file", up,
                        f">= {T_VISIBLE}x", lambda x: x >= T_VISIBLE))
    for tool in OTHERS:
        rows.append(compare(f"open -> readable elsewhere, {label}", vis, mibps, f"{tool} (open -> in S3)",
                            rate(w, tool, "visible"), "> 1x (faster)", lambda x: x > 1.0, why(tool)))
    published = rate(w, "mldashfs", "published")
    assert published is not None
    rows.append(compare(f"open -> uploaded and published (writer), {label}", published, mibps,
                        "boto3 upload_file", up))
    cold, warm, cached = rate(rd, "mldashfs", "cold"), rate(rd, "mldashfs", "warm"), rate(rd, "mldashfs", "cached")
    assert cold is not None and warm is not None and cached is not None
    rows.append(compare(f"cold read {label}, fresh mount", cold, mibps, "boto3 download_fileobj", down,
                        f">= {T_COLD}x", lambda x: x >= T_COLD))
    for tool in OTHERS:
        rows.append(compare(f"cold read {label}, fresh mount", cold, mibps, tool, rate(rd, tool, "cold"),
                            missing=why(tool)))
    rows.append(compare(f"warm re-read {label} (best of {WARM_READS})", warm, mibps, "bare disk (warm)",
                        rate(rd, "bare", "warm"), f">= {T_WARM}x", lambda x: x >= T_WARM))
    first_warm = rate(rd, "mldashfs", "first_warm")
    assert first_warm is not None
    rows.append(compare(f"first re-read {label} after the cold read", first_warm, mibps, "bare disk (warm)",
                        rate(rd, "bare", "warm")))
    rows.append(compare(f"re-read {label} from the cache folder, page cache dropped", cached, mibps,
                        "bare disk (cold)", rate(rd, "bare", "cold")))
    n = ls["files"]
    first, second = secs_of(ls, "mldashfs", "first"), secs_of(ls, "mldashfs", "second")
    assert first is not None and second is not None
    for tool in OTHERS:
        rows.append(compare(f"ls -l {n:,} files, fresh mount (time)", first, secs, f"{tool} (first listing)",
                            secs_of(ls, tool, "first"), missing=why(tool)))
    rows.append(compare(f"ls -l {n:,} files, fresh mount (time)", first, secs, "local mode (fresh mount)",
                        secs_of(ls, "local", "first")))
    again = f"second ls -l {n:,} files, right after (TTL {DEFAULT_TTL:g} s) (time)"
    rows.append(compare(again, second, secs, "local mode (fresh mount)", secs_of(ls, "local", "first"),
                        f"<= {T_LS_SECOND:g}x", lambda x: x <= T_LS_SECOND))
    rows.append(compare(again, second, secs, "local mode (second ls -l)", secs_of(ls, "local", "second")))
    calls = sdk["calls"]
    sps = Fig.rate(calls, sdk["mldashfs"]["calls"])
    assert sps is not None
    rows.append(Row(f"{calls:,} x SDK save_json: calls returned", both(sps, per_s), "", "", "",
                    f">= {T_SAVES:,.0f}/s", sps.best >= T_SAVES))
    rows.append(compare(f"{calls:,} x SDK save_json: calls returned", sps, per_s, "local store",
                        Fig.rate(calls, sdk["local"]["calls"])))
    total = Fig.seconds([c + e for c, e in zip(sdk["mldashfs"]["calls"], sdk["mldashfs"]["exit"], strict=True)])
    exit_ = Fig.seconds(sdk["mldashfs"]["exit"])
    assert total is not None and exit_ is not None
    rows.append(compare(f"{calls:,} x save_json, first call -> exit returns, all uploaded (time)", total, secs,
                        "boto3 put_object x 4 threads", Fig.seconds(sdk["boto3"]["put"])))
    rows.append(Row(f"{calls:,} x save_json: the exit alone (time)", both(exit_, secs), "", "", "", "", None))

    head = ["workload", "mldashfs best (median)", "baseline", "baseline best (median)", "ratio best (median)",
            "target", "met"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        mark = "" if r.met is None else ("yes" if r.met else "**NO**")
        lines.append(f"| {r.workload} | {r.ours} | {r.baseline} | {r.theirs} | {r.ratio} | {r.target} | {mark} |")
    lines += ["", *notes(f, s)]
    return "\n".join(lines)


def notes(f: dict[str, Any], s: Settings) -> list[str]:
    """The lines under the table: the run, the breakdowns behind the figures, every round."""
    w, rd, ls, sdk = f["write"], f["read"], f["listing"], f["sdk"]
    med = statistics.median
    run = "--quick" if s == QUICK else f"{s.size >> 20} MiB, {s.rounds} rounds"
    out = [
        f"Run: {run}; {f['cores']} cores, load average {f['load_average']:.1f}, kernel {f['kernel']}; "
        f"total {f['seconds']:.0f} s. Cold cache: {f['cold_cache']}. Endpoint: moto 5.2.5 "
        "(scripts/s3_test_server.py) and mongomock behind the wire protocol (scripts/mongo_test_server.py), "
        "both on 127.0.0.1.",
        f"Rounds: {s.rounds} for transfers, reads, s3fs/rclone listings and SDK saves; {s.cheap_rounds} for "
        "mldashfs listings; each round led by another contender. Ratios compare best with best "
        "(median with median); throughput ratios above 1x beat the baseline, time ratios (rows marked "
        "'time') below 1x beat it.",
    ]
    for tool in OTHERS:
        state = f["others"].get(tool)
        version = f["tools"].get(tool, "not installed")
        out.append(f"{tool}: {version}; " + ("used." if state is None else f"not used: {state}."))
    m = w["mldashfs"]
    out.append("mldashfs write -> readable elsewhere, median seconds from open: close "
               f"{med(m['close']):.2f}, uploaded and published (writer's journal empty) {med(m['published']):.2f}, "
               f"seen with its checksum on the second mount {med(m['visible']):.2f}; writer daemon CPU to close "
               f"{med(m['writer_cpu_to_close']):.2f} s.")
    for who, d in w.items():
        if isinstance(d, dict) and d:
            out.append(f"write rounds, {who}: " + "; ".join(
                f"{k} " + ", ".join(f"{x:.2f}" for x in v) for k, v in d.items() if isinstance(v, list)) + " s.")
    for who, d in rd.items():
        if isinstance(d, dict) and d:
            out.append(f"read rounds, {who} (MiB/s): " + "; ".join(
                f"{k} " + ", ".join(f"{rd['bytes'] / x / MiB:,.0f}" for x in v)
                for k, v in d.items() if not k.startswith("daemon")) + ".")
    if rd["mldashfs"].get("daemon_cpu_cold"):
        out.append(f"mldashfs daemon CPU per cold read: {med(rd['mldashfs']['daemon_cpu_cold']):.2f} s (median).")
    first = statistics.median(ls["mldashfs"]["first"])
    if first > DEFAULT_TTL:
        out.append(f"The mldashfs listing takes longer ({first:.2f} s, median) than the metadata TTL "
                   f"({DEFAULT_TTL:g} s): the second ls -l finds the pages of the first expired and asks MongoDB again.")
    fill = ", ".join(f"{k.replace('_', ' ')} {v:.1f} s" for k, v in ls["fill_seconds"].items())
    out.append(f"Listing fill ({ls['files']:,} files): {fill}.")
    for who in ("mldashfs", "local", *OTHERS):
        d = ls.get(who)
        if d and d.get("first"):
            out.append(f"ls -l rounds, {who}: first " + ", ".join(secs(x) for x in d["first"]) + "; second "
                       + ", ".join(secs(x) for x in d["second"]) + "; daemon CPU in the first "
                       + ", ".join(f"{c.get('daemon', 0):.2f}" for c in d["cpu_first"]) + " s.")
    for who in ("mldashfs", "local"):
        d = sdk[who]
        out.append(f"SDK rounds, {who}: calls/s " + ", ".join(f"{sdk['calls'] / x:,.0f}" for x in d["calls"])
                   + "; exit " + ", ".join(f"{x:.2f}" for x in d["exit"]) + " s; open "
                   + ", ".join(f"{x:.2f}" for x in d["open"]) + " s.")
    out.append("SDK rounds, boto3 put_object: " + ", ".join(f"{x:.2f}" for x in sdk["boto3"]["put"]) + " s.")
    return out


if __name__ == "__main__":
    sys.exit(main())
