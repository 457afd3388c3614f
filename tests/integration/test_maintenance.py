"""Maintenance mode on the real sandbox (issue 15): fab maintenance.on/off at the load balancer.

Every request from the control machine reaches lb1 from one address (its Docker network's
gateway), so the allow-list is tested with two sources: the control machine and app1 (a
sandbox host that curls lb1's private address). First with an empty allow-list, both get the
page; then lb1 is provisioned with the control machine's address allow-listed: a steady probe
from there sees no failed request while maintenance goes on and off, app1 still gets 503.
"""

from __future__ import annotations

import json
import shlex
import shutil
import time

import pytest
from fleet_helpers import LB_URL, ROOT, fab, get, on, versions

from fleet import ansible, inventory
from fleet.ops import deploy
from fleet.proof.load import BackgroundLoad

APP = ROOT / "app"
SITE = ROOT / "playbooks" / "site.yml"


@pytest.fixture(scope="module")
def fleet(provisioned):
    inv = inventory.load("sandbox")
    if not all(v.startswith("2") for v in versions(inv).values()):
        assert deploy.deploy(app_dir=APP).ok  # the module also runs on its own
    yield inv
    fab("maintenance.off")  # whatever a failed test left behind


def _lb(inv) -> str:
    return inv.hostvars[inv.hosts_of("loadbalancers")[0]]["fleet_private_address"]


def _from_app1(inv, path: str) -> tuple[int, dict[str, str], str]:
    """GET through lb1 from app1, a client outside the allow-list: status, headers, body."""
    url = f"https://{_lb(inv)}{path}"
    out = on(inv, inv.hosts_of("app")[0],
             f"curl -sk -D /tmp/mm.headers -o /tmp/mm.body -w '%{{http_code}}' {shlex.quote(url)};"
             " echo; cat /tmp/mm.headers; echo '--body--'; cat /tmp/mm.body")
    status, rest = out.split("\n", 1)
    head, body = rest.split("--body--\n", 1) if "--body--\n" in rest else (rest, "")
    headers = {}
    for line in head.splitlines()[1:]:
        if ":" in line:
            name, value = line.split(":", 1)
            headers[name.strip().lower()] = value.strip()
    return int(status), headers, body


def _control_address(inv) -> str:
    """The address lb1 sees the control machine's requests come from (its access log)."""
    marker = f"/healthz?control-probe={time.time_ns()}"
    assert get(marker)[0] == 200
    line = on(inv, inv.hosts_of("loadbalancers")[0],
              f"grep -F {shlex.quote(marker)} /var/log/nginx/fleetapp.access.log | tail -n 1")
    return line.split()[0]


def _allow(inv, addresses: list[str]) -> None:
    result = ansible.run_with_vars(SITE, inv.path, {"nginx_maintenance_allow": addresses},
                                   limit="loadbalancers", say=lambda _: None)
    assert result.ok, "\n".join(result.output[-40:])


def test_on_everyone_outside_the_allow_list_gets_503(fleet):
    inv = fleet
    result = fab("maintenance.on")
    assert result.returncode == 0, result.stderr
    try:
        status, body = get("/")
        assert status == 503 and b"Down for maintenance" in body
        status, headers, page = _from_app1(inv, "/")
        assert status == 503 and headers["retry-after"] == "120"
        assert headers["content-type"].startswith("text/html")
        status, headers, body = _from_app1(inv, "/api/papers")
        assert status == 503 and headers["content-type"] == "application/json"
        assert json.loads(body)["error"] == "maintenance"
        listed = fab("maintenance.status")
        assert "on since" in listed.stdout, listed.stdout
        assert "maintenance: lb1: on since" in fab("status").stdout
    finally:
        result = fab("maintenance.off")
    assert result.returncode == 0, result.stderr
    assert get("/")[0] == 200
    assert _from_app1(inv, "/")[0] == 200
    assert "off" in fab("maintenance.status").stdout


