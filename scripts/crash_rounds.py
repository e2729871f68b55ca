#!/usr/bin/env python
"""Crash consistency, measured: SIGKILL the mount daemon (or an SDK training process) at random moments
under a mixed workload, then check that nothing whose close() or save returned was lost and that no
partial version is visible.

Mount rounds: a workload child writes through a real mount (writes of 100 B - 2 MiB, appends,
write-temp-then-rename, tag updates via setxattr, deletes) while the harness SIGKILLs the daemon at
a random moment, then the child; the dead mount is detached (`fusermount3 -u -z`) and the next round
mounts again. SDK rounds: a training child saves checkpoints with `exp.files("ckpt").save_blob(...)`
and `save_json(...)` and is SIGKILLed mid-save.

Each child records, in a ledger outside the mount (one JSON line per record, fsync'd), an `intent`
before every operation (with the SHA-256 of the bytes it is about to store, computed in the child),
a `closed` as soon as a close() or rename() returned, and a `done` after the operation returned (with
the version id and checksum read back from the `user.mldash.id` / `user.mldash.checksum` xattrs, or
the SDK's result dict), or a `failed` if it raised. After every round:

- every version whose close()/save returned (and whose path no returned delete or rename removed
  since) is in the store with its SHA-256, and its bytes, read back, hash to it (lost otherwise); one
  whose id could not be read back (the getxattr after close failed) must be in its path's history
  with that SHA-256;
- every visible version's bytes hash to its recorded checksum, and that checksum is one the workload
  meant to store (partial otherwise);
- tags set by a returned setxattr are on their version;
- `mldashfs fsck`, when the tree has it, is clean.

With `--remote` the store is `s3://` + MongoDB on the test servers (scripts/s3_test_server.py,
scripts/mongo_test_server.py, started here and stopped by pid), and every client reaches MongoDB through
a TCP proxy (scripts/tcp_proxy.py, also started and stopped by pid), and S3 through another. Rounds cycle
through four kinds of outage during the workload: none; S3 failing for a few seconds, by turns with 503
(the S3 server's fault switch) and gone (its proxy resets every connection and refuses new ones, then
relays again); MongoDB gone for a few seconds (the same through its proxy: the test servers keep their
data in memory, so they are made unreachable rather than restarted); and both. The kill falls during the MongoDB outage or after it, at random. An operation that returned an
error is recorded as failed and the workload goes on: like one cut short by a kill, it may or may not
have happened. After the checks on the writing machine's cache, `mldashfs sync` runs and a second store
opened as another machine (a fresh cache folder) checks that
every returned version is in S3 and MongoDB with the right bytes. Usage:

    python scripts/crash_rounds.py                 # 20 mount rounds + 10 SDK rounds, local store
    python scripts/crash_rounds.py --remote        # the same on a remote store
    python scripts/crash_rounds.py --quick         # 3 + 2 rounds, small files (the smoke test; with
                                                   # --remote one round of each outage kind)
"""

from __future__ import annotations

import argparse
import contextlib
import dataclasses
import errno
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
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "scripts"))  # script_servers.py beside this script

from script_servers import (  # noqa: E402
    TcpProxy,
    init_local_store,
    mongo_proxy,
    remote_servers,
    s3_proxy,
    script_env,
    wait_mounted,
)

EXPERIMENT = "crash/rounds/exp"
SDK_EXPERIMENT = "crash/rounds/train"
NAMES = [f"{d}/f{i}.bin" for d in ("a", "b/c") for i in range(6)]
CHUNK = 256 << 10
#: Errors of a mount whose daemon was killed: the workload stops (any other error is recorded and it goes on).
DAEMON_GONE = {errno.ENOTCONN, errno.ECONNABORTED}


@dataclass(frozen=True)
class Settings:
    rounds: int  # mount rounds
    sdk_rounds: int  # SDK rounds
    max_size: int  # largest write
    max_run: float  # longest workload before the kill, seconds
    mongo_down: tuple[float, float]  # shortest and longest MongoDB outage (--remote), seconds; longer than
    # the 3 s a MongoDB call waits for a server, so calls fail meanwhile


FULL = Settings(rounds=20, sdk_rounds=10, max_size=2 << 20, max_run=4.0, mongo_down=(3.5, 8.0))
QUICK = Settings(rounds=3, sdk_rounds=2, max_size=64 << 10, max_run=1.5, mongo_down=(3.5, 4.5))


