"""The verify suite: testinfra against an environment's real inventory.

Run it with `fab verify [--env E]`, which passes `--ansible-inventory=inventory/<env>`. Each
module names the groups it checks (`testinfra_hosts = ["ansible://db"]`); values such as
passwords and addresses come from the same inventory, read with fleet.inventory.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet import inventory

HERE = Path(__file__).resolve().parent


def pytest_ignore_collect(collection_path, config):
    """Without an inventory there are no hosts to check: leave the modules alone."""
    if config.getoption("ansible_inventory", default=None):
        return None
    if collection_path.parent == HERE and collection_path.name.startswith("test_"):
        return True
    return None


@pytest.fixture(scope="session")
def fleet_inventory(pytestconfig) -> inventory.Inventory:
    return inventory.load(str(Path(pytestconfig.getoption("ansible_inventory")).resolve()))


@pytest.fixture()
def hostvars(host, fleet_inventory) -> dict:
    """The inventory variables of the host under test."""
    return fleet_inventory.hostvars[host.backend.get_hostname()]


@pytest.fixture()
def private_address(hostvars) -> str:
    return hostvars["fleet_private_address"]


@pytest.fixture()
def app_name(hostvars) -> str:
    return hostvars.get("app_name", "fleetapp")
