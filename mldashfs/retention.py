"""Retention: which old versions `mldashfs gc` deletes before it reclaims bytes (docs/reliability.md).

A policy keeps a version if it is its path's newest, among the newest `keep_last` of its path, newer
than `older_than` seconds, or tagged (with `keep_tagged`); the others expire. A policy with neither
`older_than` nor `keep_last` expires nothing. An experiment may carry its own policy in the store file
`ns/project/exp/.ml_dash/retention.json`; its keys override the command line's, key by key.

Safety does not rest on this module's reading of the store, which may be stale by the time it acts:
`Store.expire_versions` refuses a path's newest version and pending uploads in the same step as the
delete, and `Store.gc` reclaims only keys no live version references.
"""

from __future__ import annotations

import dataclasses
import json
import re
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from itertools import groupby
from typing import Any

from .errors import InvalidValue
from .paths import EXPERIMENT_DEPTH, RUN_DATA, depth, experiment_of
from .records import Version
from .store import Store

#: An experiment's own policy, relative to the experiment.
POLICY_FILE = f"{RUN_DATA}/retention.json"
#: Versions expired per catalog call (one SQLite transaction each).
BATCH = 500
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}
_KEYS = {"older_than", "keep_last", "keep_tagged"}


def parse_duration(text: str) -> float:
    """Seconds of a duration such as `7d`, `12h`, `30m`, `90s` or `2w`."""
    m = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([smhdw])\s*", text)
    if m is None:
        raise InvalidValue(f"bad duration {text!r}: a number and a unit, e.g. 7d, 12h, 30m, 90s, 2w")
    return float(m[1]) * _UNITS[m[2]]


@dataclass(frozen=True)
class Policy:
    """What to keep; None and False leave a rule out."""

    older_than: float | None = None  # seconds: versions committed more recently are kept
    keep_last: int | None = None  # the newest N versions of each path are kept
    keep_tagged: bool = False  # versions with any tag are kept

    @property
    def expires_anything(self) -> bool:
        return self.older_than is not None or self.keep_last is not None

    def keeps(self, v: Version, rank: int, now: float) -> bool:
        """Whether version `v`, the `rank`-th newest of its path (0 = newest), stays."""
        if rank == 0 or not self.expires_anything:
            return True  # a path's newest version never expires
        if self.keep_last is not None and rank < self.keep_last:
            return True
        if self.older_than is not None and v.created_at > now - self.older_than:
            return True
        return self.keep_tagged and bool(v.tags)


def check_policy(raw: Any, where: str) -> dict[str, Any]:
    """The fields of a policy given as JSON (`older_than` a duration string, `keep_last` an int >= 1,
    `keep_tagged` a bool); InvalidValue naming `where` otherwise."""
    if not isinstance(raw, dict) or not set(raw) <= _KEYS:
        raise InvalidValue(f"{where}: a policy is a JSON object with keys {sorted(_KEYS)}")
    out: dict[str, Any] = {}
    if raw.get("older_than") is not None:
        if not isinstance(raw["older_than"], str):
            raise InvalidValue(f"{where}: older_than is a duration string such as \"7d\"")
        out["older_than"] = parse_duration(raw["older_than"])
    if raw.get("keep_last") is not None:
        n = raw["keep_last"]
        if isinstance(n, bool) or not isinstance(n, int) or n < 1:
            raise InvalidValue(f"{where}: keep_last is a whole number >= 1")
        out["keep_last"] = n
    if "keep_tagged" in raw:
        if not isinstance(raw["keep_tagged"], bool):
            raise InvalidValue(f"{where}: keep_tagged is true or false")
        out["keep_tagged"] = raw["keep_tagged"]
    return out


def experiment_policies(store: Store, default: Policy) -> dict[str, Policy]:
    """The policy of each experiment that has a policy file: its fields over `default`'s."""
    out: dict[str, Policy] = {}
    for v in store.list(""):
        if depth(v.path) == EXPERIMENT_DEPTH + 2 and v.path.endswith("/" + POLICY_FILE):
            try:
                raw = json.loads(store.read_bytes(v))
            except ValueError as e:
                raise InvalidValue(f"{v.path}: not JSON ({e})") from e
            out[experiment_of(v.path)] = dataclasses.replace(default, **check_policy(raw, v.path))
    return out


@dataclass
class Report:
    """What one gc did (or, dry, would do): the versions expired and the bytes reclaimed."""

    dry_run: bool
    expired: list[Version] = field(default_factory=list)
    reclaimed_bytes: int = 0


def plan(store: Store, default: Policy, now: float) -> Iterator[tuple[Version, bool]]:
    """Every live version with whether its experiment's policy (else `default`) keeps it."""
    policies = experiment_policies(store, default)
    for path, group in groupby(store.iter_versions(""), key=lambda v: v.path):
        policy = policies.get(experiment_of(path), default)
        for rank, v in enumerate(reversed(list(group))):
            yield v, policy.keeps(v, rank, now)


def run(store: Store, default: Policy, dry_run: bool = False, now: float | None = None) -> Report:
    """Expire what the policies let go, then reclaim the bytes only deleted versions hold; dry, only
    count them (the bytes of versions deleted before are not counted then)."""
    report = Report(dry_run)
    picked: list[Version] = []
    kept_keys: set[str] = set()
    for v, keep in plan(store, default, time.time() if now is None else now):
        if keep:
            kept_keys.add(v.key)
        else:
            picked.append(v)
    if dry_run:
        report.expired = picked
        sizes = {v.key: v.size for v in picked if v.key not in kept_keys}  # a renamed version shares its key
        report.reclaimed_bytes = sum(sizes.values())
        return report
    for batch in _batches((v.id for v in picked), BATCH):
        report.expired += store.expire_versions(batch)
    report.reclaimed_bytes = store.gc()
    return report


def _batches(ids: Iterable[int], n: int) -> Iterator[list[int]]:
    """`ids` in lists of at most `n`."""
    batch: list[int] = []
    for i in ids:
        batch.append(i)
        if len(batch) == n:
            yield batch
            batch = []
    if batch:
        yield batch
