"""`fab init APP_DIR`: refused without an app or over an existing environment; else app.yml."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleet import inventory
from fleet.ops import appinit, environments

KIT = Path(__file__).resolve().parents[2]
EXAMPLES = KIT / "tests" / "examples"


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """An inventory/ with the real example in it."""
    shutil.copytree(inventory.INVENTORY_ROOT / environments.EXAMPLE_ENV,
                    tmp_path / "inventory" / environments.EXAMPLE_ENV)
    return tmp_path / "inventory"


def _files(path: Path) -> dict[str, bytes]:
    return {str(p.relative_to(path)): p.read_bytes() for p in path.rglob("*") if p.is_file()}


@pytest.mark.parametrize("app", ["notes", "hello", "tasks"])
def test_writes_app_yml_the_inventory_accepts(root, app):
    done = appinit.init(EXAMPLES / app, root=root)
    assert done.created.path == root / app
    data = yaml.safe_load(done.app_vars.read_text())
    for guess in done.scan.guesses.values():
        if guess.value is not None:
            assert data[guess.name] == guess.value, guess.name
    specs = inventory.argument_specs()
    assert set(data) <= set(specs)
    inv = inventory.load(app, root)
    host = inv.hosts_of("app")[0]
    # main.yml (read after app.yml) no longer names the reference app.
    for name in ("app_name", "app_wsgi", "app_celery", "app_migrate_command", "app_static_dir",
                 "app_health_path", "app_ready_path"):
        assert inv.hostvars[host][name] == done.scan.value(name), name
    main = (done.created.path / appinit.MAIN_VARS).read_text()
    assert "fleetapp" not in main and "fleet_env: production" in main
    # The placeholders env.new leaves (no vault yet) are all that is missing.
    problems = inventory.validate(inv)
    assert problems and all(p.startswith("secret ") for p in problems), problems
    assert inv.warnings == []


def test_app_yml_says_why_and_passes_yamllint(root):
    done = appinit.init(EXAMPLES / "hello", env="staging", name="Hello", root=root)
    text = done.app_vars.read_text()
    assert "# app_migrate_once: hello/db.py: click command 'init-db' looks idempotent" in text
    assert "could not tell: check this" in text  # the health path
    assert "SQLite on a fleet of more than one" in text.replace("\n# ", " ")
    assert yaml.safe_load(text)["app_name"] == "hello"
    lint = subprocess.run([str(Path(sys.executable).parent / "yamllint"), "--strict", "-c",
                           str(KIT / ".yamllint"), str(done.app_vars)],
                          capture_output=True, text=True)
    assert lint.returncode == 0, lint.stdout


def test_app_source_is_relative_to_the_environment_when_they_share_a_tree(root, tmp_path):
    app = tmp_path / "apps" / "notes"
    shutil.copytree(EXAMPLES / "notes", app)
    done = appinit.init(app, root=root)
    data = yaml.safe_load(done.app_vars.read_text())
    assert data["app_source"] == "../../apps/notes"
    assert (done.created.path / data["app_source"]).resolve() == app.resolve()


def test_celery_without_beat_writes_only_the_worker_program(root, tmp_path):
    app = tmp_path / "jobs"
    (app / "jobs").mkdir(parents=True)
    (app / "jobs" / "__init__.py").write_text(
        "from celery import Celery\nfrom flask import Flask\n\ncelery = Celery('jobs')\n\n\n"
        "def create_app():\n    return Flask(__name__)\n")
    done = appinit.init(app, env=str(tmp_path / "envs" / "jobs-prod"), root=root)
    assert done.created.path == tmp_path / "envs" / "jobs-prod"
    data = yaml.safe_load(done.app_vars.read_text())
    assert data["app_celery"] == "jobs:celery"
    assert "selectattr('name', 'equalto', 'worker')" in data["app_programs"]
    assert any(str(tmp_path / "envs" / "jobs-prod") in step for step in done.next_steps())


def test_an_existing_environment_is_refused_and_nothing_written(root):
    appinit.init(EXAMPLES / "notes", root=root)
    before = _files(root)
    with pytest.raises(appinit.InitError, match="already exists; nothing was written"):
        appinit.init(EXAMPLES / "tasks", env="notes", root=root)
    assert _files(root) == before


def test_a_directory_without_an_app_is_refused_and_nothing_written(root, tmp_path):
    (tmp_path / "empty").mkdir()
    before = _files(root)
    with pytest.raises(appinit.InitError, match="no Python app.*nothing was written"):
        appinit.init(tmp_path / "empty", env="empty", root=root)
    assert _files(root) == before
    assert not (root / "empty").exists()


def test_fab_init_prints_the_table(tmp_path):
    env = tmp_path / "envs" / "notes"
    result = subprocess.run(
        [str(Path(sys.executable).parent / "fab"), "-r", str(KIT), "init",
         str(EXAMPLES / "notes"), "--env", str(env)],
        capture_output=True, text=True, cwd=KIT)
    assert result.returncode == 0, result.stderr
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["variable", "value", "why"]
    assert any(line.startswith("app_wsgi") and "app:app" in line and "app.py" in line
               for line in lines)
    assert "init: note:" in result.stdout and "SQLite" in result.stdout
    assert (env / "group_vars" / "all" / "app.yml").is_file()
    again = subprocess.run(
        [str(Path(sys.executable).parent / "fab"), "-r", str(KIT), "init",
         str(EXAMPLES / "notes"), "--env", str(env)],
        capture_output=True, text=True, cwd=KIT)
    assert again.returncode == 1 and "already exists" in again.stderr
