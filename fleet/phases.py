"""Named, timed steps of a long operation (a deploy, a rollback, a node change).

Each phase is announced when it starts and when it ends, with its duration; the list of phases
is what the final report and the audit record show. Phases also keep their wall-clock start, so
a load report can count the failed requests that fell inside each one (`fab rehearse`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

from fleet import report


@dataclass
class Phase:
    name: str
    seconds: float
    ok: bool
    started_at: float = 0.0  # time.time() when the phase began

    @property
    def ended_at(self) -> float:
        return self.started_at + self.seconds


class Clock:
    """Runs phases: announces each, times it, records whether it finished. Two threads may run
    a phase each at the same time (the list append is atomic)."""

    def __init__(self, phases: list[Phase], say: Callable[[str], None]) -> None:
        self.phases = phases
        self.say = say

    @contextmanager
    def phase(self, name: str, what: str) -> Iterator[None]:
        running = self.begin(name, what)
        ok = False
        try:
            yield
            ok = True
        finally:
            self.end(running, ok)

    def begin(self, name: str, what: str) -> Running:
        """Start a phase by hand (one run that spans two phases); `end` finishes it."""
        self.say(f"\n==> {name}: {what}")
        return Running(name, time.time(), time.monotonic())

    def end(self, running: Running, ok: bool) -> None:
        seconds = time.monotonic() - running.monotonic
        self.phases.append(Phase(running.name, seconds, ok, running.started_at))
        self.say(f"<== {running.name}: {'done' if ok else 'FAILED'} in {seconds:.1f}s")


@dataclass(frozen=True)
class Running:
    """A phase begun and not ended yet."""

    name: str
    started_at: float
    monotonic: float


def total(phases: list[Phase]) -> float:
    """Wall-clock seconds the phases took: phases that ran side by side (a deploy restarts the
    workers while the app hosts start the release) count once. A phase without a start time
    (started_at 0) counts in full."""
    spent, reached = 0.0, float("-inf")
    for phase in sorted(phases, key=lambda p: p.started_at):
        if not phase.started_at:
            spent += phase.seconds
            continue
        start = max(phase.started_at, reached)
        if phase.ended_at > start:
            spent += phase.ended_at - start
            reached = phase.ended_at
    return spent


def table(phases: list[Phase], ok: bool) -> str:
    """Each phase with its seconds and result, then the total."""
    rows = [(p.name, f"{p.seconds:.1f}", "ok" if p.ok else "FAILED") for p in phases]
    rows.append(("total", f"{total(phases):.1f}", "ok" if ok else "FAILED"))
    return report.table(("phase", "seconds", "result"), rows)


def audit_record(phases: list[Phase]) -> list[list]:
    """[[name, seconds], ...] in order, as the audit trail keeps them."""
    return [[p.name, round(p.seconds, 2)] for p in phases]
