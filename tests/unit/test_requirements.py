"""What the wheelhouse is built from: app_requirements and app_extra_requirements (issue 16).

Artifacts are built for real with pip from a tiny app (tests/unit/tiny_app.py) that lists no
dependency at all; the release is then installed by the app role's installer
(templates/app/release-install.py.j2), run with the host's /usr/bin/python3 and --no-index as the
install play runs it: the venv of its dependencies, and the app's wheel into the release's site/
(or site -> src/ for a plain tree). Code runs as the run wrapper runs it: the venv's Python with
site/ on PYTHONPATH.
"""

from __future__ import annotations

import json
import marshal
import subprocess
import sys
import tarfile
from pathlib import Path, PurePosixPath

import jinja2
import pytest
import tiny_app

from fleet import artifact
from fleet.inventory import role_defaults

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"
ROOT = Path(__file__).resolve().parents[2]
EXTRA = role_defaults()["app_extra_requirements"]


def quiet(_: str) -> None:
    pass


def installer(tmp_path: Path) -> Path:
    """The app role's release installer (templates/app/release-install.py.j2) as hosts get it."""
    text = jinja2.Environment(undefined=jinja2.StrictUndefined).from_string(
        (ROOT / "templates/app/release-install.py.j2").read_text()).render(
        app_release_installer=role_defaults()["app_release_installer"])
    script = tmp_path / "release-install"
    script.write_text(text)
    return script


def install(script: Path, release: Path) -> subprocess.CompletedProcess:
    """The install play's command: the host's Python runs the installer on the release."""
    wheel = json.loads((release / "manifest.json").read_text())["app_wheel"]
    return subprocess.run(["/usr/bin/python3", script, release, release.parent.parent / "venvs",
                           wheel], capture_output=True, text=True, timeout=300)


def _install_like_a_host(art: artifact.Artifact, releases: Path) -> Path:
    """Unpack the archive and run the role's installer on it, as the install play does."""
    releases.mkdir()
    with tarfile.open(art.path) as archive:
        archive.extractall(releases, filter="data")
    release = releases / art.release_id
    run = install(installer(releases.parent), release)
    assert run.returncode == 0, run.stderr
    manifest = json.loads((release / "manifest.json").read_text())
    assert (release / "venv").resolve() == releases.parent / "venvs" / manifest["deps_id"]
    return release


def _python(release: Path, code: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    """`code` run as the run wrapper runs the release's programs: its venv, site/ first."""
    return subprocess.run([release / "venv/bin/python", "-c", code], cwd=cwd,
                          env={"PYTHONPATH": str(release / "site")},
                          capture_output=True, text=True)


def test_the_installer_reuses_the_venv_and_a_rerun_changes_nothing(tmp_path):
    app = tiny_app.make(tmp_path)
    first = artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=[])
    release = _install_like_a_host(first, tmp_path / "releases")
    script = tmp_path / "release-install"
    again = install(script, release)
    assert again.returncode == 0 and again.stdout == "", again.stdout + again.stderr
    # A code change: the same dependency set, so the same venv, linked and not built again.
    (app / "tinyapp" / "__init__.py").write_text("VERSION = '2'\n")
    second = artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=[])
    assert second.manifest["deps_id"] == first.manifest["deps_id"]
    with tarfile.open(second.path) as archive:
        archive.extractall(tmp_path / "releases", filter="data")
    run = install(script, tmp_path / "releases" / second.release_id)
    assert run.returncode == 0, run.stderr
    assert "built" not in run.stdout and "linked" in run.stdout and "installed" in run.stdout
    code = _python(tmp_path / "releases" / second.release_id,
                   "import tinyapp; print(tinyapp.VERSION)")
    assert code.stdout.strip() == "2", code.stderr


