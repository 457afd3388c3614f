"""Fleet lifecycle on the real sandbox (issue 6): add, drain, enable, lose and remove nodes.

Runs after test_deploy, on the deployed sandbox, in order: app3 joins under load, app1 is drained
and enabled, app2's container is stopped and started under GET load, app3 leaves under load,
and a second worker shares a burst of import jobs. Backends are told apart by the host name in
`/version` answers, which the load generator counts.
"""

from __future__ import annotations

import secrets
import time

import docker
import pytest
from fleet_helpers import LB_URL, api_admin, fab, get, on, papers_with_prefix, versions

from fleet import inventory
from fleet.ops import nodes
from fleet.ops.status import live_ports
from fleet.proof.load import BackgroundLoad, Request
from fleet.sandbox.containers import DEFAULT_NAME

GETS = [(Request("GET", "/api/papers"), 3), (Request("GET", "/version"), 2)]


def _load(inv, rate: float = 20, seconds: float = 900, mix=None) -> BackgroundLoad:
    lbs = [inv.hostvars[h]["fleet_private_address"] for h in inv.hosts_of("loadbalancers")]
    return BackgroundLoad(LB_URL, rate=rate, seconds=seconds, allowed_hosts=lbs, mix=mix).start()


def _short(inv, seconds: float):
    """A short load run: who serves requests right now."""
    load = _load(inv, rate=25, seconds=seconds, mix=GETS)
    time.sleep(seconds + 1)
    return load.stop()


def _ok(result) -> None:
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]


def _upstream(inv) -> dict[str, str]:
    lb = inv.hosts_of("loadbalancers")[0]
    return nodes.parse_list(on(inv, lb, "/usr/local/sbin/flaskfleet-upstream list"))


@pytest.fixture(scope="module")
def deployed(provisioned):
    """The sandbox with one live release on every host (test_deploy leaves it so)."""
    inv = inventory.load("sandbox")
    if len(set(versions(inv).values())) != 1:
        _ok(fab("deploy"))
    return inv


@pytest.fixture(scope="module")
def app3_joined(deployed):
    load = _load(deployed)
    try:
        added = fab("sandbox.add", "app3", "--group", "app")
        started = time.monotonic()
        joined = fab("node.add", "app3", "--group", "app")
        seconds = time.monotonic() - started
        time.sleep(8)  # let app3 take its share of requests
    finally:
        report = load.stop()
    print(f"node.add app3 took {seconds:.1f}s\n{report.summary()}")
    return added, joined, report


def test_node_add_joins_app3_without_a_failed_request(app3_joined):
    added, joined, report = app3_joined
    _ok(added)
    _ok(joined)
    inv = inventory.load("sandbox")
    assert inv.hosts_of("app") == ["app1", "app2", "app3"]
    live = set(versions(inv).values())
    assert len(live) == 1, versions(inv)  # app3 runs the live release, nothing was rebuilt
    assert "<== join: done" in joined.stdout, joined.stdout[-3000:]
    assert report.sent > 200 and report.failed == 0, report.summary()
    assert report.backends.get("app3", 0) > 0, report.summary()
    assert _upstream(inv)[inv.hostvars["app3"]["fleet_private_address"]] == "up"


def test_node_add_refuses_what_it_cannot_add(app3_joined):
    again = fab("node.add", "app3", "--group", "app")
    assert again.returncode != 0 and "already a working app host" in again.stderr, again.stderr
    wrong = fab("node.add", "lb1", "--group", "loadbalancers")
    assert wrong.returncode != 0 and "--group must be one of app, workers" in wrong.stderr
    unknown = fab("node.add", "app9", "--group", "app")
    assert unknown.returncode != 0 and "--address" in unknown.stderr, unknown.stderr


def test_drained_app1_gets_no_requests_then_enable_brings_it_back(app3_joined):
    inv = inventory.load("sandbox")
    app1 = inv.hostvars["app1"]["fleet_private_address"]
    _ok(fab("node.drain", "app1"))
    assert _upstream(inv)[app1] == "down"
    status = fab("status")
    assert any(line.startswith("app1") and "drained" in line
               for line in status.stdout.splitlines()), status.stdout
    drained = _short(inv, 8)
    assert drained.failed == 0, drained.summary()
    assert "app1" not in drained.backends and set(drained.backends) == {"app2", "app3"}, (
        drained.summary())

    _ok(fab("node.enable", "app1"))
    assert _upstream(inv)[app1] == "up"
    enabled = _short(inv, 8)
    assert enabled.failed == 0 and enabled.backends.get("app1", 0) > 0, enabled.summary()


