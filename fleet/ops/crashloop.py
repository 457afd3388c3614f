"""Is any app program crash-looping? A deploy refuses to start on a fleet where one is.

supervisord restarts a program that dies (autorestart), so a program that keeps crashing can look
RUNNING most of the time. Two signs give it away, both read from the host:
- its state is BACKOFF (it died before `startsecs`, supervisord is retrying) or FATAL (it gave
  up), or EXITED although it should run;
- supervisord's own log shows it exiting "not expected" several times within a short window.

Rolling a release out over that would gate hosts against a moving target and hide the cause, so
`fab deploy` stops in pre-flight and names the host, the program and what was seen. `fab
rollback` does not check: returning to a release that worked is how a crash loop is fixed.
"""

from __future__ import annotations

import re
import shlex
from dataclasses import dataclass
from datetime import datetime, timedelta

from fleet import hosts
from fleet.inventory import Inventory
from fleet.ops import status
from fleet.settings import setting

WINDOW_S = 120
MAX_UNEXPECTED_EXITS = 3
BAD_STATES = ("BACKOFF", "FATAL", "EXITED", "UNKNOWN")
EXIT_LINE = re.compile(r"^(?P<when>\d{4}-\d\d-\d\d \d\d:\d\d:\d\d),\d+ \w+ exited: "
                       r"(?P<program>\S+) \(.*not expected\)\s*$")


@dataclass(frozen=True)
class Finding:
    host: str
    program: str
    what: str

    def __str__(self) -> str:
        return f"{self.host}: {self.program} {self.what}"


def command(log: str, supervise: str) -> str:
    """Prints the host's local time, supervisord's program states (read by the supervisor
    role's helper, `supervise`; by supervisorctl on a host whose helper predates `status`),
    then the end of its log."""
    return (f"date '+now=%Y-%m-%d %H:%M:%S'; {{ {shlex.quote(supervise)} status || "
            "supervisorctl status; } 2>/dev/null | awk '{print \"state:\" $1 \"=\" $2}'; "
            f"tail -n 400 {shlex.quote(log)} 2>/dev/null; true")


def unexpected_exits(log_lines: list[str], now: datetime, window_s: int = WINDOW_S
                     ) -> dict[str, int]:
    """program -> how many times it exited unexpectedly within the last `window_s` seconds."""
    since = now - timedelta(seconds=window_s)
    counts: dict[str, int] = {}
    for line in log_lines:
        match = EXIT_LINE.match(line)
        if match and datetime.strptime(match["when"], "%Y-%m-%d %H:%M:%S") >= since:
            program = match["program"].split(":")[0]
            counts[program] = counts.get(program, 0) + 1
    return counts


def findings(host: str, output: str, prefix: str, ignore: tuple[str, ...] = (),
             window_s: int = WINDOW_S, limit: int = MAX_UNEXPECTED_EXITS) -> list[Finding]:
    """What `command()`'s output says about the programs whose names start with `prefix`."""
    now = None
    states: dict[str, str] = {}
    log_lines = []
    for line in output.splitlines():
        if line.startswith("now="):
            now = datetime.strptime(line[4:].strip(), "%Y-%m-%d %H:%M:%S")
        elif line.startswith("state:"):
            name, _, state = line[6:].partition("=")
            states[name] = state
        else:
            log_lines.append(line)
    mine = lambda name: name.startswith(prefix) and name not in ignore  # noqa: E731
    found = [Finding(host, name, f"is {state}")
             for name, state in sorted(states.items()) if mine(name) and state in BAD_STATES]
    if now is not None:
        for program, count in sorted(unexpected_exits(log_lines, now, window_s).items()):
            if mine(program) and count >= limit:
                found.append(Finding(host, program, f"exited unexpectedly {count} times in the "
                                                    f"last {window_s}s (crash loop)"))
    return found


def check(inv: Inventory) -> list[Finding]:
    """Crash-looping app programs on every app, worker and beat host."""
    app = setting(inv, "app_name")
    # Of an app host's two gunicorn slots only the one the load balancers use matters here: the
    # other one may be stopped, or be what a failed deploy left; the next switch restarts it.
    slots = {int(setting(inv, "app_gunicorn_port")): setting(inv, "app_gunicorn_program"),
             int(setting(inv, "app_gunicorn_handover_port")):
                 setting(inv, "app_gunicorn_handover_program")}
    live = status.live_ports(inv)
    targets = inv.hosts_of("app", "workers", "beat")
    log = f"{setting(inv, 'supervisor_log_dir')}/supervisord.log"  # as supervisord.conf.j2 sets it
    results = hosts.run(inv, targets, command(log, setting(inv, "supervisor_ctl_script")),
                        timeout=30)
    found = []
    for host, result in results.items():
        idle = tuple(name for port, name in slots.items() if host in live and port != live[host])
        found += findings(host, result.stdout, f"{app}-", ignore=idle)
    return found
