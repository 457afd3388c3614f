"""Build a release once, on the control node: the app, a wheelhouse and its wheels, a manifest.

Hosts install from the wheelhouse with `--no-index`, so they never need PyPI or git. An artifact
is cached by the content of the app tree: building the same tree twice returns the first build,
release id included.

Layout of `<release id>.tar.gz`:
    manifest.json           release id, app name, git sha, python, checksums of every file, and
                            what hosts install: `requirements` (the app's file, app_requirements)
                            and `extra_requirements` (app_extra_requirements the app lacks)
    src/                    the app project (pyproject, requirements, alembic.ini, package)
    wheels/                 the app's own wheel and every pinned dependency

An app is either a project (pyproject.toml or setup.py: it ships as its own wheel too) or a plain
tree with a pinned requirements file and no packaging: then no app wheel is built
(`app_wheel` is empty in the manifest) and hosts put the release's src/ on the venv's path.
"""

from __future__ import annotations

import hashlib
import json
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

CACHE_DIR = Path(".cache/artifacts")
# Never shipped: local environments, caches, build litter.
EXCLUDED_PARTS = {".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", "build", "dist",
                  ".coverage", "htmlcov", ".git", ".mypy_cache"}
EXCLUDED_SUFFIXES = (".pyc", ".egg-info")
# `name==version` or `name[extra,...]==version`: one exact version, nothing else.
PINNED = re.compile(r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?"
                    r"\s*===?\s*(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)")


class ArtifactError(RuntimeError):
    """The app could not be built into a release."""


@dataclass(frozen=True)
class Artifact:
    release_id: str
    path: Path
    manifest: dict

    @property
    def app_wheel(self) -> str:
        """The app's own wheel; empty for a plain tree (see the module docstring)."""
        return self.manifest["app_wheel"] or ""


def is_project(app_dir: Path) -> bool:
    """Whether the app is packaged (built into a wheel) rather than a plain tree."""
    return any((app_dir / n).is_file() for n in ("pyproject.toml", "setup.py"))


def _shipped(root: Path) -> list[Path]:
    files = []
    for path in sorted(root.rglob("*")):
        rel = path.relative_to(root)
        if any(part in EXCLUDED_PARTS or part.endswith(EXCLUDED_SUFFIXES) for part in rel.parts):
            continue
        if path.is_file():
            files.append(rel)
    return files


def content_hash(app_dir: Path, python: str, requirements: str = "requirements.txt",
                 extra: Sequence[str] = ()) -> str:
    """What decides whether a build can be reused: every shipped file, the target Python and
    what the wheelhouse is built from (the requirements file and the extra requirements)."""
    digest = hashlib.sha256(python.encode())
    digest.update("\0".join([requirements, *extra]).encode() + b"\0\0")
    for rel in _shipped(app_dir):
        digest.update(rel.as_posix().encode() + b"\0")
        digest.update((app_dir / rel).read_bytes() + b"\0")
    return digest.hexdigest()[:16]


def git_sha(app_dir: Path) -> str:
    run = subprocess.run(["git", "-C", str(app_dir), "rev-parse", "--short=10", "HEAD"],
                         capture_output=True, text=True)
    if run.returncode != 0:
        return "nogit"
    dirty = subprocess.run(["git", "-C", str(app_dir), "status", "--porcelain", "--", "."],
                           capture_output=True, text=True).stdout.strip()
    return run.stdout.strip() + ("-dirty" if dirty else "")


def release_id(now: datetime, sha: str) -> str:
    """Sortable and readable: UTC time to the second, then the git sha."""
    return f"{now.strftime('%Y%m%dT%H%M%SZ')}-{sha}"


def _normalised(name: str) -> str:
    """A distribution name as pip compares them (PEP 503)."""
    return re.sub(r"[-_.]+", "-", name).lower()