def outages(n: int) -> tuple[str | None, bool]:
    """(how S3 fails: None, "503" or "gone"; MongoDB goes away) in round `n` of a remote run: none, S3,
    MongoDB, both, in turn. S3's two ways take turns, swapped every 8 rounds, so each meets each MongoDB
    state (--quick's two S3 rounds: 503 alone, gone with MongoDB)."""
    return ("gone" if (n // 2 + n // 8) % 2 else "503") if n % 2 == 1 else None, n % 4 >= 2


# ---- the workload children -------------------------------------------------------------------


class Ledger:
    """The child's record of what it did: JSON lines, each fsync'd before the next step."""

    def __init__(self, path: str) -> None:
        self.fd = os.open(path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)

    def add(self, **rec: Any) -> None:
        os.write(self.fd, (json.dumps({**rec, "t": round(time.time(), 3)}) + "\n").encode())
        os.fsync(self.fd)


def sha(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def sized(rng: random.Random, max_size: int) -> bytes:
    """Random bytes of a size log-uniform between 100 B and max_size."""
    return os.urandom(int(100 * (max_size / 100) ** rng.random()))


def keep_going(ledger: Ledger, step: Callable[[], None], errors: tuple[type[Exception], ...],
               fatal: Callable[[Exception], bool] = lambda e: False) -> None:
    """Run `step` until killed. An error it raises (of `errors`) is recorded as `failed`: the operation
    in flight may or may not have happened, as one a kill cut short. Then the next step runs, unless the
    error is `fatal` (the mount's daemon is gone)."""
    while True:
        try:
            step()
        except errors as e:
            if fatal(e):
                raise
            name = errno.errorcode.get(e.errno or 0, str(e.errno)) if isinstance(e, OSError) else type(e).__name__
            ledger.add(op="failed", error=name, message=str(e)[:300])
            time.sleep(0.05)


def mount_workload(root: Path, ledger: Ledger, rng: random.Random, max_size: int) -> None:
    """Mixed operations through the mount until killed (or the daemon died)."""

    def write(rel: str, data: bytes, mode: str = "wb") -> None:
        p = root / rel
        p.parent.mkdir(parents=True, exist_ok=True)
        with open(p, mode) as f:
            for i in range(0, len(data), CHUNK):
                f.write(data[i:i + CHUNK])

    def read_back_ids(rel: str) -> dict[str, str]:
        p = root / rel
        return {"id": os.getxattr(p, "user.mldash.id").decode(),
                "xattr_sha": os.getxattr(p, "user.mldash.checksum").decode()}

    def step() -> None:
        rel = rng.choice(NAMES)
        exists = (root / rel).exists()
        op = rng.choices(["write", "append", "rename", "tag", "delete"], [40, 15, 20, 15, 10])[0]
        if op in ("append", "tag", "delete") and not exists:
            op = "write"
        if op == "append" and (root / rel).stat().st_size > 2 * max_size:
            op = "write"
        if op == "write":
            data = sized(rng, max_size)
            ledger.add(op="intent", kind="write", path=rel, sha=sha(data))
            write(rel, data)
            ledger.add(op="closed", kind="write", path=rel, sha=sha(data))
            ledger.add(op="done", kind="write", path=rel, sha=sha(data), **read_back_ids(rel))
        elif op == "append":
            old = (root / rel).read_bytes()
            extra = sized(rng, max_size // 4)
            ledger.add(op="intent", kind="append", path=rel, sha=sha(old + extra))
            write(rel, extra, "ab")
            ledger.add(op="closed", kind="append", path=rel, sha=sha(old + extra))
            ledger.add(op="done", kind="append", path=rel, sha=sha(old + extra), **read_back_ids(rel))
        elif op == "rename":  # write-temp-then-rename, as torch.save to a temp name and os.replace do
            data = sized(rng, max_size)
            tmp = f"{rel.rsplit('/', 1)[0]}/.tmp-{rng.randrange(1 << 30):08x}"
            ledger.add(op="intent", kind="write", path=tmp, sha=sha(data))
            write(tmp, data)
            ledger.add(op="closed", kind="write", path=tmp, sha=sha(data))
            ledger.add(op="done", kind="write", path=tmp, sha=sha(data), **read_back_ids(tmp))
            ledger.add(op="intent", kind="rename", path=rel, src=tmp, sha=sha(data))
            os.rename(root / tmp, root / rel)
            ledger.add(op="closed", kind="rename", path=rel, src=tmp, sha=sha(data))
            ledger.add(op="done", kind="rename", path=rel, src=tmp, sha=sha(data), **read_back_ids(rel))
        elif op == "tag":
            tag = f"t{rng.randrange(1000)}"
            ledger.add(op="intent", kind="tag", path=rel, tags=[tag])
            os.setxattr(root / rel, "user.mldash.tags", tag.encode())
            ledger.add(op="done", kind="tag", path=rel, tags=[tag], id=os.getxattr(root / rel, "user.mldash.id").decode())
        else:
            ledger.add(op="intent", kind="delete", path=rel)
            os.unlink(root / rel)
            ledger.add(op="done", kind="delete", path=rel)

    keep_going(ledger, step, (OSError,), fatal=lambda e: isinstance(e, OSError) and e.errno in DAEMON_GONE)


def sdk_workload(ledger: Ledger, rng: random.Random, max_size: int, store: dict[str, str]) -> None:
    """A training loop saving checkpoints and JSON through the SDK until killed."""
    from ml_dash import Experiment
    from ml_dash.errors import StoreError

    with Experiment(prefix=SDK_EXPERIMENT, wait_uploads=False, **store).run as exp:  # type: ignore[arg-type]
        n = rng.randrange(1 << 20)

        def step() -> None:
            nonlocal n
            n += 1
            if rng.random() < 0.7:
                data, rel = sized(rng, max_size), f"ckpt/step{n % 8}.bin"
                ledger.add(op="intent", kind="write", path=rel, sha=sha(data))
                r = exp.files("ckpt").save_blob(data, to=f"step{n % 8}.bin")
            else:
                obj = {"step": n, "loss": rng.random(), "pad": "x" * rng.randrange(100, 20_000)}
                data, rel = json.dumps(obj, indent=2).encode(), f"ckpt/state{n % 3}.json"
                ledger.add(op="intent", kind="write", path=rel, sha=sha(data))
                r = exp.files("ckpt").save_json(obj, to=f"state{n % 3}.json")
            ledger.add(op="done", kind="write", path=rel, sha=sha(data), id=r["id"], xattr_sha=r["checksum"])

        keep_going(ledger, step, (StoreError, OSError))


def child_main(args: argparse.Namespace) -> int:
    ledger, rng = Ledger(args.ledger), random.Random(args.seed)
    try:
        if args.workload == "mount":
            mount_workload(Path(args.target), ledger, rng, args.max_size)
        else:
            sdk_workload(ledger, rng, args.max_size, json.loads(args.target))
    except OSError as e:  # the daemon was killed: ENOTCONN, ECONNABORTED
        print(f"workload stopped: {e}", file=sys.stderr)
        return 3
    return 0


# ---- checking ---------------------------------------------------------------------------------


@dataclass
class Model:
    """What the ledger says must be in the store, replayed from the top after each round."""

    expected: dict[int, tuple[str, str]] = field(default_factory=dict)  # id -> (store path, sha256)
    # (store path, sha256) of versions whose close()/rename() returned but whose id could not be read back
    unidentified: list[tuple[str, str]] = field(default_factory=list)
    tags: dict[int, list[str]] = field(default_factory=dict)  # id -> tags of the last returned setxattr
    intended: set[str] = field(default_factory=set)  # every sha256 the workload meant to store
    uncertain: int = 0  # versions an operation cut short by a kill or an error may have removed
    xattr_mismatch: list[str] = field(default_factory=list)  # close() returned but the xattr checksum differed


def read_ledger(ledger: Path) -> list[dict[str, Any]]:
    """The ledger's records, less one a kill cut short while it was being written (it never counted:
    its operation had not started, or had returned without the record saying so)."""
    out = []
    for line in ledger.read_text().splitlines():
        with contextlib.suppress(json.JSONDecodeError):
            out.append(json.loads(line))
    return out


def start_round(ledger: Path, n: int, kind: str) -> None:
    """Append round `n`'s marker on a line of its own (the last child's last record may lack its newline)."""
    with open(ledger, "ab+") as f:
        end = f.seek(0, os.SEEK_END)
        torn = end > 0 and os.pread(f.fileno(), 1, end - 1) != b"\n"
        f.write((b"\n" if torn else b"") + json.dumps({"op": "round", "n": n, "kind": kind}).encode() + b"\n")


def replay(records: list[dict[str, Any]], experiment: str) -> Model:
    m = Model()
    pending: dict[str, Any] | None = None

    def drop(paths: set[str]) -> int:
        """Forget what is expected at `paths` (deleted or renamed away); returns how many versions."""
        ids = [i for i, (p, _) in m.expected.items() if p in paths]
        for i in ids:
            del m.expected[i]
            m.tags.pop(i, None)
        left = [u for u in m.unidentified if u[0] not in paths]
        n, m.unidentified[:] = len(ids) + len(m.unidentified) - len(left), left
        return n

    def in_flight(rec: dict[str, Any]) -> None:  # an intent whose operation a kill or an error cut short
        gone = {"delete": {rec["path"]}, "rename": {rec.get("src")}}.get(rec["kind"], set())
        if rec["kind"] == "tag":
            for i in [i for i, (p, _) in m.expected.items() if p == f"{experiment}/{rec['path']}"]:
                m.tags.pop(i, None)
        m.uncertain += drop({f"{experiment}/{g}" for g in gone if g})

    for rec in records:
        if rec["op"] in ("round", "failed"):  # a kill or an error cut the pending operation short
            if pending is not None:
                in_flight(pending)
            pending = None
            continue
        path = f"{experiment}/{rec['path']}"
        if rec["op"] == "intent":
            if pending is not None:
                in_flight(pending)
            pending = rec
            if "sha" in rec:
                m.intended.add(rec["sha"])
            continue
        pending = None
        kind = rec["kind"]
        if rec["op"] == "closed":  # returned: its version must stay, whether or not its id is read back
            if kind == "rename":
                drop({f"{experiment}/{rec['src']}"})
            m.unidentified.append((path, rec["sha"]))
            continue
        if kind == "delete":
            drop({path})
        if kind in ("write", "append", "rename"):  # the id read back after `closed` (the SDK's save has it)
            if (path, rec["sha"]) in m.unidentified:
                m.unidentified.remove((path, rec["sha"]))
            m.expected[int(rec["id"])] = (path, rec["sha"])
            if rec["xattr_sha"] != rec["sha"]:
                m.xattr_mismatch.append(f"{path} id {rec['id']}: xattr {rec['xattr_sha']} != {rec['sha']}")
        if kind == "tag":
            m.tags[int(rec["id"])] = rec["tags"]
    if pending is not None:
        in_flight(pending)
    return m


@dataclass
class Checked:
    versions: int = 0  # returned versions checked
    lost: list[str] = field(default_factory=list)
    visible: int = 0  # visible versions checked
    partial: list[str] = field(default_factory=list)
    tags_wrong: list[str] = field(default_factory=list)
    bytes_hashed: int = 0


def hash_version(store: Any, v: Any) -> tuple[str, int]:
    h, n = hashlib.sha256(), 0
    with store.open_version(v) as f:
        while chunk := f.read(1 << 20):
            h.update(chunk)
            n += len(chunk)
    return h.hexdigest(), n


def check_store(store: Any, m: Model, experiments: list[str], hashed: set[int], everything: bool) -> Checked:
    """The checks of one round on one store. `hashed`: ids whose bytes an earlier round already read
    back (versions never change: they are read again only when `everything`)."""
    from mldashfs.errors import NotFound

    c = Checked()
    for vid, (path, digest) in m.expected.items():
        c.versions += 1
        try:
            v = store.get_version(vid)
        except NotFound:
            c.lost.append(f"{path} id {vid}: not found")
            continue
        if v.sha256 != digest or v.path != path:
            c.lost.append(f"{path} id {vid}: catalog has {v.path} {v.sha256}, expected {digest}")
            continue
        if vid not in hashed or everything:
            got, n = hash_version(store, v)
            c.bytes_hashed += n
            if got != digest:
                c.lost.append(f"{path} id {vid}: bytes hash to {got}, expected {digest}")
                continue
            hashed.add(vid)
        want_tags = m.tags.get(vid)
        if want_tags is not None and list(v.tags) != want_tags:
            c.tags_wrong.append(f"{path} id {vid}: tags {list(v.tags)}, expected {want_tags}")
    for path, digest in m.unidentified:  # its bytes are hashed below, as a visible version
        c.versions += 1
        try:
            found = any(v.sha256 == digest for v in store.history(path))
        except NotFound:
            found = False
        if not found:
            c.lost.append(f"{path}: no version has {digest} (its close/rename returned; its id was not read back)")
    for exp in experiments:
        for latest in store.list(exp):
            for v in store.history(latest.path):
                c.visible += 1
                if v.id in hashed and not everything:
                    continue
                got, n = hash_version(store, v)
                c.bytes_hashed += n
                if got != v.sha256 or n != v.size:
                    c.partial.append(f"{v.path} id {v.id}: {n} bytes hashing to {got}, catalog says "
                                     f"{v.size} bytes {v.sha256}")
                elif v.sha256 not in m.intended:
                    c.partial.append(f"{v.path} id {v.id}: content {v.sha256} ({v.size} bytes) the workload never wrote")
                else:
                    hashed.add(v.id)
    return c


# ---- processes --------------------------------------------------------------------------------


def stop(proc: subprocess.Popen[Any], sig: int = signal.SIGTERM, timeout: float = 20.0) -> None:
    """Stop the process this script started (by its pid): `sig`, then SIGKILL after `timeout`."""
    if proc.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.kill(proc.pid, sig)
        try:
            proc.wait(timeout)
        except subprocess.TimeoutExpired:
            os.kill(proc.pid, signal.SIGKILL)
            proc.wait()


def mounted(mountpoint: Path) -> bool:
    """Whether `mountpoint` is in the mount table: a dead FUSE mount fails os.path.ismount's lstat."""
    target = os.path.abspath(mountpoint)
    with open("/proc/self/mountinfo") as table:
        return any(line.split()[4].replace("\\040", " ") == target for line in table)


def detach(mountpoint: Path) -> None:
    """Unmount `mountpoint`, lazily if it is busy or its daemon is dead, and wait until it is gone."""
    for flags in (["-u"], ["-u", "-z"]):
        if mounted(mountpoint):
            subprocess.run(["fusermount3", *flags, str(mountpoint)], stderr=subprocess.DEVNULL, check=False)
    deadline = time.monotonic() + 10
    while mounted(mountpoint) and time.monotonic() < deadline:
        time.sleep(0.05)
    if mounted(mountpoint):
        raise SystemExit(f"crash_rounds: could not unmount {mountpoint}")


@contextlib.contextmanager
def daemon(cli: list[str], mountpoint: Path, log: Path, env: dict[str, str]) -> Iterator[subprocess.Popen[bytes]]:
    """`mldashfs mount --foreground` of EXPERIMENT; yields once it answers; always detached and stopped."""
    mountpoint.mkdir(exist_ok=True)
    cmd = [sys.executable, "-m", "mldashfs.cli", "mount", "--foreground", "--create", *cli,
           "--experiment", EXPERIMENT, "--log-file", str(log), str(mountpoint)]
    with open(log.with_suffix(".out"), "ab") as out:
        proc = subprocess.Popen(cmd, stdout=out, stderr=subprocess.STDOUT, start_new_session=True, env=env)
    try:
        wait_mounted(proc, mountpoint, log.with_suffix(".out"), "crash_rounds")
        yield proc
    finally:
        detach(mountpoint)
        stop(proc)
        detach(mountpoint)


@dataclass
class Run:
    """The places and servers of one run."""

    work: Path
    ledger: Path
    cli: list[str]  # --store and the remote options, as `mldashfs` takes them
    env: dict[str, str]
    s3: Any = None  # tests.servers.s3.S3Server in --remote
    proxy: TcpProxy | None = None  # between every client and MongoDB, in --remote
    s3_proxy: TcpProxy | None = None  # between every client and the S3 server, in --remote
    open_options: dict[str, Any] = field(default_factory=dict)
    sdk_store: dict[str, str] = field(default_factory=dict)
    location: str = ""

    def open(self, machine: str = "a", **kw: Any) -> Any:
        from mldashfs.store import Store

        if self.s3 is None:
            return Store.open(self.location, create=False)
        return Store.open(self.location, cache_dir=str(self.work / "caches" / machine), metadata_ttl=0.0,
                          **self.open_options, **kw)


def fsck_available(env: dict[str, str]) -> bool:
    done = subprocess.run([sys.executable, "-m", "mldashfs.cli", "fsck", "--help"], capture_output=True, env=env)
    return done.returncode == 0


def run_fsck(r: Run) -> tuple[bool, str]:
    done = subprocess.run([sys.executable, "-m", "mldashfs.cli", "fsck", *r.cli], capture_output=True, text=True,
                          env=r.env, timeout=600)
    return done.returncode == 0, (done.stdout + done.stderr)[-2000:]


def one_round(r: Run, n: int, kind: str, rng: random.Random, s: Settings) -> dict[str, Any]:
    """Start the workload, kill at a random moment, detach; returns what happened."""
    start_round(r.ledger, n, kind)
    child_log = r.work / f"child-{n}.err"
    wait = rng.uniform(0.2 if kind == "mount" else 0.5, s.max_run)
    s3_mode, mongo_fault = outages(n) if r.proxy is not None else (None, False)
    s3_fault = s3_mode is not None
    info: dict[str, Any] = {"round": n, "kind": kind, "s3_fault": s3_fault, "s3_mode": s3_mode,
                            "mongo_fault": mongo_fault}
    s3_back: list[threading.Timer] = []  # brings S3 back after its outage ("gone")

    def child(target: str) -> subprocess.Popen[bytes]:
        with open(child_log, "wb") as err:
            return subprocess.Popen([sys.executable, __file__, "--child", kind, "--target", target,
                                     "--ledger", str(r.ledger), "--seed", str(rng.randrange(1 << 30)),
                                     "--max-size", str(s.max_size)], stderr=err, env=r.env)

    def kill_at_random(victim: subprocess.Popen[bytes], worker: subprocess.Popen[bytes]) -> None:
        started = r.ledger.stat().st_size  # the clock starts at the workload's first record, not at its imports
        deadline = time.monotonic() + 60
        while r.ledger.stat().st_size == started and worker.poll() is None and time.monotonic() < deadline:
            time.sleep(0.01)
        t0 = time.monotonic()

        def until(t: float) -> None:
            while time.monotonic() - t0 < t and worker.poll() is None:
                time.sleep(0.01)

        kill_at, back_at = wait, 0.0
        if s3_fault or mongo_fault:
            until(wait / 3)
        if s3_mode == "503":
            r.s3.fault(503, seconds=rng.uniform(2, 6))
        elif s3_mode == "gone":
            assert r.s3_proxy is not None
            info["s3_connections_reset"] = r.s3_proxy.down()
            s3_back.append(threading.Timer(rng.uniform(2, 6), r.s3_proxy.up))
            s3_back[0].start()
        if mongo_fault:
            assert r.proxy is not None
            down_for = rng.uniform(*s.mongo_down)
            back_at = wait / 3 + down_for
            kill_at = wait / 3 + rng.uniform(down_for / 2, down_for + 2)  # during the outage or after it
            info.update(mongo_down_s=round(down_for, 2), killed_while_mongo_down=kill_at < back_at,
                        mongo_connections_reset=r.proxy.down(), mongo_down_at=time.time())
            until(min(back_at, kill_at))
            if back_at <= kill_at:
                r.proxy.up()
                info["mongo_up_at"] = time.time()
        until(kill_at)
        info["killed_after_s"] = round(kill_at, 2)  # from the workload's first ledger record
        if worker.poll() is not None:
            info["workload_error"] = child_log.read_text(errors="replace")[-2000:]
        os.kill(victim.pid, signal.SIGKILL)
        victim.wait()

    if kind == "mount":
        mnt = r.work / "mnt"
        with daemon(r.cli, mnt, r.work / "mount.log", r.env) as d:
            worker = child(str(mnt))
            try:
                kill_at_random(d, worker)
                time.sleep(0.2)
            finally:
                stop(worker, signal.SIGKILL)
    else:
        worker = child(json.dumps(r.sdk_store))
        try:
            kill_at_random(worker, worker)
        finally:
            stop(worker, signal.SIGKILL)
    for timer in s3_back:
        timer.cancel()
    if r.proxy is not None and r.s3_proxy is not None:
        r.s3_proxy.up()  # S3 and MongoDB are back before the checks, also when the kill came during an outage
        r.proxy.up()
        if mongo_fault:
            info.setdefault("mongo_up_at", time.time())
    return info


def sync(r: Run) -> tuple[bool, float]:
    t = time.monotonic()
    done = subprocess.run([sys.executable, "-m", "mldashfs.cli", "sync", "--timeout", "300", *r.cli],
                          capture_output=True, text=True, env=r.env)
    if done.returncode != 0:
        print(f"  sync failed: {done.stdout}{done.stderr}", file=sys.stderr)
    return done.returncode == 0, time.monotonic() - t


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="3 mount + 2 SDK rounds, small files")
    parser.add_argument("--rounds", type=int, help="mount rounds (default 20)")
    parser.add_argument("--sdk-rounds", type=int, help="SDK rounds (default 10)")
    parser.add_argument("--remote", action="store_true", help="a remote store on the S3 and MongoDB test servers")
    parser.add_argument("--seed", type=int, default=None)
    parser.add_argument("--dir", help="work folder (default: a temp folder in /tmp)")
    parser.add_argument("--json", metavar="FILE", help="also write the figures to FILE")
    parser.add_argument("--child", choices=["mount", "sdk"], help=argparse.SUPPRESS)
    parser.add_argument("--workload", help=argparse.SUPPRESS)
    parser.add_argument("--target", help=argparse.SUPPRESS)
    parser.add_argument("--ledger", help=argparse.SUPPRESS)
    parser.add_argument("--max-size", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        args.workload = args.child
        return child_main(args)
    base = QUICK if args.quick else FULL
    s = dataclasses.replace(base, rounds=args.rounds if args.rounds is not None else base.rounds,
                            sdk_rounds=args.sdk_rounds if args.sdk_rounds is not None else base.sdk_rounds)
    seed = args.seed if args.seed is not None else random.randrange(1 << 30)
    work = Path(tempfile.mkdtemp(prefix="mldashfs-crash-", dir=args.dir))
    started = time.monotonic()
    try:
        with servers(args.remote, work) as r:
            figures = run_rounds(r, s, seed)
    finally:
        import shutil

        shutil.rmtree(work, ignore_errors=True)
    figures.update(seed=seed, seconds=round(time.monotonic() - started), remote=args.remote)
    print(report(figures))
    if args.json:
        Path(args.json).write_text(json.dumps(figures, indent=2))
    return 0 if figures["lost"] == 0 and figures["partial"] == 0 else 1


@contextlib.contextmanager
def servers(remote: bool, work: Path) -> Iterator[Run]:
    """The run's store: a folder, or (remote) a bucket and database on test servers started here."""
    env = script_env()
    if not remote:
        store = init_local_store(work, env)
        yield Run(work=work, ledger=work / "ledger.jsonl", cli=["--store", str(store)], env=env,
                  location=str(store), sdk_store={"local_path": str(store)})
        return
    with remote_servers(env, "crash") as (s3, mongo_uri), mongo_proxy(f"{mongo_uri}crashrounds") as (proxy, uri), \
            s3_proxy(s3.endpoint) as (to_s3, endpoint):
        location = "s3://crash/team"
        cache = work / "caches" / "a"
        env["AWS_ENDPOINT_URL"] = endpoint
        yield Run(work=work, ledger=work / "ledger.jsonl", env=env, s3=s3, proxy=proxy, s3_proxy=to_s3,
                  location=location,
                  cli=["--store", location, "--mongo", uri, "--cache-dir", str(cache), "--s3-endpoint", endpoint],
                  open_options={"mongo": uri, "s3_endpoint": endpoint},
                  sdk_store={"store": location, "mongo": uri, "cache_dir": str(cache)})


def run_rounds(r: Run, s: Settings, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    has_fsck = fsck_available(r.env)
    rounds: list[dict[str, Any]] = []
    hashed: dict[str, set[int]] = {"a": set(), "b": set()}
    totals: dict[str, Any] = {"versions_checked": 0, "visible_checked": 0, "lost": 0, "partial": 0, "tags_wrong": 0,
              "xattr_mismatch": 0, "fsck_runs": 0, "fsck_unclean": 0, "workload_errors": 0, "bytes_hashed": 0,
              "uncertain": 0, "sync_failed": 0, "s3_outage_rounds": 0, "s3_gone_rounds": 0, "mongo_outage_rounds": 0,
              "both_outage_rounds": 0, "killed_while_mongo_down": 0, "returned_while_mongo_down": 0}
    op_errors: dict[str, Counter[str]] = {k: Counter() for k in ("none", "s3", "mongo", "both")}
    totals["slowest_op_s"] = dict.fromkeys(op_errors, 0.0)
    evidence: list[str] = []
    plan = ["mount"] * s.rounds + ["sdk"] * s.sdk_rounds
    for n, kind in enumerate(plan):
        last = n == len(plan) - 1
        info = one_round(r, n, kind, rng, s)
        if r.s3 is not None:
            r.s3.clear_faults()
        outage = {(False, False): "none", (True, False): "s3", (False, True): "mongo", (True, True): "both"}[
            (info["s3_fault"], info["mongo_fault"])]
        totals["s3_outage_rounds"] += info["s3_fault"]
        totals["s3_gone_rounds"] += info["s3_mode"] == "gone"
        totals["mongo_outage_rounds"] += info["mongo_fault"]
        totals["both_outage_rounds"] += outage == "both"
        totals["killed_while_mongo_down"] += info.get("killed_while_mongo_down", False)
        records = round_records(r.ledger, n)
        failed = [x for x in records if x["op"] == "failed"]
        info["op_errors"] = dict(Counter(f["error"] for f in failed))
        info["slowest_op_s"] = slowest(records)
        totals["slowest_op_s"][outage] = max(totals["slowest_op_s"][outage], info["slowest_op_s"])
        if info["mongo_fault"]:  # versions whose close/save returned while MongoDB was unreachable
            returned = "closed" if kind == "mount" else "done"  # the SDK's save returns its id at once
            info["returned_while_mongo_down"] = sum(
                x["op"] == returned and info["mongo_down_at"] <= x["t"] <= info["mongo_up_at"] for x in records)
            totals["returned_while_mongo_down"] += info["returned_while_mongo_down"]
        op_errors[outage].update(info["op_errors"])
        if not info["mongo_fault"]:  # only a MongoDB outage should make an operation fail
            evidence += [f"round {n} ({kind}, outage: {outage}): an operation failed: {f['error']} {f['message']}"
                         for f in failed]
        if "workload_error" in info:
            totals["workload_errors"] += 1
            evidence.append(f"round {n}: the workload failed before the kill: {info['workload_error']}")
        model = replay_both(r.ledger)
        info["returned_versions"] = len(model.expected) + len(model.unidentified)
        totals["uncertain"] = model.uncertain
        totals["xattr_mismatch"] = len(model.xattr_mismatch)
        checks = []
        with r.open("a") as store:
            checks.append(("a", check_store(store, model, [EXPERIMENT, SDK_EXPERIMENT], hashed["a"], last)))
        if r.s3 is not None:
            ok, secs = sync(r)
            info["sync_seconds"] = round(secs, 1)
            if not ok:
                totals["sync_failed"] += 1
            with r.open(f"b{n}") as other:  # another machine, with a cache of its own
                checks.append(("b", check_store(other, model, [EXPERIMENT, SDK_EXPERIMENT], hashed["b"], last)))
        for machine, c in checks:
            totals["versions_checked"] += c.versions
            totals["visible_checked"] += c.visible
            totals["lost"] += len(c.lost)
            totals["partial"] += len(c.partial)
            totals["tags_wrong"] += len(c.tags_wrong)
            totals["bytes_hashed"] += c.bytes_hashed
            evidence += [f"round {n} ({kind}, machine {machine}): lost {x}" for x in c.lost]
            evidence += [f"round {n} ({kind}, machine {machine}): partial {x}" for x in c.partial]
            evidence += [f"round {n} ({kind}, machine {machine}): {x}" for x in c.tags_wrong]
            info[f"lost_{machine}"], info[f"partial_{machine}"] = len(c.lost), len(c.partial)
        if has_fsck:
            clean, out = run_fsck(r)
            totals["fsck_runs"] += 1
            if not clean:
                totals["fsck_unclean"] += 1
                evidence.append(f"round {n}: fsck not clean: {out}")
        rounds.append(info)
        down = f" (MongoDB down {info['mongo_down_s']} s)" if info["mongo_fault"] else ""
        print(f"round {n:2d} {kind:5s} killed after {info['killed_after_s']:.2f} s"
              f"{' (S3 ' + info['s3_mode'] + ')' if info['s3_fault'] else ''}{down}: "
              f"{info['returned_versions']} returned versions, "
              f"{len(failed)} failed operations, "
              + ", ".join(f"{m}: lost {len(c.lost)} partial {len(c.partial)}" for m, c in checks), file=sys.stderr)
    model = replay_both(r.ledger)
    evidence += model.xattr_mismatch
    return {**totals, "rounds": len(plan), "mount_rounds": s.rounds, "sdk_rounds": s.sdk_rounds,
            "op_errors": {k: dict(v) for k, v in op_errors.items()},
            "distinct_versions": len(model.expected) + len(model.unidentified), "unidentified": len(model.unidentified),
            "fsck": has_fsck, "per_round": rounds, "evidence": evidence}


def slowest(records: list[dict[str, Any]]) -> float:
    """The longest the workload went between two of its ledger records, seconds: its slowest step (a
    call that returned or failed; the one the kill cut short is not counted)."""
    times = [rec["t"] for rec in records]
    return round(max((b - a for a, b in zip(times, times[1:], strict=False)), default=0.0), 2)


def round_records(ledger: Path, n: int) -> list[dict[str, Any]]:
    """The ledger records of round `n`."""
    out, current = [], -1
    for rec in read_ledger(ledger):
        if rec["op"] == "round":
            current = rec["n"]
        elif current == n:
            out.append(rec)
    return out


def replay_both(ledger: Path) -> Model:
    """The ledger of both workloads: mount rounds write under EXPERIMENT, SDK rounds under SDK_EXPERIMENT."""
    parts: dict[str, list[dict[str, Any]]] = {"mount": [], "sdk": []}
    kind = "mount"
    for rec in read_ledger(ledger):
        if rec["op"] == "round":
            kind = rec["kind"]
        parts[kind].append(rec)
    merged = Model()
    for kind, exp in (("mount", EXPERIMENT), ("sdk", SDK_EXPERIMENT)):
        m = replay(parts[kind], exp)
        merged.expected.update(m.expected)
        merged.unidentified += m.unidentified
        merged.tags.update(m.tags)
        merged.intended |= m.intended
        merged.uncertain += m.uncertain
        merged.xattr_mismatch += m.xattr_mismatch
    return merged


def report(f: dict[str, Any]) -> str:
    rows = [
        ("rounds", f"{f['rounds']} ({f['mount_rounds']} mount daemon SIGKILLs, {f['sdk_rounds']} SDK process SIGKILLs)"),
        ("store", "remote (S3 + MongoDB test servers)" if f["remote"] else "local folder"),
        ("versions checked", f"{f['versions_checked']:,} checks of {f['distinct_versions']:,} returned versions"),
        ("visible versions checked", f"{f['visible_checked']:,}"),
        ("versions lost", f"{f['lost']} (must be 0)"),
        ("partial versions seen", f"{f['partial']} (must be 0)"),
        ("tags lost", f"{f['tags_wrong']}"),
        ("xattr checksum != written", f"{f['xattr_mismatch']}"),
        ("versions a delete/rename cut short (kill or error) may remove", f"{f['uncertain']} (not counted)"),
        ("workload errors before a kill", f"{f['workload_errors']}"),
        ("fsck", f"{f['fsck_unclean']} unclean of {f['fsck_runs']} runs" if f["fsck"]
         else "not available in this tree (`mldashfs fsck` missing)"),
        ("bytes read back and hashed", f"{f['bytes_hashed'] / 1e6:,.0f} MB"),
        ("seconds", f"{f['seconds']} (seed {f['seed']})"),
    ]
    if f["remote"]:
        rows.insert(6, ("failed syncs", str(f["sync_failed"])))
        rows.insert(2, ("outages during the workload",
                        f"S3 failing in {f['s3_outage_rounds']} rounds (unreachable in {f['s3_gone_rounds']}, "
                        f"503s in the others), MongoDB unreachable in "
                        f"{f['mongo_outage_rounds']} ({f['killed_while_mongo_down']} killed while it was), "
                        f"both in {f['both_outage_rounds']}"))
        rows.insert(4, ("versions returned while MongoDB was unreachable", f"{f['returned_while_mongo_down']:,}"))
        rows.insert(5, ("of the returned versions, checked by path and checksum (their id could not be read back)",
                        f"{f['unidentified']:,}"))
        rows.insert(-3, ("slowest step of the workload (a call returned or failed), by outage", "; ".join(
            f"{k}: {v:.2f} s" for k, v in f["slowest_op_s"].items())))
        rows.insert(-3, ("operations that returned an error, by outage", "; ".join(
            f"{k}: {sum(v.values())}" + (f" ({', '.join(f'{e} {c}' for e, c in sorted(v.items()))})" if v else "")
            for k, v in f["op_errors"].items())))
    else:
        rows.insert(-3, ("operations that returned an error", str(sum(sum(v.values()) for v in f["op_errors"].values()))))
    lines = ["| figure | value |", "|---|---|"] + [f"| {k} | {v} |" for k, v in rows]
    lines += [f"- {e}" for e in f["evidence"][:50]]
    return "\n".join(lines)


if __name__ == "__main__":
    sys.exit(main())