def test_a_wheel_of_package_files_is_unpacked_and_one_with_scripts_goes_through_pip(tmp_path):
    plain = _install_like_a_host(
        artifact.build(tiny_app.make(tmp_path / "plain"), PYTHON, tmp_path / "cache",
                       say=quiet, extra=[]), tmp_path / "plain" / "releases")
    site = plain / "site"
    # pip leaves its INSTALLER mark; the installer's own unpack does not.
    assert not list(site.glob("*.dist-info/INSTALLER"))
    assert list(site.glob("tinyapp-0.1.dist-info/METADATA"))
    assert not (plain / "site.new").exists()
    compiled = list((site / "tinyapp" / "__pycache__").glob("__init__.*.pyc"))
    assert compiled, "the unpacked modules are byte-compiled"
    # Compiled as if built in site/: a traceback names the file where it is.
    shown = _python(plain, "import tinyapp; print(tinyapp.__spec__.cached)")
    assert shown.stdout.strip() == str(compiled[0]), shown.stderr
    assert marshal_filename(compiled[0]) == str(site / "tinyapp" / "__init__.py")
    assert _python(plain, "import tinyapp; print(tinyapp.VERSION)").stdout.strip() == "1"

    app = tiny_app.make(tmp_path / "scripts")
    pyproject = app / "pyproject.toml"
    pyproject.write_text(pyproject.read_text().replace(
        "[tool.setuptools]", '[project.scripts]\ntinyapp-version = "tinyapp:main"\n'
                             "[tool.setuptools]"))
    (app / "tinyapp" / "__init__.py").write_text("VERSION = 1\ndef main():\n    print(VERSION)\n")
    scripted = _install_like_a_host(
        artifact.build(app, PYTHON, tmp_path / "cache2", say=quiet, extra=[]),
        tmp_path / "scripts" / "releases")
    assert list((scripted / "site").glob("*.dist-info/INSTALLER")), "pip installed it"
    assert (scripted / "site" / "bin" / "tinyapp-version").is_file()


def marshal_filename(pyc: Path) -> str:
    """The source file name a .pyc records for its module's code."""
    return marshal.loads(pyc.read_bytes()[16:]).co_filename


def test_the_installer_refuses_a_changed_file_naming_it(tmp_path):
    art = artifact.build(tiny_app.make(tmp_path), PYTHON, tmp_path / "cache", say=quiet, extra=[])
    (tmp_path / "releases").mkdir()
    with tarfile.open(art.path) as archive:
        archive.extractall(tmp_path / "releases", filter="data")
    release = tmp_path / "releases" / art.release_id
    (release / "src" / "requirements.txt").write_text("tampered==1\n")
    run = install(installer(tmp_path), release)
    assert run.returncode != 0
    assert run.stderr.strip().startswith("check:") and "src/requirements.txt" in run.stderr
    assert not (tmp_path / "venvs").exists() and not (release / "venv").exists()


def test_a_code_only_archive_installs_where_the_venv_is_and_is_refused_where_not(tmp_path):
    app = tiny_app.make(tmp_path)
    first = artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=EXTRA)
    _install_like_a_host(first, tmp_path / "releases")  # builds the venv of deps_id
    (app / "tinyapp" / "__init__.py").write_text("VERSION = '3'\n")
    second = artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=EXTRA)
    with tarfile.open(artifact.code_only(second)) as archive:
        archive.extractall(tmp_path / "releases", filter="data")
    release = tmp_path / "releases" / second.release_id
    assert not list((release / "wheels").glob("gunicorn-*"))
    run = install(tmp_path / "release-install", release)
    assert run.returncode == 0, run.stderr
    code = _python(release, "import gunicorn, tinyapp; print(tinyapp.VERSION)")
    assert code.stdout.strip() == "3", code.stderr
    # The same archive on a host without that venv: refused, naming a missing wheel.
    (tmp_path / "other").mkdir()
    with tarfile.open(artifact.code_only(second)) as archive:
        archive.extractall(tmp_path / "other" / "releases", filter="data")
    other = tmp_path / "other" / "releases" / second.release_id
    refused = install(tmp_path / "release-install", other)
    assert refused.returncode != 0 and "check:" in refused.stderr
    assert "wheels/" in refused.stderr and "deploy again" in refused.stderr, refused.stderr
    assert not (tmp_path / "other" / "venvs").exists()


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
    run = _python(release, "import gunicorn, pymysql, tinyapp; print(gunicorn.__version__, "
                           "pymysql.VERSION_STRING, tinyapp.VERSION)")
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
    # From another directory, as a console script (celery, alembic) runs: site/ (src/) finds it.
    run = _python(release, "import gunicorn, tinyapp.wsgi; print(tinyapp.wsgi.VERSION, "
                           "tinyapp.__file__)", cwd=tmp_path)
    assert run.returncode == 0, run.stderr
    version, where = run.stdout.split()
    assert version == "1" and Path(where).resolve().is_relative_to(release / "src"), run.stdout


