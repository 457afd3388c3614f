"""`fab provision`: pre-flight, then playbooks/site.yml, then a summary.

Nothing is changed on any host until the pre-flight has passed: the inventory is valid (groups,
types, secrets) and every targeted host answers over SSH. A provision of the whole environment
first checks every host against its record of the last provision (fleet/ops/converged.py) and
does not run the playbook when all of them match; `full` runs it anyway.
"""

from __future__ import annotations

import time
from dataclasses import dataclass
from pathlib import Path

from fleet import ansible, hosts, inventory, report
from fleet.ops import converged
from fleet.sandbox import secrets

SITE = ansible.ROOT / "playbooks" / "site.yml"


class ProvisionError(RuntimeError):
    """Provisioning could not start or did not finish; the message says why."""


@dataclass
class Provisioned:
    env: str
    result: ansible.PlaybookResult | None  # None: every host was converged, nothing ran
    preflight_seconds: float
    checked_seconds: float = 0.0


def check_local(env: str, say: ansible.Say = print, root: Path = inventory.INVENTORY_ROOT,
                check: bool = False) -> inventory.Inventory:
    """Every check that needs no host: the inventory, its types, relations and secrets.

    The sandbox's own generated inventory (and only it) gets random secrets the first time,
    except under --check, which never writes a file.
    """
    try:
        inv = inventory.load(env, root)
        if inv.is_sandbox:
            missing = secrets.missing_sandbox_secrets(inv.path)
            where = inventory.shown(inv.path / secrets.SECRETS_FILE)
            if missing and check:
                raise ProvisionError(
                    f"pre-flight failed, nothing was changed: the sandbox has no "
                    f"{', '.join(missing)} yet in {where} and --check writes no file; run it "
                    "once without --check")
            if missing:
                secrets.ensure_sandbox_secrets(inv.path)
                say(f"pre-flight: generated sandbox secrets {', '.join(missing)} into {where}")
        inv = inventory.check(env, root)
    except inventory.InventoryError as exc:
        raise ProvisionError(f"pre-flight failed, nothing was changed.\n{exc}") from None
    for warning in inv.warnings:
        say(f"pre-flight: warning: {warning}")
    return inv


def reach(inv: inventory.Inventory, limit: str | None = None,
          say: ansible.Say = print, provisioned: bool = False) -> list[str]:
    """Reach every targeted host over SSH; the hosts, or ProvisionError naming who did not answer.

    The only step of the pre-flight that touches hosts: it runs after every local check. A host
    to provision answers Ansible's ping (its Python, as Ansible runs it); `provisioned` hosts (a
    deploy, a rollback) answer `sudo -n true` over a direct SSH connection, without the seconds
    an Ansible start-up costs.
    """
    targets = ansible.list_hosts(inv.path, limit) if limit else inv.hosts
    if not targets:
        raise ProvisionError(f"pre-flight failed: --limit {limit!r} matches no host of {inv.env}")
    reached = _answers(inv, targets) if provisioned else ansible.ping(inv.path, limit)
    problems = [f"{host}: {reached[host] if host in reached else 'no answer'}"
                for host in targets if reached.get(host, "no answer") is not None]
    if problems:
        raise ProvisionError("pre-flight failed, nothing was changed: unreachable host(s)\n"
                             + "\n".join(f"  - {p}" for p in problems))
    say(f"pre-flight: inventory '{inv.env}' valid, {len(targets)} host(s) reachable")
    return targets


def _answers(inv: inventory.Inventory, targets: list[str]) -> dict[str, str | None]:
    """Host -> None when it ran `true` as root over SSH (fleet/hosts.py), else the reason."""
    found = hosts.run(inv, targets, "true", timeout=30)
    return {host: None if result.ok else
            ((result.stderr or result.stdout).strip().removeprefix(f"{host}: ")
             or "no answer")[:300]
            for host, result in found.items()}


def preflight(env: str, limit: str | None = None, say: ansible.Say = print,
              root: Path = inventory.INVENTORY_ROOT, check: bool = False) -> inventory.Inventory:
    """Check the inventory, then reach every targeted host; raise ProvisionError if not."""
    inv = check_local(env, say, root, check)
    reach(inv, limit, say)
    return inv


def provision(env: str = inventory.SANDBOX_ENV, limit: str | None = None, check: bool = False,
              say: ansible.Say = print, full: bool = False) -> Provisioned:
    """Provision an environment (site.yml); raise ProvisionError on any failure.

    Without `limit`, `check` or `full`, the playbook runs only when a host does not match its
    record of the last provision (fleet/ops/converged.py); each such host and why is said."""
    started = time.monotonic()
    inv = preflight(env, limit, say, check=check)
    preflight_seconds = time.monotonic() - started
    if not (limit or check or full):
        started = time.monotonic()
        behind = {h: why for h, why in converged.check(inv).items() if why}
        checked = time.monotonic() - started
        if not behind:
            done = Provisioned(env, None, preflight_seconds, checked)
            say(summary(done))
            return done
        for host, why in sorted(behind.items()):
            say(f"converged check: {host}: {why}")
        say(f"converged check: {len(behind)} of {len(inv.hosts)} host(s) differ from the last "
            "provision; running the playbook on every host")
    result = ansible.run_playbook(SITE, inv.path, limit=limit, check=check, say=say)
    done = Provisioned(env=env, result=result, preflight_seconds=preflight_seconds)
    say("")
    say(summary(done))
    if not result.ok:
        failed = ", ".join(result.failed_hosts) or "see the output above"
        raise ProvisionError(f"provision of {env} failed (exit {result.returncode}) on: {failed}")
    if not check:
        converged.record(inv, list(result.recap), result.written, say)
    return done


def summary(done: Provisioned) -> str:
    """Per-host recap and the slowest tasks, for the end of a run; or why nothing ran."""
    if done.result is None:
        return (f"converged: every host is as the last provision left it, from this inventory and "
                f"kit (files, services, firewall checked in {done.checked_seconds:.1f}s); the "
                f"playbook was not run (`fab provision --full` runs it anyway)\n"
                f"pre-flight {done.preflight_seconds:.1f}s")
    rows = [(host, r.ok, r.changed, r.failed, r.unreachable)
            for host, r in sorted(done.result.recap.items())]
    lines = [report.table(("host", "ok", "changed", "failed", "unreachable"), rows), ""]
    lines += ansible.timing_summary(done.result)
    lines.append(f"pre-flight {done.preflight_seconds:.1f}s, "
                 f"playbook {done.result.elapsed:.1f}s")
    return "\n".join(lines)
