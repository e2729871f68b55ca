#!/usr/bin/env python
"""Load and daemon memory: concurrent writers with readers and `ls -l` loops through a real mount,
then the daemon's resident memory after many files, many bytes and a large listing.

Phases, all on one mount (one daemon, whose memory is sampled from /proc/PID/status):

1. load: `--writers` threads each write `--files` files (1 KiB - 256 KiB) through the mount while two
   reader threads re-read finished files and hash them and one thread runs `ls -l` of the writers'
   folders in a loop. Every file's SHA-256 (computed by the writer) is compared with its
   `user.mldash.checksum` xattr after close and with its bytes read back at the end.
2. files: the same writers go on until `--total-files` files (10,000) were written through the mount.
3. bytes: `--gib` GiB (10) written through the mount in 256 MiB files, then read back and hashed.
4. listing: `--list-files` files (100,000) put into one folder through the Store (another process,
   as a training script would), then `ls -l` of it through the mount, which must show them all.

Before each phase the daemon's peak (VmHWM) is reset (`echo 5 > /proc/PID/clear_refs`, root), so
each row's peak is that phase's; VmRSS is also sampled every 0.1 s. The target: under 200 MB for the
bytes phase. With `--remote` the store is `s3://` + MongoDB on the test servers (started here and
stopped by pid), and after the load `mldashfs sync` runs and a second machine checks every file's
checksum in MongoDB and hashes a sample of the objects from S3. The remote defaults are smaller
(4 GiB, 10,000 listed files): the S3 server keeps every object (small ones in its memory, large ones
in temp files) and the MongoDB server's aggregates slow as the catalog grows (a few publishes a
second beyond 10,000 versions on 2 cores), so 100,000 listed would take hours. Usage:

    python scripts/load_memory.py             # the full run, local store
    python scripts/load_memory.py --remote    # remote store
    python scripts/load_memory.py --quick     # small: a smoke run
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import json
import os
import random
import signal
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))  # script_servers.py beside this script

from script_servers import init_local_store, remote_servers, script_env, wait_mounted  # noqa: E402

EXPERIMENT = "load/memory/exp"
BIG = 256 << 20
BLOCK = 1 << 20
TARGET_MB = 200


@dataclass
class Counts:
    """What the load did and what went wrong, shared by the threads (under `lock`)."""

    lock: threading.Lock = field(default_factory=threading.Lock)
    written: dict[str, str] = field(default_factory=dict)  # path under the mount -> sha256
    xattr_ok: int = 0
    reads_ok: int = 0
    listings: int = 0
    errors: list[str] = field(default_factory=list)

    def error(self, what: str) -> None:
        with self.lock:
            self.errors.append(what)


class Memory:
    """Samples the daemon's VmRSS every 0.1 s; `phase()` resets its VmHWM and reports the phase's peak."""

    def __init__(self, pid: int) -> None:
        self.pid, self.peak_sampled, self.stopped = pid, 0, threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def status(self) -> dict[str, int]:
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            k, _, v = line.partition(":")
            if k in ("VmRSS", "VmHWM"):
                out[k] = int(v.split()[0]) * 1024
        return out

    def _sample(self) -> None:
        while not self.stopped.wait(0.1):
            with contextlib.suppress(OSError, KeyError):
                self.peak_sampled = max(self.peak_sampled, self.status()["VmRSS"])

    @contextlib.contextmanager
    def phase(self, rows: list[dict[str, Any]], name: str) -> Iterator[dict[str, Any]]:
        with contextlib.suppress(OSError):
            Path(f"/proc/{self.pid}/clear_refs").write_text("5\n")  # reset VmHWM to the current RSS
        self.peak_sampled = 0
        row: dict[str, Any] = {"phase": name, "rss_before": self.status()["VmRSS"]}
        t = time.monotonic()
        yield row
        st = self.status()
        row.update(seconds=round(time.monotonic() - t, 1), peak_hwm=st["VmHWM"],
                   peak_sampled=max(self.peak_sampled, st["VmRSS"]), rss_after=st["VmRSS"])
        rows.append(row)
        print(f"{name}: {row}", file=sys.stderr)

    def stop(self) -> None:
        self.stopped.set()
        self.thread.join()


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def hash_file(path: Path) -> str:
    h = hashlib.sha256()
    with open(path, "rb") as f:
        while chunk := f.read(BLOCK):
            h.update(chunk)
    return h.hexdigest()


def writer(mnt: Path, w: int, start: int, count: int, c: Counts, max_size: int) -> None:
    """Write `count` files as writer `w`; check each one's checksum xattr after close."""
    rng = random.Random(w * 1_000_003 + start)
    d = mnt / f"w{w}"
    d.mkdir(exist_ok=True)
    for i in range(start, start + count):
        p = d / f"f{i:05d}.bin"
        data = os.urandom(rng.randrange(1024, max_size))
        try:
            with open(p, "wb") as f:
                f.write(data)
            got = os.getxattr(p, "user.mldash.checksum").decode()
        except OSError as e:
            c.error(f"write {p}: {e}")
            continue
        with c.lock:
            c.written[str(p)] = sha(data)
            if got == sha(data):
                c.xattr_ok += 1
        if got != sha(data):
            c.error(f"{p}: xattr checksum {got}, wrote {sha(data)}")


