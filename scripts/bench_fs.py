#!/usr/bin/env python
"""FUSE benchmark: the mldashfs mount against baselines measured in the same run, on the same disk.

Baselines: the bare disk (a folder beside the store), the same work without FUSE (a loop writing 1 MiB
chunks while hashing them with SHA-256), and pyfuse3's own example `passthroughfs.py` mounted over the
bare folder (the floor for a Python FUSE filesystem). passthroughfs.py is not vendored: it is taken
from the sdist of the installed pyfuse3 (`pip download --no-deps --no-binary pyfuse3`) into
~/.cache/mldashfs-bench/ on first use.

Workloads: sequential write (1 MiB blocks, timed to close; for mldashfs until the version is committed,
so its SHA-256 is included), cold and warm sequential read, many small files, `ls -l` of large
folders (filled through the Store for mldashfs, by a Python loop for the bare folder), and
`torch.save` of a large state_dict. Every figure is printed as a ratio to a baseline with its target
and a pass/fail column, as a markdown table. Usage:

    .venv/bin/python scripts/bench_fs.py            # the full run
    .venv/bin/python scripts/bench_fs.py --quick    # a small smoke run (well under a minute)
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import importlib.metadata
import json
import math
import os
import platform
import resource
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from typing import Any, NamedTuple, TypeVar

from mldashfs.buffers import aligned
from mldashfs.store import Store

EXPERIMENT = "bench/fs/exp"
CACHE = Path.home() / ".cache" / "mldashfs-bench"
BLOCK = 1 << 20
DROP_CACHES = Path("/proc/sys/vm/drop_caches")


@dataclass(frozen=True)
class Settings:
    """The sizes of one run: `--quick` shrinks all of them."""

    size: int  # bytes of the sequential write/read file
    repeats: int  # rounds of the timed workloads; each contender's best round counts
    small_files: int  # files of the create + write(4 KiB) + close workload
    listings: tuple[int, int]  # files in the two folders listed with `ls -l`
    torch_bytes: int  # bytes of the torch.save state_dict
    ls_timeout: float  # seconds after which one `ls -l` is stopped and reported as stopped


FULL = Settings(size=1 << 30, repeats=5, small_files=2_000, listings=(10_000, 100_000), torch_bytes=500_000_000,
                ls_timeout=60.0)
QUICK = Settings(size=64 << 20, repeats=1, small_files=200, listings=(500, 5_000), torch_bytes=32_000_000, ls_timeout=30.0)


@dataclass
class Bench:
    """The places of one run: the bare folder, both mounts, and the store behind mldashfs."""

    bare: Path  # plain folder on the disk; also the folder passthroughfs mirrors
    passthrough: Path  # passthroughfs mounted over `bare`
    mount: Path  # mldashfs mounted on experiment EXPERIMENT of `store`
    store: Store
    work: Path  # the run's folder (the store and the mount points are in it)

    def store_path(self, *names: str) -> str:
        """The store path of mount/names..."""
        return "/".join([EXPERIMENT, *names])

    @contextlib.contextmanager
    def fresh_mount(self) -> Iterator[tuple[Path, int]]:
        """Another mldashfs mount of the same store, started now (the kernel knows none of its
        entries), as (mount point, daemon pid)."""
        mountpoint = Path(tempfile.mkdtemp(prefix="mnt-", dir=self.work))
        mountpoint.rmdir()
        with fuse_mount(mldashfs_command(self.work, mountpoint), mountpoint) as pid:
            yield mountpoint, pid
        mountpoint.rmdir()


def main() -> int:
    """Run every workload and print the markdown table; exit 0 even when a target is missed."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes: a smoke run")
    parser.add_argument("--dir", help="work folder on the disk to measure (default: a temp folder in /tmp)")
    parser.add_argument("--json", metavar="FILE", help="also write the raw figures to FILE")
    args = parser.parse_args()
    s = QUICK if args.quick else FULL
    script = passthrough_script()
    work = Path(tempfile.mkdtemp(prefix="mldashfs-benchfs-", dir=args.dir))
    started = time.monotonic()
    try:
        need = 4 * s.size + 3 * s.torch_bytes + (1 << 30)
        if shutil.disk_usage(work).free < need:
            raise SystemExit(f"bench_fs: need {need >> 20} MiB free in {work}")
        figures = run_all(work, s, script)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    figures["seconds"] = time.monotonic() - started
    print(report(figures, s))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0


