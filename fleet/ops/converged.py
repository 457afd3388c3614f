"""A re-provision that has nothing to do, shown rather than run.

After a provision run that succeeded, each host it ran on keeps a record of it in RECORD_DIR:
the digest of the inventory and kit it came from (`digest`, written last), the sha256 of every
file the run's template and copy tasks wrote there (`files.sha256`), the systemd services
running at its end (`units`) and a digest of the firewall ruleset as loaded (`nft.sha256`).
The next `fab provision` of the whole environment checks every host against its record, one
SSH command each. When all of them match, a run of the playbook would find its files, services
and ruleset as it leaves them, and it is not run. Anything else (another inventory or kit, a file
edited, a service stopped, a changed ruleset, no record) runs the playbook, after saying why;
`fab provision --full` always runs it.

The record does not cover database users and grants, file modes and owners, packages without a
service, or what a command task sets: a change made there by hand is what `fab verify` finds
and `fab provision --full` undoes.
"""

from __future__ import annotations

import shlex
from collections.abc import Callable, Iterable

from fleet import hosts
from fleet.inventory import Inventory
from fleet.ops.quick_rollback import settings_digest

RECORD_DIR = "/var/lib/flaskfleet/provisioned"
# What a provision renders from besides the inventory: the playbooks, roles, templates and the
# pinned toolchain (Ansible and its collections), and how Ansible is configured.
KIT_PARTS = ("playbooks", "roles", "templates", "ansible.cfg", "requirements.txt",
             "constraints.txt")
CONVERGED = "converged"
# Services that come and go with logins, not with the provision.
TRANSIENT_UNITS = r"^user@\|^user-runtime-dir@\|^session-"

Say = Callable[[str], None]


def digest(inv: Inventory) -> str:
    return settings_digest(inv, KIT_PARTS)


def _ruleset_sum(directory: str) -> str:
    return f"(nft -s list ruleset 2>/dev/null || true) | sha256sum > {directory}/nft.sha256"


def record_command(wanted: str, files: Iterable[str]) -> str:
    """The shell command that records a provision on one host; the digest goes last, so a
    record cut short never matches."""
    d = RECORD_DIR
    listed = " ".join(shlex.quote(f) for f in sorted(files))
    return "; ".join([
        "set -e",
        f"mkdir -p {d}",
        f"rm -f {d}/digest",
        f"for f in {listed}; do if [ -f \"$f\" ]; then sha256sum -- \"$f\"; fi; done"
        f" > {d}/files.sha256" if listed else f": > {d}/files.sha256",
        "systemctl list-units --type=service --state=running --no-legend --plain"
        f" | awk '{{print $1}}' | grep -v '{TRANSIENT_UNITS}' | sort > {d}/units",
        _ruleset_sum(d),
        f"echo {wanted} > {d}/digest"])


def check_command(wanted: str) -> str:
    """The shell command that compares one host with its record: one line, CONVERGED or why
    not."""
    d = RECORD_DIR
    return "\n".join([
        f"if [ ! -e {d}/digest ]; then echo 'no record of a provision'; exit 0; fi",
        f"if [ \"$(cat {d}/digest)\" != {wanted} ]; then",
        "  echo 'provisioned from another inventory or kit'; exit 0; fi",
        f"changed=$(sha256sum --quiet --check {d}/files.sha256 2>/dev/null"
        " | sed 's/: FAILED.*//' | head -n 3 | tr '\\n' ' ')",
        "if [ -n \"$changed\" ]; then echo \"changed since: $changed\"; exit 0; fi",
        f"down=$(systemctl is-active $(cat {d}/units) 2>/dev/null | paste -d ' ' {d}/units -"
        " | awk '$2 != \"active\" {print $1}' | head -n 3 | tr '\\n' ' ')",
        "if [ -n \"$down\" ]; then echo \"not running: $down\"; exit 0; fi",
        f"if [ \"$( (nft -s list ruleset 2>/dev/null || true) | sha256sum)\" != "
        f"\"$(cat {d}/nft.sha256)\" ]; then echo 'the firewall ruleset changed'; exit 0; fi",
        f"echo {CONVERGED}"])


def check(inv: Inventory) -> dict[str, str | None]:
    """Host -> None when it matches its record of the last provision, else why not."""
    command = check_command(digest(inv))
    found = hosts.run(inv, inv.hosts, command, timeout=60)
    verdicts: dict[str, str | None] = {}
    for host, result in found.items():
        line = result.stdout.strip().splitlines()[-1:] if result.ok else []
        if line == [CONVERGED]:
            verdicts[host] = None
        else:
            verdicts[host] = line[0].strip() if line else (
                f"the check did not run: {(result.stderr or result.stdout).strip()[-200:]}")
    return verdicts


def record(inv: Inventory, ran_on: Iterable[str], written: dict[str, set[str]],
           say: Say) -> None:
    """After a provision run that succeeded: record it on every host it ran on. Best effort: a
    host without a record only runs the playbook the next time."""
    wanted = digest(inv)
    commands = {h: record_command(wanted, written.get(h, set())) for h in ran_on}
    found = hosts.each(inv, commands, lambda r: r.run(commands[r.name], timeout=60))
    missed = sorted(h for h, result in found.items() if not result.ok)
    if missed:
        say(f"provision not recorded on {', '.join(missed)}: the next `fab provision` runs "
            "the playbook there")
