"""A stand-in for the db host's `mysql` client, for running the restore drill's play here.

It keeps each database as a directory holding the SQL that was loaded into it and answers the
few statements the drill sends: CREATE/DROP DATABASE, a load on stdin, the table list, the row
counts and the readiness queries (`SELECT 1`, `SELECT <column> FROM <table>` on a table the
dump created, an error otherwise). A load that still carries a USE or CREATE DATABASE line is
refused, so a drill that forgot to strip them fails here too; a dump containing BROKEN fails to
load. Only the behaviour the play relies on is imitated; the real server is in
tests/integration/test_backups.py.
"""

from __future__ import annotations

import sys
from pathlib import Path

PROGRAM = r'''
import re
import shutil
import sys
from pathlib import Path

STATE = Path(__STATE__)


def fail(message):
    sys.stderr.write(message + "\n")
    sys.exit(1)


def tables(database):
    dump = (STATE / database / "loaded.sql")
    text = dump.read_text() if dump.is_file() else ""
    return sorted(set(re.findall(r"^CREATE TABLE `([^`]+)`", text, re.M))), text


def rows(text, table):
    count = 0
    for line in text.splitlines():
        if line.startswith(f"INSERT INTO `{table}` VALUES "):
            count += line.count("),(") + 1
    return count


args = sys.argv[1:]
sql = args[args.index("-e") + 1] if "-e" in args else None
database = next((a.split("=", 1)[1] for a in args if a.startswith("--database=")), None)
positional = [a for a in args if not a.startswith("-") and a != sql]
database = database or (positional[0] if positional else None)

if sql is None:
    data = sys.stdin.read()
    if re.search(r"^(USE|CREATE DATABASE) ", data, re.M):
        fail("ERROR 1049 (42000) at line 1: the stand-in refuses a USE or CREATE DATABASE line")
    if "BROKEN" in data:
        fail("ERROR 1064 (42000) at line 3: You have an error in your SQL syntax")
    if not (STATE / database).is_dir():
        fail(f"ERROR 1049 (42000): Unknown database '{database}'")
    (STATE / database / "loaded.sql").write_text(data)
    sys.exit(0)

match = re.fullmatch(r"CREATE DATABASE `(\w+)`", sql)
if match:
    if (STATE / match[1]).exists():
        fail(f"ERROR 1007 (HY000) at line 1: Can't create database '{match[1]}'; "
             "database exists")
    (STATE / match[1]).mkdir(parents=True)
    sys.exit(0)
match = re.fullmatch(r"DROP DATABASE IF EXISTS `(\w+)`", sql)
if match:
    if (STATE / "refuse-drop").exists():
        fail("ERROR 1010 (HY000) at line 1: Error dropping database")
    shutil.rmtree(STATE / match[1], ignore_errors=True)
    sys.exit(0)
if not (STATE / database).is_dir():
    fail(f"ERROR 1049 (42000): Unknown database '{database}'")
names, text = tables(database)
if sql.startswith("SELECT table_name FROM information_schema.tables"):
    print("\n".join(names))
    sys.exit(0)
if " UNION ALL " in sql or re.fullmatch(r"SELECT '[^']*', COUNT\(\*\) FROM `[^`]+`", sql):
    for table in re.findall(r"FROM `([^`]+)`", sql):
        print(f"{table}\t{rows(text, table)}")
    sys.exit(0)
if sql == "SELECT 1":
    print(1)
    sys.exit(0)
match = re.fullmatch(r"SELECT (\w+) FROM (\w+)", sql)
if match and match[2] in names:
    found = re.findall(rf"^INSERT INTO `{match[2]}` VALUES \('([^']*)'\);", text, re.M)
    print("\n".join(found))
    sys.exit(0)
table = match[2] if match else "?"
fail(f"ERROR 1146 (42S02) at line 1: Table '{database}.{table}' doesn't exist")
'''


def install(bin_dir: Path, state: Path) -> Path:
    """Write the stand-in as `bin_dir/mysql` (put bin_dir first on PATH); databases in `state`."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    state.mkdir(parents=True, exist_ok=True)
    program = bin_dir / "mysql"
    program.write_text(f"#!{sys.executable}\n" + PROGRAM.replace("__STATE__", repr(str(state))))
    program.chmod(0o755)
    return program


def databases(state: Path) -> list[str]:
    """The databases the stand-in holds now."""
    return sorted(p.name for p in state.iterdir() if p.is_dir())
