"""The tier firewall as the inventory defines it: who may reach which port of which host.

Pure Python over an Inventory (fleet.inventory.load), no host is contacted. It reads the same
service table the firewall role renders its rule set from (`firewall_services`: the role's
default, or the inventory's own), so `fab verify` can try every (from host, to host, port)
pair from inside the hosts and hold each answer against what the inventory says.

`python -m fleet.firewall [ENV]` prints the matrix and its counts.
"""

from __future__ import annotations

import ipaddress
import re
import sys
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fleet import inventory
from fleet.inventory import Inventory
from fleet.settings import role_defaults

# `"{{ name | default(N) }}"`: the only template form the service ports use.
_PORT_TEMPLATE = re.compile(r"\{\{\s*(\w+)\s*\|\s*default\((\d+)\)\s*\}\}")

# A probe run inside a host (python3 only, no kit code there): one JSON verdict per target.
PROBE_SCRIPT = (Path(__file__).resolve().parent / "port_probe.py").read_text()


class FirewallError(ValueError):
    """The inventory's firewall settings cannot be read; the message names the culprit."""


@dataclass(frozen=True)
class Service:
    name: str
    port: int
    groups: tuple[str, ...]
    from_groups: tuple[str, ...] = ()
    from_anywhere: bool = False


@dataclass(frozen=True)
class Pair:
    """One probe: from `source` to `target`'s private address on `port`."""

    source: str
    target: str
    address: str
    port: int
    service: str
    allowed: bool

    @property
    def expected(self) -> frozenset[str]:
        """The probe answers that agree with the firewall.

        An allowed port may also answer with a TCP reset: the firewall let the packet through
        and nothing listens yet (gunicorn before the first deploy, a stopped gunicorn slot).
        Whether the services run is for the other verify modules to say.
        """
        return frozenset({"open", "closed"}) if self.allowed else frozenset({"filtered"})


