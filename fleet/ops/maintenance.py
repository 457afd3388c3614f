"""`fab maintenance.on` / `maintenance.off`: the maintenance page at every load balancer.

The nginx site (templates/nginx/site.conf.j2) checks a flag file on every request: while it
exists, clients outside `nginx_maintenance_allow` get 503 with Retry-After — the HTML page, or
JSON under /api. Switching is a file written or removed over SSH, no reload, so it takes a
second and never drops a connection. A message given with --message is rendered from the same
templates the role installs (HTML-escaped) into the maintenance directory's message/; the
provisioned pages stay as they are and come back when the message is removed.

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
from pathlib import Path
from typing import NamedTuple

import jinja2

from fleet import hosts
from fleet.inventory import Inventory
from fleet.settings import setting

TEMPLATES = Path(__file__).resolve().parents[2] / "templates" / "nginx"
PAGES = ("maintenance.html", "maintenance.json")
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


def render(inv: Inventory, message: str) -> dict[str, str]:
    """The pages for `message`, from the role's own templates: page name -> content."""
    raw = setting(inv, "nginx_maintenance_retry_after")
    try:
        retry = int(raw)
    except ValueError:
        raise MaintenanceError(f"nginx_maintenance_retry_after must be a number of seconds, "
                               f"got {raw!r}; nothing was changed") from None
    context = {"nginx_maintenance_title": setting(inv, "nginx_maintenance_title"),
               "nginx_maintenance_message": message, "nginx_maintenance_retry_after": retry}
    # The template module's settings (trim_blocks); escaping is in the templates themselves,
    # so the role's pages and these are escaped the same way.
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             keep_trailing_newline=True)
    return {page: env.get_template(f"{page}.j2").render(context) for page in PAGES}


def _write(path: str, content: str) -> str:
    """Shell: write `content` to `path` atomically (a half-written page is never served)."""
    partial, final = shlex.quote(f"{path}.partial"), shlex.quote(path)
    return (f"printf '%s' {shlex.quote(content)} > {partial} && chmod 0644 {partial} && "
            f"mv -f {partial} {final}")


def _balancers(inv: Inventory) -> list[str]:
    found = inv.hosts_of("loadbalancers")
    if not found:
        raise MaintenanceError(f"inventory '{inv.env}' has no host in the loadbalancers group")
    return found


def _apply(inv: Inventory, command: str, what: str, say: Callable[[str], None]) -> None:
    results = hosts.run(inv, _balancers(inv), command)
    for host, result in sorted(results.items()):
        say(f"maintenance: {host}: {what if result.ok else 'FAILED'}")
    failed = {h: r.stderr.strip()[-300:] for h, r in results.items() if not r.ok}
    if failed:
        raise MaintenanceError(f"could not switch maintenance {what.split()[-1]} on "
                               + "; ".join(f"{h}: {e or 'no output'}" for h, e in failed.items()))


def switch_on(inv: Inventory, message: str | None = None,
              say: Callable[[str], None] = print) -> None:
    """Every load balancer serves the maintenance page (message first, then the flag)."""
    message = check_message(message)
    where = paths(inv)
    steps = [f"test -d {shlex.quote(where.directory)} || "
             f"{{ echo 'no {where.directory}: provision the load balancer first' >&2; exit 1; }}"]
    if message:
        steps.append(f"mkdir -p {shlex.quote(where.message_dir)}")
        steps += [_write(f"{where.message_dir}/{page}", content)
                  for page, content in render(inv, message).items()]
    else:
        steps.append(f"rm -rf {shlex.quote(where.message_dir)}")
    record = json.dumps({"by": f"{getpass.getuser()}@{socket.gethostname()}",
                         "since": datetime.now(UTC).isoformat(timespec="seconds"),
                         "message": message})
    steps.append(_write(where.flag, record + "\n"))
    _apply(inv, " && ".join(steps), "maintenance on", say)


def switch_off(inv: Inventory, say: Callable[[str], None] = print) -> None:
    """Every load balancer passes requests to the app again (flag first, then the message)."""
    where = paths(inv)
    command = f"rm -f {shlex.quote(where.flag)} && rm -rf {shlex.quote(where.message_dir)}"
    _apply(inv, command, "maintenance off", say)


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