def test_the_message_is_escaped_and_lifted_with_the_page(fleet):
    inv = fleet
    assert fab("maintenance.on", "--message", "Upgrading <b>search</b> & co").returncode == 0
    try:
        _, _, page = _from_app1(inv, "/")
        assert "Upgrading &lt;b&gt;search&lt;/b&gt; &amp; co" in page and "<b>" not in page
        _, _, body = _from_app1(inv, "/api/x")
        assert json.loads(body)["message"] == "Upgrading <b>search</b> & co"
    finally:
        assert fab("maintenance.off").returncode == 0
    # The provisioned page is back for the next time.
    assert fab("maintenance.on").returncode == 0
    try:
        assert "Down for maintenance" in _from_app1(inv, "/")[2]
    finally:
        assert fab("maintenance.off").returncode == 0


@pytest.fixture(scope="module")
def control_allowed(fleet):
    address = _control_address(fleet)
    _allow(fleet, [f"{address}/32"])
    yield address
    _allow(fleet, [])


def test_the_allow_list_reaches_the_app_with_no_failed_request(fleet, control_allowed):
    inv = fleet
    lbs = [inv.hostvars[h]["fleet_private_address"] for h in inv.hosts_of("loadbalancers")]
    probe = BackgroundLoad(LB_URL, rate=20, seconds=120, allowed_hosts=lbs).start()
    try:
        time.sleep(2)
        assert fab("maintenance.on").returncode == 0
        time.sleep(3)
        outside = _from_app1(inv, "/api/papers")
        assert fab("maintenance.off").returncode == 0
        time.sleep(2)
    finally:
        report = probe.stop()
    assert outside[0] == 503 and outside[1]["content-type"] == "application/json"
    assert report.sent > 50 and report.failed == 0, report.summary()
    assert _from_app1(inv, "/")[0] == 200


def _probe_from_app1(inv, seconds: int) -> None:
    """Start a background loop on app1: one status code a line in /tmp/mm.probe."""
    url = shlex.quote(f"https://{_lb(inv)}/healthz")
    loop = (f"end=$(( $(date +%s) + {seconds} )); while [ $(date +%s) -lt $end ]; do "
            f"curl -sk -o /dev/null -w '%{{http_code}}\\n' {url}; sleep 0.2; done")
    on(inv, inv.hosts_of("app")[0], f"rm -f /tmp/mm.probe; nohup sh -c {shlex.quote(loop)} "
                                    "> /tmp/mm.probe 2>&1 < /dev/null &")


def test_deploy_with_maintenance_wraps_migrate_and_switch(fleet, tmp_path):
    inv = fleet
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns(
        ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".coverage", "htmlcov"))
    (app / "fleetapp" / "maintenance_marker.py").write_text("MARKER = 1\n")
    _probe_from_app1(inv, 240)
    outcome = deploy.deploy(app_dir=app, maintenance=True, maintenance_message="Deploying")
    codes = on(inv, inv.hosts_of("app")[0], "cat /tmp/mm.probe").split()
    assert outcome.ok, outcome.failure
    names = [p.name for p in outcome.phases]
    assert names.index("maintenance on") < names.index("migrate") < names.index("switch") \
        < names.index("maintenance off")
    assert "503" in codes, codes  # the page was up during the deploy
    assert _from_app1(inv, "/")[0] == 200  # and is down after it
    assert set(versions(inv).values()) == {outcome.release}


def test_a_failed_deploy_with_maintenance_lifts_the_page(fleet, tmp_path):
    """A release that never becomes ready fails at the first host's switch: page off again."""
    inv = fleet
    app = tmp_path / "app"
    shutil.copytree(APP, app, ignore=shutil.ignore_patterns(
        ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".coverage", "htmlcov"))
    readiness = app / "fleetapp" / "readiness.py"
    anchor = '    checks["heartbeat"] = _heartbeat_check(checks["cache"] == OK)\n'
    assert anchor in readiness.read_text()
    readiness.write_text(readiness.read_text().replace(
        anchor, anchor + '    checks["maintenance_test"] = "broken on purpose"\n'))
    served = versions(inv)
    with pytest.raises(deploy.DeployError) as caught:
        deploy.deploy(app_dir=app, maintenance=True, extra_vars={"app_release_gate_timeout": 15})
    phases = [(p.name, p.ok) for p in caught.value.outcome.phases]
    assert ("maintenance on", True) in phases and ("maintenance off", True) in phases
    assert _from_app1(inv, "/")[0] == 200
    assert "off" in fab("maintenance.status").stdout
    assert versions(inv) == served
