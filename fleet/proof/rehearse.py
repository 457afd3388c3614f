"""`fab load` and `fab rehearse`: steady traffic at an environment, and a deploy made under it.

A rolling deploy promises that visitors notice nothing. A rehearsal checks that promise the way a
visitor would: constant-rate requests go through the load balancer while a new build is rolled
out, and every request that failed is attributed to the deploy phase it was sent in.
"""

from __future__ import annotations

import asyncio
import math
import shutil
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from tempfile import TemporaryDirectory
from typing import NamedTuple

from fleet import artifact, inventory, report
from fleet.inventory import Inventory
from fleet.ops import deploy
from fleet.phases import Phase
from fleet.proof.load import BackgroundLoad, LoadReport, run_load
from fleet.settings import setting

# `fab sandbox.up` publishes the default sandbox's load balancer on these loopback ports.
SANDBOX_URL = "https://127.0.0.1:8443"
# The background load stops by itself after this long, so a hung deploy cannot leave it running.
LOAD_LIMIT_S = 1800
WARM_UP_S = 3
MARKER_FILE = "REHEARSAL.txt"


class RehearsalError(RuntimeError):
    """The rehearsal cannot start: nowhere to send the traffic."""


def load_target(inv: Inventory) -> tuple[str, list[str]]:
    """Where load for this environment goes, and the hosts `check_target` may let it reach.

    The sandbox's load balancer is published on loopback; a real environment is reached at the
    SSH address of its first load balancer, on the port clients use for HTTPS. Only the
    environment's own hosts are allowed, so load can never leak to a stranger's machine.
    """
    if inv.is_sandbox:
        url = SANDBOX_URL
    else:
        balancers = inv.hosts_of("loadbalancers")
        if not balancers:
            raise RehearsalError(f"environment {inv.env} has no loadbalancers host to send to")
        address = str(inv.hostvars[balancers[0]].get("ansible_host", balancers[0]))
        if ":" in address:
            address = f"[{address}]"  # an IPv6 literal
        port = setting(inv, "nginx_redirect_https_port")
        url = f"https://{address}" + ("" if port == "443" else f":{port}")
    allowed = {
        str(variables[name])
        for host, variables in inv.hostvars.items()
        for name in ("ansible_host", "fleet_private_address")
        if variables.get(name)
    }
    return url, sorted(allowed)


def load_environment(inv: Inventory, rate: float, seconds: float) -> LoadReport:
    """`fab load`: `rate` requests a second through the environment's load balancer."""
    url, allowed = load_target(inv)
    return asyncio.run(run_load(url, rate, seconds, allowed_hosts=allowed))


class PhaseTraffic(NamedTuple):
    phase: str
    seconds: float
    sent: int
    failed: int


def failures_by_phase(phases: Sequence[Phase], load: LoadReport) -> list[PhaseTraffic]:
    """Requests sent and failed during each phase, in the order the phases ran.

    The load report counts requests per whole second of sending time, so the split is only as
    fine as one second: a phase holds the seconds from int(started_at) to int(ended_at), both
    included, and a second two phases share is counted once, in the earlier phase. Traffic sent
    before the first phase, after the last one or in a gap between two phases gets its own row
    ("before", "between phases", "after"), present only if requests were sent then; the seconds
    of those rows are the number of seconds with traffic that fell there.
    """
    ordered = sorted(phases, key=lambda p: p.started_at)
    spans = [(int(p.started_at), int(p.ended_at)) for p in ordered]
    counts = [[0, 0] for _ in ordered]
    outside = {"before": [0, 0, 0], "between phases": [0, 0, 0], "after": [0, 0, 0]}
    for second, sent, failed in load.timeline:
        index = next((i for i, (first, last) in enumerate(spans) if first <= second <= last), None)
        if index is not None:
            counts[index][0] += sent
            counts[index][1] += failed
            continue
        if not spans or second < spans[0][0]:
            where = "before"
        elif second > spans[-1][1]:
            where = "after"
        else:
            where = "between phases"
        outside[where][0] += 1
        outside[where][1] += sent
        outside[where][2] += failed
    rows = [PhaseTraffic(p.name, p.seconds, sent, failed)
            for p, (sent, failed) in zip(ordered, counts, strict=True)]

    def extra(where: str) -> list[PhaseTraffic]:
        seconds, sent, failed = outside[where]
        return [PhaseTraffic(where, float(seconds), sent, failed)] if sent else []

    return extra("before") + rows + extra("between phases") + extra("after")


@dataclass
class RehearsalReport:
    """What a deploy under load showed: the deploy's phases and the traffic sent meanwhile."""

    env: str
    release: str | None
    phases: list[Phase]
    load: LoadReport
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None and self.load.ok

    def rows(self) -> list[PhaseTraffic]:
        return failures_by_phase(self.phases, self.load)

    def table(self) -> str:
        rows = self.rows()
        cells = [(r.phase, f"{r.seconds:.1f}", r.sent, r.failed) for r in rows]
        cells.append(("total", f"{self.load.elapsed:.1f}", sum(r.sent for r in rows),
                      sum(r.failed for r in rows)))
        deployed = (f"deploy of {self.release} to {self.env}: ok" if self.failure is None
                    else f"deploy to {self.env} FAILED: {self.failure}")
        verdict = "OK" if self.ok else "NOT OK"
        return "\n".join([
            report.table(("phase", "seconds", "requests sent", "failed"), cells),
            "",
            self.load.summary(),
            deployed,
            f"rehearsal: {verdict}",
        ])


def fresh_app_copy(workdir: Path, source: Path = deploy.APP_DIR) -> Path:
    """A copy of the app with one extra file holding the time, so it builds as a new release."""
    target = workdir / source.name
    litter = [*artifact.EXCLUDED_PARTS, *(f"*{suffix}" for suffix in artifact.EXCLUDED_SUFFIXES)]
    shutil.copytree(source, target, ignore=shutil.ignore_patterns(*litter))
    stamp = datetime.now(UTC).isoformat(timespec="microseconds")
    (target / MARKER_FILE).write_text(f"rehearsal build made at {stamp}\n")
    return target


def rehearse(env: str = inventory.SANDBOX_ENV, rate: float = 20,
             say: Callable[[str], None] = print) -> RehearsalReport:
    """Deploy a new build of the app to `env` while `rate` requests a second go through its
    load balancer. A failed deploy does not raise: it is in the report, which is then not ok."""
    if not (rate > 0 and math.isfinite(rate)):
        raise ValueError("the rate must be a positive number of requests a second")
    url, allowed = load_target(inventory.check(env))
    with TemporaryDirectory(prefix="flaskfleet-rehearse-") as tmp:
        app_dir = fresh_app_copy(Path(tmp))
        say(f"rehearse: {rate:g} requests a second to {url} during the deploy")
        load = BackgroundLoad(url, rate, LOAD_LIMIT_S, allowed_hosts=allowed).start()
        release, phases, failure = None, [], None
        try:
            time.sleep(WARM_UP_S)
            deploy_started = time.time()
            outcome = deploy.deploy(env, app_dir=app_dir, say=say)
            release, phases = outcome.release, outcome.phases
        except deploy.DeployError as exc:
            failure = str(exc)
            if exc.outcome is not None:
                release, phases = exc.outcome.release, exc.outcome.phases
            else:  # stopped in pre-flight, before any phase was recorded
                phases = [Phase("deploy (failed)", time.time() - deploy_started, False,
                                deploy_started)]
        finally:
            traffic = load.stop()
    return RehearsalReport(env, release, phases, traffic, failure)
