"""`fab db.*`: the database dumps the timer and the deploys take, listed, copied, restored, drilled.

Every dump has a SHA-256 checksum beside it (written by the backup script); a restore checks it
first. Restores are explicit and never automatic (a rollback leaves the schema alone, see
docs/operations.md). A backup and a restore are locked operations (fleet/ops/operation.py): they
hold the deploy lock, so neither runs during a deploy, and leave an audit record. A restore takes
a fresh backup first and names it, so a mistaken restore can itself be undone. The restore
drill (`verify_backup`) loads the latest dump into a scratch database beside the live one and
never touches the live one.

What changes the db host is a play: playbooks/db-backup.yml, db-restore.yml and db-verify.yml
(roles/mariadb backup_now, restore_now, verify_now), read back through fleet/results.py. The
SSH calls here only read (list the dumps, check a checksum) or stage a copy for `fetch`; the
dump, the names and the queries are checked here before any play starts.
"""

from __future__ import annotations

import hashlib
import re
import shlex
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import yaml

from fleet import ansible, hosts, report, results
from fleet.inventory import Inventory
from fleet.ops.operation import Record, operation
from fleet.settings import setting

DEFAULT_VERIFY_QUERIES = ("SELECT 1", "SELECT version_num FROM alembic_version")
# What a database (and so a scratch database) name may be: the drill's play builds SQL and sed
# patterns from it.
DB_NAME = re.compile(r"[A-Za-z0-9_]{1,40}")


class DatabaseError(RuntimeError):
    """The backup or restore failed or was refused; the message says why."""


def db_host(inv: Inventory) -> str:
    return inv.hosts_of("db")[0]


def backup(inv: Inventory, say: Callable[[str], None] = print) -> str:
    """Dump the database now, under the deploy lock (never during a deploy); the dump's path."""
    host = db_host(inv)
    done = Record("db.backup", inv.env, "-")
    with operation(inv, "db.backup", "-", done, DatabaseError, say,
                   refused="no backup was taken") as clock:
        with clock.phase("backup", f"dump the database on {host}"):
            path = _dump(inv)
        done.details["backup"] = f"{host}:{path}"
    return path


def _dump(inv: Inventory) -> str:
    """Run playbooks/db-backup.yml (the db host's backup script); the dump's path there."""
    host = db_host(inv)
    result = ansible.run_with_vars(ansible.ROOT / "playbooks" / "db-backup.yml", inv.path, {},
                                   say=lambda _line: None)
    backup = results.last(result.results, results.Backup)
    if not result.ok or backup is None:
        reason = results.first_failure(result.results)
        if reason is None:  # e.g. the host was unreachable: the play's last lines say why
            reason = f"the backup on {host} failed: " + "\n".join(
                line for line in result.output[-15:] if line.strip())
        raise DatabaseError(reason)
    return backup.path


def list_backups(inv: Inventory) -> list[str]:
    directory = setting(inv, "mariadb_backup_dir")
    host = db_host(inv)
    result = hosts.run(inv, [host], f"ls -1t {shlex.quote(directory)}/*.sql.gz 2>/dev/null")[host]
    return result.stdout.split()


def check_sum(inv: Inventory, path: str) -> None:
    """Refuse a dump whose checksum is missing or does not match (before any restore)."""
    host = db_host(inv)
    directory, name = path.rsplit("/", 1)
    command = (f"cd {shlex.quote(directory)} && test -f {shlex.quote(name + '.sha256')} && "
               f"sha256sum --check --status {shlex.quote(name + '.sha256')}")
    result = hosts.run(inv, [host], command, timeout=3600)[host]
    if result.ok:
        return
    missing = hosts.run(inv, [host], f"test -f {shlex.quote(path + '.sha256')}")[host]
    if not missing.ok:
        raise DatabaseError(
            f"{path} on {host} has no checksum ({path}.sha256), so it cannot be shown to be "
            "intact; nothing was restored. If you trust the file, record one with "
            f"`cd {directory} && sha256sum {name} > {name}.sha256` and run again")
    raise DatabaseError(f"{path} on {host} does not match its checksum {path}.sha256: the dump "
                        "is damaged; nothing was restored. Pick another (`fab db.backups`)")


