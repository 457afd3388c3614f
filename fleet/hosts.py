"""Reach an environment's hosts directly over SSH, as its inventory says, several at once.

Plays change hosts; this module reads them (releases, upstreams, `fab status`, logs, the dumps
on the db host), writes only the kit's own bookkeeping (the deploy lock, the audit log, scratch
copies it removes at once) and runs the operator's one-off `fab app.run` commands.
docs/decisions.md says why the lock is not a play.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
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


class _Kept:
    """The connections `kept_open` holds: (environment, host) -> runner, for one thread."""

    def __init__(self) -> None:
        self.owner = threading.get_ident()
        self.runners: dict[tuple[str, str], SSHRunner] = {}
        self.lock = threading.Lock()


_kept: _Kept | None = None


@contextmanager
def kept_open() -> Iterator[None]:
    """Within it, `each` and `run` called from this thread keep one connection per host open
    and use it again, closing them all at the end: for reads that follow one another (a
    deploy's pre-flight reads every host three times), each of which would otherwise pay an
    SSH handshake per host. Other threads connect as always."""
    global _kept
    if _kept is not None:  # already inside one: it closes them
        yield
        return
    _kept = _Kept()
    try:
        yield
    finally:
        kept, _kept = _kept, None
        for r in kept.runners.values():
            r.close()


def each(inv: Inventory, hosts: Iterable[str], work: Callable[[SSHRunner], T]) -> dict[str, T]:
    """Run `work` on every host in parallel; host -> what it returned."""
    hosts = list(dict.fromkeys(hosts))
    if not hosts:
        return {}
    kept = _kept if _kept is not None and _kept.owner == threading.get_ident() else None

    def one(host: str) -> T:
        if kept is None:
            r = runner(inv, host)
            try:
                return work(r)
            finally:
                r.close()
        with kept.lock:
            r = kept.runners.get((inv.env, host))
            if r is None:
                r = kept.runners[(inv.env, host)] = runner(inv, host)
        return work(r)

    with ThreadPoolExecutor(max_workers=min(16, len(hosts))) as pool:
        return dict(zip(hosts, pool.map(one, hosts), strict=True))


def run(inv: Inventory, hosts: Iterable[str], command: str,
        timeout: float | None = 60) -> dict[str, Result]:
    """The same shell command (as root) on every host in parallel."""
    return each(inv, hosts, lambda r: r.run(command, timeout=timeout))
