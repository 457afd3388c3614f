"""fleet/ops/database.py: the backup table, the drill's settings, and the restore drill run
through its play (playbooks/db-verify.yml) against a stand-in `mysql` (mysql_stand_in.py)."""

from __future__ import annotations

import dataclasses
import gzip
import hashlib
import os
import re
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import mysql_stand_in
import pytest
import yaml

from fleet import hosts
from fleet.inventory import Inventory
from fleet.ops import database
from fleet.remote import LocalRunner


def _inventory(**hostvars) -> Inventory:
    return Inventory(env="prod", path=Path("."), groups={"db": ["db1"]},
                     hostvars={"db1": dict(hostvars)}, origins={}, group_sources={},
                     sandbox=False)


def test_the_table_shows_size_age_and_checksum():
    now = 1_800_000_000.0
    found = [database.Backup("/var/backups/mariadb/a.sql.gz", 5 * 1024 * 1024, now - 1800, "ok"),
             database.Backup("/var/backups/mariadb/b.sql.gz", 900, now - 3 * 86400, "MISMATCH")]
    lines = database.table(found, now=now).splitlines()
    assert lines[0].split() == ["dump", "size", "age", "checksum"]
    assert lines[2].split() == ["/var/backups/mariadb/a.sql.gz", "5.0", "MiB", "30m", "ok"]
    assert lines[3].split() == ["/var/backups/mariadb/b.sql.gz", "900", "B", "3.0d", "MISMATCH"]


def test_the_table_has_a_copy_column_only_with_a_copy_dir():
    found = [database.Backup("/b/a.sql.gz", 10, 0.0, "ok", copied=True),
             database.Backup("/b/b.sql.gz", 10, 0.0, "ok", copied=False)]
    lines = database.table(found, now=7200.0).splitlines()
    assert lines[0].split()[-1] == "copied"
    assert [line.split()[-1] for line in lines[2:]] == ["yes", "no"]


def test_verify_queries_default_to_the_reference_apps_readiness_checks():
    assert database.verify_queries(_inventory()) == [
        "SELECT 1", "SELECT version_num FROM alembic_version"]
    assert database.verify_queries(_inventory(mariadb_verify_queries=["SELECT 2 "])) == [
        "SELECT 2"]


@pytest.mark.parametrize("bad", [[], [""], "SELECT 1", [1]])
def test_bad_verify_queries_are_refused_by_name(bad):
    with pytest.raises(database.DatabaseError, match="mariadb_verify_queries"):
        database.verify_queries(_inventory(mariadb_verify_queries=bad))


def test_copy_dir_is_optional(tmp_path):
    assert database.copy_dir(_inventory()) is None
    assert database.copy_dir(_inventory(mariadb_backup_copy_dir=" ")) is None
    assert database.copy_dir(_inventory(mariadb_backup_copy_dir=str(tmp_path))) == tmp_path


# --- the restore drill, its play run for real ---------------------------------------------
# db1 is this machine (a local connection): `hosts.runner` hands out a local shell for the
# read-only listing and checksum, playbooks/db-verify.yml runs with ansible-playbook, and the
# db host's `mysql` is the stand-in of mysql_stand_in.py (first on PATH).

DUMP_HEAD = ("CREATE DATABASE /*!32312 IF NOT EXISTS*/ `fleetapp` /*!40100 DEFAULT CHARACTER "
             "SET utf8mb4 */;\n")
DUMP_BODY = ("USE `fleetapp`;\n"
             "CREATE TABLE `users` (id int);\n"
             "INSERT INTO `users` VALUES (1),(2),(3);\n"
             "CREATE TABLE `alembic_version` (version_num varchar(32));\n"
             "INSERT INTO `alembic_version` VALUES ('abc123def456');\n"
             "CREATE TABLE `empty` (id int);\n")


class LocalHost(LocalRunner):
    def __init__(self, name: str) -> None:
        self.name = name

    def close(self) -> None:
        pass


@dataclass
class DbHost:
    inv: Inventory
    backups: Path
    state: Path  # the stand-in's databases

    def dump(self, text: str, name: str = "fleetapp-20260101T000000Z.sql.gz",
             age: int = 0) -> str:
        """A dump in the backup directory, with its checksum; its path."""
        path = self.backups / name
        path.write_bytes(gzip.compress(text.encode()))
        digest = hashlib.sha256(path.read_bytes()).hexdigest()
        (self.backups / f"{name}.sha256").write_text(f"{digest}  {name}\n")
        stamp = time.time() - age
        for written in (path, self.backups / f"{name}.sha256"):
            os.utime(written, (stamp, stamp))
        return str(path)