def restore(inv: Inventory, path: str, say: Callable[[str], None] = print) -> str:
    """Load the dump at `path` (on the db host) under the deploy lock; the safety backup's path."""
    host = db_host(inv)
    known = list_backups(inv)
    if path not in known:
        newest = "\n  ".join(known[:5]) or "none"
        raise DatabaseError(f"{path} is not a backup on {host}; the newest are:\n  {newest}")
    check_sum(inv, path)
    name = path.rsplit("/", 1)[-1]
    done = Record("db.restore", inv.env, name, details={"dump": f"{host}:{path}"})
    with operation(inv, "db.restore", name, done, DatabaseError, say,
                   refused="nothing was restored") as clock:
        with clock.phase("safety backup", f"dump the current database on {host}"):
            safety = _dump(inv)
        done.details["safety_backup"] = f"{host}:{safety}"
        say(f"db.restore: safety backup of the current database: {host}:{safety}")
        with clock.phase("restore", f"load {path} into the database"):
            _load(inv, path, safety)
    return safety


def _load(inv: Inventory, path: str, safety: str) -> None:
    """Run playbooks/db-restore.yml: load the dump at `path` into the database on the db host."""
    host = db_host(inv)
    result = ansible.run_with_vars(ansible.ROOT / "playbooks" / "db-restore.yml", inv.path,
                                   {"mariadb_restore_dump": path}, say=lambda _line: None)
    if result.ok:
        return
    reason = results.first_failure(result.results)
    if reason is None:  # e.g. the host was unreachable: the play's last lines say why
        reason = f"restoring {path} failed: " + "\n".join(
            line for line in result.output[-15:] if line.strip())
    raise DatabaseError(f"{reason}; the database as it was is in {host}:{safety}")


# --- listing, off-host copies --------------------------------------------------------------


@dataclass(frozen=True)
class Backup:
    path: str
    size: int
    mtime: float
    checksum: str  # ok, MISMATCH or missing
    copied: bool | None = None  # in mariadb_backup_copy_dir; None when no copy dir is set

    @property
    def name(self) -> str:
        return self.path.rsplit("/", 1)[-1]


def backups(inv: Inventory) -> list[Backup]:
    """Every dump on the db host, newest first, each with its checksum checked."""
    directory = setting(inv, "mariadb_backup_dir")
    host = db_host(inv)
    script = (f"cd {shlex.quote(directory)} || exit 1; "
              "for f in $(ls -1t -- *.sql.gz 2>/dev/null); do "
              "if [ ! -f \"$f.sha256\" ]; then s=missing; "
              "elif sha256sum --check --status \"$f.sha256\"; then s=ok; else s=MISMATCH; fi; "
              "printf '%s\\t%s\\t%s\\t%s\\n' \"$f\" \"$(stat -c %s \"$f\")\" "
              "\"$(stat -c %Y \"$f\")\" \"$s\"; done")
    result = hosts.run(inv, [host], script, timeout=3600)[host]
    if not result.ok:
        raise DatabaseError(f"cannot list the backups in {directory} on {host}: "
                            f"{result.stderr.strip()[-300:] or 'no such directory'}")
    copies = copy_dir(inv)
    found = []
    for line in result.stdout.splitlines():
        name, size, mtime, status = line.split("\t")
        copied = None if copies is None else (copies / name).is_file()
        found.append(Backup(f"{directory}/{name}", int(size), float(mtime), status, copied))
    return found


