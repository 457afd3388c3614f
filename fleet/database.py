"""`fab db.backup` and `fab db.restore`: the database dumps the deploys take, by hand.

Restores are explicit and never automatic (a rollback leaves the schema alone, see
docs/operations.md). A restore holds the deploy lock, takes a fresh backup first and names it,
so a mistaken restore can itself be undone.
"""

from __future__ import annotations

import shlex

from fleet import hosts, lock
from fleet.inventory import Inventory, setting


class DatabaseError(RuntimeError):
    """The backup or restore failed or was refused; the message says why."""


def db_host(inv: Inventory) -> str:
    return inv.hosts_of("db")[0]


def backup(inv: Inventory) -> str:
    """Dump the database now; the dump's path on the db host."""
    script = setting(inv, "mariadb_backup_script", "/usr/local/sbin/flaskfleet-db-backup")
    host = db_host(inv)
    result = hosts.run(inv, [host], shlex.quote(script), timeout=3600)[host]
    if not result.ok:
        raise DatabaseError(f"the backup on {host} failed: {result.stderr.strip()[-1000:]}")
    return result.stdout.strip().splitlines()[-1]


def list_backups(inv: Inventory) -> list[str]:
    directory = setting(inv, "mariadb_backup_dir", "/var/backups/mariadb")
    host = db_host(inv)
    result = hosts.run(inv, [host], f"ls -1t {shlex.quote(directory)}/*.sql.gz 2>/dev/null")[host]
    return result.stdout.split()


def restore(inv: Inventory, path: str, say=print) -> str:
    """Load the dump at `path` (on the db host) under the deploy lock; the safety backup's path."""
    host = db_host(inv)
    known = list_backups(inv)
    if path not in known:
        newest = "\n  ".join(known[:5]) or "none"
        raise DatabaseError(f"{path} is not a backup on {host}; the newest are:\n  {newest}")
    runner = hosts.runner(inv, host)
    holder = lock.Holder.me("db.restore", path.rsplit("/", 1)[-1])
    try:
        lock.acquire(runner, holder)
    except lock.LockError as exc:
        raise DatabaseError(f"{exc}; nothing was restored") from None
    try:
        safety = backup(inv)
        say(f"db.restore: safety backup of the current database: {host}:{safety}")
        restore_cmd = f"gunzip -c {shlex.quote(path)} | mysql"
        result = runner.run(f"bash -o pipefail -c {shlex.quote(restore_cmd)}", timeout=3600)
        if not result.ok:
            raise DatabaseError(f"restoring {path} failed: {result.stderr.strip()[-1000:]}; "
                                f"the database as it was is in {host}:{safety}")
    finally:
        lock.release(runner, holder)
        runner.close()
    return safety