@pytest.fixture
def db_host(tmp_path, monkeypatch) -> DbHost:
    backups = tmp_path / "backups"
    backups.mkdir()
    state = tmp_path / "mysql"
    mysql_stand_in.install(tmp_path / "bin", state)
    monkeypatch.setenv("PATH", f"{tmp_path / 'bin'}{os.pathsep}{os.environ['PATH']}")
    monkeypatch.setattr(hosts, "runner", lambda inv, host: LocalHost(host))
    db1 = {"mariadb_backup_dir": str(backups), "mariadb_database": "fleetapp"}
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "ansible_become": False}
    (tmp_path / "inventory").mkdir()
    (tmp_path / "inventory" / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {"db": {"hosts": {"db1": {**db1, **local}}}}}}))
    inv = Inventory(env="prod", path=tmp_path / "inventory", groups={"db": ["db1"]},
                    hostvars={"db1": db1})
    return DbHost(inv, backups, state)


def test_the_drill_loads_the_latest_dump_into_a_scratch_database_and_drops_it(db_host):
    db_host.dump(DUMP_HEAD + "USE `fleetapp`;\nCREATE TABLE `old` (id int);\n",
                 name="fleetapp-20251231T000000Z.sql.gz", age=3600)
    latest = db_host.dump(DUMP_HEAD + DUMP_BODY)
    said: list[str] = []
    drill = database.verify_backup(db_host.inv, say=said.append)
    assert drill.ok, drill.summary()
    assert drill.dump == latest
    assert re.fullmatch(r"fleetapp_verify_\d{14}", drill.scratch)
    assert said == [f"db.verify-backup: db1:{latest} -> scratch database {drill.scratch}"]
    assert drill.rows == {"alembic_version": 1, "empty": 0, "users": 3}
    assert drill.queries == [("SELECT 1", "1"),
                             ("SELECT version_num FROM alembic_version", "abc123def456")]
    assert list(drill.seconds) == ["inspect", "restore", "queries", "count", "drop"]
    assert all(isinstance(s, float) and s >= 0 for s in drill.seconds.values())
    assert mysql_stand_in.databases(db_host.state) == []  # dropped; nothing else was made


def test_a_failing_readiness_query_fails_the_drill_and_the_rest_still_runs(db_host):
    db_host.dump(DUMP_HEAD + DUMP_BODY)
    inv = dataclasses.replace(db_host.inv, hostvars={"db1": {
        **db_host.inv.hostvars["db1"],
        "mariadb_verify_queries": ["SELECT nope FROM no_such_table", "SELECT 1"]}})
    drill = database.verify_backup(inv, say=lambda _: None)
    assert drill.failure == ("readiness query failed on the restored copy: "
                             "SELECT nope FROM no_such_table")
    query, answer = drill.queries[0]
    assert answer.startswith("ERROR 1146 (42S02)") and "no_such_table" in answer
    assert drill.queries[1] == ("SELECT 1", "1")
    assert drill.rows["users"] == 3  # counted all the same
    assert mysql_stand_in.databases(db_host.state) == []
    assert drill.summary().splitlines()[-1] == f"restore drill FAILED: {drill.failure}"


def test_a_dump_of_another_database_stops_the_drill_before_a_statement_runs(db_host):
    path = db_host.dump(DUMP_HEAD + "USE `fleetapp`;\nUSE `mysql`;\nDROP TABLE `user`;\n")
    drill = database.verify_backup(db_host.inv, say=lambda _: None)
    assert drill.failure.startswith(f"{path} does not look like a dump of fleetapp alone (found ")
    assert "USE `mysql`;" in drill.failure and drill.failure.endswith("; nothing was restored")
    assert list(drill.seconds) == ["inspect", "drop"]  # no scratch database was made
    assert drill.queries == [] and drill.rows == {}
    assert mysql_stand_in.databases(db_host.state) == []


def test_a_dump_that_does_not_load_fails_the_drill_and_the_scratch_is_dropped(db_host):
    db_host.dump(DUMP_HEAD + DUMP_BODY + "BROKEN statement;\n")
    drill = database.verify_backup(db_host.inv, say=lambda _: None)
    assert drill.failure.startswith("loading the dump failed: ERROR 1064 (42000) at line 3")
    assert list(drill.seconds) == ["inspect", "restore", "drop"]
    assert mysql_stand_in.databases(db_host.state) == []


