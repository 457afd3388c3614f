"""One app host (issue 5): a deploy still loads the new code without a failed request.

A throw-away sandbox with a single all-in-one host (every group): there is no other app host to
drain to, so the deploy hands the traffic to a second gunicorn of the new release while the main
one restarts (docs/operations.md, "One app host").
"""

from __future__ import annotations

import json
import shutil

import pytest
from fleet_helpers import ROOT, fab, get, on

from fleet import inventory
from fleet.ops import deploy
from fleet.proof.load import BackgroundLoad
from fleet.sandbox.containers import Sandbox
from fleet.sandbox.topology import HostSpec

GROUPS = ("loadbalancers", "app", "workers", "beat", "db", "redis")


@pytest.fixture(scope="module")
def solo(provisioned, tmp_path_factory):
    sandbox = Sandbox(name="fleetsolo", root=ROOT)
    sandbox.down()
    sandbox.up([HostSpec("solo1", GROUPS)], None, None)
    env = tmp_path_factory.mktemp("solo") / "env"
    env.mkdir()
    shutil.copy(sandbox.inventory_path, env / "hosts.yml")
    (env / "group_vars").symlink_to(ROOT / "inventory" / "sandbox" / "group_vars")
    try:
        result = fab("provision", "--env", str(env))
        assert result.returncode == 0, result.stdout[-3000:]
        yield inventory.load(str(env))
    finally:
        sandbox.down()


def test_single_app_host_deploy_hands_over_without_a_failed_request(solo, tmp_path):
    inv = solo
    first = deploy.deploy(env=str(inv.path))
    assert first.ok, first.failure
    changed = tmp_path / "app"
    shutil.copytree(ROOT / "app", changed, ignore=shutil.ignore_patterns(
        ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".coverage", "htmlcov"))
    ops = changed / "fleetapp" / "blueprints" / "ops.py"
    ops.write_text(ops.read_text().replace('jsonify({"status": "ok"})',
                                           'jsonify({"status": "ok", "flavour": "solo"})'))
    address = inv.hostvars["solo1"]["fleet_private_address"]
    base = f"https://{address}"
    load = BackgroundLoad(base, rate=20, seconds=600, allowed_hosts=[address])
    load.start()
    try:
        second = deploy.deploy(env=str(inv.path), app_dir=changed)
    finally:
        report = load.stop()
    assert second.ok, second.failure
    assert report.sent > 100 and report.failed == 0, report.summary()
    assert json.loads(get("/healthz", base=base)[1]) == {"status": "ok", "flavour": "solo"}
    assert json.loads(get("/version", base=base)[1])["release"] == second.release
    # The handover is over: the main gunicorn serves, the handover one is stopped, the load
    # balancer points at the main port again.
    programs = on(inv, "solo1", "supervisorctl status | awk '{print $1, $2}'")
    assert "fleetapp-web RUNNING" in programs and "fleetapp-web-handover STOPPED" in programs
    assert on(inv, "solo1", "flaskfleet-upstream list") == f"{address} 8000 up"