def _pins(path: Path) -> dict[str, str]:
    """The requirements file's pins: normalised name -> version (options and includes skipped)."""
    pins = {}
    for line in path.read_text().splitlines():
        req = line.split("#", 1)[0].split(";", 1)[0].strip()
        if req and not req.startswith("-") and (match := PINNED.fullmatch(req)):
            pins[_normalised(match["name"])] = match["version"]
    return pins


def _requirements_file(app_dir: Path, requirements: str) -> Path | None:
    """The app's requirements file, or None when app_requirements names none inside the app."""
    rel = PurePosixPath(requirements)
    if not requirements or rel.is_absolute() or ".." in rel.parts:
        return None
    path = app_dir / rel
    return path if path.is_file() else None


def check_app_dir(app_dir: Path, requirements: str = "requirements.txt",
                  extra: Sequence[str] = ()) -> list[str]:
    """Refuse an app the kit cannot build exactly; return the extra requirements it lacks.

    Every requirement must be pinned with `==`: the app's file (app_requirements) and every
    app_extra_requirements spec. An extra the app already pins at the same version is left out;
    at another version the build is refused, naming both.
    """
    req_file = _requirements_file(app_dir, requirements)
    if req_file is None:
        # A project may list its dependencies in pyproject alone, but the wheelhouse is built
        # from one pinned file; a plain tree has nothing else to go by.
        kind = "a project" if is_project(app_dir) else "a plain tree (no pyproject.toml)"
        raise ArtifactError(f"{app_dir} is not an app the kit can build: it is {kind} and has "
                            f"no {requirements} (app_requirements names the pinned requirements "
                            "file; see docs/app-contract.md)")
    for line in req_file.read_text().splitlines():
        req = line.split("#", 1)[0].strip()
        if req and not req.startswith("-") and "==" not in req:
            raise ArtifactError(f"{req_file}: {req!r} is not pinned with '=='; the wheelhouse "
                                "must be exact (app_requirements names this file)")
    return _extra_needed(req_file, extra)


