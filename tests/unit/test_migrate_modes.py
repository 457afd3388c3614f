"""The migrate step's modes, run for real: the app role's release_migrate tasks on this machine.

An app whose tool has no status command, one with no migrations, and one whose command must run
on the first deploy only (`app_migrate_once`, a command that would drop the data if run again).
The play is the role's own tasks file over a local connection; the run wrapper is a stand-in
that runs the command from the release directory, and the "migration" appends to a file, so
each test can count how often it ran.
"""

from __future__ import annotations

import getpass
import os
import stat
import sys
from pathlib import Path

import yaml

from fleet import ansible, results

ROOT = Path(__file__).resolve().parents[2]
RELEASE = "20261203T100000Z-abc1234"
PLAY = """---
- name: Migrate like a deploy does
  hosts: app1
  gather_facts: false
  tasks:
    - name: Run the migrations of the new release
      ansible.builtin.include_role:
        name: app
        tasks_from: release_migrate
"""


def _fleet(tmp_path: Path) -> tuple[Path, Path, Path]:
    """A local 'fleet' of app1 and db1: the playbook, the inventory and the run counter."""
    releases = tmp_path / "releases"
    (releases / RELEASE / "src").mkdir(parents=True)
    wrapper = tmp_path / "run"
    wrapper.write_text('#!/bin/sh\ncd "$FLEET_RELEASE_DIR" && exec "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IXUSR)
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "ansible_become": False}
    common = {"app_run_wrapper": str(wrapper), "app_releases_dir": str(releases),
              "app_user": getpass.getuser(), "app_migration_log": str(tmp_path / "migrations.log"),
              "app_migrate_once_marker": str(tmp_path / "db" / "migrated-once"),
              "deploy_release": RELEASE}
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "vars": common,
        "children": {"app": {"hosts": {"app1": local}}, "db": {"hosts": {"db1": local}}}}}))
    playbook = tmp_path / "migrate.yml"
    playbook.write_text(PLAY)
    return playbook, inventory, tmp_path / "ran"


def _migrate(playbook: Path, inventory: Path, **variables) -> results.Migration:
    result = ansible.run_with_vars(playbook, inventory, variables, say=lambda _: None)
    assert result.ok, "\n".join(result.output[-40:])
    migration = results.last(result.results, results.Migration)
    assert migration is not None
    return migration


def test_a_tool_without_a_status_command_runs_every_deploy_and_logs_no_revisions(tmp_path):
    playbook, inventory, ran = _fleet(tmp_path)
    command = f"echo upgraded >> {ran}"
    for _ in range(2):
        migration = _migrate(playbook, inventory, app_migrate_command=command,
                             app_migrate_status_command="")
    assert migration.before == "no status command"
    assert migration.after == f"ran {command}"
    assert ran.read_text().splitlines() == ["upgraded", "upgraded"]


def test_an_app_without_migrations_runs_none(tmp_path):
    playbook, inventory, ran = _fleet(tmp_path)
    migration = _migrate(playbook, inventory, app_migrate_command="",
                         app_migrate_status_command="")
    assert (migration.before, migration.after) == ("no status command", "no migration command")
    assert not ran.exists()


def test_a_run_once_command_runs_on_the_first_deploy_only(tmp_path):
    playbook, inventory, ran = _fleet(tmp_path)
    variables = {"app_migrate_command": f"echo schema created >> {ran}",
                 "app_migrate_status_command": "", "app_migrate_once": True}
    first = _migrate(playbook, inventory, **variables)
    assert first.after.startswith("ran echo schema created")
    marker = tmp_path / "db" / "migrated-once"
    assert marker.read_text() == f"{RELEASE}\n"
    second = _migrate(playbook, inventory, **variables)
    assert second.after == f"skipped: ran once already ({marker})"
    assert ran.read_text().splitlines() == ["schema created"]
    assert os.path.getsize(tmp_path / "migrations.log") > 0  # both runs are in the log
    assert len((tmp_path / "migrations.log").read_text().splitlines()) == 2


def test_a_status_command_logs_the_revisions_and_an_ahead_schema_runs_nothing(tmp_path):
    playbook, inventory, ran = _fleet(tmp_path)
    revision = tmp_path / "revision"
    revision.write_text("0001\n")
    variables = {"app_migrate_command": f"echo 0002 > {revision}; echo upgraded >> {ran}",
                 "app_migrate_status_command": f"cat {revision}"}
    migration = _migrate(playbook, inventory, **variables)
    assert (migration.before, migration.after) == ("0001", "0002")
    # A schema a newer release migrated: the status command fails with the ahead pattern.
    ahead = {**variables, "app_migrate_status_command": "echo \"Can't locate revision 0009\" >&2;"
                                                        " exit 1"}
    migration = _migrate(playbook, inventory, **ahead)
    assert (migration.before, migration.after) == ("ahead of this release", "unchanged")
    assert ran.read_text().splitlines() == ["upgraded"]


def test_the_status_is_read_again_only_after_a_command_that_applied_something(tmp_path):
    # app_migrate_applied_pattern: a run whose output lacks it applied nothing, so the revision
    # after is the one read before, and the status command (an app start) is not run again.
    playbook, inventory, ran = _fleet(tmp_path)
    revision, reads = tmp_path / "revision", tmp_path / "reads"
    revision.write_text("0001\n")
    variables = {"app_migrate_status_command": f"echo read >> {reads}; cat {revision}",
                 "app_migrate_applied_pattern": "Running upgrade"}
    nothing = _migrate(playbook, inventory, app_migrate_command=f"echo up to date >> {ran}",
                       **variables)
    assert (nothing.before, nothing.after) == ("0001", "0001")
    assert reads.read_text().splitlines() == ["read"]
    applied = _migrate(playbook, inventory, app_migrate_command=(
        f"echo 0002 > {revision}; echo 'Running upgrade 0001 -> 0002' >&2"), **variables)
    assert (applied.before, applied.after) == ("0001", "0002")
    assert reads.read_text().splitlines() == ["read"] * 3
    assert ran.read_text().splitlines() == ["up to date"]
