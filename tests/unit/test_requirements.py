"""What the wheelhouse is built from: app_requirements and app_extra_requirements (issue 16).

Artifacts are built for real with pip from a tiny app (tests/unit/tiny_app.py) that lists no
dependency at all; the venv is then built by the app role's own command, rendered from
roles/app/tasks/release_install.yml and run with the host's /usr/bin/python3 and --no-index.
"""

from __future__ import annotations

import json
import subprocess
import sys
import tarfile
from pathlib import Path

import jinja2
import pytest
import tiny_app
import yaml

from fleet import artifact
from fleet.ansible_filters import ANSIBLE_FILTERS
from fleet.inventory import role_defaults

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
ROOT = Path(__file__).resolve().parents[2]
EXTRA = role_defaults()["app_extra_requirements"]


def quiet(_: str) -> None:
    pass


def _venv_command() -> str:
    """The shell command of the role's 'Build the release venv from its wheelhouse' task."""
    tasks = yaml.safe_load((ROOT / "roles/app/tasks/release_install.yml").read_text())
    block = next(t for t in tasks if t.get("name") == "Install the release")["block"]
    task = next(t for t in block if t["name"] == "Build the release venv from its wheelhouse")
    return task["ansible.builtin.shell"]["cmd"]


def _tree_path_command() -> str:
    """The shell command of the role's 'Put the app's tree on the venv's path' task."""
    tasks = yaml.safe_load((ROOT / "roles/app/tasks/release_install.yml").read_text())
    block = next(t for t in tasks if t.get("name") == "Install the release")["block"]
    task = next(t for t in block if t["name"] == "Put the app's tree on the venv's path")
    return task["ansible.builtin.shell"]["cmd"]


def _install_like_a_host(art: artifact.Artifact, releases: Path) -> Path:
    """Unpack the archive and run the role's venv command on it, as the install play does."""
    releases.mkdir()
    with tarfile.open(art.path) as archive:
        archive.extractall(releases, filter="data")
    release = releases / art.release_id
    manifest = json.loads((release / "manifest.json").read_text())
    env = jinja2.Environment(undefined=jinja2.StrictUndefined)
    env.filters.update(ANSIBLE_FILTERS)
    command = env.from_string(_venv_command()).render(
        app_release_requirements=manifest["requirements"],
        app_release_extra_requirements=manifest["extra_requirements"],
        deploy_app_wheel=art.app_wheel)
    run = subprocess.run(["/bin/bash", "-c", command.replace("\n", " ")], cwd=release,
                         capture_output=True, text=True, timeout=300)
    assert run.returncode == 0, run.stderr
    if not art.app_wheel:  # the task's `when`: a plain tree has no wheel of its own
        run = subprocess.run(["/bin/bash", "-c", _tree_path_command().replace("\n", " ")],
                             cwd=release, capture_output=True, text=True, timeout=60)
        assert run.returncode == 0, run.stderr
    return release


def test_the_defaults_are_the_pins_the_reference_app_runs_with():
    pins = artifact._pins(ROOT / "app" / "requirements.txt")
    for spec in EXTRA:
        name, _, version = spec.partition("==")
        assert pins[artifact._normalised(name)] == version, spec


def test_an_app_that_lists_neither_gets_gunicorn_and_pymysql(tmp_path):
    app = tiny_app.make(tmp_path)
    art = artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=EXTRA)
    assert art.manifest["extra_requirements"] == EXTRA
    assert art.manifest["requirements"] == "src/requirements.txt"
    wheels = " ".join(art.manifest["files"])
    assert "wheels/gunicorn-27.0.1-" in wheels and "wheels/pymysql-1.2.4-" in wheels.lower()
    release = _install_like_a_host(art, tmp_path / "releases")
    run = subprocess.run([release / "venv/bin/python", "-c",
                          "import gunicorn, pymysql, tinyapp; print(gunicorn.__version__, "
                          "pymysql.VERSION_STRING, tinyapp.VERSION)"],
                         capture_output=True, text=True)
    assert run.stdout.split() == ["27.0.1", "1.2.4", "1"], run.stderr
    assert (release / "venv/bin/gunicorn").is_file()


def test_an_extra_the_app_pins_alike_is_not_added_twice(tmp_path):
    app = tiny_app.make(tmp_path, requirements="gunicorn==27.0.1  # the app's own pin\n")
    assert artifact.check_app_dir(app, "requirements.txt", EXTRA) == ["PyMySQL==1.2.4"]
    assert artifact.check_app_dir(app, "requirements.txt", ["GUNICORN==27.0.1"]) == []


