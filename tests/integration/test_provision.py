"""Provisioning the sandbox for real: cold run, a no-op second run, and `fab verify`.

Uses the session's fresh 5-host sandbox (tests/integration/conftest.py), so the first run starts
from bare hosts. The tests run in order and later ones need the earlier ones.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from fleet_helpers import fab

from fleet import ansible


@pytest.fixture(scope="module")
def cold_run(cold_provision) -> subprocess.CompletedProcess:
    return cold_provision


def test_cold_provision_converges_every_host(cold_run, fleet_sandbox):
    assert cold_run.returncode == 0, cold_run.stdout[-4000:] + cold_run.stderr[-2000:]
    recap = ansible.parse_recap(cold_run.stdout)
    assert set(recap) == {h.name for h in fleet_sandbox.hosts()}
    assert all(r.healthy for r in recap.values())
    if os.environ.get("FLEET_REUSE_SANDBOX") != "1":  # a reused sandbox is not bare
        assert all(r.changed > 0 for r in recap.values())
    assert "pre-flight: inventory 'sandbox' valid, 5 host(s) reachable" in cold_run.stdout


def test_second_provision_changes_nothing(cold_run):
    assert cold_run.returncode == 0
    second = fab("provision")
    assert second.returncode == 0, second.stdout[-4000:]
    recap = ansible.parse_recap(second.stdout)
    assert len(recap) == 5
    assert {host: r.changed for host, r in recap.items() if r.changed} == {}


def test_verify_passes(cold_run):
    assert cold_run.returncode == 0
    result = fab("verify")
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def test_check_mode_reports_no_change(cold_run):
    assert cold_run.returncode == 0
    result = fab("provision", "--check", "--limit", "lb1")
    assert result.returncode == 0, result.stdout[-4000:]
    assert ansible.parse_recap(result.stdout)["lb1"].changed == 0


def test_unknown_environment_is_refused_before_any_host(fleet_sandbox):
    result = fab("provision", "--env", "nosuchenv")
    assert result.returncode != 0
    assert "no inventory directory" in result.stdout + result.stderr