def test_a_directory_without_a_requirements_file_is_refused_naming_the_variable(tmp_path):
    app = tiny_app.make(tmp_path)
    (app / "pyproject.toml").unlink()
    (app / "requirements.txt").unlink()
    with pytest.raises(artifact.ArtifactError) as caught:
        artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=EXTRA)
    message = str(caught.value)
    assert "plain tree" in message and "requirements.txt" in message
    assert "app_requirements" in message


# --- Where the pins come from: lock files and pyproject.toml (app_requirements) ---
# python-dateutil needs six and nothing else: the smallest real graph with a dependency to miss.
DATEUTIL, SIX = "python-dateutil==2.9.0.post0", "six==1.17.0"
LOCKS = {
    # PEP 751; the win32-only and dev-group entries and the app itself are not for the hosts.
    "pylock.toml": '''lock-version = "1.0"
created-by = "hand"
[[packages]]
name = "tinyapp"
directory = { path = "." }
[[packages]]
name = "python-dateutil"
version = "2.9.0.post0"
[[packages]]
name = "six"
version = "1.17.0"
[[packages]]
name = "colorama"
version = "0.4.6"
marker = "sys_platform == 'win32'"
[[packages]]
name = "pytest"
version = "8.4.2"
marker = "'dev' in dependency_groups"
''',
    "uv.lock": '''version = 1
[[package]]
name = "tinyapp"
version = "0.1"
source = { editable = "." }
dependencies = [
    { name = "python-dateutil" },
    { name = "colorama", marker = "sys_platform == 'win32'" },
]
[package.dev-dependencies]
dev = [{ name = "pytest" }]
[[package]]
name = "python-dateutil"
version = "2.9.0.post0"
source = { registry = "https://pypi.org/simple" }
dependencies = [{ name = "six" }]
[[package]]
name = "six"
version = "1.17.0"
source = { registry = "https://pypi.org/simple" }
[[package]]
name = "colorama"
version = "0.4.6"
source = { registry = "https://pypi.org/simple" }
[[package]]
name = "pytest"
version = "8.4.2"
source = { registry = "https://pypi.org/simple" }
''',
    # Poetry 2 (groups, markers per group).
    "poetry.lock": '''[[package]]
name = "python-dateutil"
version = "2.9.0.post0"
optional = false
groups = ["main"]
[[package]]
name = "six"
version = "1.17.0"
optional = false
groups = ["main", "dev"]
[[package]]
name = "colorama"
version = "0.4.6"
optional = false
groups = ["main", "dev"]
markers = { main = "sys_platform == \\"win32\\"", dev = "python_version >= \\"3\\"" }
[[package]]
name = "pytest"
version = "8.4.2"
optional = false
groups = ["dev"]
[[package]]
name = "pymysql"
version = "1.2.4"
optional = true
groups = ["main"]
[metadata]
lock-version = "2.1"
''',
    "pyproject.toml": f'''[build-system]
requires = ["setuptools>=69"]
build-backend = "setuptools.build_meta"
[project]
name = "tinyapp"
version = "0.1"
dependencies = ["{DATEUTIL}", "six[unused]=={SIX.split("==")[1]}; python_version >= '3'"]
[tool.setuptools]
packages = ["tinyapp"]
''',
}


