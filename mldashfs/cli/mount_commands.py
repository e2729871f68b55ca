"""`mldashfs mount` and `mldashfs umount`, plus the mount(8) helper form `mldashfs SOURCE DIR -o OPTS`.

`mount` checks everything it can first and prints one line when the mount cannot work. By default
it forks a daemon and returns only once the mount answers; `--foreground` serves in this process.
The daemon records its pid in a run file per mount point, so `umount` can wait for it to finish
its pending commits after `fusermount3 -u`.
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import logging.handlers
import os
import subprocess
import sys
import tempfile
import time
from typing import Any

from ..errors import StoreError
from ..paths import check_experiment

LEVELS = ("debug", "info", "warning", "error")
#: The default log file (see `default_log_file`) rolls over at this size, keeping LOG_BACKUPS old ones.
LOG_BYTES = 10 << 20
LOG_BACKUPS = 3
#: mount(8) options that mean nothing to mldashfs and are dropped.
IGNORED = {"rw", "defaults", "auto", "noauto", "dev", "nodev", "suid", "nosuid", "exec", "noexec",
           "async", "atime", "noatime", "relatime", "user", "users", "nofail", "_netdev"}


def register(sub: Any, common: argparse.ArgumentParser) -> None:
    """Add `mount` and `umount` to the `mldashfs` subparsers; `common` carries --store."""
    p = sub.add_parser("mount", parents=[common], help="mount the store (or one experiment) as a directory tree")
    p.add_argument("mountpoint", metavar="MOUNTPOINT")
    p.add_argument("--experiment", metavar="NS/PROJECT/EXP", help="show only this experiment at the mount root")
    p.add_argument("-f", "--foreground", action="store_true", help="serve in this process (default: background)")
    p.add_argument("--log-file", metavar="F", help="write the daemon's log here (default: stderr in the foreground, "
                   "STORE/.mldashfs/logs/mount-PID.log in the background)")
    p.add_argument("--log-level", choices=LEVELS, default="info")
    p.add_argument("--allow-other", action="store_true", help="let other users see the mount (fuse allow_other)")
    p.add_argument("--read-only", action="store_true", help="refuse every change through the mount (EROFS)")
    p.add_argument("--no-passthrough", action="store_true",
                   help="serve every read through the daemon (default: the kernel reads blobs itself, as root)")
    p.add_argument("--create", action="store_true", help="make the store if --store names none")
    p.set_defaults(func=cmd_mount)
    u = sub.add_parser("umount", help="finish pending writes, then unmount")
    u.add_argument("mountpoint", metavar="MOUNTPOINT")
    u.add_argument("--timeout", type=float, default=None,
                   help="seconds to wait for the daemon to finish (default: until its uploads are done)")
    u.add_argument("--no-wait", action="store_true",
                   help="return once unmounted; the daemon finishes pending uploads in the background")
    u.set_defaults(func=cmd_umount)


def helper_argv(argv: list[str]) -> list[str] | None:
    """Translate the mount(8) helper call `SOURCE MOUNTPOINT -o k=v,...` into `mount` arguments.

    mount.fuse3 runs `mldashfs SOURCE MOUNTPOINT -o OPTIONS` for `mount -t fuse.mldashfs` and
    /etc/fstab; SOURCE is the store folder unless `store=` is given. Returns None for other calls.
    mount(8) runs helpers with PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin,
    so `mldashfs` must be installed (or linked) there. An /etc/fstab line:

        /srv/ml-store  /mnt/resnet  fuse.mldashfs  experiment=alice/cv/resnet,log_file=/var/log/mldashfs.log,nofail  0 0
    """
    positional = [a for i, a in enumerate(argv) if not a.startswith("-") and (i == 0 or argv[i - 1] != "-o")]
    if len(positional) != 2 or "-o" not in argv or argv[0] in ("mount", "umount"):
        return None
    opts: dict[str, str] = {}
    for i, a in enumerate(argv):
        if a == "-o" and i + 1 < len(argv):
            for item in argv[i + 1].split(","):
                key, _, value = item.partition("=")
                opts[key.strip().replace("_", "-")] = value
    out = ["mount", "--store", opts.pop("store", "") or positional[0]]
    for key in ("experiment", "log-file", "log-level", "mongo", "cache-dir", "cache-size", "s3-endpoint"):
        if opts.get(key):
            out += [f"--{key}", opts.pop(key)]
    if "ro" in opts:  # mount(8)'s own spelling
        opts.pop("ro")
        opts["read-only"] = ""
    for key in ("foreground", "allow-other", "read-only", "no-passthrough", "create"):
        if key in opts:
            opts.pop(key)
            out.append(f"--{key}")
    return out + [positional[1]]


def run_file(mountpoint: str) -> str:
    """Where the daemon serving `mountpoint` records its pid."""
    folder = os.path.join(os.environ.get("XDG_RUNTIME_DIR") or tempfile.gettempdir(), f"mldashfs-{os.getuid()}")
    os.makedirs(folder, mode=0o700, exist_ok=True)
    return os.path.join(folder, hashlib.sha1(mountpoint.encode()).hexdigest()[:16] + ".pid")


def default_log_file(args: argparse.Namespace) -> str:
    """`{store}/.mldashfs/logs/mount-<pid>.log` (a remote store's: in its cache folder): where a
    background daemon logs without --log-file."""
    from ..backends import is_remote, state_folder
    from .main import store_options

    state = state_folder(args.store, **store_options(args))
    if not is_remote(args.store) and not args.create and not os.path.isdir(state):
        raise FileNotFoundError(f"no store at {args.store}")  # never make a store for its log
    folder = os.path.join(state, "logs")
    os.makedirs(folder, exist_ok=True)
    return os.path.join(folder, f"mount-{os.getpid()}.log")


def _setup_logging(log_file: str | None, level: str, rotate: bool = False) -> None:
    """Log to `log_file` (rotated at LOG_BYTES if `rotate`), or to stderr if None."""
    handler: logging.Handler
    if log_file is None:
        handler = logging.StreamHandler()
    elif rotate:
        handler = logging.handlers.RotatingFileHandler(log_file, maxBytes=LOG_BYTES, backupCount=LOG_BACKUPS)
    else:
        handler = logging.FileHandler(log_file)
    handler.setFormatter(logging.Formatter("%(asctime)s %(process)d %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(level.upper())


def _check_log_file(log_file: str | None) -> None:
    """Raise MountError unless the daemon will be able to append to `log_file` (made here if missing)."""
    if log_file is None:
        return
    from ..fs.daemon import MountError

    try:
        with open(log_file, "a"):
            pass
    except OSError as e:
        raise MountError(f"cannot write the log file {log_file}: {e.strerror or e}") from e


def cmd_mount(args: argparse.Namespace) -> int:
    """Mount; exit 0 once the mount answers, or print one line and exit 1."""
    from ..fs.daemon import MountError, check_mountpoint

    mountpoint = os.path.abspath(args.mountpoint)
    if args.experiment is not None:
        check_experiment(args.experiment)
    try:
        check_mountpoint(mountpoint)
        _check_log_file(args.log_file)
    except MountError as e:
        print(f"mldashfs: {e}", file=sys.stderr)
        return 1
    if args.foreground:
        _setup_logging(args.log_file, args.log_level)
        return _daemon(args, mountpoint, lambda: None)
    return _background(args, mountpoint)


def _daemon(args: argparse.Namespace, mountpoint: str, ready: Any) -> int:
    """Open the store and serve until unmounted; errors before mounting are one line on stderr."""
    from ..fs.daemon import MountError, open_store, serve
    from .main import store_options

    pid_file = run_file(mountpoint)

    def mounted() -> None:
        with open(pid_file, "w") as f:  # the pid, and for a remote store the cache folder (umount's progress)
            f.write(f"{os.getpid()}\n{store.root if store.remote else ''}\n")
        ready()

    try:
        store = open_store(args.store, args.experiment, args.create, **store_options(args))
        serve(store, args.experiment, mountpoint, args.store, mounted, allow_other=args.allow_other,
              passthrough=not args.no_passthrough, read_only=args.read_only)
    except (MountError, StoreError) as e:
        logging.getLogger("mldashfs.fs").error("%s", e)
        print(f"mldashfs: {e}", file=sys.stderr)
        return 1
    finally:
        if os.path.exists(pid_file) and open(pid_file).read().strip() == str(os.getpid()):
            os.unlink(pid_file)
    return 0


def _background(args: argparse.Namespace, mountpoint: str) -> int:
    """Fork the daemon; wait until it reports the mount ready (or its one-line error)."""
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # the daemon: a one-line error before mounting reaches the parent through the pipe
        os.close(r)
        os.setsid()
        null = os.open(os.devnull, os.O_RDWR)
        os.dup2(null, 0)
        os.dup2(null, 1)
        os.dup2(w, 2)
        if args.log_file:
            _setup_logging(args.log_file, args.log_level)
        else:
            try:
                _setup_logging(default_log_file(args), args.log_level, rotate=True)
            except OSError:  # no usable store folder: its one-line error reaches the parent through the pipe
                _setup_logging(os.devnull, args.log_level)

        def ready() -> None:
            os.write(w, b"ok\n")
            os.dup2(null, 2)
            os.close(w)

        code = _daemon(args, mountpoint, ready)
        sys.stderr.flush()
        os._exit(code)
    os.close(w)
    with os.fdopen(r, "rb") as pipe:
        message = pipe.read().decode(errors="replace").strip()
    if message == "ok":
        os.stat(mountpoint)  # returns once the daemon answers
        return 0
    os.waitpid(pid, 0)
    print(message or "mldashfs: the daemon exited before mounting (see --log-file)", file=sys.stderr)
    return 1


def cmd_umount(args: argparse.Namespace) -> int:
    """Unmount (fails while files are open); wait until the daemon has committed and exited."""
    mountpoint = os.path.abspath(args.mountpoint)
    if not os.path.ismount(mountpoint):
        print(f"mldashfs: {mountpoint} is not mounted", file=sys.stderr)
        return 1
    pid, cache = None, ""
    pid_file = run_file(mountpoint)
    if os.path.exists(pid_file):
        lines = open(pid_file).read().split("\n")
        pid, cache = int(lines[0].strip() or 0) or None, (lines[1].strip() if len(lines) > 1 else "")
    res = subprocess.run(["fusermount3", "-u", mountpoint], capture_output=True, text=True)
    if res.returncode != 0:
        why = res.stderr.strip().splitlines()[-1] if res.stderr.strip() else f"exit status {res.returncode}"
        print(f"mldashfs: cannot unmount {mountpoint}: {why}", file=sys.stderr)
        return 1
    if args.no_wait:
        return 0
    deadline = None if args.timeout is None else time.monotonic() + args.timeout
    show = upload_progress(cache) if cache else None
    while pid is not None and _alive(pid):
        if deadline is not None and time.monotonic() > deadline:
            print(f"mldashfs: unmounted, but daemon {pid} is still finishing after {args.timeout}s", file=sys.stderr)
            return 1
        if show is not None:
            show()
        time.sleep(0.05)
    return 0


def upload_progress(cache: str) -> Any:
    """A callable showing the pending uploads of cache folder `cache` as a progress bar."""
    from ..journal import Journal
    from .upload_commands import ProgressBar

    journal, bar = Journal(cache), ProgressBar()

    def show() -> None:
        n, size, _ = journal.counts()
        bar.update(n, size)

    return show


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    try:
        with open(f"/proc/{pid}/stat") as f:
            return f.read().split(") ")[-1][:1] != "Z"
    except FileNotFoundError:
        return False
