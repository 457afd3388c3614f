"""Which hosts a sandbox has and which inventory groups they sit in.

Pure data: no Docker here, so the shape of a sandbox and the inventory written for it are
unit-tested without an engine.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass

GROUPS = ("loadbalancers", "app", "workers", "beat", "db", "redis")
MAX_APPS = 8
MAX_WORKERS = 8
HOST_NAME = re.compile(r"^[a-z][a-z0-9-]{0,30}$")


class TopologyError(ValueError):
    """A requested topology is not one the sandbox can build."""


@dataclass(frozen=True)
class HostSpec:
    name: str
    groups: tuple[str, ...]

    def __post_init__(self) -> None:
        if not HOST_NAME.match(self.name):
            raise TopologyError(
                f"host name {self.name!r} is invalid: use lower-case letters, digits and '-', "
                "starting with a letter, at most 31 characters")
        unknown = [g for g in self.groups if g not in GROUPS]
        if unknown:
            raise TopologyError(
                f"host {self.name}: unknown group(s) {', '.join(unknown)}; "
                f"known groups: {', '.join(GROUPS)}")
        if not self.groups:
            raise TopologyError(f"host {self.name}: needs at least one group")


def _count(option: str, value: object, maximum: int) -> int:
    # Fabric hands options over as strings when no type is declared; accept both.
    try:
        number = int(str(value), 10)
    except ValueError:
        raise TopologyError(f"--{option} must be a whole number, got {value!r}") from None
    if not 1 <= number <= maximum:
        raise TopologyError(f"--{option} must be between 1 and {maximum}, got {number}")
    return number


def default_topology(apps: object = 2, workers: object = 1) -> list[HostSpec]:
    """lb1, app1..N, worker1..M (worker1 also runs the single beat), db1 (MariaDB + Redis)."""
    n_apps = _count("apps", apps, MAX_APPS)
    n_workers = _count("workers", workers, MAX_WORKERS)
    hosts = [HostSpec("lb1", ("loadbalancers",))]
    hosts += [HostSpec(f"app{i}", ("app",)) for i in range(1, n_apps + 1)]
    hosts += [HostSpec("worker1", ("workers", "beat"))]
    hosts += [HostSpec(f"worker{i}", ("workers",)) for i in range(2, n_workers + 1)]
    hosts += [HostSpec("db1", ("db", "redis"))]
    return hosts


def check_unique(hosts: Iterable[HostSpec]) -> None:
    seen: set[str] = set()
    for host in hosts:
        if host.name in seen:
            raise TopologyError(f"host {host.name} appears twice")
        seen.add(host.name)


def inventory(
    addresses: dict[str, str],
    groups: dict[str, tuple[str, ...]],
    private_key: str,
    control_address: str | None = None,
) -> dict:
    """The Ansible YAML inventory of a sandbox: every group, even when empty.

    `addresses` maps host name to private address, `groups` host name to its groups.
    `control_address` is this machine as the hosts see it (the sandbox network's gateway):
    the tier firewall admits SSH from it, and the direct probes of the tests and the bench
    (gunicorn, MariaDB, Redis on their private addresses).
    """
    children: dict[str, dict] = {}
    for group in GROUPS:
        members = sorted(h for h, g in groups.items() if group in g)
        children[group] = {"hosts": {
            h: {"ansible_host": addresses[h], "fleet_private_address": addresses[h]}
            for h in members}}
    firewall = {} if not control_address else {
        "firewall_admin_networks": [f"{control_address}/32"],
        "firewall_control_networks": [f"{control_address}/32"],
    }
    return {
        "all": {
            "vars": {
                "fleet_env": "sandbox",
                "ansible_user": "fleet",
                "ansible_ssh_private_key_file": private_key,
                # Sandbox hosts get fresh host keys each time they are created.
                "ansible_ssh_common_args":
                    "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
                # The same for Mitogen's connections, which read this instead of the SSH args.
                "ansible_host_key_checking": False,
                "ansible_python_interpreter": "/usr/bin/python3",
                **firewall,
            },
            "children": children,
        }
    }
