"""One app host (issue 5): a deploy still loads the new code without a failed request.

A throw-away sandbox with a single all-in-one host (every group): there is no other app host to
send its traffic to, and none is needed: the deploy starts the new release in the host's other
gunicorn slot and moves the load balancer to it (docs/operations.md, "How the switch works").
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
    # The load balancer moved to the slot that runs the new release; the other slot keeps the
    # first release running for a rollback (app_gunicorn_keep_previous).
    served = on(inv, "solo1", "flaskfleet-upstream list")
    port = int(served.split()[1])
    assert served == f"{address} {port} up" and port in (8000, 8001), served
    other = 8001 if port == 8000 else 8000
    slots = {p: json.loads(get("/version", base=f"http://{address}:{p}")[1])["release"]
             for p in (port, other)}
    assert slots == {port: second.release, other: first.release}, slots
