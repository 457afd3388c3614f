"""Shared fixtures of the integration suite.

The suite shares one sandbox — the default one, whose inventory is `inventory/sandbox/` — across
tests where that is safe. It is recreated once per session so that provisioning starts from bare
hosts, as on a real first run; tests that need hosts of their own (the sandbox tests) use
throwaway names instead.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from fleet.sandbox import DEFAULT_NAME, Sandbox
from fleet.topology import default_topology

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def fleet_sandbox() -> Sandbox:
    """The default 5-host sandbox, fresh for this session (FLEET_REUSE_SANDBOX=1 keeps it)."""
    sandbox = Sandbox(name=DEFAULT_NAME, root=ROOT)
    if os.environ.get("FLEET_REUSE_SANDBOX") != "1":
        sandbox.down()
    sandbox.up(default_topology(), http_port=8080, https_port=8443)
    return sandbox
