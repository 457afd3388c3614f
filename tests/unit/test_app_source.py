"""fleet/app_source.py: which app a deploy builds, from real directories and git repositories."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
import tiny_app

from fleet import app_source
from fleet.inventory import Inventory


def _inv(path: Path, **variables) -> Inventory:
    return Inventory(env="test", path=path, groups={"app": ["app1"]},
                     hostvars={"app1": dict(variables)}, origins={}, group_sources={},
                     sandbox=False)


def _git(cwd: Path, *args: str) -> str:
    return subprocess.run(["git", "-c", "user.name=t", "-c", "user.email=t@example.test",
                           "-c", "init.defaultBranch=main", *args], cwd=cwd, check=True,
                          capture_output=True, text=True).stdout.strip()


def _versions_repo(root: Path) -> Path:
    """A repository whose tiny app says VERSION = 1 at tag v1 and VERSION = 2 on main."""
    app = tiny_app.make(root)
    _git(app, "init", "--quiet")
    _git(app, "add", "-A")
    _git(app, "commit", "--quiet", "-m", "one")
    _git(app, "tag", "v1")
    (app / "tinyapp" / "__init__.py").write_text("VERSION = 2\n")
    _git(app, "commit", "--quiet", "-am", "two")
    return app


def _version(app_dir: Path) -> str:
    return (app_dir / "tinyapp" / "__init__.py").read_text().strip()


def test_no_app_source_is_the_kits_reference_app(tmp_path):
    source = app_source.of(_inv(tmp_path))
    assert source.path == app_source.REFERENCE_APP and source.repo is None
    assert app_source.fetch(source, tmp_path / "work") == app_source.REFERENCE_APP
    assert "reference app" in source.describe()


def test_a_relative_directory_is_found_from_the_inventory_directory(tmp_path):
    app = tiny_app.make(tmp_path / "apps")
    env = tmp_path / "inventory" / "staging"
    env.mkdir(parents=True)
    source = app_source.of(_inv(env, app_source="../../apps/tinyapp"))
    assert source.path == app.resolve()
    assert app_source.fetch(source, tmp_path / "work") == app.resolve()


def test_a_directory_that_is_not_there_names_the_variable(tmp_path):
    with pytest.raises(app_source.SourceError, match="app_source 'nowhere' is not a directory"):
        app_source.of(_inv(tmp_path, app_source="nowhere"))


@pytest.mark.parametrize(("ref", "expected"), [("", "VERSION = 2"), ("v1", "VERSION = 1")])
def test_a_repository_is_cloned_at_its_ref(tmp_path, ref, expected):
    repo = _versions_repo(tmp_path / "upstream")
    source = app_source.of(_inv(tmp_path, app_source=f"file://{repo}", app_source_ref=ref))
    assert source.repo == f"file://{repo}" and source.path is None
    assert _version(app_source.fetch(source, tmp_path / "work")) == expected


def test_fab_deploy_ref_wins_over_app_source_ref(tmp_path):
    repo = _versions_repo(tmp_path / "upstream")
    inv = _inv(tmp_path, app_source=f"file://{repo}", app_source_ref="main")
    assert _version(app_source.fetch(app_source.of(inv, ref="v1"), tmp_path / "w")) == "VERSION = 1"


def test_a_ref_the_repository_does_not_have_names_app_source_ref(tmp_path):
    repo = _versions_repo(tmp_path / "upstream")
    source = app_source.of(_inv(tmp_path, app_source=f"file://{repo}", app_source_ref="v9"))
    with pytest.raises(app_source.SourceError, match="app_source_ref 'v9' is not a ref"):
        app_source.fetch(source, tmp_path / "work")


def test_a_repository_that_cannot_be_cloned_names_app_source(tmp_path):
    source = app_source.of(_inv(tmp_path, app_source=str(tmp_path / "missing.git")))
    with pytest.raises(app_source.SourceError, match="could not be cloned"):
        app_source.fetch(source, tmp_path / "work")


def test_a_ref_of_a_directory_is_exported_from_its_repository(tmp_path):
    """The app at the top of its repository, and the app in a subdirectory (like app/ here)."""
    top = _versions_repo(tmp_path / "alone")
    exported = app_source.fetch(app_source.of(_inv(tmp_path, app_source=str(top)), ref="v1"),
                                tmp_path / "w1")
    assert _version(exported) == "VERSION = 1" and (exported / "pyproject.toml").is_file()
    mono = tmp_path / "mono"
    app = tiny_app.make(mono / "services")
    _git(mono, "init", "--quiet")
    _git(mono, "add", "-A")
    _git(mono, "commit", "--quiet", "-m", "one")
    (app / "tinyapp" / "__init__.py").write_text("VERSION = 3\n")  # not committed
    exported = app_source.fetch(app_source.of(_inv(tmp_path, app_source=str(app)), ref="HEAD"),
                                tmp_path / "w2")
    assert exported == tmp_path / "w2" / "services" / "tinyapp"
    assert _version(exported) == "VERSION = 1"
