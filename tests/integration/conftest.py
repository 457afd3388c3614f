"""Shared fixtures of the integration suite.

The suite shares one sandbox — the default one, whose inventory is `inventory/sandbox/` — across
tests where that is safe. It is recreated once per session so that provisioning starts from bare
hosts, as on a real first run; tests that need hosts of their own (the sandbox tests) use
throwaway names instead.
"""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from fleet_helpers import fab

from fleet import inventory
from fleet.inventory import Inventory
from fleet.sandbox.containers import DEFAULT_NAME, Sandbox
from fleet.sandbox.topology import default_topology

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fleet_sandbox() -> Sandbox:
    """The default 5-host sandbox, fresh for this session (FLEET_REUSE_SANDBOX=1 keeps it)."""
    sandbox = Sandbox(name=DEFAULT_NAME, root=ROOT)
    if os.environ.get("FLEET_REUSE_SANDBOX") != "1":
        sandbox.down()
    sandbox.up(default_topology(), http_port=8080, https_port=8443)
    return sandbox


# Modules share the sandbox and build on each other: bare hosts first, then provisioning,
# then what needs a provisioned fleet, then what needs a deployed one.
# test_devstack needs no sandbox and runs first; test_browser needs a deployed fleet;
# test_examples replaces the reference app with other apps, so it comes last.
MODULE_ORDER = ["test_devstack", "test_sandbox", "test_provision", "test_app_live", "test_deploy",
                "test_browser", "test_hooks",
                "test_maintenance", "test_backups",
                "test_secrets_rotation", "test_nodes",
                "test_drills", "test_single_host", "test_examples"]


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        name = item.module.__name__.rsplit(".", 1)[-1]
        return MODULE_ORDER.index(name) if name in MODULE_ORDER else len(MODULE_ORDER)

    items.sort(key=rank)  # stable: tests keep their order within a module


@pytest.fixture(scope="session")
def cold_provision(fleet_sandbox: Sandbox) -> subprocess.CompletedProcess:
    """The session's one cold `fab provision` of the fresh sandbox."""
    return fab("provision")


@pytest.fixture(scope="session")
def provisioned(cold_provision: subprocess.CompletedProcess) -> Inventory:
    """The provisioned sandbox's inventory; fails the test if provisioning failed."""
    assert cold_provision.returncode == 0, cold_provision.stdout[-3000:]
    return inventory.load("sandbox")