def _size(size: int) -> str:
    for unit in ("B", "KiB", "MiB", "GiB"):
        if size < 1024 or unit == "GiB":
            return f"{size:.0f} {unit}" if unit == "B" else f"{size:.1f} {unit}"
        size /= 1024
    return str(size)


def _age(seconds: float) -> str:
    if seconds < 3600:
        return f"{seconds / 60:.0f}m"
    if seconds < 86400:
        return f"{seconds / 3600:.1f}h"
    return f"{seconds / 86400:.1f}d"


def table(found: list[Backup], now: float | None = None) -> str:
    now = time.time() if now is None else now
    headers = ["dump", "size", "age", "checksum"]
    with_copies = any(b.copied is not None for b in found)
    if with_copies:
        headers.append("copied")
    rows = []
    for b in found:
        row = [b.path, _size(b.size), _age(max(0.0, now - b.mtime)), b.checksum]
        if with_copies:
            row.append("yes" if b.copied else "no")
        rows.append(tuple(row))
    return report.table(tuple(headers), rows)


def copy_dir(inv: Inventory) -> Path | None:
    """mariadb_backup_copy_dir: the control-node directory off-host copies go to, if set."""
    value = setting(inv, "mariadb_backup_copy_dir").strip()
    return Path(value).expanduser() if value else None


def fetch(inv: Inventory, target: Path, names: list[str] | None = None,
          say: Callable[[str], None] = print) -> list[Path]:
    """Copy dumps (default: every one not there yet) and their checksums to `target` on the
    control node; each copy is checked against its checksum before it takes its final name."""
    target.mkdir(parents=True, exist_ok=True)
    host = db_host(inv)
    wanted = [b for b in backups(inv) if (names is None or b.name in names)]
    if names is not None and len(wanted) != len(names):
        raise DatabaseError(f"not a backup on {host}: "
                            f"{', '.join(sorted(set(names) - {b.name for b in wanted}))}")
    user = str(inv.hostvars[host].get("ansible_user", "root"))
    copied = []
    runner = hosts.runner(inv, host)
    try:
        for b in wanted:
            if names is None and (target / b.name).is_file():
                continue
            if b.checksum != "ok":
                say(f"db.fetch: skipped {b.name}: checksum {b.checksum}")
                continue
            copied.append(_fetch_one(runner, user, b, target))
            say(f"db.fetch: {host}:{b.path} -> {target / b.name} (checksum ok)")
    finally:
        runner.close()
    return copied