def _extra_needed(req_file: Path, extra: Sequence[str]) -> list[str]:
    """The app_extra_requirements specs the app's own pins do not already cover."""
    pins, needed = _pins(req_file), []
    for spec in extra:
        match = PINNED.fullmatch(str(spec).strip())
        if match is None:
            raise ArtifactError(f"app_extra_requirements: {spec!r} is not pinned as "
                                "name==version; the wheelhouse must be exact")
        name, version = _normalised(match["name"]), match["version"]
        if name not in pins:
            needed.append(str(spec).strip())
        elif pins[name] != version:
            raise ArtifactError(f"app_extra_requirements pins {spec!r} but {req_file} pins "
                                f"{match['name']}=={pins[name]}: make them agree (set "
                                "app_extra_requirements in the inventory, or change the app's pin)")
    return needed


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(app_dir: Path, python: str = "3.11", cache_dir: Path = CACHE_DIR,
          say=print, requirements: str = "requirements.txt",
          extra: Sequence[str] = ()) -> Artifact:
    """Build (or reuse) the release artifact of `app_dir` for hosts running `python`.

    The wheelhouse holds the pins of `requirements` (app_requirements, relative to the app)
    and the `extra` specs (app_extra_requirements) the app does not pin itself.
    """
    app_dir = app_dir.resolve()
    needed = check_app_dir(app_dir, requirements, extra)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != python:
        raise ArtifactError(f"hosts run Python {python} but the control node builds with "
                            f"{here}; build from a Python {python} environment")
    key = content_hash(app_dir, python, requirements, needed)
    slot = cache_dir / key
    if (slot / "manifest.json").is_file():
        manifest = json.loads((slot / "manifest.json").read_text())
        say(f"artifact: {manifest['release_id']} reused (same content {key})")
        return Artifact(manifest["release_id"], slot / manifest["archive"], manifest)

    started = time.monotonic()
    rid = release_id(datetime.now(UTC), git_sha(app_dir))
    say(f"artifact: building {rid} from {app_dir}")
    with tempfile.TemporaryDirectory(prefix="flaskfleet-build-") as tmp:
        stage = Path(tmp) / rid
        src, wheels = stage / "src", stage / "wheels"
        for rel in _shipped(app_dir):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(app_dir / rel, src / rel)
        pip = [sys.executable, "-m", "pip", "wheel", "--quiet", "--disable-pip-version-check",
               "--wheel-dir", str(wheels)]
        project = is_project(src)
        jobs = [["--no-deps", str(src)]] if project else []
        # One resolution for the app's pins and the extras, so they cannot disagree.
        deps = (["-r", str(src / requirements)] if _has_requirements(src / requirements)
                else []) + needed
        if deps:
            jobs.insert(0, deps)
        for args in jobs:
            run = subprocess.run(pip + args, capture_output=True, text=True)
            if run.returncode != 0:
                raise ArtifactError(f"pip wheel {' '.join(args)} failed:\n{run.stderr[-3000:]}")
        # setuptools leaves build litter in the source copy; it must not ship.
        for litter in list(src.glob("*.egg-info")) + [src / "build"]:
            shutil.rmtree(litter, ignore_errors=True)
        wheels.mkdir(parents=True, exist_ok=True)  # an app with no dependency at all
        known = {p.name for p in wheels.iterdir()}
        app_wheels = [w for w in known if _is_app_wheel(w, src)] if project else [""]
        if len(app_wheels) != 1:
            raise ArtifactError(f"expected one wheel of the app itself, found {app_wheels}")
        files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        manifest = {
            "release_id": rid,
            "content": key,
            "git_sha": rid.split("-", 1)[1],
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": python,
            "app_wheel": app_wheels[0],  # empty: a plain tree, imported from src/
            "requirements": f"src/{PurePosixPath(requirements)}",
            "extra_requirements": needed,
            "archive": f"{rid}.tar.gz",
            "files": {f: _sha256(stage / f) for f in files},
        }
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        slot.mkdir(parents=True, exist_ok=True)
        partial = slot / (manifest["archive"] + ".partial")
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(stage, arcname=rid)
        partial.rename(slot / manifest["archive"])
        # Written last: its presence is what marks the slot complete.
        (slot / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    say(f"artifact: built {rid} in {time.monotonic() - started:.1f}s "
        f"({len(known)} wheels)")
    return Artifact(rid, slot / manifest["archive"], manifest)


def _has_requirements(path: Path) -> bool:
    return any(line.split("#", 1)[0].strip() for line in path.read_text().splitlines())


def _is_app_wheel(wheel: str, src: Path) -> bool:
    """The app's wheel is the one whose distribution name matches the project's name."""
    name = _project_name(src)
    return wheel.split("-", 1)[0].lower() == name.replace("-", "_").lower()


def _project_name(src: Path) -> str:
    import tomllib

    pyproject = src / "pyproject.toml"
    if pyproject.is_file():
        data = tomllib.loads(pyproject.read_text())
        if "project" in data and "name" in data["project"]:
            return data["project"]["name"]
    raise ArtifactError(f"{src}: cannot tell the project's name (pyproject [project] name)")


def verify(path: Path) -> dict:
    """Check every file of an artifact against its manifest; return the manifest."""
    with tarfile.open(path) as archive:
        members = {m.name: m for m in archive.getmembers() if m.isfile()}
        manifest_name = next((n for n in members if n.endswith("/manifest.json")), None)
        if manifest_name is None:
            raise ArtifactError(f"{path}: no manifest.json")
        prefix = manifest_name.rsplit("/", 1)[0]
        manifest = json.load(archive.extractfile(members[manifest_name]))
        for rel, expected in manifest["files"].items():
            member = members.get(f"{prefix}/{rel}")
            if member is None:
                raise ArtifactError(f"{path}: {rel} is listed in the manifest but missing")
            actual = hashlib.sha256(archive.extractfile(member).read()).hexdigest()
            if actual != expected:
                raise ArtifactError(f"{path}: checksum mismatch for {rel}")
    return manifest
