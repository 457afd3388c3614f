"""Backups you can trust, on the real sandbox (issue 15).

A row written, a backup taken, the row deleted: restoring that backup brings it back. Each dump
has a checksum that `fab db.backups` checks and a restore insists on; a damaged dump is refused.
The restore drill loads the latest dump into a scratch database and reports the rows of every
table, which must be what the live database held when the dump was taken. Dumps are copied off
the db host to a directory of the control machine, checked. Redis keeps a key across a crash.
"""

from __future__ import annotations

import dataclasses
import hashlib
import re
import secrets
import shlex
import time

import pytest
from fleet_helpers import ROOT, fab, get, on, versions

from fleet import inventory
from fleet.ops import database, deploy

APP = ROOT / "app"
PROBE = "fleetapp.backup_probe"


@pytest.fixture(scope="module")
def fleet(provisioned):
    inv = inventory.load("sandbox")
    if not all(v.startswith("2") for v in versions(inv).values()):
        assert deploy.deploy(app_dir=APP).ok  # the module also runs on its own (schema)
    db = inv.hosts_of("db")[0]
    on(inv, db, f"mysql -e 'CREATE TABLE IF NOT EXISTS {PROBE} "
                "(id INT PRIMARY KEY, note VARCHAR(64) NOT NULL)'")
    yield inv
    on(inv, db, f"mysql -e 'DROP TABLE IF EXISTS {PROBE}'")


def _sql(inv, statement: str) -> str:
    return on(inv, inv.hosts_of("db")[0], f"mysql -N -e \"{statement}\"")


def _backup() -> str:
    result = fab("db.backup")
    assert result.returncode == 0, result.stderr
    # "db.backup: db1:/var/backups/mariadb/fleetapp-<stamp>.sql.gz"
    return result.stdout.strip().splitlines()[0].rsplit(":", 1)[1].strip()


def test_a_restore_brings_back_a_deleted_row(fleet):
    inv = fleet
    note = f"restore-{secrets.token_hex(6)}"
    _sql(inv, f"INSERT INTO {PROBE} VALUES (1, '{note}')")
    dump = _backup()
    _sql(inv, f"DELETE FROM {PROBE} WHERE id = 1")
    assert _sql(inv, f"SELECT COUNT(*) FROM {PROBE}") == "0"
    result = fab("db.restore", dump, "--yes")
    assert result.returncode == 0, result.stderr
    assert _sql(inv, f"SELECT note FROM {PROBE} WHERE id = 1") == note
    assert get("/readyz")[0] == 200  # the app serves the restored database


def test_backups_are_listed_with_a_good_checksum(fleet):
    dump = _backup()
    result = fab("db.backups")
    assert result.returncode == 0, result.stdout + result.stderr
    line = next(line for line in result.stdout.splitlines() if dump in line)
    assert re.search(r"\bok\b", line), line
    assert re.search(r"\d+(\.\d)? (B|KiB|MiB)", line), line


def test_a_damaged_dump_is_refused_and_listed_as_such(fleet):
    inv = fleet
    db = inv.hosts_of("db")[0]
    good = _backup()
    bad = good.rsplit("/", 1)[0] + "/fleetapp-20000101T000000Z.sql.gz"
    on(inv, db, f"cp {good} {bad} && sed 's#{good.rsplit('/', 1)[1]}#{bad.rsplit('/', 1)[1]}#' "
                f"{good}.sha256 > {bad}.sha256 && printf x >> {bad} && touch -d '1 hour ago' "
                f"{bad} {bad}.sha256")
    try:
        before = _sql(inv, f"SELECT COUNT(*) FROM {PROBE}")
        result = fab("db.restore", bad, "--yes")
        assert result.returncode == 1
        assert "does not match its checksum" in result.stderr and "nothing was restored" \
            in result.stderr
        assert _sql(inv, f"SELECT COUNT(*) FROM {PROBE}") == before
        listed = fab("db.backups")
        assert listed.returncode == 1 and "MISMATCH" in listed.stdout
        on(inv, db, f"rm -f {bad}.sha256")
        result = fab("db.restore", bad, "--yes")
        assert result.returncode == 1 and "has no checksum" in result.stderr
    finally:
        on(inv, db, f"rm -f {bad} {bad}.sha256")


