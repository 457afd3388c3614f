"""Releases on the real sandbox (issue 5): deploy, migrate once, gate, refuse, roll back, prune.

The tests run in order on the session's provisioned sandbox and build on each other: release A
is the app as it is; B changes what /healthz answers and adds a migration; C fails its readiness
check; D's migration fails. Traffic goes through the load balancer while A -> B and the failed
C roll out, and while rolling back; not one request may fail.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest
from fleet_helpers import FAB, LB_URL, ROOT, fab, get, live_releases, on, versions

from fleet import ansible, hosts, lock
from fleet.ops import deploy, quick_rollback, releases
from fleet.proof.load import BackgroundLoad
from fleet.settings import setting

APP = ROOT / "app"
GATE = {"app_release_gate_timeout": 15}  # C never becomes ready: do not wait a minute for it


def _variant(tmp: Path, name: str) -> Path:
    """A copy of the reference app to change; the artifact is cached by content."""
    target = tmp / name / "app"
    shutil.copytree(APP, target, ignore=shutil.ignore_patterns(
        ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".coverage", "htmlcov"))
    return target


def _add_migration(app: Path, revision: str, down: str, *statements: str) -> None:
    source = ['"""Added by tests/integration/test_deploy.py."""', "import sqlalchemy as sa",
              "from alembic import op", "", f'revision = "{revision}"',
              f'down_revision = "{down}"', "branch_labels = None", "depends_on = None", "", "",
              "def upgrade() -> None:", *(f"    {line}" for line in statements), "", "",
              "def downgrade() -> None:", "    pass", ""]
    path = app / "fleetapp" / "migrations" / "versions" / f"{revision}_test.py"
    path.write_text("\n".join(source))


@pytest.fixture(scope="module")
def apps(tmp_path_factory) -> dict[str, Path]:
    tmp = tmp_path_factory.mktemp("releases")
    b = _variant(tmp, "b")
    ops = b / "fleetapp" / "blueprints" / "ops.py"
    ops.write_text(ops.read_text().replace('jsonify({"status": "ok"})',
                                           'jsonify({"status": "ok", "flavour": "B"})'))
    _add_migration(b, "0003", "0002",
                   'op.create_table("deploy_probe", sa.Column("id", sa.Integer, primary_key=True))',
                   'op.execute("INSERT INTO deploy_probe (id) VALUES (1)")')
    c = _variant(tmp, "c")
    shutil.rmtree(c)
    shutil.copytree(b, c)
    readiness = c / "fleetapp" / "readiness.py"
    readiness.write_text(readiness.read_text().replace(
        '    checks["heartbeat"] = _heartbeat_check(checks["cache"] == OK)\n',
        '    checks["heartbeat"] = _heartbeat_check(checks["cache"] == OK)\n'
        '    checks["release_c"] = "broken on purpose"\n'))
    d = _variant(tmp, "d")
    shutil.rmtree(d)
    shutil.copytree(b, d)
    _add_migration(d, "0004", "0003", 'raise RuntimeError("migration 0004 fails on purpose")')
    return {"A": APP, "B": b, "C": c, "D": d}


def _load(inv, seconds: float = 600) -> BackgroundLoad:
    lbs = [inv.hostvars[h]["fleet_private_address"] for h in inv.hosts_of("loadbalancers")]
    load = BackgroundLoad(LB_URL, rate=20, seconds=seconds, allowed_hosts=lbs)
    load.start()
    return load


@pytest.fixture(scope="module")
def release_a(provisioned) -> deploy.Outcome:
    return deploy.deploy(app_dir=APP)


@pytest.fixture(scope="module")
def release_b(provisioned, release_a, apps):
    load = _load(provisioned)
    lines: list[str] = []
    try:
        outcome = deploy.deploy(app_dir=apps["B"], say=lines.append)
    finally:
        report = load.stop()
    return outcome, report, "\n".join(lines)


def test_release_a_is_served_by_every_app_host(provisioned, release_a):
    inv = provisioned
    assert release_a.ok, release_a.failure
    assert set(versions(inv).values()) == {release_a.release}
    assert set(live_releases(inv, inv.hosts_of("workers", "beat")).values()) == {
        release_a.release}
    status, body = get("/readyz")
    assert status == 200, body


def test_release_b_rolls_out_without_a_failed_request(provisioned, release_a, release_b):
    inv = provisioned
    outcome, report, output = release_b
    assert outcome.ok, outcome.failure
    # A was switched with the inventory and kit as they are: B takes the quick switch over SSH.
    apps = ", ".join(inv.hosts_of("app"))
    assert f"switch: {apps}: start {outcome.release} in the other slot" in output, output[-3000:]
    assert "release-switch.yml" not in output, output[-3000:]
    assert outcome.release != release_a.release
    assert set(versions(inv).values()) == {outcome.release}
    assert json.loads(get("/healthz")[1]) == {"status": "ok", "flavour": "B"}
    assert report.sent > 100 and report.failed == 0, report.summary()
    # Both app hosts answered during the deploy: the load balancer kept using them.
    assert len(report.backends) == 2, report.summary()
    # The programs go first: one that cannot start stops the deploy before any app host switches.
    assert [p.name for p in outcome.phases] == [
        "pre-flight", "lock", "install", "migrate", "workers", "switch"]


def test_migration_of_b_ran_exactly_once(provisioned, release_b):
    inv = provisioned
    outcome = release_b[0]
    log_lines = []
    for host in inv.hosts_of("app", "workers", "beat"):
        text = on(inv, host, "cat /var/log/fleetapp/migrations.log 2>/dev/null || true")
        log_lines += [(host, line) for line in text.splitlines()
                      if f"release={outcome.release}" in line]
    assert len(log_lines) == 1, log_lines
    assert "after=0003 (head)" in log_lines[0][1]
    # The migration's own insert: a second run would have failed or added a row.
    count = on(inv, inv.hosts_of("db")[0],
               "mysql -N -e 'SELECT COUNT(*) FROM fleetapp.deploy_probe'")
    assert count == "1"
    assert outcome.backup and outcome.backup.startswith("db1:/var/backups/mariadb/")
    assert on(inv, "db1", f"test -s {outcome.backup.split(':', 1)[1]} && echo present") == "present"


def test_workers_and_beat_run_release_b(provisioned, release_b):
    inv = provisioned
    outcome = release_b[0]
    for host in inv.hosts_of("workers", "beat"):
        cwd = on(inv, host, "for p in $(supervisorctl pid all); do readlink /proc/$p/cwd; done "
                            "| sort -u")
        assert cwd == f"/srv/fleetapp/releases/{outcome.release}", (host, cwd)


def test_old_static_files_stay_published(provisioned, release_a):
    manifest = json.loads((APP / "fleetapp" / "static" / "manifest.json").read_text())
    for hashed in manifest.values():
        status, _ = get(f"/static/{hashed}")
        assert status == 200, hashed


def test_release_failing_readiness_stops_at_the_first_host(provisioned, release_b, apps):
    inv = provisioned
    live_b = release_b[0].release
    load = _load(inv)
    lines: list[str] = []
    try:
        with pytest.raises(deploy.DeployError) as failure:
            deploy.deploy(app_dir=apps["C"], extra_vars=GATE, say=lines.append)
    finally:
        report = load.stop()
    message = str(failure.value)
    first = inv.hosts_of("app")[0]
    # The gate's timeout lands in no file: the quick switch runs, and goes back.
    assert "in the other slot and gate it" in "\n".join(lines), lines[-40:]
    assert f"host={first}" in message and "/readyz" in message, message
    assert f"back on {live_b}" in message and "gunicorn.log" in message, message
    assert set(versions(inv).values()) == {live_b}
    assert set(live_releases(inv, inv.hosts_of("workers", "beat")).values()) == {live_b}
    assert report.failed == 0, report.summary()
    assert lock.status(hosts.runner(inv, deploy.lock_host(inv))) is None


def test_failing_migration_switches_no_host(provisioned, release_b, apps):
    inv = provisioned
    live_b = release_b[0].release
    before = live_releases(inv, inv.hosts_of("app", "workers", "beat"))
    with pytest.raises(deploy.DeployError) as failure:
        deploy.deploy(app_dir=apps["D"])
    message = str(failure.value)
    assert "migrations" in message and "no host was switched" in message, message
    assert "app_migrate_command 'alembic upgrade head'" in message, message
    assert "db1:/var/backups/mariadb/" in message and "fab db.restore" in message, message
    assert live_releases(inv, inv.hosts_of("app", "workers", "beat")) == before
    assert set(versions(inv).values()) == {live_b}


def test_app_wsgi_that_does_not_import_stops_at_install(provisioned, release_b, apps):
    inv = provisioned
    live_b = release_b[0].release
    before = live_releases(inv, inv.hosts_of("app", "workers", "beat"))
    with pytest.raises(deploy.DeployError) as failure:
        deploy.deploy(app_dir=apps["B"], extra_vars={"app_wsgi": "fleetapp.wsgi:no_such_app"})
    message = str(failure.value)
    assert "app_wsgi fleetapp.wsgi:no_such_app does not import" in message, message
    assert "no host was switched" in message, message
    ran = [p.name for p in failure.value.outcome.phases]
    assert ran[-1] == "install" and "switch" not in ran and "migrate" not in ran, ran
    assert live_releases(inv, inv.hosts_of("app", "workers", "beat")) == before
    assert set(versions(inv).values()) == {live_b}
    assert lock.status(hosts.runner(inv, deploy.lock_host(inv))) is None


def test_rollback_to_an_unknown_release_names_the_known_ones(provisioned, release_a, release_b):
    inv = provisioned
    before = live_releases(inv, inv.hosts_of("app", "workers", "beat"))
    result = fab("rollback", "--to", "20990101T000000Z-0000000000")
    output = result.stdout + result.stderr
    assert result.returncode == 1, output[-3000:]
    assert "release 20990101T000000Z-0000000000 is not installed on" in output, output[-3000:]
    assert release_a.release in output and release_b[0].release in output, output[-3000:]
    assert live_releases(inv, inv.hosts_of("app", "workers", "beat")) == before


def _rollback_under_load(inv) -> str:
    """`fab rollback` while traffic goes through the load balancer: it succeeds and not one
    request fails; its output."""
    load = _load(inv)
    try:
        result = fab("rollback")
    finally:
        report = load.stop()
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    assert report.failed == 0, report.summary()
    return result.stdout


def test_rollback_returns_every_host_to_a(provisioned, release_a, release_b):
    inv = provisioned
    output = _rollback_under_load(inv)
    # C's failed gate stopped the slots it had started: A runs nowhere warm, so the rollback
    # starts it (the full switch, release-switch.yml) and says why.
    assert "rollback: the full switch (" in output, output[-3000:]
    assert set(versions(inv).values()) == {release_a.release}
    assert set(live_releases(inv, inv.hosts_of("workers", "beat")).values()) == {
        release_a.release}
    assert json.loads(get("/healthz")[1]) == {"status": "ok"}
    audit = fab("audit", "--last", "1")
    assert "rollback" in audit.stdout and release_a.release in audit.stdout


def test_a_rollback_to_the_warm_slot_is_a_pointer_flip(provisioned, release_a, release_b):
    # The rollback to A kept B running in each app host's other slot: going back to B starts
    # no gunicorn (the same processes serve), moves the load balancers under load without a
    # failed request, and still restarts the workers and beat on B.
    inv = provisioned
    live_b = release_b[0].release
    apps = inv.hosts_of("app")
    slots = "supervisorctl pid fleetapp-web; supervisorctl pid fleetapp-web-handover"
    pids = {h: on(inv, h, slots) for h in apps}
    worker = "supervisorctl pid fleetapp-worker:fleetapp-worker-0"
    worker_pid = on(inv, "worker1", worker)
    output = _rollback_under_load(inv)
    assert "rollback: quick" in output, output[-3000:]
    assert set(versions(inv).values()) == {live_b}
    assert {h: on(inv, h, slots) for h in apps} == pids
    assert set(live_releases(inv, inv.hosts_of("app", "workers", "beat")).values()) == {live_b}
    assert {s.previous for s in releases.read(inv).values()} == {release_a.release}
    assert on(inv, "worker1", worker) not in (worker_pid, "0")


def test_a_run_that_rewrites_a_program_file_voids_the_quick_restart(provisioned, release_b):
    # The workers' quick restart trusts a host's files only while its settings record stands.
    # A run that writes the worker's program file from other settings (here an extra variable)
    # deletes the record (roles/celery/tasks/programs.yml), so the next deploy or rollback
    # writes the file again instead of restarting the programs on it.
    inv = provisioned
    live_b = release_b[0].release
    record = setting(inv, "app_settings_digest_file")
    read_program = "cat /etc/supervisor/conf.d/fleetapp-worker.conf"
    assert on(inv, "worker1", f"cat {record}") == quick_rollback.settings_digest(inv)
    workers = ROOT / "playbooks" / "release-workers.yml"

    ran = ansible.run_with_vars(workers, inv.path, {"deploy_release": live_b,
                                                     "celery_worker_log_level": "DEBUG"},
                                limit="worker1", say=lambda _line: None)
    assert ran.ok, "\n".join(ran.output[-40:])
    assert "--loglevel DEBUG" in on(inv, "worker1", read_program)
    assert on(inv, "worker1", f"test -e {record} && echo kept || echo gone") == "gone"
    # Nothing restarts on the rewritten file; the next deploy (the tests below) writes the
    # inventory's file again and records it.
    why = quick_rollback.restart_workers(inv, live_b, ["worker1"], say=lambda _line: None)
    assert why == "worker1 was last switched with another inventory or kit"


def test_two_deploys_at_once_one_is_refused(provisioned, release_b):
    commands = [subprocess.Popen([FAB, "deploy"], cwd=ROOT, stdout=subprocess.PIPE,
                                 stderr=subprocess.STDOUT, text=True) for _ in range(2)]
    outputs = [(p.wait(timeout=900), p.stdout.read()) for p in commands]
    codes = sorted(code for code, _ in outputs)
    assert codes[0] == 0 and codes[1] != 0, [o[-2000:] for _, o in outputs]
    refused = next(out for code, out in outputs if code != 0)
    assert "another deploy holds the lock: " in refused, refused[-2000:]
    assert "(deploy of " in refused, refused[-2000:]


def test_pruning_keeps_n_releases_and_never_live_or_previous(provisioned, release_a,
                                                               release_b, apps):
    inv = provisioned
    before = releases.read(inv)
    outcome = deploy.deploy(app_dir=apps["B"], keep=1)
    assert outcome.ok, outcome.failure
    live_b = release_b[0].release
    for host, state in releases.read(inv).items():
        assert (state.live, state.previous) == (live_b, release_a.release), (host, state)
        newest = before[host].installed[-1]
        assert set(state.installed) == {newest, live_b, release_a.release}, (host, state)
        assert len(before[host].installed) > len(state.installed), (host, before[host])
    # The load balancer keeps the static lists of the releases some host kept, and every file
    # they name is still served; the lists of the pruned releases are gone.
    kept = {r for state in releases.read(inv).values() for r in state.installed}
    lists = on(inv, "lb1", "cd /var/lib/flaskfleet/static-releases && ls *.json").split()
    assert {name.removesuffix(".json") for name in lists} <= kept, (lists, kept)
    assert f"{live_b}.json" in lists, lists
    for name in lists:
        listed = json.loads(on(inv, "lb1", f"cat /var/lib/flaskfleet/static-releases/{name}"))
        for path in listed.values():
            assert get(f"/static/{path}")[0] == 200, (name, path)
