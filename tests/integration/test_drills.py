"""Fault drills on the deployed sandbox (issue 7), each asserting what it promises.

Drill 1, a rolling deploy under GET+POST load, runs here as `fab rehearse` (and as release B in
test_deploy.py); drills 2-4 live where their fleet state is built: a release failing its health
gate under load and a rollback under load in test_deploy.py, an app host's container stopped
under GET load in test_nodes.py. Here also:

5. a Celery worker process killed with SIGKILL in the middle of an import: redelivered, done once;
6. Redis restarted while import jobs wait in the queue: they survive (AOF) and complete;
7. MariaDB restarted under load: /readyz says so, requests recover with no redeploy, and every
   import is all-or-nothing;
8. the app program crash-looping under supervisord: `fab deploy` refuses and says why.

Runs after test_nodes (worker1 and worker2 consume jobs); drill 8 goes last, because the crash
loop it provokes keeps deploys refused for the check's window.
"""

from __future__ import annotations

import json
import secrets
import time

import pytest
from fleet_helpers import LB_URL, api_admin, fab, get, on, papers_with_prefix, versions

from fleet import inventory
from fleet.ops import crashloop
from fleet.ops.status import live_ports
from fleet.proof.load import BackgroundLoad
from fleet.settings import setting


@pytest.fixture(scope="module")
def fleet(provisioned):
    inv = inventory.load("sandbox")
    assert inv.hosts_of("app") and inv.hosts_of("workers")
    return inv, api_admin(inv)


def _all_or_nothing(inv, client, jobs: list[int], tag: str, size: int = 3) -> dict[int, str]:
    """Every job ended; a done job has all its rows, a failed one none; no row twice."""
    states = client.wait_jobs(jobs, seconds=240)
    assert len(states) == len(jobs) and set(states.values()) <= {"done", "failed"}, states
    for job_index, job in enumerate(jobs):
        rows = papers_with_prefix(inv, f"{tag}-{job_index}-")
        assert rows == (size if states[job] == "done" else 0), (job, states[job], rows)
    return states


def _worker_children(inv, host: str) -> list[str]:
    """PIDs of the prefork pool processes of every worker program on `host`."""
    mains = on(inv, host, "supervisorctl status 'fleetapp-worker:*' | "
                          "awk '$2 == \"RUNNING\" {print $4}' | tr -d ,").split()
    return on(inv, host, " ; ".join(f"pgrep -P {pid}" for pid in mains) + " ; true").split()


def test_fab_load_reports_requests_through_the_load_balancer(fleet):
    result = fab("load", "--rate", "10", "--seconds", "3")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "30 sent" in result.stdout and "0 failed" in result.stdout, result.stdout


def test_drill1_rehearsal_deploys_a_new_build_under_load_without_a_failed_request(fleet):
    inv, _ = fleet
    before = set(versions(inv).values())
    result = fab("rehearse", "--rate", "20")
    print(result.stdout[-2500:])
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert "rehearsal: OK" in result.stdout
    table = result.stdout.split("requests sent")[-1]
    for phase in ("install", "migrate", "switch", "workers"):
        assert f"\n{phase} " in table, table
    now = set(versions(inv).values())
    assert len(now) == 1 and now != before  # a new build, on every app host


def test_drill5_worker_killed_mid_import_task_is_redelivered_and_done_once(fleet):
    inv, client = fleet
    db = inv.hosts_of("db")[0]
    workers = inv.hosts_of("workers")
    tag = f"kill-{secrets.token_hex(4)}"
    # Queue the import with the workers stopped, then hold its job row locked: the task starts,
    # asks for the row (SELECT ... FOR UPDATE) and waits, so it is provably running when its
    # process is killed.
    for host in workers:
        on(inv, host, "supervisorctl stop 'fleetapp-worker:*'")
    try:
        [job] = client.import_batches(1, tag)
        on(inv, db, "nohup mysql fleetapp -e 'START TRANSACTION; SELECT id FROM import_jobs "
                    f"WHERE id = {job} FOR UPDATE; SELECT SLEEP(25); COMMIT' >/dev/null 2>&1 &")
        time.sleep(1)
    finally:
        for host in workers:
            on(inv, host, "supervisorctl start 'fleetapp-worker:*'")
    waiting = "0"
    deadline = time.monotonic() + 20
    while time.monotonic() < deadline and waiting == "0":
        waiting = on(inv, db, "mysql -N -e \"SELECT COUNT(*) FROM information_schema.innodb_trx "
                              "WHERE trx_state = 'LOCK WAIT'\"")
        time.sleep(0.5)
    assert waiting != "0", "the import task never started"
    killed = []
    for host in workers:
        pids = _worker_children(inv, host)
        if pids:
            on(inv, host, f"kill -9 {' '.join(pids)}")
            killed.append(host)
    assert killed
    states = _all_or_nothing(inv, client, [job], tag)
    assert states[job] == "done"
    logs = " ".join(on(inv, h, "cat /var/log/fleetapp/fleetapp-worker-*.log") for h in killed)
    assert "SIGKILL" in logs or "WorkerLostError" in logs


