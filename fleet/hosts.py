"""Reach an environment's hosts directly over SSH, as its inventory says, several at once.

Plays change hosts; this module reads them (releases, upstreams, `fab status`, logs, the dumps
on the db host), writes only the kit's own bookkeeping (the deploy lock, the audit log, scratch
copies it removes at once) and runs the operator's one-off `fab app.run` commands.
docs/decisions.md says why the lock is not a play.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from typing import TypeVar

from fleet.inventory import Inventory
from fleet.remote import Result, SSHRunner

T = TypeVar("T")


def runner(inv: Inventory, host: str) -> SSHRunner:
    """An SSH runner for one inventory host (its ansible_host, ansible_user and key)."""
    if host not in inv.hostvars:
        raise KeyError(f"{host} is not a host of inventory '{inv.env}'")
    hv = inv.hostvars[host]
    return SSHRunner(host, str(hv.get("ansible_host", host)),
                     str(hv.get("ansible_user", "root")),
                     key_file=hv.get("ansible_ssh_private_key_file") or None,
                     port=int(hv.get("ansible_port", 22)))


def each(inv: Inventory, hosts: Iterable[str], work: Callable[[SSHRunner], T]) -> dict[str, T]:
    """Run `work` on every host in parallel; host -> what it returned."""
    hosts = list(dict.fromkeys(hosts))
    if not hosts:
        return {}

    def one(host: str) -> T:
        r = runner(inv, host)
        try:
            return work(r)
        finally:
            r.close()

    with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
        return dict(zip(hosts, pool.map(one, hosts), strict=True))


def run(inv: Inventory, hosts: Iterable[str], command: str,
        timeout: float | None = 60) -> dict[str, Result]:
    """The same shell command (as root) on every host in parallel."""
    return each(inv, hosts, lambda r: r.run(command, timeout=timeout))
