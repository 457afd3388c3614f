"""fleet/results.py: the plays' result documents read back against the schema, and what a deploy
makes of them (fleet.ops.deploy `_from_results`).

The documents are written here the way the roles write them (`to_json` of a dict, one file per
kind and host); a document that does not match the schema is an error naming the file, the kind
and the field. The roles' side, run for real by ansible-playbook, is in test_operation.py
(db.backup through playbooks/db-backup.yml).
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from fleet import results
from fleet.ansible import PlaybookResult
from fleet.ops.deploy import _from_results

REASON = ("host=app1: release 20260101T000000Z-abc1234 failed Check readiness: got \"503\" "
          "from café\\api. The host is back on 20251231T000000Z-0000000")


def write(directory: Path, kind: str, host: str, document, at: int | None = None) -> Path:
    path = directory / f"{kind}-{host}.json"
    path.write_text(document if isinstance(document, str) else json.dumps(document))
    if at is not None:
        os.utime(path, ns=(at, at))
    return path


def test_a_document_of_each_kind_is_read_back(tmp_path):
    write(tmp_path, "failure", "app1", {"host": "app1", "reason": REASON}, at=1)
    write(tmp_path, "backup", "db1", {"host": "db1", "path": "/var/backups/mariadb/x.sql.gz"},
          at=2)
    write(tmp_path, "migration", "app1", {"host": "app1", "before": "a1,b2", "after": "c3"},
          at=3)
    assert results.read(tmp_path) == [
        results.Failure("app1", REASON),
        results.Backup("db1", "/var/backups/mariadb/x.sql.gz"),
        results.Migration("app1", "a1,b2", "c3")]


def test_documents_come_back_in_the_order_they_were_written(tmp_path):
    write(tmp_path, "failure", "app2", {"host": "app2", "reason": "second"}, at=20)
    write(tmp_path, "failure", "app1", {"host": "app1", "reason": "first"}, at=10)
    assert [r.host for r in results.read(tmp_path)] == ["app1", "app2"]
    assert results.first_failure(results.read(tmp_path)) == "first"


def test_every_failure_names_the_hosts_of_a_batch_in_host_order(tmp_path):
    write(tmp_path, "failure", "app2", {"host": "app2", "reason": "host=app2: not switched."},
          at=10)
    write(tmp_path, "failure", "app1", {"host": "app1", "reason": "host=app1: /readyz 503."},
          at=20)
    write(tmp_path, "backup", "db1", {"host": "db1", "path": "/b/x.sql.gz"}, at=30)
    assert (results.every_failure(results.read(tmp_path))
            == "host=app1: /readyz 503. host=app2: not switched.")
    assert results.every_failure([]) is None


def test_last_picks_the_latest_of_its_kind_only(tmp_path):
    write(tmp_path, "backup", "db1", {"host": "db1", "path": "/b/old.sql.gz"}, at=1_000)
    write(tmp_path, "migration", "app1", {"host": "app1", "before": "a", "after": "b"}, at=2_000)
    write(tmp_path, "backup", "db2", {"host": "db2", "path": "/b/new.sql.gz"}, at=3_000)
    found = results.read(tmp_path)
    assert results.last(found, results.Backup) == results.Backup("db2", "/b/new.sql.gz")
    assert results.last(found, results.Migration) == results.Migration("app1", "a", "b")
    assert results.last(found, results.Drill) is None


def test_an_empty_directory_has_no_results(tmp_path):
    assert results.read(tmp_path) == []
    assert results.first_failure([]) is None
    assert results.last([], results.Backup) is None and results.last([], results.Migration) is None


def test_a_missing_field_names_the_field_the_kind_and_the_file(tmp_path):
    path = write(tmp_path, "backup", "db1", {"host": "db1"})
    with pytest.raises(results.ResultError) as caught:
        results.read(tmp_path)
    assert str(caught.value) == f"{path}: backup result has no field 'path'"


def test_a_field_of_the_wrong_type_is_named(tmp_path):
    path = write(tmp_path, "migration", "app1", {"host": "app1", "before": "a1", "after": 3})
    with pytest.raises(results.ResultError, match="must be a string, got int") as caught:
        results.read(tmp_path)
    assert str(caught.value).startswith(f"{path}: migration result field 'after'")


def test_invalid_json_is_a_clear_error(tmp_path):
    path = write(tmp_path, "failure", "app1", '{"host": "app1", "reason": ')
    with pytest.raises(results.ResultError) as caught:
        results.read(tmp_path)
    assert str(caught.value).startswith(f"{path}: failure result is not valid JSON: ")


def test_a_document_that_is_not_an_object_is_refused(tmp_path):
    write(tmp_path, "failure", "app1", '["app1", "reason"]')
    with pytest.raises(results.ResultError, match="must be a JSON object, got list"):
        results.read(tmp_path)


def test_a_file_of_an_unknown_kind_is_refused(tmp_path):
    path = write(tmp_path, "deployed", "app1", {"host": "app1"})
    with pytest.raises(results.ResultError) as caught:
        results.read(tmp_path)
    assert str(caught.value).startswith(f"{path}: not a result file")
    assert "failure, backup, migration, drill" in str(caught.value)


DRILL = {"host": "db1", "dump": "/var/backups/mariadb/fleetapp-x.sql.gz",
         "scratch": "fleetapp_verify_20260101000000",
         "queries": [["SELECT 1", "1"], ["SELECT version_num FROM alembic_version", "ab12"]],
         "rows": {"users": 3, "alembic_version": 1},
         "seconds": {"inspect": 0.01, "restore": 2, "queries": 0.2, "count": 0.1, "drop": 0.05},
         "failure": ""}


def test_a_drill_is_read_back_with_its_lists_and_counts(tmp_path):
    write(tmp_path, "drill", "db1", DRILL)
    [drill] = results.read(tmp_path)
    assert drill == results.Drill(
        "db1", DRILL["dump"], DRILL["scratch"],
        (("SELECT 1", "1"), ("SELECT version_num FROM alembic_version", "ab12")),
        {"users": 3, "alembic_version": 1},
        {"inspect": 0.01, "restore": 2, "queries": 0.2, "count": 0.1, "drop": 0.05}, "")
    assert list(drill.seconds) == ["inspect", "restore", "queries", "count", "drop"]
    assert results.last([drill], results.Drill) is drill and results.last([], results.Drill) is None


@pytest.mark.parametrize("missing", sorted(DRILL))
def test_a_drill_without_a_field_names_it(tmp_path, missing):
    path = write(tmp_path, "drill", "db1", {k: v for k, v in DRILL.items() if k != missing})
    with pytest.raises(results.ResultError) as caught:
        results.read(tmp_path)
    assert str(caught.value) == f"{path}: drill result has no field '{missing}'"


@pytest.mark.parametrize(("name", "value", "wanted"), [
    ("queries", [["SELECT 1"]], "a list of [query, answer] string pairs"),
    ("queries", [["SELECT 1", 1]], "a list of [query, answer] string pairs"),
    ("queries", {"SELECT 1": "1"}, "a list of [query, answer] string pairs"),
    ("rows", {"users": "3"}, "an object of table names to row counts (integers)"),
    ("rows", {"users": True}, "an object of table names to row counts (integers)"),
    ("rows", [["users", 3]], "an object of table names to row counts (integers)"),
    ("seconds", {"inspect": "0.1"}, "an object of step names to seconds (numbers)"),
    ("failure", None, "a string"),
])
def test_a_drill_field_of_the_wrong_shape_is_named(tmp_path, name, value, wanted):
    path = write(tmp_path, "drill", "db1", {**DRILL, name: value})
    with pytest.raises(results.ResultError) as caught:
        results.read(tmp_path)
    assert str(caught.value).startswith(
        f"{path}: drill result field '{name}' must be {wanted}, got ")


def playbook(found) -> PlaybookResult:
    return PlaybookResult(returncode=2, recap={}, elapsed=1.0, results=found)


def test_the_deploy_reads_failure_backup_and_migration_from_the_files(tmp_path):
    write(tmp_path, "backup", "db1", {"host": "db1", "path": "/var/backups/mariadb/a.sql.gz"},
          at=1)
    write(tmp_path, "migration", "app1", {"host": "app1", "before": "a1,b2", "after": "c3"},
          at=2)
    write(tmp_path, "failure", "app1", {"host": "app1", "reason": REASON}, at=3)
    write(tmp_path, "failure", "app2", {"host": "app2", "reason": "later"}, at=4)
    failure, backup, migration = _from_results(playbook(results.read(tmp_path)))
    assert failure == REASON
    assert backup == "db1:/var/backups/mariadb/a.sql.gz"
    assert backup.split(":", 1) == ["db1", "/var/backups/mariadb/a.sql.gz"]
    assert migration == "before=a1,b2 after=c3"


def test_the_deploy_finds_nothing_when_the_plays_reported_nothing(tmp_path):
    assert _from_results(playbook(results.read(tmp_path))) == (None, None, None)