def test_a_hand_drained_host_stays_drained_through_a_deploy(app3_joined):
    inv = inventory.load("sandbox")
    app2 = inv.hostvars["app2"]["fleet_private_address"]
    _ok(fab("node.drain", "app2"))
    try:
        deployed = fab("deploy")  # same tree: the cached artifact, switched host by host
        _ok(deployed)
        assert "app2 was drained by hand" in deployed.stdout, deployed.stdout[-3000:]
        assert _upstream(inv)[app2] == "down"
    finally:
        _ok(fab("node.enable", "app2"))


def test_stopped_app_host_costs_at_most_a_tenth_of_a_percent(app3_joined):
    inv = inventory.load("sandbox")
    container = docker.from_env().containers.get(f"{DEFAULT_NAME}-app2")
    address = inv.hostvars["app2"]["fleet_private_address"]
    port = live_ports(inv)["app2"]  # the slot the load balancer sends app2's requests to
    load = _load(inv, rate=40, mix=GETS)
    try:
        time.sleep(5)
        container.stop(timeout=10)
        time.sleep(20)
        container.start()
        # It comes back on its own: systemd starts supervisord, which starts both gunicorn slots.
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and _ready(address, port) != 200:
            time.sleep(1)
        time.sleep(15)  # past fail_timeout, so nginx tries it again
    finally:
        report = load.stop()
    print(report.summary())
    assert report.sent > 1500, report.summary()
    assert report.failed <= report.sent * 0.001, report.summary()
    back = _short(inv, 10)
    assert back.failed == 0 and back.backends.get("app2", 0) > 0, back.summary()


def _ready(address: str, port: int) -> int:
    try:
        return get("/readyz", base=f"http://{address}:{port}", timeout=3)[0]
    except OSError:  # refused or unreachable while it boots
        return 0


def test_node_remove_takes_app3_out_without_a_failed_request(app3_joined):
    inv = inventory.load("sandbox")
    address = inv.hostvars["app3"]["fleet_private_address"]
    load = _load(inv)
    try:
        time.sleep(3)
        removed = fab("node.remove", "app3")
        time.sleep(3)
    finally:
        report = load.stop()
    _ok(removed)
    assert report.failed == 0, report.summary()
    inv = inventory.load("sandbox")
    assert "app3" not in inv.hostvars
    assert address not in _upstream(inv)
    names = [c.name for c in docker.from_env().containers.list(all=True)]
    assert f"{DEFAULT_NAME}-app3" not in names
    after = _short(inv, 6)
    assert after.failed == 0 and "app3" not in after.backends, after.summary()


def test_node_remove_refuses_the_beat_host_and_the_last_worker(app3_joined):
    beat = fab("node.remove", "worker1")
    assert beat.returncode != 0 and "runs beat" in beat.stderr, beat.stderr
    assert "last worker" in beat.stderr
    assert "nothing was changed" in beat.stderr


def _succeeded(inv, host: str) -> int:
    return int(on(inv, host, "cat /var/log/fleetapp/fleetapp-worker-*.log 2>/dev/null | "
                             "grep -c 'fleetapp.import_batch\\[.*\\] succeeded' || true") or 0)


def test_second_worker_shares_a_burst_of_imports_and_none_is_lost(app3_joined):
    _ok(fab("sandbox.add", "worker2", "--group", "workers"))
    _ok(fab("node.add", "worker2", "--group", "workers"))
    inv = inventory.load("sandbox")
    assert inv.hosts_of("workers") == ["worker1", "worker2"]
    client = api_admin(inv)
    before = {h: _succeeded(inv, h) for h in ("worker1", "worker2")}
    tag = f"burst-{secrets.token_hex(4)}"
    jobs = client.import_batches(60, tag)
    states = client.wait_jobs(jobs)
    assert sorted(states.values()) == ["done"] * 60, states
    assert papers_with_prefix(inv, tag) == 60 * 3
    done = {h: _succeeded(inv, h) - before[h] for h in before}
    assert done["worker1"] > 0 and done["worker2"] > 0, done
    assert sum(done.values()) == 60, done
