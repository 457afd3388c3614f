"""What the app asks of the fleet: app_programs entries and SQLite, refused before any change."""

from __future__ import annotations

import pytest
from test_inventory import GOOD_SECRETS, fleet_groups, host, problems, write_env

ALL_IN_ONE = {g: {"hosts": {"aio1": host("10.0.0.9")}}
              for g in ("loadbalancers", "app", "workers", "beat", "db", "redis")}
SECRETS = {"group_vars/all/secrets.yml": GOOD_SECRETS}
RQ = {"name": "rq-worker", "group": "workers", "command": "rq worker"}


def _problems(tmp_path, groups=None, **all_vars) -> list[str]:
    write_env(tmp_path, groups=groups, all_vars=all_vars, files=SECRETS)
    return problems(tmp_path)


def test_a_good_program_list_passes(tmp_path):
    beat = {"name": "scheduler", "group": "beat", "command": "python -m sched", "numprocs": 2,
            "stopwaitsecs": 30, "startsecs": 0, "ready": "test -S /tmp/sched.sock",
            "ready_early": False}
    assert _problems(tmp_path, app_programs=[RQ, beat], app_celery="") == []


def test_no_programs_is_fine(tmp_path):
    assert _problems(tmp_path, app_programs=[], app_celery="") == []


@pytest.mark.parametrize(("entry", "expected"), [
    ({**RQ, "name": "RQ worker"}, "name 'RQ worker' must be lowercase"),
    ({**RQ, "command": " "}, "app_programs entry 'rq-worker': command must be"),
    ({**RQ, "group": "app"}, "group 'app' must be workers"),
    ({**RQ, "numprocs": 0}, "numprocs must be a whole number of at least 1, not 0"),
    ({**RQ, "stopwaitsecs": "soon"}, "stopwaitsecs must be a whole number"),
    ({**RQ, "cmd": "rq worker"}, "unknown field(s) cmd"),
    ({**RQ, "ready": " "}, "app_programs entry 'rq-worker': ready must be a shell command"),
    ({**RQ, "ready": ["rq", "info"]}, "ready must be a shell command"),
    ({**RQ, "ready": "rq info", "ready_early": "yes"}, "ready_early must be true or false"),
    ({**RQ, "ready_early": True}, "ready_early needs a ready command"),
    ("rq worker", "app_programs[0] must be a mapping"),
])
def test_a_bad_program_entry_is_named(tmp_path, entry, expected):
    found = _problems(tmp_path, app_programs=[entry])
    assert any(expected in p for p in found), found


def test_two_programs_with_one_name_are_refused(tmp_path):
    found = _problems(tmp_path, app_programs=[RQ, {**RQ, "command": "rq worker low"}])
    assert any("names rq-worker more than once" in p for p in found), found


def test_a_program_for_an_empty_group_is_refused(tmp_path):
    groups = fleet_groups(workers={"hosts": {}}, beat={"hosts": {}})
    found = _problems(tmp_path, groups=groups, app_programs=[RQ])
    assert any("runs on the workers group, which has no host" in p for p in found), found


def test_a_program_list_that_is_not_a_list_is_refused(tmp_path):
    found = _problems(tmp_path, app_programs={"rq-worker": "rq worker"})
    assert any("app_programs must be a list" in p for p in found), found


def test_sqlite_is_refused_on_a_fleet_naming_the_variable(tmp_path):
    found = _problems(tmp_path, app_env={"DATABASE_URL": "sqlite:////srv/app/app.db"})
    [problem] = [p for p in found if "SQLite" in p]
    assert "app_env DATABASE_URL is a SQLite URL" in problem
    assert "4 hosts (app1, app2, db1, worker1)" not in problem  # db1 does not run the app
    assert "3 hosts (app1, app2, worker1)" in problem


def test_sqlite_in_the_extra_env_is_refused_too(tmp_path):
    found = _problems(tmp_path, app_extra_env={"FLASK_DATABASE": "SQLite:///app.db"})
    assert any("app_extra_env FLASK_DATABASE is a SQLite URL" in p for p in found), found


def test_sqlite_is_allowed_on_one_all_in_one_host(tmp_path):
    assert _problems(tmp_path, groups=ALL_IN_ONE,
                     app_env={"DATABASE_URL": "sqlite:////srv/app/app.db"}) == []
