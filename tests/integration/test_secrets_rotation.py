"""Secret rotation through the live sandbox (issue 14): no failed request, old passwords refused.

`fab secrets.rotate --apply` gives the Redis password and both MariaDB passwords new values in
the sandbox's secrets file and rolls them out while traffic goes through the load balancer:
the servers accept old and new at once, every app host restarts through the deploy's drain,
workers and beat restart, then the old passwords are dropped. Afterwards, from an app host, the
old passwords are refused by Redis and MariaDB and the new ones work; import jobs queued during
the roll-out are all done (the workers moved too).

Runs after test_deploy: a release is live on every host.
"""

from __future__ import annotations

import secrets
import shlex

import pytest
from fleet_helpers import LB_URL, api_admin, fab, get, on

from fleet import inventory
from fleet.ops import releases, vault
from fleet.proof.load import BackgroundLoad

ROTATED = ("redis_password", "mariadb_app_password", "mariadb_migration_password")


@pytest.fixture(scope="module")
def fleet(provisioned):
    inv = inventory.load("sandbox")
    lives = {state.live for state in releases.read(inv).values()}
    assert len(lives) == 1 and None not in lives, f"a release must be live everywhere: {lives}"
    return inv


def _redis_auth(inv, host: str, password: str) -> str:
    """AUTH as the app would, with the redis client of the live release's venv, from `host`."""
    redis_host = inv.hostvars[inv.hosts_of("redis")[0]]["fleet_private_address"]
    script = ("import redis, sys\n"
              "try:\n"
              f"    print(redis.Redis(host={redis_host!r}, password=sys.argv[1],"
              " socket_timeout=5).ping())\n"
              "except redis.RedisError as exc:\n"
              "    print(type(exc).__name__)\n")
    return on(inv, host, f"/srv/fleetapp/current/venv/bin/python -c {shlex.quote(script)} "
                         f"{shlex.quote(password)}")


def _mariadb_login(inv, host: str, user: str, password: str) -> str:
    db_host = inv.hostvars[inv.hosts_of("db")[0]]["fleet_private_address"]
    return on(inv, host, f"MYSQL_PWD={shlex.quote(password)} mariadb -h {db_host} -u {user} "
                         "-N -e 'SELECT 1' 2>&1 || true")


@pytest.fixture(scope="module")
def rotation(fleet):
    inv = fleet
    before = vault.store("sandbox").values()
    client = api_admin(inv)
    tag = f"rotate-{secrets.token_hex(4)}"
    lbs = [inv.hostvars[h]["fleet_private_address"] for h in inv.hosts_of("loadbalancers")]
    load = BackgroundLoad(LB_URL, rate=20, seconds=900, allowed_hosts=lbs)
    load.start()
    try:
        jobs = client.import_batches(5, tag)
        result = fab("secrets.rotate", "--env", "sandbox", "--secret", ",".join(ROTATED),
                     "--apply")
    finally:
        report = load.stop()
    return before, result, report, client, jobs


def test_rotation_rolls_out_without_a_failed_request(fleet, rotation):
    _, result, report, _, _ = rotation
    assert result.returncode == 0, result.stdout[-4000:] + result.stderr[-2000:]
    assert report.sent > 100 and report.failed == 0, report.summary()
    assert len(report.backends) == len(fleet.hosts_of("app")), report.summary()
    for phase in ("accept", "clients", "switch", "workers", "finish"):
        assert f"<== {phase}: done" in result.stdout, phase


def test_store_holds_new_values_and_no_old_ones(rotation):
    before, result, _, _, _ = rotation
    assert result.returncode == 0
    after = vault.store("sandbox").values()
    for name in ROTATED:
        assert after[name] != before[name], name
    assert after["app_secret_key"] == before["app_secret_key"]
    assert not [n for n in after if n.endswith(vault.PREVIOUS_SUFFIX)]


def test_old_passwords_are_refused_from_an_app_host(fleet, rotation):
    inv = fleet
    before, result, _, _, _ = rotation
    assert result.returncode == 0
    after = vault.store("sandbox").values()
    host = inv.hosts_of("app")[0]
    assert _redis_auth(inv, host, before["redis_password"]) == "AuthenticationError"
    assert _redis_auth(inv, host, after["redis_password"]) == "True"
    for user, name in (("fleetapp", "mariadb_app_password"),
                       ("fleetapp_migrate", "mariadb_migration_password")):
        assert "Access denied" in _mariadb_login(inv, host, user, before[name]), user
        assert _mariadb_login(inv, host, user, after[name]) == "1", user


def test_every_client_runs_with_the_new_secrets(fleet, rotation):
    inv = fleet
    before, result, _, client, jobs = rotation
    assert result.returncode == 0
    for host in inv.hosts_of("app", "workers", "beat"):
        env_file = on(inv, host, "cat /srv/fleetapp/shared/app.env")
        for name in ROTATED:
            assert before[name] not in env_file, (host, name)
    # Jobs queued before the roll-out were consumed by the restarted workers.
    states = client.wait_jobs(jobs, seconds=240)
    assert sorted(states.values()) == ["done"] * len(jobs), states
    status, body = get("/readyz")
    assert status == 200, body


def test_unknown_secret_is_refused_and_nothing_changes(fleet, rotation):
    store = vault.store("sandbox")
    before = store.path.read_bytes()
    result = fab("secrets.rotate", "--env", "sandbox", "--secret", "redis_pasword")
    assert result.returncode != 0
    assert "did you mean redis_password?" in result.stderr + result.stdout
    assert store.path.read_bytes() == before
