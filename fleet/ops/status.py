"""`fab status`: one table of the whole fleet, read from every host at once.

Per host: its groups, the live release, supervisord's programs, the state of the services its
groups run, the app's readiness (app hosts, asked on the host itself) and what every load
balancer does with it: up, drained, or failing (in the upstream but not answering /healthz).
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass, field

from fleet import hosts, report, upstream
from fleet.inventory import Inventory
from fleet.ops import releases
from fleet.settings import setting

SERVICES = {"loadbalancers": "nginx", "db": "mariadb", "redis": "redis-server",
            "app": "supervisor", "workers": "supervisor", "beat": "supervisor"}
PROBE = ("import sys, urllib.request\n"
         "try:\n"
         "    print(urllib.request.urlopen(sys.argv[1], timeout=3).status)\n"
         "except Exception as exc:\n"
         "    print(getattr(exc, 'code', 'down'))\n")


@dataclass
class HostStatus:
    host: str
    groups: list[str]
    reachable: bool = True
    live: str | None = None
    programs: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    ready: str = ""
    balancing: dict[str, str] = field(default_factory=dict)  # load balancer -> up/drained/...


def probe_command(url: str) -> str:
    """A shell command printing the HTTP status of `url` (or `down`), asked from the host."""
    return f"python3 -c {shlex.quote(PROBE)} {shlex.quote(url)}"


def host_command(services: list[str], root: str, ready_url: str | None) -> str:
    parts = [releases.link_command("live", f"{shlex.quote(root)}/current")]
    parts += [f"printf 'svc:{s}=%s\\n' \"$(systemctl is-active {s})\"" for s in services]
    if "supervisor" in services:
        parts.append("supervisorctl status 2>/dev/null | awk '{print \"prog:\" $1 \"=\" $2}'")
    if ready_url:
        parts.append(f"printf 'ready=%s\\n' \"$({probe_command(ready_url)})\"")
    return "; ".join(parts) + "; true"


def lb_command(ctl: str, health_path: str, port_of: dict[str, int]) -> str:
    """List the upstream, then probe every app host (probes of drained ones are not used)."""
    probes = [f"printf 'probe:{address}=%s\\n' "
              f"\"$({probe_command(f'http://{address}:{port}{health_path}')})\""
              for address, port in port_of.items()]
    return f"{shlex.quote(ctl)} list; " + "; ".join(probes) + "; true"


def parse_host(state: HostStatus, output: str) -> None:
    for line in output.splitlines():
        key, _, value = line.partition("=")
        if key == "live":
            state.live = releases.release_name(value)
        elif key.startswith("svc:"):
            state.services[key[4:]] = value or "unknown"
        elif key.startswith("prog:"):
            state.programs[key[5:]] = value
        elif key == "ready":
            state.ready = "ready" if value == "200" else f"not ready ({value})"


def parse_lb(output: str) -> dict[str, str]:
    """address -> up | drained | failing, from `flaskfleet-upstream list` and the probes."""
    probes: dict[str, str] = {}
    for line in output.splitlines():
        if line.startswith("probe:"):
            address, _, code = line[6:].partition("=")
            probes[address] = code
    listed = upstream.parse(output)
    states = {}
    for address, state in listed.items():
        if state == "down":
            states[address] = "drained"
        else:
            states[address] = "up" if probes.get(address) == "200" else "failing"
    return states


def gather(inv: Inventory) -> list[HostStatus]:
    root = releases.app_root(inv)
    groups_of = {h: [g for g in inv.groups if h in inv.groups[g]] for h in inv.hosts}
    apps = set(inv.hosts_of("app"))
    port = int(setting(inv, "app_gunicorn_port"))

    def command(host: str) -> str:
        services = sorted({SERVICES[g] for g in groups_of[host] if g in SERVICES})
        address = inv.hostvars[host].get("fleet_private_address", host)
        ready_path = setting(inv, "app_ready_path")
        ready = f"http://{address}:{port}{ready_path}" if host in apps else None
        return host_command(services, root, ready)

    outputs = hosts.each(inv, inv.hosts, lambda r: r.run(command(r.name), timeout=30))
    states = []
    for host in inv.hosts:
        state = HostStatus(host, groups_of[host])
        result = outputs[host]
        if result.ok:
            parse_host(state, result.stdout)
        else:
            state.reachable = False
        states.append(state)

    address_of = {h: inv.hostvars[h].get("fleet_private_address", h) for h in apps}
    ctl = setting(inv, "nginx_upstream_ctl")
    command_lb = lb_command(ctl, setting(inv, "app_health_path"),
                            {a: port for a in address_of.values()})
    lb_out = hosts.run(inv, inv.hosts_of("loadbalancers"), command_lb, timeout=30)
    for lb, result in lb_out.items():
        seen = parse_lb(result.stdout) if result.ok else {}
        for state in states:
            if state.host in apps:
                state.balancing[lb] = seen.get(address_of[state.host],
                                               "unknown" if not result.ok else "absent")
    return states


def _programs(programs: dict[str, str], app_name: str) -> str:
    short = {name.split(":")[-1].removeprefix(f"{app_name}-"): s for name, s in programs.items()}
    return " ".join(f"{name}:{s}" for name, s in sorted(short.items())) or "-"


def table(states: list[HostStatus], app_name: str = "fleetapp") -> str:
    rows = []
    for s in states:
        if not s.reachable:
            rows.append((s.host, ",".join(s.groups), "?", "UNREACHABLE", "", "", ""))
            continue
        services = " ".join(f"{name}:{state}" for name, state in sorted(s.services.items()))
        balancing = " ".join(f"{lb}:{v}" for lb, v in sorted(s.balancing.items()))
        rows.append((s.host, ",".join(s.groups), s.live or "-", _programs(s.programs, app_name),
                     services, s.ready or "-", balancing or "-"))
    return report.table(("host", "groups", "release", "programs", "services", "health",
                         "load balancers"), rows)