def _live_counts(inv) -> dict[str, int]:
    tables = _sql(inv, "SELECT table_name FROM information_schema.tables WHERE "
                       "table_schema = 'fleetapp' AND table_type = 'BASE TABLE'").split()
    union = " UNION ALL ".join(f"SELECT '{t}', COUNT(*) FROM fleetapp.{t}" for t in tables)
    return {name: int(count) for name, count in
            (line.split("\t") for line in _sql(inv, union).splitlines())}


def test_the_restore_drill_reports_the_rows_of_the_dump(fleet):
    inv = fleet
    rows = secrets.randbelow(7) + 3
    _sql(inv, f"DELETE FROM {PROBE}")
    _sql(inv, f"INSERT INTO {PROBE} VALUES " + ", ".join(
        f"({i}, 'drill-{i}')" for i in range(1, rows + 1)))
    before = _live_counts(inv)
    dump = _backup()
    after = _live_counts(inv)
    started = time.monotonic()
    drill = database.verify_backup(inv)
    seconds = time.monotonic() - started
    print(f"restore drill of {dump}: {seconds:.1f}s {drill.seconds}, rows {drill.rows}")
    assert drill.ok, drill.summary()
    assert drill.dump == dump
    assert drill.rows[PROBE.split(".")[1]] == rows
    assert set(drill.rows) == set(before)
    # Tables nobody wrote to while the dump was taken must match to the row.
    stable = {t for t in before if before[t] == after[t]}
    assert {"users", "alembic_version", "backup_probe"} <= stable
    assert {t: drill.rows[t] for t in stable} == {t: before[t] for t in stable}
    live_revision = _sql(inv, "SELECT version_num FROM fleetapp.alembic_version")
    assert ("SELECT version_num FROM alembic_version", live_revision) in drill.queries
    assert _sql(inv, "SHOW DATABASES LIKE 'fleetapp\\_verify\\_%'") == ""


def test_fab_verify_backup_prints_the_drill(fleet):
    result = fab("db.verify-backup")
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr
    assert "restore drill: ok" in result.stdout
    assert re.search(r"backup_probe\s*\|?\s*\d+", result.stdout), result.stdout


def test_a_failing_readiness_query_fails_the_drill(fleet):
    inv = dataclasses.replace(fleet, hostvars={
        host: {**hv, "mariadb_verify_queries": ["SELECT 1", "SELECT nope FROM no_such_table"]}
        for host, hv in fleet.hostvars.items()})
    drill = database.verify_backup(inv)
    assert not drill.ok and "no_such_table" in drill.failure
    assert _sql(inv, "SHOW DATABASES LIKE 'fleetapp\\_verify\\_%'") == ""


def test_dumps_are_copied_off_the_db_host_and_checked(fleet, tmp_path):
    target = tmp_path / "offsite"
    result = fab("db.fetch", "--to", str(target))
    assert result.returncode == 0, result.stderr
    copies = sorted(target.glob("fleetapp-*.sql.gz"))
    assert copies and len(copies) == len(database.backups(fleet))
    for copy in copies:
        expected = (target / f"{copy.name}.sha256").read_text().split()
        assert expected[1] == copy.name
        assert hashlib.sha256(copy.read_bytes()).hexdigest() == expected[0]
    again = fab("db.fetch", "--to", str(target))
    assert "0 new dump(s)" in again.stdout


def test_redis_keeps_a_key_across_a_crash(fleet):
    """AOF with appendfsync everysec: a write older than a second survives SIGKILL.

    (Drill 6 of test_drills.py proves queued jobs survive a clean restart.)"""
    inv = fleet
    host = inv.hosts_of("redis")[0]
    hv = inv.hostvars[host]
    cli = (f"REDISCLI_AUTH={shlex.quote(str(hv['redis_password']))} redis-cli --no-auth-warning "
           f"-h {hv['fleet_private_address']} -p {hv.get('redis_port', 6379)} -n 0")
    key, value = f"fleet-test:{secrets.token_hex(4)}", secrets.token_hex(8)
    assert on(inv, host, f"{cli} SET {key} {value}") == "OK"
    time.sleep(2)  # one fsync interval and then some
    pid = on(inv, host, "systemctl show -p MainPID --value redis-server")
    on(inv, host, "systemctl kill -s SIGKILL redis-server; sleep 1; "
                  "systemctl start redis-server")
    assert on(inv, host, "systemctl show -p MainPID --value redis-server") not in (pid, "0")
    try:
        assert on(inv, host, f"{cli} GET {key}") == value
    finally:
        on(inv, host, f"{cli} DEL {key}")