def _flag(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


def _setting(hostvars: Mapping[str, Any], name: str, defaults: Mapping[str, Any]) -> Any:
    return hostvars.get(name, defaults.get(name))


def _port(raw: Any, host: str, hostvars: Mapping[str, Any], where: str) -> int:
    """A service port for `host`: a number, or `{{ var | default(N) }}` resolved there."""
    value = raw
    match = _PORT_TEMPLATE.fullmatch(str(raw).strip())
    if match:
        name, fallback = match.groups()
        value = hostvars.get(name, fallback)
        if isinstance(value, str) and "{{" in value:
            value = fallback
    try:
        if isinstance(value, bool):
            raise ValueError
        port = int(value)
    except (TypeError, ValueError):
        raise FirewallError(f"host {host}: {where} port {raw!r} is not a port number") from None
    if not 1 <= port <= 65535:
        raise FirewallError(f"host {host}: {where} port {port} is not between 1 and 65535")
    return port


def services(inv: Inventory, host: str,
             defaults: Mapping[str, Any] | None = None) -> list[Service]:
    """`firewall_services` as `host` sees it, with its ports resolved."""
    defaults = role_defaults() if defaults is None else defaults
    hostvars = inv.hostvars[host]
    table = _setting(hostvars, "firewall_services", defaults)
    if not isinstance(table, list):
        raise FirewallError(f"host {host}: firewall_services must be a list, got {table!r}")
    found = []
    for index, entry in enumerate(table):
        where = f"firewall_services[{index}]"
        if not isinstance(entry, Mapping) or "port" not in entry or "groups" not in entry:
            raise FirewallError(f"host {host}: {where} needs at least port and groups, got "
                                f"{entry!r}")
        name = str(entry.get("name", where))
        found.append(Service(
            name=name,
            port=_port(entry["port"], host, hostvars, f"{where} ({name})"),
            groups=tuple(entry["groups"]),
            from_groups=tuple(entry.get("from_groups") or ()),
            from_anywhere=_flag(entry.get("from_anywhere", False))))
    return found


def _networks(inv: Inventory, host: str, name: str, defaults: Mapping[str, Any]) -> list:
    value = _setting(inv.hostvars[host], name, defaults) or []
    if not isinstance(value, list):
        raise FirewallError(f"host {host}: {name} must be a list of networks, got {value!r}")
    try:
        return [ipaddress.ip_network(str(v), strict=False) for v in value]
    except ValueError as exc:
        raise FirewallError(f"host {host}: {name}: {exc}") from None


def _address(inv: Inventory, host: str) -> str:
    return str(inv.hostvars[host].get("fleet_private_address") or host)


def _inside(address: str, networks: list) -> bool:
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return False
    return any(ip.version == n.version and ip in n for n in networks)


@dataclass(frozen=True)
class Opening:
    """A port `host` opens: to everyone, or to these addresses and networks."""

    port: int
    service: str
    anywhere: bool
    sources: frozenset[str]
    networks: tuple

    def admits(self, address: str) -> bool:
        return self.anywhere or address in self.sources or _inside(address, list(self.networks))


def openings(inv: Inventory, host: str,
             defaults: Mapping[str, Any] | None = None) -> list[Opening]:
    """Every port `host` opens, SSH first, as its rendered rule set does."""
    defaults = role_defaults() if defaults is None else defaults
    ssh_port = _port(_setting(inv.hostvars[host], "firewall_ssh_port", defaults) or 22, host,
                     inv.hostvars[host], "firewall_ssh_port")
    found = [Opening(ssh_port, "ssh", False, frozenset(),
                     tuple(_networks(inv, host, "firewall_admin_networks", defaults)))]
    control = tuple(_networks(inv, host, "firewall_control_networks", defaults))
    for service in services(inv, host, defaults):
        if host not in inv.hosts_of(*service.groups):
            continue
        sources = frozenset(_address(inv, h) for h in inv.hosts_of(*service.from_groups))
        found.append(Opening(service.port, service.name, service.from_anywhere, sources,
                             () if service.from_anywhere else control))
    return found


def enabled(inv: Inventory, host: str, defaults: Mapping[str, Any] | None = None) -> bool:
    defaults = role_defaults() if defaults is None else defaults
    return _flag(_setting(inv.hostvars[host], "firewall_enabled", defaults))


def probed_ports(inv: Inventory, defaults: Mapping[str, Any] | None = None) -> list[int]:
    """Every port any host of the fleet opens (SSH included): what each host is probed on."""
    defaults = role_defaults() if defaults is None else defaults
    return sorted({o.port for h in inv.hosts for o in openings(inv, h, defaults)})


def matrix(inv: Inventory, defaults: Mapping[str, Any] | None = None) -> list[Pair]:
    """Every (from host, to host, port) pair between two different hosts, allowed or not.

    A host's traffic to itself goes over loopback, which the firewall always accepts, so it is
    left out. A host with firewall_enabled false accepts everything.
    """
    defaults = role_defaults() if defaults is None else defaults
    ports = probed_ports(inv, defaults)
    pairs = []
    for target in inv.hosts:
        address = _address(inv, target)
        opened = openings(inv, target, defaults)
        on = enabled(inv, target, defaults)
        for source in inv.hosts:
            if source == target:
                continue
            from_address = _address(inv, source)
            for port in ports:
                matching = [o for o in opened if o.port == port]
                admitting = [o for o in matching if o.admits(from_address)]
                allowed = not on or bool(admitting)
                named = admitting or matching
                service = "+".join(sorted({o.service for o in named})) or "-"
                pairs.append(Pair(source, target, address, port, service, allowed))
    return pairs


def counts(pairs: list[Pair]) -> tuple[int, int]:
    """(allowed, refused) pairs."""
    allowed = sum(p.allowed for p in pairs)
    return allowed, len(pairs) - allowed


def table(pairs: list[Pair]) -> str:
    """The matrix as text: one line per allowed pair, then the counts."""
    lines = [f"{p.source:>10} -> {p.target:<10} {p.port:>5} {p.service}"
             for p in pairs if p.allowed]
    allowed, refused = counts(pairs)
    lines.append(f"{len(pairs)} pairs: {allowed} allowed, {refused} refused")
    return "\n".join(lines)


def main(argv: list[str]) -> int:
    env = argv[0] if argv else inventory.SANDBOX_ENV
    try:
        print(table(matrix(inventory.load(env))))
    except (inventory.InventoryError, FirewallError) as exc:
        print(f"firewall: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