def reader(c: Counts, stop: threading.Event, seed: int) -> None:
    rng = random.Random(seed)
    while not stop.is_set():
        with c.lock:
            items = list(c.written.items()) if c.written else []
        if not items:
            time.sleep(0.05)
            continue
        for path, digest in rng.sample(items, min(20, len(items))):
            try:
                got = hash_file(Path(path))
            except OSError as e:
                c.error(f"read {path}: {e}")
                continue
            if got != digest:
                c.error(f"read {path}: {got}, wrote {digest}")
            else:
                with c.lock:
                    c.reads_ok += 1


def lister(mnt: Path, writers: int, c: Counts, stop: threading.Event) -> None:
    while not stop.is_set():
        for w in range(writers):
            d = mnt / f"w{w}"
            if not d.exists():
                continue
            done = subprocess.run(["ls", "-l", str(d)], capture_output=True, text=True)
            if done.returncode != 0:
                c.error(f"ls -l {d}: {done.stderr.strip()}")
            with c.lock:
                c.listings += 1


def run_writers(mnt: Path, writers: int, start: int, per: int, c: Counts, max_size: int) -> None:
    with ThreadPoolExecutor(writers) as pool:
        for f in [pool.submit(writer, mnt, w, start, per, c, max_size) for w in range(writers)]:
            f.result()


def phase_load(mnt: Path, a: argparse.Namespace, c: Counts) -> None:
    stop = threading.Event()
    side = [threading.Thread(target=reader, args=(c, stop, s)) for s in (1, 2)]
    side.append(threading.Thread(target=lister, args=(mnt, a.writers, c, stop)))
    for t in side:
        t.start()
    try:
        run_writers(mnt, a.writers, 0, a.files, c, a.max_size)
    finally:
        stop.set()
        for t in side:
            t.join()


def verify_all(c: Counts) -> int:
    """Read every written file back through the mount and hash it; the number that verified."""
    ok = 0
    for path, digest in list(c.written.items()):
        try:
            got = hash_file(Path(path))
        except OSError as e:
            c.error(f"final read {path}: {e}")
            continue
        if got == digest:
            ok += 1
        else:
            c.error(f"final read {path}: {got}, wrote {digest}")
    return ok


