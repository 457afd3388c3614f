"""fleet/ops/operation.py: the lock, the audit record and the outcome on every way out.

Only the transport is faked: `hosts.runner` hands out local shells, one per host, whose state
directory (/var/lib/flaskfleet: the lock, the audit trail) is a temporary directory. The lock,
audit and database commands run in a real shell as they would on the host; the backup and the
restore run playbooks/db-backup.yml and db-restore.yml with ansible-playbook, db1 being this
machine (a local connection). For db.restore the db host's programs are stand-ins: its backup
script gzips a data file, `mysql` (first on PATH) loads stdin into it.
"""

from __future__ import annotations

import gzip
import os
import stat
import sys
from pathlib import Path

import pytest
import yaml

from fleet import audit, hosts, lock
from fleet.inventory import Inventory
from fleet.ops import database, deploy, nodes, releases
from fleet.ops.operation import Record, lock_host, operation
from fleet.phases import Clock
from fleet.remote import LocalRunner, Result

ALICE = lock.Holder("alice@ops1", "deploy", "20260101T000000Z-abc", "2026-01-01T00:00:00+00:00",
                    4242)


class HostInDirectory(LocalRunner):
    """A host reached through a local shell; its state directory lives under `root/<name>`."""

    def __init__(self, name: str, root: Path) -> None:
        self.name = name
        self.state = root / name / "state"

    def run(self, command: str, timeout: float | None = None) -> Result:
        return super().run(command.replace(lock.STATE_DIR, str(self.state)), timeout)

    def close(self) -> None:
        pass


@pytest.fixture
def fleet(tmp_path, monkeypatch):
    """The inventory (db1 holds the database) with every host reached through a local shell."""
    root = tmp_path / "hosts"
    asked: list[str] = []

    def runner(inv: Inventory, host: str) -> HostInDirectory:
        asked.append(host)
        return HostInDirectory(host, root)

    monkeypatch.setattr(hosts, "runner", runner)
    backups = tmp_path / "backups"
    backups.mkdir()
    db1 = {"mariadb_backup_dir": str(backups),
           "mariadb_backup_script": str(_db_programs(tmp_path))}
    inv = Inventory(env="prod", path=_ansible_inventory(tmp_path, db1),
                    groups={"db": ["db1", "db2"], "app": ["app1"]},
                    hostvars={"db1": db1, "db2": {}, "app1": {}})
    return inv, (lambda host: HostInDirectory(host, root)), asked


def _ansible_inventory(tmp_path: Path, db1: dict) -> Path:
    """The same hosts for ansible-playbook (db.backup runs a playbook): db1 is this machine."""
    path = tmp_path / "inventory"
    path.mkdir()
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "ansible_become": False}
    hosts_yml = {"all": {"children": {
        "db": {"hosts": {"db1": {**db1, **local}, "db2": local}},
        "app": {"hosts": {"app1": local}}}}}
    (path / "hosts.yml").write_text(yaml.safe_dump(hosts_yml))
    return path


def _db_programs(tmp_path: Path) -> Path:
    """The db host's backup script and `mysql`, over a data file standing in for the database."""
    data, bin_dir = tmp_path / "database.sql", tmp_path / "bin"
    data.write_text("the live data\n")
    bin_dir.mkdir()
    script = bin_dir / "flaskfleet-db-backup"
    script.write_text(
        "#!/bin/sh\nset -e\n"
        f"out={tmp_path}/backups/fleetapp-$(date +%s%N).sql.gz\n"
        f"gzip -c {data} > \"$out\"\n"
        "cd \"$(dirname \"$out\")\" && sha256sum \"$(basename \"$out\")\" > \"$out.sha256\"\n"
        "echo \"dumped\"\necho \"$out\"\n")
    mysql = bin_dir / "mysql"
    mysql.write_text(f"#!/bin/sh\ninput=$(cat)\ncase \"$input\" in *BROKEN*) "
                     f"echo 'ERROR 1064 at line 1' >&2; exit 1;; esac\n"
                     f"printf '%s\\n' \"$input\" > {data}\n")
    for program in (script, mysql):
        program.chmod(program.stat().st_mode | stat.S_IXUSR)
    return script


