"""The tier firewall, tried from inside every host: every port of every other host answers as
the inventory says (fleet.firewall's matrix). Allowed ports connect or answer "nothing
listens" (a TCP reset: the packet got through); every other one is refused by the firewall or stays
silent for a second. The probes of one host run side by side, so its row costs about a second.
"""

from __future__ import annotations

import json
import time

import pytest

from fleet import firewall

testinfra_hosts = ["ansible://all"]
TIMEOUT_S = 1.0


@pytest.fixture()
def name(host) -> str:
    return host.backend.get_hostname()


@pytest.fixture()
def enabled(name, fleet_inventory) -> bool:
    if not firewall.enabled(fleet_inventory, name):
        pytest.skip(f"firewall_enabled is false for {name}: it runs no tier firewall")
    return True


def test_rules_are_loaded_and_confirmed(host, hostvars, enabled):
    table = hostvars.get("firewall_table", "flaskfleet")
    with host.sudo():
        listing = host.check_output(f"nft list table inet {table}")
        status = host.check_output(hostvars.get("firewall_ctl",
                                                "/usr/local/sbin/flaskfleet-firewall")
                                   + " status")
        rules = host.file(hostvars.get("firewall_rules_file", "/etc/flaskfleet/firewall.nft"))
        assert (rules.user, rules.group, rules.mode) == ("root", "root", 0o600)
    assert "policy drop;" in listing
    assert status == "confirmed"
    assert host.service("flaskfleet-firewall").is_enabled


def test_every_port_of_the_other_hosts_answers_as_the_inventory_says(host, name,
                                                                    fleet_inventory):
    pairs = [p for p in firewall.matrix(fleet_inventory) if p.source == name]
    if not pairs:
        pytest.skip(f"{name} is the only host: there is no other host to probe")
    targets = [f"{p.address}:{p.port}" for p in pairs]
    started = time.monotonic()
    result = host.run("python3 -c %s %s" + " %s" * len(targets),
                      firewall.PROBE_SCRIPT, str(TIMEOUT_S), *targets)
    elapsed = time.monotonic() - started
    assert result.rc == 0, result.stderr
    found = json.loads(result.stdout)
    wrong = [f"{name} -> {p.target} ({p.address}) port {p.port} [{p.service}]: "
             f"{found.get(f'{p.address}:{p.port}')}, expected {' or '.join(sorted(p.expected))}"
             for p in pairs if found.get(f"{p.address}:{p.port}") not in p.expected]
    allowed, refused = firewall.counts(pairs)
    assert not wrong, (f"{len(wrong)} of {len(pairs)} probes from {name} disagree with the "
                       f"inventory ({elapsed:.1f}s):\n" + "\n".join(wrong))
    print(f"{name}: {len(pairs)} probes, {allowed} allowed, {refused} refused, "
          f"{elapsed:.1f}s")
