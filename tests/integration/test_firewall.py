"""The tier firewall over real SSH, on a throw-away one-host sandbox (not the default one).

Molecule reaches its containers with `docker exec`; here Ansible logs in over SSH as on a real
fleet, so the lockout check reads a real SSH_CLIENT, the confirmation needs a fresh SSH
connection through the new rules, and a rule set that does cut SSH is rolled back by the timer
on the host while the control node cannot reach it.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from fleet_helpers import ROOT

from fleet import ansible, hosts, inventory
from fleet.remote import Result
from fleet.sandbox.containers import Sandbox
from fleet.sandbox.topology import HostSpec

PLAYBOOK = """---
- name: Apply the tier firewall only
  hosts: all
  become: true
  gather_facts: false
  tasks:
    - name: Apply the tier firewall
      ansible.builtin.include_role:
        name: firewall
"""
TABLE = "nft list table inet flaskfleet"
CTL = "/usr/local/sbin/flaskfleet-firewall"


@pytest.fixture(scope="module")
def fw(tmp_path_factory):
    sandbox = Sandbox(name="fleetfw", root=ROOT)
    sandbox.down()
    sandbox.up([HostSpec("fw1", ("db", "redis"))], None, None)
    playbook = tmp_path_factory.mktemp("fw") / "firewall.yml"
    playbook.write_text(PLAYBOOK)
    try:
        yield sandbox, inventory.load(str(sandbox.inventory_path.parent)), playbook
    finally:
        sandbox.down()


def _root(inv: inventory.Inventory, command: str) -> Result:
    return hosts.run(inv, ["fw1"], command, timeout=30)["fw1"]


def _apply(inv: inventory.Inventory, playbook: Path, variables: dict | None = None):
    return ansible.run_with_vars(playbook, inv.path, variables or {}, say=lambda _line: None)


def test_applies_over_ssh_confirms_and_is_idempotent(fw):
    sandbox, inv, playbook = fw
    first = _apply(inv, playbook)
    assert first.ok, "\n".join(first.output[-40:])
    assert f"SSH from {sandbox.gateway()} is admitted by {sandbox.gateway()}/32" in \
        "\n".join(first.output)
    assert _root(inv, f"{CTL} status").stdout.strip() == "confirmed"
    assert "policy drop;" in _root(inv, TABLE).stdout
    again = _apply(inv, playbook)
    assert again.ok and again.changed == {"fw1": 0}, "\n".join(again.output[-40:])


def test_a_lockout_is_refused_before_anything_changes(fw):
    sandbox, inv, playbook = fw
    before = _root(inv, f"{TABLE}; sha256sum /etc/flaskfleet/firewall.nft").stdout
    result = _apply(inv, playbook, {"firewall_admin_networks": ["192.0.2.0/24"]})
    text = " ".join(" ".join(result.output).split())
    assert not result.ok
    assert "firewall_admin_networks (192.0.2.0/24) does not include " \
           f"{sandbox.gateway()}" in text
    assert "nothing was changed" in text
    assert _root(inv, f"{TABLE}; sha256sum /etc/flaskfleet/firewall.nft").stdout == before


def test_rules_that_cut_ssh_are_rolled_back_by_the_host(fw):
    _, inv, playbook = fw
    before = _root(inv, TABLE).stdout
    # The pre-flight is told the control node is inside the admin networks, but the address
    # SSH really comes from is not: the new rules cut SSH and no confirmation can arrive.
    started = time.monotonic()
    result = _apply(inv, playbook, {"firewall_admin_networks": ["192.0.2.0/24"],
                                    "firewall_control_address": "192.0.2.9",
                                    "firewall_revert_seconds": 25,
                                    "firewall_confirm_timeout": 10})
    assert not result.ok
    assert any("Reach the host over a fresh connection" in line for line in result.output)
    back = None
    while time.monotonic() - started < 90:
        if hosts.run(inv, ["fw1"], "true", timeout=10)["fw1"].ok:
            back = time.monotonic() - started
            break
        time.sleep(2)
    assert back is not None, "SSH did not come back within 90 s"
    print(f"SSH cut and restored by the timed revert after {back:.0f} s")
    assert _root(inv, f"{CTL} status").stdout.strip() == "reverted"
    assert _root(inv, TABLE).stdout == before
    # The next run with the inventory's own settings has nothing to change.
    again = _apply(inv, playbook)
    assert again.ok, "\n".join(again.output[-40:])