@pytest.fixture(autouse=True)
def _db_programs_on_path(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")


def _trail(host: HostInDirectory) -> list[dict]:
    return audit.last(host, 100)


# --- the context itself ----------------------------------------------------------------------


def test_success_holds_the_lock_during_the_work_then_audits_and_releases(fleet):
    inv, host, asked = fleet
    said: list[str] = []
    done = Record("node.drain", "prod", "-")
    with operation(inv, "node.drain", "-", done, nodes.NodeError, said.append) as clock, \
            clock.phase("drain", "drain app1"):
        held = lock.status(host("db1"))
    assert (held.action, held.release, held.who) == ("node.drain", "-", done.who)
    assert lock.status(host("db1")) is None
    assert set(asked) == {lock_host(inv)} == {"db1"}
    [entry] = _trail(host("db1"))
    assert (entry["action"], entry["env"], entry["ok"], entry["failure"]) == (
        "node.drain", "prod", True, None)
    assert (entry["who"], entry["started"]) == (held.who, held.since)
    assert [name for name, _ in entry["phases"]] == ["lock", "drain"]
    assert "lock released" in said and said[-1].endswith("node.drain: done")


@pytest.mark.parametrize(("raised", "failure"), [
    (nodes.NodeError("app1 does not pass /readyz"), "app1 does not pass /readyz"),
    (ValueError("a bug"), "unexpected error: ValueError: a bug"),
    (KeyboardInterrupt(), "interrupted (Ctrl-C)"),
])
def test_every_failure_is_audited_and_the_lock_released(fleet, raised, failure):
    inv, host, _ = fleet
    said: list[str] = []
    done = Record("node.enable", "prod", "-")
    with pytest.raises(type(raised)) as caught, \
            operation(inv, "node.enable", "-", done, nodes.NodeError, said.append) as clock, \
            clock.phase("enable", "enable app1"):
        raise raised
    assert caught.value is raised
    assert lock.status(host("db1")) is None
    [entry] = _trail(host("db1"))
    assert (entry["ok"], entry["failure"]) == (False, failure)
    assert entry["phases"][-1][0] == "enable"
    assert said[-1].endswith(f"node.enable FAILED: {failure}")


def test_a_held_lock_refuses_naming_the_holder_and_changes_nothing(fleet):
    inv, host, _ = fleet
    lock.acquire(host("db1"), ALICE)
    said: list[str] = []
    done = Record("node.remove", "prod", "-")
    with pytest.raises(nodes.NodeError) as caught, \
            operation(inv, "node.remove", "-", done, nodes.NodeError, said.append):
        pytest.fail("the body ran without the lock")
    assert str(caught.value).startswith(
        "another deploy holds the lock: alice@ops1 (deploy of 20260101T000000Z-abc) since "
        "2026-01-01T00:00:00+00:00")
    assert str(caught.value).endswith("; nothing was changed")
    assert lock.status(host("db1")) == ALICE
    assert _trail(host("db1")) == []
    assert said[-1].endswith(f"node.remove FAILED: {caught.value}")


def test_closing_runs_under_the_lock_and_its_failure_still_audits_and_releases(fleet):
    inv, host, _ = fleet
    seen = []
    done = Record("deploy", "prod", "R2")

    def closing() -> None:
        seen.append((done.ok, lock.status(host("db1")).action))
        raise RuntimeError("the post hook crashed")

    with pytest.raises(RuntimeError, match="post hook crashed"), \
            operation(inv, "deploy", "R2", done, deploy.DeployError, lambda _: None,
                      closing=closing):
        pass
    assert seen == [(True, "deploy")]
    assert lock.status(host("db1")) is None
    assert _trail(host("db1"))[0]["ok"] is True


# --- the commands that use it -----------------------------------------------------------------


def test_a_failed_deploy_keeps_its_outcome_and_its_audit_fields(fleet):
    inv, host, _ = fleet
    before = {"app1": releases.HostReleases("app1", "20261201T090000Z-old", None,
                                            ("20261201T090000Z-old",), ())}
    plan = deploy.Plan(inv, "20261202T101500Z-new", {}, False, before)
    outcome = deploy.Outcome("deploy", "prod", release=plan.release)
    clock = Clock(outcome.phases, lambda _: None)

    def work() -> None:
        with clock.phase("switch", "roll the app hosts over"):
            raise deploy.DeployError("switching failed on app1")

    with pytest.raises(deploy.DeployError) as caught:
        deploy._locked(outcome, clock, plan, "deploy", work, lambda _: None)
    assert caught.value.outcome is outcome
    assert lock.status(host("db1")) is None
    [entry] = _trail(host("db1"))
    assert (entry["action"], entry["release"], entry["failure"]) == (
        "deploy", "20261202T101500Z-new", "switching failed on app1")
    assert entry["before"] == {"app1": "20261201T090000Z-old"}
    assert [name for name, _ in entry["phases"]] == ["lock", "switch"]


def test_db_restore_loads_the_dump_after_a_safety_backup_and_is_audited(fleet, tmp_path):
    inv, host, _ = fleet
    dump = database.backup(inv, say=lambda _: None)
    (tmp_path / "database.sql").write_text("rows deleted by mistake\n")
    said: list[str] = []
    safety = database.restore(inv, dump, say=said.append)
    assert (tmp_path / "database.sql").read_text() == "the live data\n"
    assert gzip.decompress(Path(safety).read_bytes()) == b"rows deleted by mistake\n"
    assert f"db.restore: safety backup of the current database: db1:{safety}" in said
    assert lock.status(host("db1")) is None
    backup_entry, entry = _trail(host("db1"))
    assert (backup_entry["action"], backup_entry["backup"]) == ("db.backup", f"db1:{dump}")
    assert (entry["action"], entry["release"], entry["ok"]) == (
        "db.restore", Path(dump).name, True)
    assert (entry["dump"], entry["safety_backup"]) == (f"db1:{dump}", f"db1:{safety}")
    assert [name for name, _ in entry["phases"]] == ["lock", "safety backup", "restore"]


def test_a_failed_restore_is_audited_with_where_the_old_database_is(fleet, tmp_path):
    inv, host, _ = fleet
    (tmp_path / "database.sql").write_text("BROKEN dump\n")
    dump = database.backup(inv, say=lambda _: None)
    with pytest.raises(database.DatabaseError, match="ERROR 1064") as caught:
        database.restore(inv, dump, say=lambda _: None)
    # The reason is the play's `failure` result (roles/mariadb restore_now), then the safety
    # backup's place.
    safety = max(p for p in (tmp_path / "backups").glob("*.sql.gz") if str(p) != dump)
    assert str(caught.value) == (f"restoring {dump} failed: ERROR 1064 at line 1; "
                                 f"the database as it was is in db1:{safety}")
    assert lock.status(host("db1")) is None
    entry = _trail(host("db1"))[-1]
    assert (entry["action"], entry["ok"], entry["failure"]) == (
        "db.restore", False, str(caught.value))


def test_a_backup_during_a_deploy_is_refused(fleet, tmp_path):
    inv, host, _ = fleet
    lock.acquire(host("db1"), ALICE)
    with pytest.raises(database.DatabaseError) as caught:
        database.backup(inv, say=lambda _: None)
    message = str(caught.value)
    assert "another deploy holds the lock: alice@ops1 (deploy of 20260101T000000Z-abc)" in message
    assert message.endswith("; no backup was taken")
    assert list((tmp_path / "backups").iterdir()) == []
    assert lock.status(host("db1")) == ALICE


def test_a_failed_backup_names_the_scripts_error(fleet, tmp_path):
    inv, host, _ = fleet
    script = tmp_path / "bin" / "flaskfleet-db-backup"
    script.write_text("#!/bin/sh\necho 'mysqldump: Got error: 2002: Cannot connect' >&2\nexit 2\n")
    with pytest.raises(database.DatabaseError) as caught:
        database.backup(inv, say=lambda _: None)
    assert str(caught.value).startswith(
        "the backup on db1 failed: mysqldump: Got error: 2002: Cannot connect")
    assert lock.status(host("db1")) is None
    entry = _trail(host("db1"))[-1]
    assert (entry["action"], entry["ok"]) == ("db.backup", False)


def test_the_restore_play_refuses_a_file_that_is_not_a_dump(fleet, tmp_path):
    inv, _, _ = fleet
    (tmp_path / "database.sql").write_text("the live data\n")
    with pytest.raises(database.DatabaseError) as caught:
        database._load(inv, "/etc/passwd", "/var/backups/mariadb/safety.sql.gz")
    assert str(caught.value) == (
        f"restoring /etc/passwd failed: /etc/passwd is not a dump in {tmp_path / 'backups'} "
        "(NAME.sql.gz); nothing was restored; the database as it was is in "
        "db1:/var/backups/mariadb/safety.sql.gz")
    assert (tmp_path / "database.sql").read_text() == "the live data\n"