def run_all(work: Path, s: Settings, script: Path) -> dict[str, Any]:
    """Mount passthroughfs and mldashfs side by side, then run each workload on all contenders."""
    (work / "bare").mkdir()
    with (
        fuse_mount([sys.executable, str(script), str(work / "bare"), str(work / "pt")], work / "pt"),
        fuse_mount(mldashfs_command(work, work / "mnt"), work / "mnt"),
        Store.open(work / "store") as store,
    ):
        b = Bench(bare=work / "bare", passthrough=work / "pt", mount=work / "mnt", store=store, work=work)
        figures: dict[str, Any] = {"cold_cache": cold_cache_method()}
        figures.update(bench_sequential(b, s))
        figures["small_files"] = bench_small_files(b, s)
        figures["listing"] = bench_listing(b, s)
        figures["torch_save"] = bench_torch_save(b, s)
    return figures


# ---- mounts -------------------------------------------------------------------------------


def passthrough_script() -> Path:
    """pyfuse3's example passthroughfs.py for the installed pyfuse3, taken from its sdist once."""
    version = importlib.metadata.version("pyfuse3")
    script = CACHE / f"pyfuse3-{version}" / "passthroughfs.py"
    if script.exists():
        return script
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run([sys.executable, "-m", "pip", "download", "-q", "--no-deps", "--no-binary", "pyfuse3",
                        f"pyfuse3=={version}", "-d", tmp], check=True)
        sdist = next(Path(tmp).glob("pyfuse3-*.tar.gz"))
        with tarfile.open(sdist) as tar:
            member = next(m for m in tar.getmembers() if m.name.endswith("/examples/passthroughfs.py"))
            source = tar.extractfile(member)
            assert source is not None
            data = source.read()
    script.parent.mkdir(parents=True, exist_ok=True)
    script.write_bytes(data)
    return script


def mldashfs_command(work: Path, mountpoint: Path) -> list[str]:
    """The command that mounts experiment EXPERIMENT of the run's store at `mountpoint` in the foreground."""
    return [sys.executable, "-m", "mldashfs.cli", "mount", "--create", "--foreground", "--store", str(work / "store"),
            "--experiment", EXPERIMENT, "--log-file", str(mountpoint.with_suffix(".log")), str(mountpoint)]


@contextlib.contextmanager
def fuse_mount(cmd: list[str], mountpoint: Path, timeout: float = 30.0) -> Iterator[int]:
    """Run a FUSE daemon in the foreground until `mountpoint` answers; always unmount and stop that pid.

    Each daemon gets a session of its own, as `mldashfs mount` gives its daemon (setsid): with the
    kernel's autogroup scheduling a daemon in the benchmark's session would share one CPU share
    with the process it serves.
    """
    mountpoint.mkdir()
    log = mountpoint.with_suffix(".out")
    with open(log, "wb") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True)
    try:
        deadline = time.monotonic() + timeout
        while not os.path.ismount(mountpoint):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise SystemExit(f"bench_fs: {' '.join(cmd)} did not mount:\n{log.read_text(errors='replace')}")
            time.sleep(0.05)
        yield proc.pid
    finally:
        for flags in (["-u"], ["-u", "-z"]):
            if os.path.ismount(mountpoint):
                subprocess.run(["fusermount3", *flags, str(mountpoint)], stderr=subprocess.DEVNULL, check=False)
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


# ---- measuring ----------------------------------------------------------------------------

M = TypeVar("M")  # one measurement: seconds, or a Listed


def timed(fn: Callable[[], Any]) -> float:
    """Wall-clock seconds of one call, started with no dirty pages left by the previous contender
    (otherwise the kernel's writeback throttling charges one contender for another's writes)."""
    os.sync()
    t = time.perf_counter()
    fn()
    return time.perf_counter() - t


def rotated(names: list[str], r: int) -> list[str]:
    """`names` in round `r`'s order: each round led by the next contender, so none always goes last."""
    return names[r % len(names):] + names[: r % len(names)]


def fastest(measure: dict[str, Callable[[], M]], rounds: int, seconds: Callable[[Any], float] = float,
            every: dict[str, list[M]] | None = None) -> dict[str, M]:
    """Each contender's fastest measurement of `rounds` rounds, each round led by the next contender:
    the VM's speed drifts from minute to minute, and whoever first touches memory others freed may
    pay several times over, so no contender may always go first or last, and more rounds than two
    let every contender meet a quiet moment. `every`, if given, gets every round's measurement."""
    out: dict[str, M] = {}
    for r in range(rounds):
        for name in rotated(list(measure), r):
            m = measure[name]()
            if every is not None:
                every.setdefault(name, []).append(m)
            if name not in out or seconds(m) < seconds(out[name]):
                out[name] = m
    return out