def _fetch_one(runner, user: str, b: Backup, target: Path) -> Path:
    # The backup directory is root's (0700): stage a copy the admin user may read, get it.
    staged = runner.run(
        f"d=$(mktemp -d /tmp/flaskfleet-fetch.XXXXXX) && cp -- {shlex.quote(b.path)} "
        f"{shlex.quote(b.path + '.sha256')} \"$d\"/ && chown -R {shlex.quote(user)} \"$d\" && "
        "echo \"$d\"", timeout=3600)
    if not staged.ok:
        raise DatabaseError(f"cannot stage {b.path} on {runner.name}: {staged.stderr.strip()}")
    remote = staged.stdout.strip().splitlines()[-1]
    partial = target / f".{b.name}.partial"
    try:
        runner.get(f"{remote}/{b.name}", partial)
        runner.get(f"{remote}/{b.name}.sha256", target / f"{b.name}.sha256")
    finally:
        runner.run(f"rm -rf -- {shlex.quote(remote)}")
    expected = (target / f"{b.name}.sha256").read_text().split()[0]
    digest = hashlib.sha256()
    with partial.open("rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    if digest.hexdigest() != expected:
        partial.unlink()
        raise DatabaseError(f"the copy of {b.name} does not match its checksum; removed it")
    final = target / b.name
    partial.rename(final)
    return final


# --- the restore drill ---------------------------------------------------------------------


@dataclass
class Drill:
    dump: str
    scratch: str
    queries: list[tuple[str, str]] = field(default_factory=list)  # query, first row (or error)
    rows: dict[str, int] = field(default_factory=dict)
    seconds: dict[str, float] = field(default_factory=dict)
    failure: str | None = None

    @property
    def ok(self) -> bool:
        return self.failure is None

    def summary(self) -> str:
        lines = [f"dump: {self.dump}", f"scratch database: {self.scratch} (dropped)"]
        lines.append(report.table(("readiness query", "result"),
                                  [(q, r) for q, r in self.queries]))
        lines.append(report.table(("table", "rows"), sorted(self.rows.items())))
        lines.append("timings: " + ", ".join(f"{k} {v:.1f}s" for k, v in self.seconds.items()))
        lines.append("restore drill: ok" if self.ok else f"restore drill FAILED: {self.failure}")
        return "\n".join(lines)


def verify_queries(inv: Inventory) -> list[str]:
    """mariadb_verify_queries from the inventory (a list), else the reference app's checks."""
    raw = next((hv["mariadb_verify_queries"] for hv in inv.hostvars.values()
                if "mariadb_verify_queries" in hv), None)
    if raw is None:
        return list(DEFAULT_VERIFY_QUERIES)
    if isinstance(raw, str):  # `-e` style or a YAML string: parse it the way Ansible would
        raw = yaml.safe_load(raw)
    if not isinstance(raw, list) or not raw or not all(isinstance(q, str) and q.strip()
                                                       for q in raw):
        raise DatabaseError("mariadb_verify_queries must be a non-empty list of SQL queries")
    return [q.strip() for q in raw]


def verify_backup(inv: Inventory, path: str | None = None,
                  say: Callable[[str], None] = print) -> Drill:
    """Restore a dump (default: the latest) into a scratch database on the db host, run the
    readiness queries against it, count the rows of every table, drop it.

    The dump, the scratch database's name and the queries are chosen and checked here, before
    anything runs on the host; playbooks/db-verify.yml does the drill and reports a `drill`
    result (fleet/results.py)."""
    database = setting(inv, "mariadb_database")
    if not DB_NAME.fullmatch(database):
        raise DatabaseError(f"mariadb_database {database!r}: the drill supports names of "
                            "letters, digits and underscores only")
    queries = verify_queries(inv)
    found = backups(inv)
    host = db_host(inv)
    if path is None:
        if not found:
            raise DatabaseError(f"there is no backup on {host} yet: run `fab db.backup`")
        chosen = found[0]
    else:
        chosen = next((b for b in found if b.path == path), None)
        if chosen is None:
            raise DatabaseError(f"{path} is not a backup on {host} (see `fab db.backups`)")
    if chosen.checksum != "ok":
        check_sum(inv, chosen.path)  # raises with the reason
    scratch = f"{database}_verify_{time.strftime('%Y%m%d%H%M%S', time.gmtime())}"
    say(f"db.verify-backup: {host}:{chosen.path} -> scratch database {scratch}")
    return _drill(inv, chosen.path, scratch, queries)


def _drill(inv: Inventory, path: str, scratch: str, queries: list[str]) -> Drill:
    """Run playbooks/db-verify.yml; the Drill its `drill` result describes."""
    host = db_host(inv)
    variables = {"mariadb_verify_dump": path, "mariadb_verify_scratch": scratch,
                 "mariadb_verify_queries": queries}
    result = ansible.run_with_vars(ansible.ROOT / "playbooks" / "db-verify.yml", inv.path,
                                   variables, say=lambda _line: None)
    found = results.last(result.results, results.Drill)
    if found is None:  # the play stopped before the drill (unreachable host, refused names)
        reason = results.first_failure(result.results) or "\n".join(
            line for line in result.output[-15:] if line.strip())
        raise DatabaseError(f"the restore drill on {host} did not run: {reason}")
    return Drill(path, scratch, queries=list(found.queries), rows=dict(found.rows),
                 seconds=dict(found.seconds), failure=found.failure or None)
