"""Provisioning the sandbox for real: cold run, a no-op second run, and `fab verify`.

A second `fab provision` checks every host against its record of the first and runs nothing;
`--full` runs the playbook, which then changes nothing. A file edited and a service stopped by
hand make the next `fab provision` run the playbook, which puts both back.

Uses the session's fresh 5-host sandbox (tests/integration/conftest.py), so the first run starts
from bare hosts. The tests run in order and later ones need the earlier ones.
"""

from __future__ import annotations

import os
import subprocess

import pytest
from fleet_helpers import fab, on

from fleet import ansible, inventory


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
    second = fab("provision", "--full")
    assert second.returncode == 0, second.stdout[-4000:]
    recap = ansible.parse_recap(second.stdout)
    assert len(recap) == 5
    assert {host: r.changed for host, r in recap.items() if r.changed} == {}


def test_a_provision_with_nothing_to_do_runs_no_playbook(cold_run):
    assert cold_run.returncode == 0
    result = fab("provision")
    assert result.returncode == 0, result.stdout[-4000:]
    assert "converged: every host is as the last provision left it" in result.stdout, \
        result.stdout[-3000:]
    assert ansible.parse_recap(result.stdout) == {}


def test_a_file_edited_and_a_service_stopped_by_hand_are_put_back(cold_run):
    assert cold_run.returncode == 0
    inv = inventory.load("sandbox")
    lb, db = inv.hosts_of("loadbalancers")[0], inv.hosts_of("db")[0]
    conf = "/etc/nginx/nginx.conf"
    before = on(inv, lb, f"sha256sum {conf}")
    on(inv, lb, f"echo '# edited by hand' >> {conf}")
    on(inv, db, "systemctl stop redis-server")
    result = fab("provision")
    assert result.returncode == 0, result.stdout[-4000:]
    assert f"converged check: {lb}: changed since: {conf}" in result.stdout, result.stdout[-4000:]
    assert f"converged check: {db}: not running: redis-server.service" in result.stdout, \
        result.stdout[-4000:]
    recap = ansible.parse_recap(result.stdout)
    assert recap[lb].changed > 0 and recap[db].changed > 0, recap
    assert on(inv, lb, f"sha256sum {conf}") == before
    assert on(inv, db, "systemctl is-active redis-server").strip() == "active"
    again = fab("provision")
    assert again.returncode == 0 and "converged: every host" in again.stdout, again.stdout[-3000:]


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
