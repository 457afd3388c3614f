"""`fab status`: one table of the whole fleet, read from every host at once.

Per host: its groups, the live release, supervisord's programs, the state of the services its
groups run, the app's readiness (app hosts, asked on the host itself, with the release its
version path names when that differs from the live link) and what every load balancer does with
it: up, drained, or failing. A load balancer keeps sending requests to a host that answers at
all, so a 4xx on the health path is "up" with the code shown (the path is probably not the
app's), and only no answer or a 5xx is "failing". An empty path is probed as `/`.
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
# The release a host's version path names, or `-` (no answer, not JSON, no release field).
VERSION_PROBE = ("import json, sys, urllib.request\n"
                 "try:\n"
                 "    body = urllib.request.urlopen(sys.argv[1], timeout=3).read()\n"
                 "    print(json.loads(body).get('release') or '-')\n"
                 "except Exception:\n"
                 "    print('-')\n")


@dataclass
class HostStatus:
    host: str
    groups: list[str]
    reachable: bool = True
    live: str | None = None
    programs: dict[str, str] = field(default_factory=dict)
    services: dict[str, str] = field(default_factory=dict)
    ready: str = ""
    serves: str | None = None  # the release the version path names, when it has one
    balancing: dict[str, str] = field(default_factory=dict)  # load balancer -> up/drained/...


def probe_command(url: str) -> str:
    """A shell command printing the HTTP status of `url` (or `down`), asked from the host."""
    return f"python3 -c {shlex.quote(PROBE)} {shlex.quote(url)}"


def path_or_root(path: str | None) -> str:
    return path or "/"


def host_command(services: list[str], root: str, ready_url: str | None,
                 version_url: str | None = None) -> str:
    parts = [releases.link_command("live", f"{shlex.quote(root)}/current")]
    parts += [f"printf 'svc:{s}=%s\\n' \"$(systemctl is-active {s})\"" for s in services]
    if "supervisor" in services:
        parts.append("supervisorctl status 2>/dev/null | awk '{print \"prog:\" $1 \"=\" $2}'")
    if ready_url:
        parts.append(f"printf 'ready=%s\\n' \"$({probe_command(ready_url)})\"")
    if version_url:
        version = f"python3 -c {shlex.quote(VERSION_PROBE)} {shlex.quote(version_url)}"
        parts.append(f"printf 'serves=%s\\n' \"$({version})\"")
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
        elif key == "serves":
            state.serves = None if value in ("", "-") else value


def _answer(code: str | None, path: str) -> str:
    """What a load balancer makes of a probe's answer: it only stops at no answer or a 5xx."""
    if code is None or not code.isdigit() or int(code) >= 500:
        return f"failing ({code or 'no probe'})"
    return "up" if code.startswith("2") else f"up ({code} on {path})"


def parse_lb(output: str, health_path: str = "/healthz") -> dict[str, str]:
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
            states[address] = _answer(probes.get(address), health_path)
    return states


def live_ports(inv: Inventory) -> dict[str, int]:
    """App host -> the gunicorn port the first load balancer sends its requests to (the host's
    live slot); app_gunicorn_port where that load balancer does not list it or cannot be read."""
    default = int(setting(inv, "app_gunicorn_port"))
    listed: dict[str, int] = {}
    lbs = inv.hosts_of("loadbalancers")
    if lbs:
        ctl = shlex.quote(setting(inv, "nginx_upstream_ctl"))
        result = hosts.run(inv, lbs[:1], f"{ctl} list", timeout=30)[lbs[0]]
        listed = upstream.ports(result.stdout) if result.ok else {}
    return {h: listed.get(inv.hostvars[h].get("fleet_private_address", h), default)
            for h in inv.hosts_of("app")}


def gather(inv: Inventory) -> list[HostStatus]:
    root = releases.app_root(inv)
    groups_of = {h: [g for g in inv.groups if h in inv.groups[g]] for h in inv.hosts}
    apps = set(inv.hosts_of("app"))
    port_of = live_ports(inv)

    def command(host: str) -> str:
        services = sorted({SERVICES[g] for g in groups_of[host] if g in SERVICES})
        address = inv.hostvars[host].get("fleet_private_address", host)
        if host not in apps:
            return host_command(services, root, None)
        port = port_of[host]
        ready = f"http://{address}:{port}{path_or_root(setting(inv, 'app_ready_path'))}"
        version_path = setting(inv, "app_version_path")
        version = f"http://{address}:{port}{version_path}" if version_path else None
        return host_command(services, root, ready, version)

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
    health_path = path_or_root(setting(inv, "app_health_path"))
    command_lb = lb_command(ctl, health_path, {a: port_of[h] for h, a in address_of.items()})
    lb_out = hosts.run(inv, inv.hosts_of("loadbalancers"), command_lb, timeout=30)
    for lb, result in lb_out.items():
        seen = parse_lb(result.stdout, health_path) if result.ok else {}
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
        health = s.ready or "-"
        if s.serves and s.serves != s.live:
            health += f", serves {s.serves}"
        rows.append((s.host, ",".join(s.groups), s.live or "-", _programs(s.programs, app_name),
                     services, health, balancing or "-"))
    return report.table(("host", "groups", "release", "programs", "services", "health",
                         "load balancers"), rows)
