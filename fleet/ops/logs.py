"""`fab logs SERVICE`: the last lines of a service's log from every host that runs it."""

from __future__ import annotations

import shlex
from dataclasses import dataclass

from fleet import hosts
from fleet.inventory import Inventory
from fleet.settings import setting


@dataclass(frozen=True)
class LogSource:
    groups: tuple[str, ...]
    command: str  # prints the log; {lines} and {app} are filled in


SOURCES = {
    "web": LogSource(("app",), "tail -n {lines} /var/log/{app}/gunicorn.log"),
    "handover": LogSource(("app",), "tail -n {lines} /var/log/{app}/gunicorn-handover.log"),
    # Every app_programs log of the host (worker, beat, an RQ worker...): <app>-<name>*.log.
    "worker": LogSource(("workers",), "tail -n {lines} /var/log/{app}/{app}-*.log"),
    "beat": LogSource(("beat",), "tail -n {lines} /var/log/{app}/{app}-*.log"),
    "migrations": LogSource(("app",), "tail -n {lines} /var/log/{app}/migrations.log "
                                      "2>/dev/null || echo '(no migration ran on this host)'"),
    "supervisor": LogSource(("app", "workers", "beat"),
                            "tail -n {lines} /var/log/supervisor/supervisord.log"),
    "nginx": LogSource(("loadbalancers",), "tail -n {lines} /var/log/nginx/{app}.error.log"),
    "access": LogSource(("loadbalancers",), "tail -n {lines} /var/log/nginx/{app}.access.log"),
    "mariadb": LogSource(("db",), "journalctl -u mariadb -n {lines} --no-pager"),
    "redis": LogSource(("redis",), "journalctl -u redis-server -n {lines} --no-pager"),
}


class LogsError(ValueError):
    """Unknown service or host."""


def targets(inv: Inventory, service: str, host: str | None) -> list[str]:
    if service not in SOURCES:
        raise LogsError(f"unknown service {service!r}; one of: {', '.join(SOURCES)}")
    runs_it = inv.hosts_of(*SOURCES[service].groups)
    if host is None:
        return runs_it
    if host not in runs_it:
        raise LogsError(f"{host} does not run {service} (hosts that do: {', '.join(runs_it)})")
    return [host]


def read(inv: Inventory, service: str, host: str | None = None,
         lines: int = 50) -> dict[str, str]:
    """host -> the last `lines` lines of `service`'s log there (or why they could not be read)."""
    names = targets(inv, service, host)
    app = shlex.quote(setting(inv, "app_name"))
    command = SOURCES[service].command.format(lines=int(lines), app=app) + " 2>&1"
    results = hosts.run(inv, names, command)
    return {h: (r.stdout if r.ok else f"(could not read: {(r.stdout + r.stderr).strip()})")
            for h, r in results.items()}
