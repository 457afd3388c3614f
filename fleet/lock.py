"""The deploy lock: one deploy (or rollback) at a time per environment.

The lock is a small JSON file on the environment's lock host, created with O_EXCL semantics
(`set -C`), so two operators racing for it cannot both win. It records who holds it, for which
release and since when; after a crash that record is what `fab lock.status` shows.
"""

from __future__ import annotations

import getpass
import json
import os
import shlex
import socket
from dataclasses import asdict, dataclass
from datetime import UTC, datetime

from fleet.remote import Runner

STATE_DIR = "/var/lib/flaskfleet"
LOCK_FILE = f"{STATE_DIR}/deploy.lock"


class LockError(RuntimeError):
    """The lock could not be taken or released."""


class LockHeld(LockError):
    def __init__(self, holder: Holder) -> None:
        super().__init__(
            f"another deploy holds the lock: {holder.who} ({holder.action} of {holder.release}) "
            f"since {holder.since}; wait for it, or if it crashed see `fab lock.status` and "
            "`fab lock.release --force`")
        self.holder = holder


@dataclass(frozen=True)
class Holder:
    who: str
    action: str
    release: str
    since: str
    pid: int

    @classmethod
    def me(cls, action: str, release: str) -> Holder:
        return cls(who=f"{getpass.getuser()}@{socket.gethostname()}", action=action,
                   release=release, since=datetime.now(UTC).isoformat(timespec="seconds"),
                   pid=os.getpid())


def acquire(runner: Runner, holder: Holder, path: str = LOCK_FILE) -> Holder:
    record = json.dumps(asdict(holder))
    directory = path.rsplit("/", 1)[0]
    command = (f"mkdir -p {shlex.quote(directory)} && "
               f"(set -C; printf '%s\\n' {shlex.quote(record)} > {shlex.quote(path)})")
    if runner.run(command).ok:
        return holder
    current = status(runner, path)
    if current is None:
        raise LockError(f"could not create the lock {path} on {runner.name}")
    raise LockHeld(current)


def status(runner: Runner, path: str = LOCK_FILE) -> Holder | None:
    res = runner.run(f"cat {shlex.quote(path)}")
    if not res.ok:
        return None
    try:
        return Holder(**json.loads(res.stdout))
    except (ValueError, TypeError) as exc:
        raise LockError(f"the lock {path} on {runner.name} is unreadable: {res.stdout!r}") from exc


def release(runner: Runner, holder: Holder | None = None, path: str = LOCK_FILE) -> None:
    """Release the lock; with `holder`, only if it is still ours (a forced release is not)."""
    if holder is not None:
        current = status(runner, path)
        if current != holder:
            raise LockError(f"the lock on {runner.name} is no longer ours (held by {current})")
    if not runner.run(f"rm -f {shlex.quote(path)}").ok:
        raise LockError(f"could not remove the lock {path} on {runner.name}")