def _locked_app(tmp_path: Path, name: str) -> Path:
    """The tiny app with its pins in `name` alone (no requirements.txt)."""
    app = tiny_app.make(tmp_path)
    (app / "requirements.txt").unlink()
    (app / name).write_text(LOCKS[name])
    return app


@pytest.mark.parametrize("name", sorted(LOCKS))
def test_pins_from_a_lock_file_or_pyproject_are_what_hosts_install(tmp_path, name):
    app = _locked_app(tmp_path, name)
    art = artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=[])
    assert art.manifest["requirements"] == "requirements.lock.txt"
    assert art.manifest["requirements_source"] == f"src/{name}"
    assert art.manifest["unpinned"] == []
    wheels = sorted(f.split("-")[0].lower() for f in art.manifest["files"]
                    if f.startswith("wheels/"))
    assert wheels == ["wheels/python_dateutil", "wheels/six", "wheels/tinyapp"]
    release = _install_like_a_host(art, tmp_path / "releases")
    listed = (release / "requirements.lock.txt").read_text().splitlines()
    assert [line.split(";")[0].replace("[unused]", "") for line in listed[1:]] == [DATEUTIL, SIX]
    run = _python(release, "import dateutil, six, tinyapp; print(dateutil.__version__)")
    assert run.stdout.strip() == "2.9.0.post0", run.stderr


def test_older_poetry_locks_go_by_category_or_take_everything(tmp_path):
    app = tiny_app.make(tmp_path)
    (app / "poetry.lock").write_text(
        '[[package]]\nname = "six"\nversion = "1.17.0"\ncategory = "main"\n'
        '[[package]]\nname = "pytest"\nversion = "8.4.2"\ncategory = "dev"\n')
    assert artifact.read_pins(app, "poetry.lock").versions == {"six": "1.17.0"}
    # Poetry 1.5 to 1.8 record no group: every package is taken.
    (app / "poetry.lock").write_text(
        '[[package]]\nname = "six"\nversion = "1.17.0"\n'
        '[[package]]\nname = "pytest"\nversion = "8.4.2"\n')
    assert artifact.read_pins(app, "poetry.lock").versions == {"six": "1.17.0",
                                                               "pytest": "8.4.2"}


def test_an_empty_app_requirements_takes_the_first_file_found(tmp_path):
    app = tiny_app.make(tmp_path)
    (app / "pyproject.toml").write_text(LOCKS["pyproject.toml"])
    for name in ("pylock.toml", "uv.lock", "poetry.lock"):
        (app / name).write_text(LOCKS[name])
    for expected in artifact.REQUIREMENTS_SEARCH:
        pins = artifact.read_pins(app, "")
        assert pins.source == expected
        if expected != "pyproject.toml":
            (app / expected).unlink()
    assert pins.kind == "pyproject" and pins.versions == {"python-dateutil": "2.9.0.post0",
                                                          "six": "1.17.0"}


@pytest.mark.parametrize(("name", "kind"), [("uv.lock", "uv"), ("deploy/pylock.prod.toml",
                                            "pylock"), ("poetry.lock", "poetry"),
                                            ("pyproject.toml", "pyproject"),
                                            ("deploy/prod.in", "requirements")])
def test_an_app_requirements_naming_a_file_is_read_as_its_name_says(tmp_path, name, kind):
    app = tiny_app.make(tmp_path, requirements="not==used\n")
    (app / "deploy").mkdir()
    text = LOCKS.get(PurePosixPath(name).name, LOCKS["pylock.toml"])
    (app / name).write_text(text if kind != "requirements" else f"{SIX}\n")
    pins = artifact.read_pins(app, name)
    assert (pins.source, pins.kind) == (name, kind)
    assert "not" not in pins.versions and pins.versions["six"] == "1.17.0"


def test_an_app_requirements_of_no_known_kind_is_refused_naming_the_variable(tmp_path):
    app = tiny_app.make(tmp_path)
    (app / "deps.toml").write_text(LOCKS["pylock.toml"])
    with pytest.raises(artifact.ArtifactError, match="app_requirements: deps.toml is no kind"):
        artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, requirements="deps.toml")