def phase_bytes(mnt: Path, gib: float, c: Counts) -> dict[str, Any]:
    """Write `gib` GiB in 256 MiB files, then read them back and hash them."""
    total, n, written = int(gib * (1 << 30)), 0, {}
    block = bytearray(os.urandom(BLOCK))
    (mnt / "big").mkdir(exist_ok=True)
    t = time.monotonic()
    while n * BIG < total:
        p, h = mnt / "big" / f"part{n:03d}.bin", hashlib.sha256()
        size = min(BIG, total - n * BIG)
        with open(p, "wb") as f:
            for i in range(size // BLOCK):
                block[:8] = (n * 1_000_000 + i).to_bytes(8, "little")  # every block differs
                h.update(block)
                f.write(block)
        written[p] = h.hexdigest()
        n += 1
    write_s = time.monotonic() - t
    t = time.monotonic()
    ok = 0
    for p, digest in written.items():
        got = hash_file(p)
        if got == digest:
            ok += 1
        else:
            c.error(f"big read {p}: {got}, wrote {digest}")
    return {"files": n, "bytes": total, "verified": ok, "write_s": round(write_s, 1),
            "read_s": round(time.monotonic() - t, 1)}


def phase_listing(r: Any, mnt: Path, n: int, c: Counts) -> dict[str, Any]:
    """Put n tiny files into one folder through the Store (4 threads), then `ls -l` it through the mount."""
    t = time.monotonic()
    with r.open("filler") as store, ThreadPoolExecutor(4) as pool:
        list(pool.map(lambda i: store.put_bytes(f"{EXPERIMENT}/many/f{i:06d}.json", b"{}"), range(n)))
        store.wait_uploads()
    fill_s = time.monotonic() - t
    deadline = time.monotonic() + 60  # new names show through the mount within its TTLs
    while True:
        t = time.monotonic()
        done = subprocess.run(["ls", "-l", str(mnt / "many")], capture_output=True, text=True)
        ls_s = time.monotonic() - t
        shown = done.stdout.count("\n") - 1
        if shown == n or time.monotonic() > deadline:
            break
        time.sleep(1)
    if done.returncode != 0 or shown != n:
        c.error(f"ls -l of {n:,} files showed {shown:,}: {done.stderr.strip()[:200]}")
    return {"files": n, "shown": shown, "fill_s": round(fill_s, 1), "ls_s": round(ls_s, 2)}


# ---- the mount and the servers ----------------------------------------------------------------


@dataclass
class Run:
    work: Path
    cli: list[str]
    env: dict[str, str]
    location: str
    open_options: dict[str, Any] = field(default_factory=dict)
    remote: bool = False

    def open(self, machine: str) -> Any:
        from mldashfs.store import Store

        if not self.remote:
            return Store.open(self.location, create=False)
        return Store.open(self.location, cache_dir=str(self.work / "caches" / machine), metadata_ttl=0.0,
                          **self.open_options)


def stop_pid(proc: subprocess.Popen[Any], timeout: float = 60.0) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@contextlib.contextmanager
def daemon(r: Run, mnt: Path) -> Iterator[subprocess.Popen[bytes]]:
    mnt.mkdir()
    log = r.work / "mount.log"
    cmd = [sys.executable, "-m", "mldashfs.cli", "mount", "--foreground", "--create", *r.cli,
           "--experiment", EXPERIMENT, "--log-file", str(log), str(mnt)]
    with open(r.work / "mount.out", "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=r.env)
    try:
        wait_mounted(proc, mnt, r.work / "mount.out", "load_memory")
        yield proc
    finally:
        for flags in (["-u"], ["-u", "-z"]):
            if os.path.ismount(mnt):
                subprocess.run(["fusermount3", *flags, str(mnt)], stderr=subprocess.DEVNULL, check=False)
        stop_pid(proc)


@contextlib.contextmanager
def store_for(remote: bool, work: Path) -> Iterator[Run]:
    env = script_env()
    if not remote:
        store = init_local_store(work, env)
        yield Run(work=work, cli=["--store", str(store)], env=env, location=str(store))
        return
    with remote_servers(env, "load") as (s3, mongo_uri):
        location, uri = "s3://load/team", f"{mongo_uri}loadmemory"
        yield Run(work=work, env=env, location=location, remote=True,
                  cli=["--store", location, "--mongo", uri, "--cache-dir", str(work / "caches" / "a"),
                       "--s3-endpoint", s3.endpoint],
                  open_options={"mongo": uri, "s3_endpoint": s3.endpoint})


def check_other_machine(r: Run, c: Counts, mnt: Path, sample: int) -> dict[str, Any]:
    """After `mldashfs sync`: every file's checksum in MongoDB, a sample of objects hashed from S3."""
    done = subprocess.run([sys.executable, "-m", "mldashfs.cli", "sync", "--timeout", "600", *r.cli],
                          capture_output=True, text=True, env=r.env)
    if done.returncode != 0:
        c.error(f"sync: {done.stdout}{done.stderr}")
    ok = hashed = 0
    with r.open("b") as other:
        items = list(c.written.items())
        for i, (path, digest) in enumerate(items):
            rel = os.path.relpath(path, mnt)
            try:
                v = other.latest(f"{EXPERIMENT}/{rel}")
            except Exception as e:  # noqa: BLE001 - every failure is reported
                c.error(f"machine b: {rel}: {e}")
                continue
            if v.sha256 != digest:
                c.error(f"machine b: {rel}: {v.sha256}, wrote {digest}")
                continue
            ok += 1
            if i % max(1, len(items) // sample) == 0:
                if sha(other.read_bytes(v)) != digest:
                    c.error(f"machine b: {rel}: bytes from S3 do not hash to {digest}")
                else:
                    hashed += 1
    return {"checksums_ok": ok, "objects_hashed": hashed}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--writers", type=int, default=8)
    parser.add_argument("--files", type=int, default=None, help="files per writer in the load phase (500)")
    parser.add_argument("--total-files", type=int, default=None, help="files written through the mount in all (10,000)")
    parser.add_argument("--gib", type=float, default=None, help="GiB written and read back (10; remote 4)")
    parser.add_argument("--list-files", type=int, default=None, help="files listed (100,000; remote 10,000)")
    parser.add_argument("--quick", action="store_true", help="small sizes: 50 files a writer, 1 GiB, 5,000 listed")
    parser.add_argument("--remote", action="store_true")
    parser.add_argument("--dir", help="work folder (default: a temp folder in /tmp)")
    parser.add_argument("--json", metavar="FILE")
    a = parser.parse_args()
    q = a.quick
    a.files = a.files or (50 if q else 500)
    a.total_files = a.total_files or (1_000 if q else 10_000)
    a.gib = a.gib or (1.0 if q else 4.0 if a.remote else 10.0)
    a.list_files = a.list_files or (5_000 if q else 10_000 if a.remote else 100_000)
    a.max_size = (64 if q else 256) << 10
    work = Path(tempfile.mkdtemp(prefix="mldashfs-load-", dir=a.dir))
    started = time.monotonic()
    figures: dict[str, Any] = {"errors": ["the run stopped early"]}
    try:
        need = int(a.gib * (1 << 30) * (2 if a.remote else 1)) + (2 << 30)
        if os.statvfs(work).f_bavail * os.statvfs(work).f_frsize < need:
            raise SystemExit(f"load_memory: need {need >> 20} MiB free in {work}")
        with store_for(a.remote, work) as r:
            figures = run(r, a)
    finally:
        import shutil

        if figures["errors"] and (work / "mount.log").exists():  # kept: the daemon's side of the errors
            kept = Path(tempfile.gettempdir()) / f"{work.name}-mount.log"
            shutil.copy(work / "mount.log", kept)
            figures["daemon_log"] = str(kept)
        shutil.rmtree(work, ignore_errors=True)
    figures["seconds"] = round(time.monotonic() - started)
    print(report(figures))
    if a.json:
        Path(a.json).write_text(json.dumps(figures, indent=2))
    return 0 if not figures["errors"] and figures["verified"] == figures["files_written"] else 1


def run(r: Run, a: argparse.Namespace) -> dict[str, Any]:
    mnt = r.work / "mnt"
    c = Counts()
    rows: list[dict[str, Any]] = []
    f: dict[str, Any] = {"remote": a.remote, "writers": a.writers, "files_per_writer": a.files}
    with daemon(r, mnt) as d:
        mem = Memory(d.pid)
        try:
            f["rss_at_start"] = mem.status()["VmRSS"]
            with mem.phase(rows, f"load: {a.writers} writers x {a.files:,} files, 2 readers, ls -l loop"):
                phase_load(mnt, a, c)
            f["load"] = {"files": len(c.written), "xattr_ok": c.xattr_ok, "reads_ok": c.reads_ok,
                         "listings": c.listings}
            per = -(-(a.total_files - len(c.written)) // a.writers)
            with mem.phase(rows, f"files: {a.total_files:,} files written in all"):
                if per > 0:
                    run_writers(mnt, a.writers, a.files, per, c, a.max_size)
            f["files_written"] = len(c.written)
            f["verified"] = verify_all(c)
            with mem.phase(rows, f"bytes: {a.gib:g} GiB written and read back") as row:
                row["target"] = f"< {TARGET_MB} MB"
                f["bytes"] = phase_bytes(mnt, a.gib, c)
            with mem.phase(rows, f"listing: ls -l of {a.list_files:,} files"):
                f["listing"] = phase_listing(r, mnt, a.list_files, c)
        finally:
            mem.stop()
        if r.remote:
            f["other_machine"] = check_other_machine(r, c, mnt, sample=200)
    f["phases"] = rows
    f["errors"] = c.errors
    return f


def mb(n: int) -> str:
    return f"{n / 1e6:,.0f} MB"


def report(f: dict[str, Any]) -> str:
    lines = ["| phase | seconds | RSS before | peak RSS (VmHWM) | peak RSS (sampled) | RSS after | target |",
             "|---|---|---|---|---|---|---|"]
    for row in f["phases"]:
        target = row.get("target", "")
        if target:
            target += " pass" if row["peak_hwm"] < TARGET_MB * 1e6 else " **FAIL**"
        lines.append(f"| {row['phase']} | {row['seconds']} | {mb(row['rss_before'])} | {mb(row['peak_hwm'])} | "
                     f"{mb(row['peak_sampled'])} | {mb(row['rss_after'])} | {target} |")
    ld, b, ls = f["load"], f["bytes"], f["listing"]
    lines += [
        "",
        f"{'remote (S3 + MongoDB test servers)' if f['remote'] else 'local'} store, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}; daemon RSS at start {mb(f['rss_at_start'])}; total {f['seconds']} s.",
        f"Load: {ld['files']:,} files written, {ld['xattr_ok']:,} checksum xattrs matched, {ld['reads_ok']:,} "
        f"concurrent reads verified, {ld['listings']:,} `ls -l` runs.",
        f"Files: {f['files_written']:,} written through the mount, {f['verified']:,} read back and verified.",
        f"Bytes: {b['files']} files, {b['bytes'] / (1 << 30):g} GiB written in {b['write_s']} s, read back in "
        f"{b['read_s']} s, {b['verified']} verified.",
        f"Listing: {ls['files']:,} files put through the Store in {ls['fill_s']} s; `ls -l` showed {ls['shown']:,} "
        f"in {ls['ls_s']} s.",
    ]
    if "other_machine" in f:
        o = f["other_machine"]
        lines.append(f"Other machine after `mldashfs sync`: {o['checksums_ok']:,} checksums in MongoDB matched, "
                     f"{o['objects_hashed']} objects hashed from S3.")
    lines.append(f"Errors: {len(f['errors'])}" + "".join(f"\n- {e}" for e in f["errors"][:30]))
    if "daemon_log" in f:
        lines.append(f"The daemon's log: {f['daemon_log']}")
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
