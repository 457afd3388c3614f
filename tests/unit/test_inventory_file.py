"""fleet.inventory_file: node.add / node.remove edit the operator's inventory in place.

Proven on copies of the shipped production example: comments, order and layout survive, the
result is still an inventory that fleet.inventory reads with the host in (or out of) its group.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from fleet import inventory, inventory_file

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "production.example"


@pytest.fixture
def env(tmp_path) -> Path:
    target = tmp_path / "production"
    shutil.copytree(EXAMPLE, target)
    return target


def test_add_then_remove_gives_back_the_same_file_byte_for_byte(env):
    original = (env / "hosts.yml").read_text()
    inventory_file.add_host(env, "app", "app3.example.com",
                            {"ansible_host": "203.0.113.23", "fleet_private_address": "10.0.0.23"})
    assert (env / "hosts.yml").read_text() != original
    assert inventory_file.remove_host(env, "app3.example.com") == [env / "hosts.yml"]
    assert (env / "hosts.yml").read_text() == original


def test_added_host_is_read_back_in_its_group_with_its_variables(env):
    inventory_file.add_host(env, "workers", "worker2.example.com",
                            {"ansible_host": "203.0.113.32", "fleet_private_address": "10.0.0.32"})
    inv = inventory.load("production", root=env.parent)
    assert inv.hosts_of("workers") == ["worker1.example.com", "worker2.example.com"]
    assert inv.hostvars["worker2.example.com"]["fleet_private_address"] == "10.0.0.32"
    text = (env / "hosts.yml").read_text()
    assert "# Host-specific settings go here" in text  # the operator's comments survive
    assert text.startswith("---")


def test_adding_a_host_already_in_the_group_changes_nothing(env):
    before = (env / "hosts.yml").read_text()
    inventory_file.add_host(env, "app", "app1.example.com", {"ansible_host": "192.0.2.1"})
    assert (env / "hosts.yml").read_text() == before


def test_an_existing_host_joins_another_group_without_repeating_its_variables(env):
    inventory_file.add_host(env, "workers", "app2.example.com", {})
    inv = inventory.load("production", root=env.parent)
    assert "app2.example.com" in inv.hosts_of("workers")
    assert inv.hostvars["app2.example.com"]["ansible_host"] == "203.0.113.22"


def test_remove_takes_the_host_out_of_every_group(env):
    changed = inventory_file.remove_host(env, "worker1.example.com")
    assert changed == [env / "hosts.yml"]
    inv = inventory.load("production", root=env.parent)
    assert "worker1.example.com" not in inv.hostvars
    assert inv.hosts_of("workers") == [] and inv.hosts_of("beat") == []


def test_remove_of_an_unknown_host_changes_no_file(env):
    before = (env / "hosts.yml").read_text()
    assert inventory_file.remove_host(env, "nobody.example.com") == []
    assert (env / "hosts.yml").read_text() == before


def test_a_group_no_file_defines_is_refused(env):
    before = (env / "hosts.yml").read_text()
    with pytest.raises(inventory_file.InventoryFileError, match="'canary'"):
        inventory_file.add_host(env, "canary", "app9.example.com", {})
    assert (env / "hosts.yml").read_text() == before