def test_drill6_redis_restart_keeps_queued_jobs(fleet):
    inv, client = fleet
    workers = inv.hosts_of("workers")
    tag = f"redis-{secrets.token_hex(4)}"
    for host in workers:
        on(inv, host, "supervisorctl stop 'fleetapp-worker:*'")
    try:
        jobs = client.import_batches(10, tag)
        redis_host = inv.hosts_of("redis")[0]
        # The unit is Type=notify: restart returns once Redis has loaded its append-only file.
        on(inv, redis_host, "systemctl restart redis-server")
    finally:
        for host in workers:
            on(inv, host, "supervisorctl start 'fleetapp-worker:*'")
    states = _all_or_nothing(inv, client, jobs, tag)
    assert sorted(states.values()) == ["done"] * 10, states


def test_drill7_mariadb_restart_under_load_recovers_without_a_redeploy(fleet):
    inv, client = fleet
    db = inv.hosts_of("db")[0]
    first = inv.hosts_of("app")[0]
    app1 = f"{inv.hostvars[first]['fleet_private_address']}:{live_ports(inv)[first]}"
    lbs = [inv.hostvars[h]["fleet_private_address"] for h in inv.hosts_of("loadbalancers")]
    tag = f"maria-{secrets.token_hex(4)}"
    load = BackgroundLoad(LB_URL, rate=20, seconds=600, allowed_hosts=lbs).start()
    try:
        time.sleep(3)
        jobs = client.import_batches(8, tag)
        on(inv, db, "nohup sh -c 'systemctl stop mariadb; sleep 6; systemctl start mariadb' "
                    ">/dev/null 2>&1 &")
        verdicts = []
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            code, body = get("/readyz", base=f"http://{app1}")
            verdicts.append((code, json.loads(body).get("failed", [])))
            if len(verdicts) > 3 and code == 200 and any(s == 503 for s, _ in verdicts):
                break
            time.sleep(0.5)
        recovered_at = time.time()
        time.sleep(10)
    finally:
        report = load.stop()
    print(report.summary())
    assert any(s == 503 and "database" in failed for s, failed in verdicts), verdicts
    assert verdicts[-1][0] == 200, verdicts[-5:]
    # Requests fail while the database is down (the app cannot answer them); after it is back
    # they succeed again, with no deploy or restart of the app.
    after = [failed for second, _, failed in report.timeline if second > recovered_at + 1]
    assert after and sum(after) == 0, report.summary()
    _all_or_nothing(inv, client, jobs, tag)


def test_drill8_crash_loop_makes_deploy_refuse_and_say_why(fleet):
    inv, _ = fleet
    host = inv.hosts_of("app")[0]
    # The live slot (the one the load balancers use; earlier deploys decide which): the check
    # leaves the idle one alone.
    live = ("fleetapp-web" if live_ports(inv)[host] == int(setting(inv, "app_gunicorn_port"))
            else "fleetapp-web-handover")
    # Kill gunicorn's master after it has counted as started (startsecs): supervisord sees an
    # unexpected exit each time and restarts it, the signature of a crash loop.
    for _ in range(crashloop.MAX_UNEXPECTED_EXITS):
        on(inv, host, f"sleep 6; kill -9 $(supervisorctl pid {live})")
    time.sleep(6)
    found = crashloop.check(inv)
    assert [f.host for f in found] == [host], found
    result = fab("deploy")
    assert result.returncode != 0
    assert f"{host}: {live} exited unexpectedly" in result.stderr, result.stderr
    assert "crash loop" in result.stderr and "nothing was changed" in result.stderr
    assert "==> lock" not in result.stdout  # refused in pre-flight, before anything