def test_a_scratch_database_left_behind_fails_the_drill(db_host):
    db_host.dump(DUMP_HEAD + DUMP_BODY)
    (db_host.state / "refuse-drop").touch()
    drill = database.verify_backup(db_host.inv, say=lambda _: None)
    assert drill.failure.startswith(f"could not drop {drill.scratch} on db1: ERROR 1010")
    assert drill.rows["users"] == 3


def test_a_copy_without_tables_fails_the_drill(db_host):
    db_host.dump(DUMP_HEAD + "USE `fleetapp`;\n")
    inv = dataclasses.replace(db_host.inv, hostvars={"db1": {
        **db_host.inv.hostvars["db1"], "mariadb_verify_queries": ["SELECT 1"]}})
    drill = database.verify_backup(inv, say=lambda _: None)
    assert drill.failure == "the restored copy has no tables"
    assert drill.queries == [("SELECT 1", "1")]


@pytest.fixture
def no_play(monkeypatch) -> list:
    """Records a play that was started (none should be: the input is refused first)."""
    started: list = []
    monkeypatch.setattr(database.ansible, "run_with_vars",
                        lambda *args, **kwargs: started.append(args) or pytest.fail("a play ran"))
    return started


@pytest.mark.parametrize(("setup", "message"), [
    ("none", "there is no backup on db1 yet: run `fab db.backup`"),
    ("unknown", "/var/backups/elsewhere.sql.gz is not a backup on db1 (see `fab db.backups`)"),
    ("damaged", "does not match its checksum"),
    ("unsummed", "has no checksum"),
    ("database", "mariadb_database 'fleet-app': the drill supports names of letters, digits "
                 "and underscores only"),
    ("queries", "mariadb_verify_queries must be a non-empty list of SQL queries"),
])
def test_bad_input_is_refused_before_anything_runs_on_the_host(db_host, no_play, setup,
                                                                message):
    inv, path = db_host.inv, None
    if setup != "none":
        path = db_host.dump(DUMP_HEAD + DUMP_BODY)
    if setup == "unknown":
        path = "/var/backups/elsewhere.sql.gz"
    elif setup == "damaged":
        with open(path, "ab") as handle:
            handle.write(b"x")
    elif setup == "unsummed":
        os.unlink(path + ".sha256")
    elif setup in ("database", "queries"):
        name, value = {"database": ("mariadb_database", "fleet-app"),
                       "queries": ("mariadb_verify_queries", [])}[setup]
        inv = dataclasses.replace(inv, hostvars={"db1": {**inv.hostvars["db1"], name: value}})
    with pytest.raises(database.DatabaseError) as caught:
        database.verify_backup(inv, path, say=lambda _: None)
    assert message in str(caught.value)
    assert no_play == [] and mysql_stand_in.databases(db_host.state) == []


def test_a_drill_that_did_not_run_is_an_error_naming_why(db_host):
    db_host.dump(DUMP_HEAD + DUMP_BODY)
    unreachable = {"ansible_connection": "ssh", "ansible_host": "127.0.0.1", "ansible_port": 1,
                   "mariadb_backup_dir": str(db_host.backups)}
    (db_host.inv.path / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {"db": {"hosts": {"db1": unreachable}}}}}))
    with pytest.raises(database.DatabaseError) as caught:
        database.verify_backup(db_host.inv, say=lambda _: None)
    assert str(caught.value).startswith("the restore drill on db1 did not run: ")
    assert "UNREACHABLE" in str(caught.value)


def test_the_drill_summary_keeps_its_shape():
    drill = database.Drill("/b/fleetapp-x.sql.gz", "fleetapp_verify_20260101000000",
                           queries=[("SELECT 1", "1")], rows={"users": 3, "alembic_version": 1},
                           seconds={"inspect": 0.04, "restore": 1.26, "drop": 0.1})
    lines = drill.summary().splitlines()
    assert lines[:2] == ["dump: /b/fleetapp-x.sql.gz",
                         "scratch database: fleetapp_verify_20260101000000 (dropped)"]
    assert lines[-2:] == ["timings: inspect 0.0s, restore 1.3s, drop 0.1s", "restore drill: ok"]
    assert [line.split()[:2] for line in lines if "users" in line or "alembic" in line] == [
        ["alembic_version", "1"], ["users", "3"]]