@pytest.mark.parametrize("spec", ["python-dateutil>=2", "python-dateutil", "six==1.*",
                                  "six @ https://example.invalid/six.whl"])
def test_an_unpinned_pyproject_dependency_is_refused_naming_pyproject(tmp_path, spec):
    app = _locked_app(tmp_path, "pyproject.toml")
    (app / "pyproject.toml").write_text(LOCKS["pyproject.toml"].replace(
        f'"{DATEUTIL}"', json.dumps(spec)))
    with pytest.raises(artifact.ArtifactError) as refused:
        artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=[])
    message = str(refused.value)
    assert f"pyproject.toml: dependency {spec!r} is not pinned" in message, message
    assert "app_requirements" in message
    assert not (tmp_path / "cache").exists()


@pytest.mark.parametrize("name", ["pyproject.toml", "requirements.txt"])
def test_a_dependency_the_app_does_not_pin_is_refused_naming_it(tmp_path, name):
    app = tiny_app.make(tmp_path, requirements=f"{DATEUTIL}\n")
    if name == "pyproject.toml":
        (app / "requirements.txt").unlink()
        (app / name).write_text(LOCKS[name].replace(', "six[unused]', '] # "'))
    with pytest.raises(artifact.ArtifactError) as refused:
        artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=[])
    message = str(refused.value)
    assert (f"{name} pins python-dateutil==2.9.0.post0 but not its dependency six (pip "
            f"resolved 1.17.0): pin six==1.17.0 in {name}") in message, message
    assert not (tmp_path / "cache").exists()


def test_app_allow_unpinned_lets_a_floating_dependency_through_with_a_warning(tmp_path):
    app = tiny_app.make(tmp_path, requirements=f"{DATEUTIL}\n")
    said: list[str] = []
    art = artifact.build(app, PYTHON, tmp_path / "cache", say=said.append, extra=[],
                         allow_unpinned=True)
    assert any("warning" in line and "six==1.17.0" in line for line in said), said
    assert "pin six==1.17.0 in requirements.txt" in art.manifest["unpinned"][0]
    # The cached build keeps what floated: reused without the hatch, it is refused all the same.
    with pytest.raises(artifact.ArtifactError, match="not its dependency six"):
        artifact.build(app, PYTHON, tmp_path / "cache", say=quiet, extra=[])


def test_the_file_the_pins_come_from_is_part_of_the_cache_key(tmp_path):
    app = tiny_app.make(tmp_path, requirements=f"{DATEUTIL}\n{SIX}\n")
    (app / "uv.lock").write_text(LOCKS["uv.lock"])
    cache = tmp_path / "cache"
    found = artifact.build(app, PYTHON, cache, say=quiet, extra=[])
    locked = artifact.build(app, PYTHON, cache, say=quiet, requirements="uv.lock", extra=[])
    assert found.manifest["requirements"] == "src/requirements.txt"
    assert locked.manifest["requirements"] == "requirements.lock.txt"
    assert found.manifest["content"] != locked.manifest["content"]


def test_the_reference_app_pins_everything_its_wheelhouse_holds(tmp_path):
    art = artifact.build(ROOT / "app", PYTHON, tmp_path / "cache", say=quiet,
                         requirements=role_defaults()["app_requirements"], extra=EXTRA)
    assert art.manifest["requirements"] == "src/requirements.txt"
    assert art.manifest["unpinned"] == [] and art.manifest["extra_requirements"] == []


def test_pins_of_an_included_requirements_file_count(tmp_path):
    app = tiny_app.make(tmp_path, requirements=f"-r base.txt\n{DATEUTIL}\n")
    (app / "base.txt").write_text("--constraint pins.txt\n-r requirements.txt\n")
    (app / "pins.txt").write_text(f"{SIX}\n")
    assert artifact.read_pins(app).versions == {"python-dateutil": "2.9.0.post0",
                                                "six": "1.17.0"}