def wait_committed(store: Store, path: str, size: int, newer_than: int, timeout: float = 120.0) -> None:
    """Wait until `path` has a version newer than id `newer_than` of `size` bytes (FUSE release is async)."""
    deadline = time.monotonic() + timeout
    pause = 0.0005  # backs off to 5 ms so polling takes little CPU from the daemon
    while True:
        with contextlib.suppress(Exception):
            v = store.latest(path)
            if v.id > newer_than and v.size == size:
                return
        if time.monotonic() > deadline:
            raise SystemExit(f"bench_fs: {path} was not committed within {timeout}s")
        time.sleep(pause)
        pause = min(pause * 2, 0.005)


def newest_id(store: Store, path: str) -> int:
    """The id of path's newest version, 0 if it has none."""
    try:
        return store.latest(path).id
    except Exception:
        return 0


def write_file(path: Path, size: int, block: bytes, hashing: bool = False) -> None:
    """Write `size` bytes in 1 MiB blocks and close; with `hashing`, SHA-256 each block as it goes."""
    h = hashlib.sha256()
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    try:
        for _ in range(size // len(block)):
            if hashing:
                h.update(block)
            os.write(fd, block)
    finally:
        os.close(fd)


def read_file(path: Path) -> int:
    """Read the whole file in 1 MiB blocks into a page-aligned buffer, as cat, cp and dd do; the
    number of bytes read. (Into a bytearray, whose data may start 16 bytes past a page boundary, the
    kernel's copy runs at a fifth of its speed on this CPU, and more so for FUSE's 4 KiB pages.)"""
    buf = aligned(BLOCK)
    total = 0
    with open(path, "rb", buffering=0) as f:
        while n := f.readinto(buf):
            total += n
    return total


def cold_cache_method() -> str:
    """How caches are dropped: the kernel's drop_caches when this user may write it, else fadvise only."""
    return "drop_caches + fadvise" if os.access(DROP_CACHES, os.W_OK) else "fadvise(DONTNEED)"


def drop_cache(*files: Path | str) -> None:
    """Evict the files' pages (the FUSE side and the backing file) and, when allowed, all clean caches."""
    os.sync()
    for f in files:
        fd = os.open(f, os.O_RDONLY)
        try:
            os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
        finally:
            os.close(fd)
    if os.access(DROP_CACHES, os.W_OK):
        DROP_CACHES.write_text("3\n")


# ---- workloads ----------------------------------------------------------------------------


def bench_sequential(b: Bench, s: Settings) -> dict[str, Any]:
    """Sequential write (to close; mldashfs to commit), then cold and warm reads of what was written."""
    block = os.urandom(BLOCK)
    files = {"bare": b.bare / "seq-bare.bin", "hash_loop": b.bare / "seq-hash.bin",
             "passthrough": b.passthrough / "seq-pt.bin", "mldashfs": b.mount / "seq.bin"}

    def write_once(name: str) -> float:
        path = files[name]
        if path.exists():  # the previous round's file, freed just before this write
            path.unlink()
            if name == "mldashfs":
                b.store.gc()
        if name != "mldashfs":
            return timed(lambda: write_file(path, s.size, block, hashing=name == "hash_loop"))
        before = newest_id(b.store, b.store_path("seq.bin"))
        return timed(lambda: (write_file(path, s.size, block),
                              wait_committed(b.store, b.store_path("seq.bin"), s.size, before)))

    write = fastest({name: lambda n=name: write_once(n) for name in files}, s.repeats)
    os.sync()
    backing = {"bare": files["bare"], "passthrough": b.bare / "seq-pt.bin",
               "mldashfs": b.store.local_file(b.store.latest(b.store_path("seq.bin")))}

    def cold_once(name: str) -> float:
        back = backing[name]
        assert back is not None, "the store gave no local file for a committed version"
        drop_cache(files[name], back)
        return timed(lambda: read_file(files[name]))

    cold_rounds: dict[str, list[float]] = {}
    cold = fastest({name: lambda n=name: cold_once(n) for name in backing}, s.repeats, every=cold_rounds)
    warm = fastest({name: lambda n=name: timed(lambda: read_file(files[n])) for name in backing}, s.repeats)
    for path in files.values():
        path.unlink()
    b.store.gc()
    rate = {k: s.size / v for k, v in write.items()}
    return {"bytes": s.size, "write_bytes_per_s": rate,
            "cold_read_bytes_per_s": {k: s.size / v for k, v in cold.items()},
            "cold_read_rounds_bytes_per_s": {k: [s.size / t for t in v] for k, v in cold_rounds.items()},
            "warm_read_bytes_per_s": {k: s.size / v for k, v in warm.items()}}


def bench_small_files(b: Bench, s: Settings) -> dict[str, float]:
    """Files per second of create + write(4 KiB) + close, for mldashfs until all are committed; each
    contender's best of rounds that rotate who goes first (the VM's speed drifts from minute to minute)."""
    data = os.urandom(4096)
    dirs = {"bare": b.bare / "small-bare", "passthrough": b.passthrough / "small-pt", "mldashfs": b.mount / "small"}

    def fill(d: Path) -> None:
        d.mkdir()
        for i in range(s.small_files):
            with open(d / f"f{i:05d}.bin", "wb") as f:
                f.write(data)

    def settled() -> None:
        last = b.store_path("small", f"f{s.small_files - 1:05d}.bin")
        wait_committed(b.store, last, len(data), 0)
        deadline = time.monotonic() + 120
        while len(b.store.list(b.store_path("small"))) < s.small_files:
            if time.monotonic() > deadline:
                raise SystemExit("bench_fs: the small files were not all committed within 120 s")
            time.sleep(0.01)

    def fill_once(name: str) -> float:
        d = dirs[name]
        t = timed(lambda: (fill(d), name == "mldashfs" and settled()))
        shutil.rmtree(d)
        return t

    seconds = fastest({name: lambda n=name: fill_once(n) for name in dirs}, s.repeats)
    return {name: s.small_files / t for name, t in seconds.items()}


def bench_listing(b: Bench, s: Settings) -> dict[str, Any]:
    """Seconds of `ls -l` of folders of N files, each contender's best of rounds led in turn: the bare
    folder, and mldashfs each time on a mount started for that `ls -l` (cold: the kernel knows none of
    the entries, as after `mldashfs mount`). passthroughfs over the bare folder lists once, the smaller
    folder only: its readdir rereads the whole folder per call."""
    out: dict[str, Any] = {}
    for n in s.listings:
        bare = b.bare / f"ls-{n}"
        bare.mkdir()
        t_bare = timed(lambda bare=bare, n=n: [(bare / f"f{i:06d}.json").write_bytes(b"{}") for i in range(n)])
        with ThreadPoolExecutor(4) as pool:
            t_store = timed(lambda n=n: list(pool.map(
                lambda i, n=n: b.store.put_bytes(b.store_path(f"ls-{n}", f"f{i:06d}.json"), b"{}"), range(n))))
        def on_fresh_mount(n: int = n) -> Listed:
            with b.fresh_mount() as (mountpoint, pid):
                return ls_l(mountpoint / f"ls-{n}", n, s.ls_timeout, daemon=pid)

        best = fastest({"bare": lambda bare=bare, n=n: ls_l(bare, n, s.ls_timeout), "mldashfs": on_fresh_mount},
                       s.repeats, seconds=lambda listed: listed.seconds)
        out[str(n)] = {"fill_seconds": {"bare": t_bare, "store": t_store},
                       **{name: t.seconds for name, t in best.items()},
                       "cpu_seconds": {name: t.cpu for name, t in best.items()}}
        if n == s.listings[0]:
            out[str(n)]["passthrough"] = ls_l(b.passthrough / f"ls-{n}", n, s.ls_timeout).seconds
    return out


class Listed(NamedTuple):
    """One `ls -l`: wall-clock seconds, and CPU seconds of `ls` (user, kernel) and of the FUSE daemon."""

    seconds: float
    cpu: dict[str, float]


def ls_l(d: Path, n: int, timeout: float, daemon: int | None = None) -> Listed:
    """`ls -l d` (seconds inf if it ran past `timeout` and was stopped); it must list all n files.
    `daemon`: the pid of the FUSE daemon serving `d`, whose CPU time is counted too."""
    before, daemon_before = resource.getrusage(resource.RUSAGE_CHILDREN), cpu_seconds(daemon)
    t = time.perf_counter()
    try:
        done = subprocess.run(["ls", "-l", str(d)], check=True, env={**os.environ, "LC_ALL": "C"},
                              stdout=subprocess.PIPE, timeout=timeout)
    except subprocess.TimeoutExpired:
        return Listed(math.inf, {})
    seconds = time.perf_counter() - t
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    if done.stdout.count(b"\n") != n + 1:
        raise SystemExit(f"bench_fs: ls -l {d} did not list all {n:,} files")
    cpu = {"ls_user": after.ru_utime - before.ru_utime, "ls_kernel": after.ru_stime - before.ru_stime}
    if daemon is not None:
        cpu["daemon"] = cpu_seconds(daemon) - daemon_before
    return Listed(seconds, cpu)


def cpu_seconds(pid: int | None) -> float:
    """User + system CPU seconds of process `pid` so far (0 for None), from /proc/<pid>/stat."""
    if pid is None:
        return 0.0
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def bench_torch_save(b: Bench, s: Settings) -> dict[str, float]:
    """Seconds of torch.save of a state_dict into the bare folder and into the mount (to commit)."""
    import torch

    per = s.torch_bytes // 8 // 4
    state = {f"layer{i}.weight": torch.randn(per) for i in range(8)}

    def into_mount() -> float:
        before = newest_id(b.store, b.store_path("model.pt"))
        return timed(lambda: (torch.save(state, b.mount / "model.pt"),
                              wait_committed(b.store, b.store_path("model.pt"),
                                             (b.mount / "model.pt").stat().st_size, before)))

    best = fastest({"bare": lambda: timed(lambda: torch.save(state, b.bare / "model.pt")), "mldashfs": into_mount},
                   s.repeats)
    return {"bytes": sum(t.numel() * 4 for t in state.values()), **best}


# ---- the report ---------------------------------------------------------------------------


@dataclass(frozen=True)
class Row:
    """One line of the table: a figure of mldashfs against one baseline, and its target."""

    workload: str
    ours: str
    baseline: str
    theirs: str
    ratio: float | None  # None: an absolute target (shown in `ours`)
    target: str
    passed: bool | None  # None: no target, shown for context


def mbps(x: float) -> str:
    return f"{x / 1e6:,.0f} MB/s"


def secs(x: float) -> str:
    return f"{x:.2f} s" if math.isfinite(x) else "stopped (timeout)"


def report(f: dict[str, Any], s: Settings) -> str:
    """The markdown table: throughput ratios above 1 are faster than the baseline, time ratios below 1."""
    size = f"{f['bytes'] / (1 << 30):g} GiB" if f["bytes"] >= 1 << 30 else f"{f['bytes'] >> 20} MiB"
    w, c, h = f["write_bytes_per_s"], f["cold_read_bytes_per_s"], f["warm_read_bytes_per_s"]
    sm, ls, ts = f["small_files"], f["listing"], f["torch_save"]
    small, large = (str(n) for n in s.listings)
    lm, ll = ls[small]["mldashfs"], ls[large]["mldashfs"]
    rows = [
        Row(f"seq write {size}", mbps(w["mldashfs"]), "write+SHA-256 loop", mbps(w["hash_loop"]),
            w["mldashfs"] / w["hash_loop"], ">= 0.8x", w["mldashfs"] >= 0.8 * w["hash_loop"]),
        Row(f"seq write {size}", mbps(w["mldashfs"]), "passthroughfs", mbps(w["passthrough"]),
            w["mldashfs"] / w["passthrough"], ">= 1.0x", w["mldashfs"] >= w["passthrough"]),
        Row(f"seq write {size}", mbps(w["mldashfs"]), "bare disk", mbps(w["bare"]),
            w["mldashfs"] / w["bare"], "", None),
        Row(f"cold read {size}", mbps(c["mldashfs"]), "bare disk", mbps(c["bare"]),
            c["mldashfs"] / c["bare"], ">= 0.7x", c["mldashfs"] >= 0.7 * c["bare"]),
        Row(f"cold read {size}", mbps(c["mldashfs"]), "passthroughfs", mbps(c["passthrough"]),
            c["mldashfs"] / c["passthrough"], "", None),
        Row(f"warm re-read {size}", mbps(h["mldashfs"]), "bare disk", mbps(h["bare"]),
            h["mldashfs"] / h["bare"], ">= 0.5x", h["mldashfs"] >= 0.5 * h["bare"]),
        Row(f"{s.small_files:,} x create+4 KiB+close", f"{sm['mldashfs']:,.0f} files/s", "passthroughfs",
            f"{sm['passthrough']:,.0f} files/s", sm["mldashfs"] / sm["passthrough"], ">= 1.0x",
            sm["mldashfs"] >= sm["passthrough"]),
        Row(f"{s.small_files:,} x create+4 KiB+close", f"{sm['mldashfs']:,.0f} files/s", "bare disk",
            f"{sm['bare']:,.0f} files/s", sm["mldashfs"] / sm["bare"], ">= 0.3x (aim)",
            sm["mldashfs"] >= 0.3 * sm["bare"]),
        Row(f"ls -l {int(small):,} files (time)", secs(lm), "bare disk", secs(ls[small]["bare"]),
            lm / ls[small]["bare"], "<= 3x", lm <= 3 * ls[small]["bare"]),
        Row(f"ls -l {int(small):,} files (time)", secs(lm), "passthroughfs", secs(ls[small]["passthrough"]),
            lm / ls[small]["passthrough"], "", None),
        Row(f"ls -l {int(large):,} files (time)", secs(ll), "3 s", "", None, "< 3 s", ll < 3.0),
        Row(f"ls -l {int(large):,} files (time)", secs(ll), f"ls -l {int(small):,} (mldashfs)", secs(lm),
            ll / lm, "<= 10x", ll <= 10 * lm),
        Row(f"ls -l {int(large):,} files (time)", secs(ll), "bare disk", secs(ls[large]["bare"]),
            ll / ls[large]["bare"], "", None),
        Row(f"ls -l {int(large):,} files, bare disk (time)", secs(ls[large]["bare"]),
            f"ls -l {int(small):,} (bare disk)", secs(ls[small]["bare"]), ls[large]["bare"] / ls[small]["bare"],
            "", None),
        Row(f"torch.save {ts['bytes'] / 1e6:,.0f} MB (time)", secs(ts["mldashfs"]), "bare disk",
            secs(ts["bare"]), ts["mldashfs"] / ts["bare"], "<= 1.5x", ts["mldashfs"] <= 1.5 * ts["bare"]),
    ]
    head = ["workload", "mldashfs", "baseline", "baseline figure", "ratio", "target", "pass"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in rows:
        ratio = "" if r.ratio is None else f"{r.ratio:.2f}x" if math.isfinite(r.ratio) else "n/a"
        mark = "" if r.passed is None else ("pass" if r.passed else "**FAIL**")
        lines.append(f"| {r.workload} | {r.ours} | {r.baseline} | {r.theirs} | {ratio} | {r.target} | {mark} |")
    fills = ", ".join(f"{int(n):,} files: bare {v['fill_seconds']['bare']:.1f} s, Store {v['fill_seconds']['store']:.1f} s"
                      for n, v in ls.items())
    per_entry = "; ".join(
        f"{int(n):,} files: " + ", ".join(f"{who} {k.replace('_', ' ')} {sec / int(n) * 1e6:.1f} us"
                                          for who in ("bare", "mldashfs") for k, sec in v["cpu_seconds"][who].items())
        for n, v in ls.items())
    notes = [
        "",
        f"{'--quick' if s.listings == QUICK.listings else 'full'} run, {os.cpu_count()} cores, "
        f"load average {os.getloadavg()[0]:.1f}, {platform.release()}, pyfuse3 "
        f"{importlib.metadata.version('pyfuse3')}; total {f['seconds']:.0f} s. Cold cache: {f['cold_cache']}.",
        f"Every figure is each contender's best of {s.repeats} rounds, each round led by another contender; "
        f"`ls -l` of mldashfs each time on a mount just started (passthroughfs: once), stopped after "
        f"{s.ls_timeout:.0f} s. Filling the listing folders: {fills}.",
        f"CPU per listed entry in the fastest `ls -l` (at 100 ticks/s): {per_entry}.",
        "Cold reads, every round in order (MB/s): " + "; ".join(
            f"{who} " + ", ".join(f"{x / 1e6:,.0f}" for x in v) for who, v in f["cold_read_rounds_bytes_per_s"].items()) + ".",
        "Throughput ratios above 1x beat the baseline; time ratios (rows marked 'time') below 1x beat it.",
    ]
    return "\n".join(lines + notes)


if __name__ == "__main__":
    sys.exit(main())
