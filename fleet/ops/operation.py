"""A locked operation: deploy, rollback, node commands, secrets roll-out, db backup and restore.

`operation()` takes the deploy lock on the lock host (a held lock refuses, naming the holder),
times the phases, and on every way out of it (done, the command's own error, Ctrl-C, a bug)
records the outcome, writes the audit record, releases the lock and prints the timing table.
Every command that changes the fleet or its data goes through it, so none can skip the trace.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Protocol

from fleet import audit, hosts, lock, phases
from fleet.inventory import Inventory
from fleet.phases import Clock, Phase

Say = Callable[[str], None]


def lock_host(inv: Inventory) -> str:
    """Where the lock and the audit trail live: the first database host, present in every env."""
    return inv.hosts_of("db")[0]


class Outcome(Protocol):
    """What an operation fills in and reports; each command's outcome type has these."""

    who: str
    started: str
    ok: bool
    failure: str | None
    phases: list[Phase]

    def summary(self) -> str: ...

    def audit_entry(self) -> dict: ...


@dataclass(kw_only=True)
class Tracked:
    """What `operation()` fills in on any outcome: who, when, the verdict and the phases."""

    who: str = ""
    started: str = ""
    ok: bool = False
    failure: str | None = None
    phases: list[Phase] = field(default_factory=list)

    def audit_record(self, action: str, env: str, release: str, **details: object) -> dict:
        """The audit trail's line for this outcome, with the command's own fields."""
        return {"action": action, "env": env, "release": release, "who": self.who,
                "started": self.started, "ok": self.ok, "failure": self.failure, **details,
                "finished": datetime.now(UTC).isoformat(timespec="seconds"),
                "phases": phases.audit_record(self.phases)}


@dataclass
class Record(Tracked):
    """The outcome of an operation with no richer type of its own (db.backup, db.restore)."""

    action: str
    env: str
    release: str  # what the lock and the audit trail show it acting on
    details: dict[str, str] = field(default_factory=dict)  # extra audit fields

    def summary(self) -> str:
        verdict = f"{self.action}: done" if self.ok else f"{self.action} FAILED: {self.failure}"
        return phases.table(self.phases, self.ok) + "\n" + verdict

    def audit_entry(self) -> dict:
        return self.audit_record(self.action, self.env, self.release, **self.details)


def _failure_of(exc: BaseException, expected: type[Exception]) -> str:
    """The audit trail's `failure`: the command's own message, else what stopped it."""
    if isinstance(exc, expected):
        return str(exc)
    if isinstance(exc, KeyboardInterrupt):
        return "interrupted (Ctrl-C)"
    return f"unexpected error: {type(exc).__name__}: {exc}"


@contextmanager
def operation(inv: Inventory, action: str, release: str, outcome: Outcome,
              error: type[Exception], say: Say, refused: str = "nothing was changed",
              closing: Callable[[], None] | None = None) -> Iterator[Clock]:
    """Run the body under the deploy lock as `action` of `release`; yields the phase clock.

    A held lock raises `error` naming the holder, followed by `refused`. `closing` runs once
    the outcome is known, still under the lock, so the audit record sees what it did (the
    deploy's post hooks). The body's exception, of whatever kind, is re-raised.
    """
    runner = hosts.runner(inv, lock_host(inv))
    holder = lock.Holder.me(action, release)
    outcome.who, outcome.started = holder.who, holder.since
    clock = Clock(outcome.phases, say)
    try:
        with clock.phase("lock", f"take the deploy lock on {runner.name}"):
            try:
                lock.acquire(runner, holder)
            except lock.LockError as exc:
                outcome.failure = f"{exc}; {refused}"
                raise error(outcome.failure) from None
        try:
            yield clock
            outcome.ok = True
        except BaseException as exc:
            outcome.failure = _failure_of(exc, error)
            raise
        finally:
            try:
                if closing is not None:
                    closing()
            finally:
                audit.close(runner, holder, outcome.audit_entry())
            say("lock released")
    finally:
        say("\n" + outcome.summary())
        runner.close()
