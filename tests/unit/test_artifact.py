"""Release artifacts built for real with pip, from a tiny app that honours the contract."""

import io
import json
import sys
import tarfile
import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime

import pytest

from fleet import artifact

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


@pytest.fixture
def app_dir(tmp_path):
    app = tmp_path / "tinyapp"
    (app / "tinyapp").mkdir(parents=True)
    (app / "tinyapp" / "__init__.py").write_text("VERSION = 1\n")
    (app / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=69"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "tinyapp"\nversion = "0.1"\n')
    (app / "requirements.txt").write_text("# no dependencies\n")
    (app / ".venv").mkdir()
    (app / ".venv" / "junk").write_text("never shipped")
    return app


def test_release_id_is_utc_time_then_sha():
    when = datetime(2026, 3, 4, 5, 6, 7, tzinfo=UTC)
    assert artifact.release_id(when, "abc1234") == "20260304T050607Z-abc1234"


def test_build_ships_app_and_wheel_with_checksums_and_reuses_same_content(app_dir, tmp_path):
    cache = tmp_path / "cache"
    first = artifact.build(app_dir, PYTHON, cache, say=lambda _: None)
    manifest = artifact.verify(first.path)
    assert manifest["release_id"] == first.release_id
    assert first.app_wheel.startswith("tinyapp-0.1-")
    assert "src/tinyapp/__init__.py" in manifest["files"]
    assert f"wheels/{first.app_wheel}" in manifest["files"]
    assert not any(".venv" in f or "egg-info" in f for f in manifest["files"])

    again = artifact.build(app_dir, PYTHON, cache, say=lambda _: None)
    assert again == first

    (app_dir / "tinyapp" / "__init__.py").write_text("VERSION = 2\n")
    changed = artifact.build(app_dir, PYTHON, cache, say=lambda _: None)
    assert changed.manifest["content"] != first.manifest["content"]
    # Only the app's own code changed: hosts reuse the venv of its dependencies.
    assert changed.manifest["deps_id"] == first.manifest["deps_id"]


def test_the_code_only_archive_is_the_release_without_its_dependency_wheels(app_dir, tmp_path):
    (app_dir / "requirements.txt").write_text("six==1.17.0\n")
    art = artifact.build(app_dir, PYTHON, tmp_path / "cache", say=lambda _: None)
    cut = artifact.code_only(art)
    assert cut.name == f"{art.release_id}.code.tar.gz" and cut.parent == art.path.parent
    with tarfile.open(art.path) as full, tarfile.open(cut) as code:
        everything = {m.name for m in full.getmembers() if m.isfile()}
        kept = {m.name: code.extractfile(m).read() for m in code.getmembers() if m.isfile()}
        assert kept == {n: full.extractfile(n).read() for n in kept}  # same bytes
    dropped = everything - set(kept)
    assert dropped and all(n.startswith(f"{art.release_id}/wheels/six-") for n in dropped)
    assert f"{art.release_id}/wheels/{art.app_wheel}" in kept
    assert f"{art.release_id}/manifest.json" in kept
    stamp = cut.stat().st_mtime_ns
    assert artifact.code_only(art) == cut and cut.stat().st_mtime_ns == stamp  # cut once


def test_deps_id_follows_the_dependencies_not_the_app():
    files = {"requirements.lock.txt": "r1", "wheels/flask-3.1.0-py3-none-any.whl": "f1",
             "wheels/myapp-1.0-py3-none-any.whl": "a1", "src/myapp/__init__.py": "s1"}
    base = artifact.deps_id("3.11", "requirements.lock.txt", ["gunicorn==27.0.1"], files,
                            "myapp-1.0-py3-none-any.whl")

    def with_changed(**changes) -> str:
        args = {"python": "3.11", "requirements": "requirements.lock.txt",
                "extra": ["gunicorn==27.0.1"], "files": files,
                "app_wheel": "myapp-1.0-py3-none-any.whl"} | changes
        return artifact.deps_id(**args)

    assert with_changed(files=files | {"wheels/myapp-1.0-py3-none-any.whl": "a2",
                                       "src/myapp/__init__.py": "s2"}) == base
    assert with_changed(files=files | {"wheels/flask-3.1.0-py3-none-any.whl": "f2"}) != base
    assert with_changed(files=files | {"wheels/redis-5.0-py3-none-any.whl": "x"}) != base
    assert with_changed(files=files | {"requirements.lock.txt": "r2"}) != base
    assert with_changed(extra=["gunicorn==27.0.1", "PyMySQL==1.2.4"]) != base
    assert with_changed(python="3.12") != base


def test_tampered_artifact_fails_verification(app_dir, tmp_path):
    built = artifact.build(app_dir, PYTHON, tmp_path / "cache", say=lambda _: None)
    tampered = tmp_path / "tampered.tar.gz"
    with tarfile.open(built.path) as src, tarfile.open(tampered, "w:gz") as dst:
        for member in src.getmembers():
            data = src.extractfile(member) if member.isfile() else None
            if member.name.endswith("tinyapp/__init__.py"):
                payload = b"VERSION = 666\n"
                member.size = len(payload)
                data = io.BytesIO(payload)
            dst.addfile(member, data)
    with pytest.raises(artifact.ArtifactError, match="checksum mismatch for src/tinyapp"):
        artifact.verify(tampered)


def test_unpinned_requirement_is_refused_naming_it(app_dir, tmp_path):
    (app_dir / "requirements.txt").write_text("flask>=3\n")
    with pytest.raises(artifact.ArtifactError, match="'flask>=3' is not pinned"):
        artifact.build(app_dir, PYTHON, tmp_path / "cache", say=lambda _: None)
    assert not (tmp_path / "cache").exists()


def test_a_project_without_a_requirements_file_builds_from_its_pyproject(app_dir, tmp_path):
    # Its [project] has no dependencies, so every one is pinned; the build writes the list.
    (app_dir / "requirements.txt").unlink()
    built = artifact.build(app_dir, PYTHON, tmp_path / "cache", say=lambda _: None)
    assert built.manifest["requirements"] == artifact.GENERATED_REQUIREMENTS
    assert built.manifest["requirements_source"] == "src/pyproject.toml"
    assert artifact.GENERATED_REQUIREMENTS in built.manifest["files"]


def test_other_host_python_is_refused(app_dir, tmp_path):
    with pytest.raises(artifact.ArtifactError, match="hosts run Python 3.99"):
        artifact.build(app_dir, "3.99", tmp_path / "cache", say=lambda _: None)


def test_manifest_is_written_last(app_dir, tmp_path):
    built = artifact.build(app_dir, PYTHON, tmp_path / "cache", say=lambda _: None)
    slot = built.path.parent
    assert json.loads((slot / "manifest.json").read_text())["archive"] == built.path.name
    assert not list(slot.glob("*.partial"))


def test_a_code_change_reuses_the_dependency_wheels_of_the_last_build(app_dir, tmp_path,
                                                                     monkeypatch):
    cache = tmp_path / "cache"
    (app_dir / "requirements.txt").write_text("six==1.16.0\n")
    first = artifact.build(app_dir, PYTHON, cache, say=lambda _: None)
    six = "wheels/six-1.16.0-py2.py3-none-any.whl"
    assert six in first.manifest["files"]

    asked = []
    real_run = artifact.subprocess.run

    def recording_run(args, **kwargs):
        asked.append(args)
        return real_run(args, **kwargs)

    monkeypatch.setattr(artifact.subprocess, "run", recording_run)
    (app_dir / "tinyapp" / "__init__.py").write_text("VERSION = 2\n")
    second = artifact.build(app_dir, PYTHON, cache, say=lambda _: None)
    # Only the app's own wheel was built, by its backend (its build requirements are met
    # here); pip was not asked again, and six came from the first build, unchanged.
    assert [a for a in asked if "wheel" in a] == [], asked
    assert len([a for a in asked if artifact.BUILD_WHEEL in a]) == 1, asked
    assert second.manifest["files"][six] == first.manifest["files"][six]
    assert second.manifest["deps_id"] == first.manifest["deps_id"]

    # A changed pin is a new set of wheels: pip is asked again.
    (app_dir / "requirements.txt").write_text("six==1.17.0\n")
    third = artifact.build(app_dir, PYTHON, cache, say=lambda _: None)
    assert "wheels/six-1.17.0-py2.py3-none-any.whl" in third.manifest["files"]
    assert third.manifest["deps_id"] != first.manifest["deps_id"]


# --- the app's wheel without an isolated build environment ---------------------------------


def _requires(app_dir, *specs: str) -> None:
    quoted = ", ".join(f'"{spec}"' for spec in specs)
    (app_dir / "pyproject.toml").write_text(
        f'[build-system]\nrequires = [{quoted}]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "tinyapp"\nversion = "0.1"\n')


def test_build_requirements_this_python_has_are_met(app_dir):
    assert artifact.build_requirements_met(app_dir)  # setuptools>=69: the toolchain pins one
    _requires(app_dir, "setuptools>=69", "nosuchbackend; python_version < '3'")
    assert artifact.build_requirements_met(app_dir)  # a marker that does not apply here


@pytest.mark.parametrize("specs", [
    ("setuptools>=69", "nosuchbackend-for-fleet-tests"),   # not installed here
    ("setuptools<60",),                                      # another version
    ("setuptools[core]>=69",),                               # extras are not checked: isolate
    ("setuptools @ https://example.org/setuptools.whl",),   # a URL
    ("setuptools>=>69",),                                    # not a requirement
])
def test_build_requirements_this_python_lacks_are_not_met(app_dir, specs):
    _requires(app_dir, *specs)
    assert not artifact.build_requirements_met(app_dir)


def test_a_project_without_build_requirements_builds_isolated(app_dir):
    (app_dir / "pyproject.toml").write_text('[project]\nname = "tinyapp"\nversion = "0.1"\n')
    assert not artifact.build_requirements_met(app_dir)
    (app_dir / "pyproject.toml").unlink()
    assert not artifact.build_requirements_met(app_dir)


def test_a_met_build_builds_the_app_wheel_with_this_python(app_dir, tmp_path):
    said: list[str] = []
    built = artifact.build(app_dir, PYTHON, tmp_path / "cache", say=said.append)
    assert built.app_wheel.startswith("tinyapp-0.1-")
    assert "with this Python's build requirements" in said[-1], said


def _in_tree_backend(app_dir, body: str) -> None:
    """A build backend of the project's own (PEP 517 backend-path), around setuptools'."""
    (app_dir / "pyproject.toml").write_text(
        '[build-system]\nrequires = []\nbuild-backend = "treebackend:hooks"\n'
        'backend-path = ["_build"]\n[project]\nname = "tinyapp"\nversion = "0.1"\n')
    (app_dir / "_build").mkdir()
    (app_dir / "_build" / "treebackend.py").write_text(
        "from pathlib import Path\n"
        "from setuptools import build_meta\n"
        "class hooks:\n"
        "    @staticmethod\n"
        "    def build_wheel(wheel_directory, config_settings=None, metadata_directory=None):\n"
        f"{body}"
        "        return build_meta.build_wheel(wheel_directory)\n")


def test_a_met_build_calls_the_backend_the_project_names(app_dir, tmp_path):
    called = tmp_path / "called"
    _in_tree_backend(app_dir, f"        Path({str(called)!r}).write_text(wheel_directory)\n")
    built = artifact.build(app_dir, PYTHON, tmp_path / "cache", say=lambda _: None)
    assert built.app_wheel.startswith("tinyapp-0.1-")
    assert called.read_text().endswith("/wheels")  # the backend built it, into the wheelhouse


def test_a_failing_backend_stops_the_build_naming_it(app_dir, tmp_path):
    _in_tree_backend(app_dir, "        raise RuntimeError('no compiler for this')\n")
    with pytest.raises(artifact.ArtifactError) as failed:
        artifact.build(app_dir, PYTHON, tmp_path / "cache", say=lambda _: None)
    assert "treebackend:hooks" in str(failed.value)
    assert "no compiler for this" in str(failed.value)


def test_an_unmet_build_builds_the_app_wheel_isolated(app_dir, tmp_path):
    _requires(app_dir, "setuptools>=69", "wheel")  # wheel: not in the toolchain
    said: list[str] = []
    built = artifact.build(app_dir, PYTHON, tmp_path / "cache", say=said.append)
    assert built.app_wheel.startswith("tinyapp-0.1-")
    assert "in an isolated build environment" in said[-1], said


def test_two_deploys_cutting_the_code_only_archive_at_once_both_get_it(app_dir, tmp_path,
                                                                       monkeypatch):
    art = artifact.build(app_dir, PYTHON, tmp_path / "cache", say=lambda _: None)
    both_cutting = threading.Barrier(2, timeout=10)
    seen = threading.local()
    original = artifact._dependency_wheel

    def meet_then_filter(name, release):  # both threads are inside the cut before either ends
        if not getattr(seen, "met", False):
            seen.met = True
            both_cutting.wait()
        return original(name, release)

    monkeypatch.setattr(artifact, "_dependency_wheel", meet_then_filter)
    with ThreadPoolExecutor(max_workers=2) as pool:
        cuts = list(pool.map(lambda _: artifact.code_only(art), range(2)))
    assert len(set(cuts)) == 1 and cuts[0].is_file()
    assert not list(cuts[0].parent.glob("*.partial"))
    with tarfile.open(cuts[0]) as archive:
        assert f"{art.release_id}/manifest.json" in archive.getnames()
