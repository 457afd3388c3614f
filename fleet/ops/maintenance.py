"""`fab maintenance.on` / `maintenance.off`: the maintenance page at every load balancer.

The nginx site (templates/nginx/site.conf.j2) checks a flag file on every request: while it
exists, clients outside `nginx_maintenance_allow` get 503 with Retry-After — the HTML page, or
JSON under /api. Switching is playbooks/maintenance.yml writing or removing that file, with no
reload, so it never drops a connection. A message given with --message is rendered by the same
play from the templates the role installs (HTML-escaped) into the maintenance directory's
message/; the provisioned pages stay as they are and come back when the message is removed.
`status` only reads, over SSH.

The flag lives on the load balancers, not on the control node: if the control node dies while
maintenance is on, the page stays up until `fab maintenance.off`.
"""

from __future__ import annotations

import getpass
import json
import shlex
import socket
from collections.abc import Callable
from datetime import UTC, datetime
from typing import NamedTuple

from fleet import ansible, hosts, results
from fleet.inventory import Inventory
from fleet.settings import setting

PLAYBOOK = ansible.ROOT / "playbooks" / "maintenance.yml"
PAGES = ("maintenance.html", "maintenance.json")  # what the role installs
MAX_MESSAGE = 500


class Paths(NamedTuple):
    """Where a load balancer keeps the page and the flag nginx checks (the nginx role's)."""

    directory: str
    flag: str

    @property
    def message_dir(self) -> str:
        return f"{self.directory}/message"


class MaintenanceError(RuntimeError):
    """A load balancer could not be switched, or the input was refused; the message says which."""


def paths(inv: Inventory) -> Paths:
    """The maintenance directory and flag as the inventory sets them (the role's defaults)."""
    return Paths(setting(inv, "nginx_maintenance_dir"), setting(inv, "nginx_maintenance_flag"))


def check_message(message: str | None) -> str | None:
    """The message, stripped; refused when it is too long or has control characters."""
    if message is None:
        return None
    text = message.strip()
    if not text:
        raise MaintenanceError("--message is empty; leave it out for the provisioned page")
    if len(text) > MAX_MESSAGE:
        raise MaintenanceError(f"--message is {len(text)} characters; at most {MAX_MESSAGE}")
    if any(ord(ch) < 32 for ch in text):
        raise MaintenanceError("--message must be one line of text (no control characters)")
    return text


def check_retry_after(inv: Inventory) -> int:
    """nginx_maintenance_retry_after as seconds; refused before any host is touched."""
    raw = setting(inv, "nginx_maintenance_retry_after")
    try:
        return int(raw)
    except ValueError:
        raise MaintenanceError(f"nginx_maintenance_retry_after must be a number of seconds, "
                               f"got {raw!r}; nothing was changed") from None


def _balancers(inv: Inventory) -> list[str]:
    found = inv.hosts_of("loadbalancers")
    if not found:
        raise MaintenanceError(f"inventory '{inv.env}' has no host in the loadbalancers group")
    return found


def _switch(inv: Inventory, variables: dict, say: Callable[[str], None]) -> None:
    """Run playbooks/maintenance.yml on every load balancer; say each one's outcome."""
    balancers = _balancers(inv)
    verb = variables["nginx_maintenance_switch"]
    result = ansible.run_with_vars(PLAYBOOK, inv.path, variables, say=lambda _line: None)
    failed = [h for h in balancers if h not in result.recap or not result.recap[h].healthy]
    for host in balancers:
        say(f"maintenance: {host}: {'FAILED' if host in failed else 'maintenance ' + verb}")
    if result.ok:
        return
    reasons = {r.host: r.reason for r in result.results if isinstance(r, results.Failure)}
    detail = "; ".join(f"{h}: {reasons.get(h) or 'unreachable or no answer'}" for h in failed)
    if not detail:  # the play failed before any host ran (a bad variable, for one)
        detail = "\n".join(line for line in result.output[-15:] if line.strip())
    raise MaintenanceError(f"could not switch maintenance {verb} on {detail}")


def switch_on(inv: Inventory, message: str | None = None,
              say: Callable[[str], None] = print) -> None:
    """Every load balancer serves the maintenance page (message first, then the flag)."""
    message = check_message(message)
    check_retry_after(inv)
    record = {"by": f"{getpass.getuser()}@{socket.gethostname()}",
              "since": datetime.now(UTC).isoformat(timespec="seconds"), "message": message}
    _switch(inv, {"nginx_maintenance_switch": "on", "nginx_maintenance_record": record,
                  "nginx_maintenance_message_override": message or ""}, say)


def switch_off(inv: Inventory, say: Callable[[str], None] = print) -> None:
    """Every load balancer passes requests to the app again (flag first, then the message)."""
    _switch(inv, {"nginx_maintenance_switch": "off"}, say)


def status(inv: Inventory) -> dict[str, str]:
    """Load balancer -> "off", "on since ... by ... (message)" or why it could not be read."""
    where = paths(inv)
    command = (f"if [ -e {shlex.quote(where.flag)} ]; then echo on; "
               f"cat {shlex.quote(where.flag)}; else echo off; fi")
    found = {}
    for host, result in sorted(hosts.run(inv, _balancers(inv), command).items()):
        if not result.ok:
            found[host] = f"unknown: {result.stderr.strip()[-200:]}"
            continue
        state, _, rest = result.stdout.partition("\n")
        if state.strip() != "on":
            found[host] = "off"
            continue
        try:
            record = json.loads(rest)
            found[host] = (f"on since {record.get('since')} by {record.get('by')}"
                           + (f": {record['message']}" if record.get("message") else ""))
        except ValueError:
            found[host] = "on (flag created by hand or by provisioning)"
    return found
