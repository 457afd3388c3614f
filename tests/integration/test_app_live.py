"""The reference app's `live` tests against the sandbox's real MariaDB and Redis (issue 3).

A throw-away database and user are created on the db host for the run and dropped after it;
the tests use Redis databases 13-15, which the app's roles never use.
"""

from __future__ import annotations

import os
import secrets
import subprocess

import pytest
from fleet_helpers import ROOT, on

TEST_DB = "fleetapp_livetest"
TEST_USER = "fleet_livetest"


@pytest.fixture()
def live_database(provisioned):
    inv = provisioned
    db_host = inv.hosts_of("db")[0]
    password = secrets.token_hex(16)
    on(inv, db_host, f"mysql -e \"CREATE DATABASE IF NOT EXISTS {TEST_DB} CHARACTER SET utf8mb4; "
                     f"CREATE OR REPLACE USER '{TEST_USER}'@'%' IDENTIFIED BY '{password}'; "
                     f"GRANT ALL ON {TEST_DB}.* TO '{TEST_USER}'@'%';\"")
    address = inv.hostvars[db_host]["fleet_private_address"]
    yield f"mysql+pymysql://{TEST_USER}:{password}@{address}/{TEST_DB}?charset=utf8mb4"
    on(inv, db_host, f"mysql -e \"DROP USER IF EXISTS '{TEST_USER}'@'%'; "
                     f"DROP DATABASE IF EXISTS {TEST_DB};\"")


def test_app_live_suite_passes_against_the_sandbox(provisioned, live_database):
    inv = provisioned
    redis_host = inv.hosts_of("redis")[0]
    redis_password = inv.hostvars[redis_host]["redis_password"]
    address = inv.hostvars[redis_host]["fleet_private_address"]
    env = dict(os.environ, FLEETAPP_TEST_DATABASE_URL=live_database,
               FLEETAPP_TEST_REDIS_URL=f"redis://:{redis_password}@{address}:6379")
    run = subprocess.run(["make", "-C", str(ROOT / "app"), "test-live"], env=env,
                         capture_output=True, text=True, timeout=900)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    assert " passed" in run.stdout and " failed" not in run.stdout
