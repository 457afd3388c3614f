"""fleet/ops/database.py without a database: the backup table and the drill's settings."""

from __future__ import annotations

from pathlib import Path

import pytest

from fleet.inventory import Inventory
from fleet.ops import database


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