def test_the_requirements_file_is_app_requirements(tmp_path):
    app = tiny_app.make(tmp_path, requirements="not==used\n")
    (app / "deploy").mkdir()
    (app / "deploy" / "prod.txt").write_text("PyMySQL==1.2.4\n")
    art = artifact.build(app, PYTHON, tmp_path / "cache", say=quiet,
                         requirements="deploy/prod.txt", extra=[])
    assert art.manifest["requirements"] == "src/deploy/prod.txt"
    assert any(f.lower().startswith("wheels/pymysql-1.2.4-") for f in art.manifest["files"])
    assert not any(f.startswith("wheels/not-") for f in art.manifest["files"])
    release = _install_like_a_host(art, tmp_path / "releases")
    assert list((release / "venv/lib").glob("python3*/site-packages/pymysql/__init__.py"))


def test_other_extras_build_another_artifact(tmp_path):
    app = tiny_app.make(tmp_path)
    cache = tmp_path / "cache"
    first = artifact.build(app, PYTHON, cache, say=quiet, extra=[])
    second = artifact.build(app, PYTHON, cache, say=quiet, extra=["PyMySQL==1.2.4"])
    assert second.manifest["content"] != first.manifest["content"]
    assert second.manifest["extra_requirements"] == ["PyMySQL==1.2.4"]


@pytest.mark.parametrize("spec", ["gunicorn", "gunicorn>=27", "gunicorn==27.*", "gunicorn~=27.0",
                                  "gunicorn==27.0.1,<28", "-e ./gunicorn", ""])
def test_an_unpinned_extra_is_refused_naming_the_variable(tmp_path, spec):
    app = tiny_app.make(tmp_path)
    with pytest.raises(artifact.ArtifactError) as refused:
        artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=[spec])
    assert "app_extra_requirements" in str(refused.value) and repr(spec) in str(refused.value)
    assert not (tmp_path / "cache").exists()


def test_an_extra_the_app_pins_otherwise_is_refused_naming_both(tmp_path):
    app = tiny_app.make(tmp_path, requirements="gunicorn==26.0.0\n")
    with pytest.raises(artifact.ArtifactError) as refused:
        artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=EXTRA)
    message = str(refused.value)
    assert "app_extra_requirements" in message and "gunicorn==26.0.0" in message, message
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("requirements", ["requirements-prod.txt", "../requirements.txt",
                                          "/etc/hostname", "deps.toml"])
def test_an_app_requirements_naming_no_file_of_the_app_is_refused(tmp_path, requirements):
    app = tiny_app.make(tmp_path)
    (tmp_path / "requirements.txt").write_text("")  # beside the app: outside it
    with pytest.raises(artifact.ArtifactError) as refused:
        artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, requirements=requirements)
    assert "app_requirements" in str(refused.value)
    assert not (tmp_path / "cache").exists()


def test_a_plain_tree_with_a_pinned_requirements_file_ships_without_a_wheel(tmp_path):
    """No pyproject.toml, no setup.py: the tree ships as src/ and is imported from there."""
    app = tiny_app.make(tmp_path)
    (app / "pyproject.toml").unlink()
    (app / "tinyapp" / "wsgi.py").write_text("from tinyapp import VERSION\napp = object()\n")
    art = artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=EXTRA)
    assert art.app_wheel == "" and art.manifest["app_wheel"] == ""
    assert "src/tinyapp/wsgi.py" in art.manifest["files"]
    assert not any(f.startswith("wheels/tinyapp") for f in art.manifest["files"])
    release = _install_like_a_host(art, tmp_path / "releases")
    # From another directory, as a console script (celery, alembic) runs: the .pth finds it.
    run = subprocess.run([release / "venv/bin/python", "-c",
                          "import gunicorn, tinyapp.wsgi; print(tinyapp.wsgi.VERSION, "
                          "tinyapp.__file__)"], cwd=tmp_path, capture_output=True, text=True)
    assert run.returncode == 0, run.stderr
    version, where = run.stdout.split()
    assert version == "1" and where.startswith(str(release / "src")), run.stdout


def test_a_directory_without_a_requirements_file_is_refused_naming_the_variable(tmp_path):
    app = tiny_app.make(tmp_path)
    (app / "pyproject.toml").unlink()
    (app / "requirements.txt").unlink()
    with pytest.raises(artifact.ArtifactError) as caught:
        artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=EXTRA)
    message = str(caught.value)
    assert "plain tree" in message and "requirements.txt" in message
    assert "app_requirements" in message
