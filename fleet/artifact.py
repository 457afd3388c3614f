"""Build a release once, on the control node: the app, a wheelhouse and its wheels, a manifest.

Hosts install from the wheelhouse with `--no-index`, so they never need PyPI or git. An artifact
is cached by the content of the app tree: building the same tree twice returns the first build,
release id included. The dependency wheels are cached apart, by what decides them
(wheelhouse_key): a build that changes only the app's code asks pip for the app's wheel alone.

Layout of `<release id>.tar.gz`:
    manifest.json           release id, app name, git sha, python, checksums of every file, and
                            what hosts install: `requirements` (the pinned file, see below) and
                            `extra_requirements` (app_extra_requirements the app lacks);
                            `requirements_source` names the app's file the pins came from
    requirements.lock.txt   only when the pins come from a lock file or pyproject.toml: the
                            pinned list written by the build, which `requirements` then names
    src/                    the app project (pyproject, requirements, alembic.ini, package)
    wheels/                 the app's own wheel and every pinned dependency, nothing else

`deps_id` in the manifest names the dependency set: the Python, what hosts install and every
wheel but the app's own. Releases with the same deps_id share one venv on a host (built by the
first of them), so a code-only release installs just the app (roles/app release_install), and a
host that has that venv is sent `<release id>.code.tar.gz` (code_only()): the same release
without its dependency wheels, same manifest.

The pins come from app_requirements: a requirements file (installed as it is), a lock file
(pylock.toml, uv.lock, poetry.lock) or pyproject.toml's `==`-pinned [project] dependencies;
empty, the first of REQUIREMENTS_SEARCH the app has. After pip has built the wheelhouse, every
wheel in it must be one the app pinned, at that version, or an app_extra_requirements spec:
pip never quietly chooses a version for the hosts.

An app is either a project (pyproject.toml or setup.py: it ships as its own wheel too) or a plain
tree with a pinned requirements file and no packaging: then no app wheel is built
(`app_wheel` is empty in the manifest) and hosts put the release's src/ on the venv's path.
"""

from __future__ import annotations

import contextlib
import email.parser
import hashlib
import importlib.metadata
import json
import os
import re
import shutil
import subprocess
import sys
import tarfile
import tempfile
import time
import tomllib
import zipfile
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path, PurePosixPath

from packaging.markers import InvalidMarker, Marker, UndefinedComparison, UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.version import InvalidVersion, Version

CACHE_DIR = Path(".cache/artifacts")
# Never shipped: local environments, caches, build litter.
EXCLUDED_PARTS = {".venv", "venv", "__pycache__", ".pytest_cache", ".ruff_cache", "build", "dist",
                  ".coverage", "htmlcov", ".git", ".mypy_cache"}
EXCLUDED_SUFFIXES = (".pyc", ".egg-info")
# `name==version` or `name[extra,...]==version`: one exact version, nothing else.
PINNED = re.compile(r"(?P<name>[A-Za-z0-9](?:[A-Za-z0-9._-]*[A-Za-z0-9])?)\s*(?:\[[^\]]*\])?"
                    r"\s*===?\s*(?P<version>[A-Za-z0-9][A-Za-z0-9.+!_-]*)")
# Where the pins come from when app_requirements is empty: the first of these the app has.
REQUIREMENTS_SEARCH = ("requirements.txt", "pylock.toml", "uv.lock", "poetry.lock",
                       "pyproject.toml")
# Written by the build, at the artifact's root, when the pins come from a lock file or
# pyproject.toml: the one pinned list hosts install.
GENERATED_REQUIREMENTS = "requirements.lock.txt"


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


# Part of every content hash: a build made by an earlier layout of the artifact (before
# deps_id) is never reused.
LAYOUT = "2"


def content_hash(app_dir: Path, python: str, requirements: str = "requirements.txt",
                 extra: Sequence[str] = ()) -> str:
    """What decides whether a build can be reused: every shipped file, the target Python and
    what the wheelhouse is built from (the file the pins come from and the extra requirements)."""
    digest = hashlib.sha256(f"{LAYOUT}\0{python}".encode())
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


def _pins(path: Path, seen: frozenset[Path] = frozenset()) -> dict[str, str]:
    """The requirements file's pins: normalised name -> version, with those of the files it
    includes (`-r`) or constrains with (`-c`), as pip reads them; other options skipped."""
    pins = {}
    for line in path.read_text().splitlines():
        req = line.split("#", 1)[0].split(";", 1)[0].strip()
        include = re.fullmatch(r"(?:-r|-c|--requirement|--constraint)[\s=]+(\S+)", req)
        if include and (nested := (path.parent / include[1]).resolve()) not in seen:
            if nested.is_file():
                pins.update(_pins(nested, seen | {path.resolve()}))
        elif req and not req.startswith("-") and (match := PINNED.fullmatch(req)):
            pins[_normalised(match["name"])] = match["version"]
    return pins


@dataclass(frozen=True)
class Pins:
    """What the wheelhouse is built from: the app's file (app_requirements) and its pins."""

    source: str                  # the file, relative to the app
    kind: str                    # requirements, pylock, uv, poetry or pyproject
    versions: dict[str, str]     # normalised name -> pinned version
    lines: tuple[str, ...] = ()  # what the generated requirements file lists

    @property
    def generated(self) -> bool:
        """Whether hosts install a file written by the build (GENERATED_REQUIREMENTS)."""
        return self.kind != "requirements"


def _kind(rel: PurePosixPath) -> str | None:
    """What kind of file app_requirements names, by its name; None: no kind the kit reads."""
    if rel.name == "pyproject.toml":
        return "pyproject"
    if rel.name in ("uv.lock", "poetry.lock"):
        return rel.name.split(".")[0]
    if re.fullmatch(r"pylock(\.[^.]+)?\.toml", rel.name):
        return "pylock"
    return None if rel.suffix in (".toml", ".lock") else "requirements"


def _requirements_file(app_dir: Path, requirements: str) -> Path | None:
    """The app's requirements file, or None when app_requirements names none inside the app."""
    rel = PurePosixPath(requirements)
    if not requirements or rel.is_absolute() or ".." in rel.parts:
        return None
    path = app_dir / rel
    return path if path.is_file() else None


def _locate(app_dir: Path, requirements: str) -> str:
    """The file the pins come from, relative to the app: app_requirements, or the first of
    REQUIREMENTS_SEARCH the app has when app_requirements is empty."""
    if not requirements.strip():
        found = next((n for n in REQUIREMENTS_SEARCH if (app_dir / n).is_file()), None)
        if found is None:  # a project always has its pyproject.toml: this is a plain tree
            raise ArtifactError(
                f"{app_dir} is not an app the kit can build: it is a plain tree (no "
                f"pyproject.toml) and has none of {', '.join(REQUIREMENTS_SEARCH[:-1])} "
                "(app_requirements names the file the pins come from; see docs/app-contract.md)")
        return found
    if _requirements_file(app_dir, requirements) is None:
        kind = "a project" if is_project(app_dir) else "a plain tree (no pyproject.toml)"
        raise ArtifactError(f"{app_dir} is not an app the kit can build: it is {kind} and has "
                            f"no {requirements} (app_requirements names the file the pins come "
                            "from; see docs/app-contract.md)")
    if _kind(PurePosixPath(requirements)) is None:
        raise ArtifactError(f"app_requirements: {requirements} is no kind of file the kit reads "
                            "(a requirements file, pylock*.toml, uv.lock, poetry.lock or "
                            "pyproject.toml)")
    return str(PurePosixPath(requirements))


def read_pins(app_dir: Path, requirements: str = "") -> Pins:
    """The app's pins, from the file app_requirements names (empty: found as _locate says).

    A requirements file must pin every line with `==`; a lock file gives the packages it locks
    for the hosts' runtime; pyproject.toml's [project] dependencies must each be `==`-pinned.
    """
    rel = _locate(app_dir, requirements)
    path, kind = app_dir / rel, _kind(PurePosixPath(rel))
    if kind == "requirements":
        for line in path.read_text().splitlines():
            req = line.split("#", 1)[0].strip()
            if req and not req.startswith("-") and "==" not in req:
                raise ArtifactError(f"{path}: {req!r} is not pinned with '=='; the wheelhouse "
                                    "must be exact (app_requirements names this file)")
        return Pins(rel, kind, _pins(path))
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as exc:
        raise ArtifactError(f"{rel} is not valid TOML ({exc}); app_requirements names "
                            "this file") from None
    if kind == "pyproject":
        return _pyproject_pins(rel, data)
    own = _declared_name(app_dir)
    locked = {"pylock": _pylock_packages, "uv": _uv_packages, "poetry": _poetry_packages}[kind]
    versions: dict[str, str] = {}
    names: dict[str, str] = {}
    for name, version in locked(rel, data, own):
        key = _normalised(name)
        if key in versions and versions[key] != version:
            raise ArtifactError(
                f"{rel} locks two versions of {name} ({versions[key]} and {version}) for the "
                "hosts' platform; the kit builds one wheelhouse for every host: export a "
                "requirements file for it and name that in app_requirements")
        versions[key], names[key] = version, name
    lines = tuple(f"{names[k]}=={versions[k]}" for k in sorted(versions))
    return Pins(rel, kind, versions, lines)


def _pyproject_pins(rel: str, data: dict) -> Pins:
    project = data.get("project", {})
    if "dependencies" in project.get("dynamic", []):
        raise ArtifactError(f"{rel} declares its dependencies dynamic, so the kit cannot pin "
                            "them: give a lock file or a requirements.txt (app_requirements)")
    versions, lines = {}, []
    for spec in project.get("dependencies", []):
        pinned = _exact(spec)
        if pinned is None:
            raise ArtifactError(
                f"{rel}: dependency {spec!r} is not pinned with '=='; pin it as name==version "
                f"in {rel}, or give a lock file or a requirements.txt (app_requirements names "
                "the file the pins come from)")
        req, version = pinned
        versions[_normalised(req.name)] = version
        lines.append(str(req))
    return Pins(rel, "pyproject", versions, tuple(lines))


def _exact(spec: str) -> tuple[Requirement, str] | None:
    """The requirement and its one exact version; None when it allows more than one."""
    try:
        req = Requirement(spec)
    except InvalidRequirement:
        return None
    specifiers = list(req.specifier)
    if req.url or len(specifiers) != 1 or specifiers[0].operator not in ("==", "==="):
        return None
    version = specifiers[0].version
    return None if "*" in version else (req, version)


def _applies(marker: str, environment: dict | None = None, context: str = "metadata") -> bool:
    """Whether a lock file's marker holds on the control node (which runs the hosts' Python);
    one the kit cannot evaluate is taken to hold, so the check after the build sees the package."""
    try:
        return Marker(marker).evaluate(environment or {"extra": ""}, context=context)
    except (InvalidMarker, UndefinedComparison, UndefinedEnvironmentName):
        return True


def _versioned(rel: str, package: dict) -> tuple[str, str]:
    name, version = package.get("name", "?"), package.get("version")
    if not version:
        raise ArtifactError(f"{rel} locks {name} without a version (a directory, archive or "
                            "VCS source); the wheelhouse is built from released versions only")
    return name, str(version)


def _pylock_packages(rel: str, data: dict, own: str | None) -> list[tuple[str, str]]:
    """PEP 751: every `[[packages]]` entry whose marker holds, without extras and with the
    lock's default groups; the app's own entry (itself, or the directory `.`) left out."""
    environment = {"extras": set(), "dependency_groups": set(data.get("default-groups", []))}
    found = []
    for package in data.get("packages", []):
        path = package.get("directory", {}).get("path")
        if path in (".", "") or _normalised(package.get("name", "")) == own:
            continue
        marker = package.get("marker")
        if marker and not _applies(marker, environment, "lock_file"):
            continue
        found.append(_versioned(rel, package))
    return found


def _uv_packages(rel: str, data: dict, own: str | None) -> list[tuple[str, str]]:
    """uv.lock: what the project's runtime dependencies reach, following each dependency's
    marker and extras; its dev-dependencies and optional-dependencies are not followed. A lock
    without the project's entry (`source = { editable = "." }` or `{ virtual = "." }`, or the
    project's name) gives every package it holds."""
    packages = data.get("package", [])

    def is_own(package: dict) -> bool:
        source = package.get("source", {})
        return ("." in (source.get("editable"), source.get("virtual"))
                or _normalised(package.get("name", "")) == own)

    root = next((p for p in packages if is_own(p)), None)
    if root is None:
        return [_versioned(rel, p) for p in packages]
    by_name: dict[str, list[dict]] = {}
    for package in packages:
        by_name.setdefault(_normalised(package.get("name", "")), []).append(package)
    reached: dict[int, dict] = {}
    followed: set[tuple[int, str]] = set()
    pending = list(root.get("dependencies", []))
    while pending:
        edge = pending.pop()
        if edge.get("marker") and not _applies(edge["marker"]):
            continue
        candidates = [p for p in by_name.get(_normalised(edge["name"]), [])
                      if "version" not in edge or p.get("version") == edge["version"]]
        if len(candidates) != 1:
            raise ArtifactError(f"{rel}: cannot tell which locked {edge['name']} the project "
                                f"uses ({len(candidates)} entries match)")
        package = candidates[0]
        for extra in ["", *edge.get("extra", [])]:
            if (id(package), extra) in followed:
                continue
            followed.add((id(package), extra))
            pending += (package.get("optional-dependencies", {}).get(extra, []) if extra
                        else package.get("dependencies", []))
        if not is_own(package):
            reached[id(package)] = package
    return [_versioned(rel, p) for p in reached.values()]


def _poetry_packages(rel: str, data: dict, own: str | None) -> list[tuple[str, str]]:
    """poetry.lock: the packages of the main group. Poetry 2 writes `groups` (and `markers`, one
    string or one per group); Poetry before 1.5 wrote `category` ("main" or "dev"); Poetry 1.5
    to 1.8 write neither, and then every locked package is taken, dev tools included.
    `optional = true` marks a package only an extra of the app needs: hosts install none."""
    found = []
    for package in data.get("package", []):
        if package.get("optional") or _normalised(package.get("name", "")) == own:
            continue
        groups, category, markers = (package.get(k) for k in ("groups", "category", "markers"))
        if (groups is not None and "main" not in groups) or category not in (None, "main"):
            continue
        marker = markers.get("main") if isinstance(markers, dict) else markers
        if marker and not _applies(marker):
            continue
        found.append(_versioned(rel, package))
    return found


def check_app_dir(app_dir: Path, requirements: str = "",
                  extra: Sequence[str] = ()) -> list[str]:
    """Refuse an app the kit cannot build exactly; return the extra requirements it lacks.

    Every requirement must be pinned with `==`: the app's (read_pins, app_requirements) and
    every app_extra_requirements spec. An extra the app already pins at the same version is
    left out; at another version the build is refused, naming both.
    """
    return _extra_needed(read_pins(app_dir, requirements), extra)


def _extra_needed(pins: Pins, extra: Sequence[str]) -> list[str]:
    """The app_extra_requirements specs the app's own pins do not already cover."""
    needed = []
    for spec in extra:
        match = PINNED.fullmatch(str(spec).strip())
        if match is None:
            raise ArtifactError(f"app_extra_requirements: {spec!r} is not pinned as "
                                "name==version; the wheelhouse must be exact")
        name, version = _normalised(match["name"]), match["version"]
        if name not in pins.versions:
            needed.append(str(spec).strip())
        elif pins.versions[name] != version:
            raise ArtifactError(f"app_extra_requirements pins {spec!r} but {pins.source} pins "
                                f"{match['name']}=={pins.versions[name]}: make them agree (set "
                                "app_extra_requirements in the inventory, or change the app's pin)")
    return needed


def _wheel_metadata(wheel: Path) -> tuple[str, str, list[str]]:
    """A wheel's distribution name, version and the names it requires (any marker)."""
    with zipfile.ZipFile(wheel) as archive:
        member = next(n for n in archive.namelist()
                      if n.count("/") == 1 and n.endswith(".dist-info/METADATA"))
        meta = email.parser.HeaderParser().parsestr(archive.read(member).decode())
    requires = []
    for line in meta.get_all("Requires-Dist") or []:
        with contextlib.suppress(InvalidRequirement):
            requires.append(_normalised(Requirement(line).name))
    return meta["Name"], meta["Version"], requires


def _same_version(a: str, b: str) -> bool:
    try:
        return Version(a) == Version(b)
    except InvalidVersion:
        return a == b


def _unpinned(wheels: Path, pins: Pins, needed: Sequence[str], app_wheel: str) -> list[str]:
    """Why each wheel pip put in the wheelhouse that the app did not pin at that version is
    there: one sentence per package, naming it, what pip resolved and the file to pin it in."""
    allowed = dict(pins.versions)
    for spec in needed:
        match = PINNED.fullmatch(spec)
        allowed[_normalised(match["name"])] = match["version"]
    built = {}
    for wheel in sorted(wheels.glob("*.whl")):
        if wheel.name != app_wheel:
            name, version, requires = _wheel_metadata(wheel)
            built[_normalised(name)] = (name, version, requires)
    problems = []
    for key, (name, version, _) in sorted(built.items()):
        if key in allowed and _same_version(allowed[key], version):
            continue
        if key in allowed:
            problems.append(f"{pins.source} pins {name}=={allowed[key]} but pip resolved "
                            f"{version}")
            continue
        by = [f"{n}=={v}" for n, v, requires in built.values() if key in requires]
        what = (f"{pins.source} pins {' and '.join(by)} but not its dependency {name}" if by
                else f"{pins.source} does not pin {name}")
        fix = ", or give a lock file or a requirements.txt" if pins.kind == "pyproject" else ""
        problems.append(f"{what} (pip resolved {version}): pin {name}=={version} in "
                        f"{pins.source}{fix}")
    return problems


def wheelhouse_key(python: str, pins: Pins, requirements_text: str, needed: Sequence[str]) -> str:
    """What decides the dependency wheels of a build: the Python, the pins (those of included
    files too), the text of the requirements file pip reads (its markers and options) and the
    extra specs. Builds with the same key reuse one set of wheels instead of asking pip again."""
    digest = hashlib.sha256(f"{LAYOUT}\0{python}\0{pins.kind}\0{pins.source}\0".encode())
    digest.update(json.dumps(sorted(pins.versions.items())).encode() + b"\0")
    digest.update(requirements_text.encode() + b"\0")
    digest.update("\0".join(needed).encode())
    return digest.hexdigest()[:16]


def _pip_wheel(args: Sequence[str], wheels: Path) -> None:
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet",
                          "--disable-pip-version-check", "--wheel-dir", str(wheels), *args],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise ArtifactError(f"pip wheel {' '.join(args)} failed:\n{run.stderr[-3000:]}")


# Run in the project's directory by the Python building the artifact: PEP 517's build_wheel,
# called on the backend pyproject.toml names (argv: backend, wheel directory, backend-path...).
BUILD_WHEEL = """\
import importlib, os, sys
sys.path[:0] = [os.path.abspath(path) for path in sys.argv[3:]]
module, _, attribute = sys.argv[1].partition(":")
backend = importlib.import_module(module)
for name in filter(None, attribute.split(".")):
    backend = getattr(backend, name)
backend.build_wheel(sys.argv[2])
"""


def _backend_wheel(src: Path, wheels: Path) -> None:
    """The app's wheel from its own build backend, called directly: what pip does for a
    project whose build requirements are met here (build_requirements_met), without pip's
    start-up and checks, a second of every code-change deploy's pre-flight."""
    system = tomllib.loads((src / "pyproject.toml").read_text())["build-system"]
    backend = system.get("build-backend", "setuptools.build_meta:__legacy__")
    wheels.mkdir(parents=True, exist_ok=True)
    run = subprocess.run([sys.executable, "-c", BUILD_WHEEL, backend, str(wheels),
                          *system.get("backend-path", [])],
                         cwd=src, capture_output=True, text=True)
    if run.returncode != 0:
        raise ArtifactError(f"building the app's wheel with {backend} failed:\n"
                            f"{(run.stderr or run.stdout)[-3000:]}")


def build_requirements_met(src: Path) -> bool:
    """Whether the Python building the artifact already has every build requirement the project
    declares (pyproject.toml's [build-system] requires, markers as they apply here): then its
    backend builds the app's wheel with them as they are (_backend_wheel) instead of pip
    installing them into a fresh, isolated environment first (about 2 s of every code-change
    deploy). A project that does not declare them, asks for extras, a URL, or a version this
    Python lacks builds isolated.
    """
    try:
        declared = tomllib.loads((src / "pyproject.toml").read_text())["build-system"]["requires"]
        requirements = [Requirement(spec) for spec in declared]
    except (OSError, tomllib.TOMLDecodeError, KeyError, TypeError, InvalidRequirement):
        return False
    for req in requirements:
        if req.marker is not None and not req.marker.evaluate():
            continue
        if req.extras or req.url:
            return False
        try:
            have = importlib.metadata.version(req.name)
        except importlib.metadata.PackageNotFoundError:
            return False
        if not req.specifier.contains(have, prereleases=True):
            return False
    return True


def _dependency_wheels(args: Sequence[str], wheels: Path, cached: Path) -> bool:
    """The dependency wheels into `wheels`: copied from `cached` when an earlier build with the
    same wheelhouse_key kept them, else built by pip. Whether pip built them."""
    if (cached / ".complete").is_file():
        wheels.mkdir(parents=True, exist_ok=True)
        for wheel in cached.glob("*.whl"):
            shutil.copy2(wheel, wheels / wheel.name)
        return False
    _pip_wheel(args, wheels)
    return True


def _keep_dependency_wheels(wheels: Path, app_wheel: str, cached: Path) -> None:
    """After a build that passed its checks: its dependency wheels, for the next build."""
    partial = cached.with_name(cached.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    for wheel in wheels.glob("*.whl"):
        if wheel.name != app_wheel:
            shutil.copy2(wheel, partial / wheel.name)
    (partial / ".complete").write_text("")
    shutil.rmtree(cached, ignore_errors=True)
    partial.rename(cached)


def deps_id(python: str, requirements: str, extra: Sequence[str], files: dict[str, str],
            app_wheel: str) -> str:
    """The dependency set of a release, from its manifest's checksums: the Python, the
    requirements file hosts install (`requirements`, its checksum), the extra specs and every
    wheel but the app's own. Equal ids install equal venvs."""
    digest = hashlib.sha256(f"{python}\0{requirements}\0{files.get(requirements, '')}".encode())
    digest.update("\0".join(extra).encode() + b"\0\0")
    for rel in sorted(files):
        if rel.startswith("wheels/") and rel != f"wheels/{app_wheel}":
            digest.update(f"{rel}\0{files[rel]}\0".encode())
    return digest.hexdigest()[:16]


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


def build(app_dir: Path, python: str = "3.11", cache_dir: Path = CACHE_DIR,
          say=print, requirements: str = "",
          extra: Sequence[str] = (), allow_unpinned: bool = False) -> Artifact:
    """Build (or reuse) the release artifact of `app_dir` for hosts running `python`.

    The wheelhouse holds the pins of `requirements` (app_requirements, relative to the app;
    empty: found as read_pins says) and the `extra` specs (app_extra_requirements) the app does
    not pin itself, and nothing else: a package pip pulls in that neither pins at that version
    is refused, naming it, or with `allow_unpinned` (app_allow_unpinned) printed as a warning.
    """
    app_dir = app_dir.resolve()
    pins = read_pins(app_dir, requirements)
    needed = _extra_needed(pins, extra)
    here = f"{sys.version_info.major}.{sys.version_info.minor}"
    if here != python:
        raise ArtifactError(f"hosts run Python {python} but the control node builds with "
                            f"{here}; build from a Python {python} environment")
    key = content_hash(app_dir, python, f"{pins.kind}:{pins.source}", needed)
    slot = cache_dir / key
    if (slot / "manifest.json").is_file():
        manifest = json.loads((slot / "manifest.json").read_text())
        _floated(manifest.get("unpinned", []), allow_unpinned, say)
        say(f"artifact: {manifest['release_id']} reused (same content {key})")
        return Artifact(manifest["release_id"], slot / manifest["archive"], manifest)

    started = time.monotonic()
    rid = release_id(datetime.now(UTC), git_sha(app_dir))
    say(f"artifact: building {rid} from {app_dir} (pins from {pins.source})")
    with tempfile.TemporaryDirectory(prefix="flaskfleet-build-") as tmp:
        stage = Path(tmp) / rid
        src, wheels = stage / "src", stage / "wheels"
        for rel in _shipped(app_dir):
            (src / rel).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(app_dir / rel, src / rel)
        if pins.generated:
            installs = GENERATED_REQUIREMENTS
            (stage / installs).write_text(
                f"# Written by the build from src/{pins.source}: what hosts install.\n"
                + "".join(f"{line}\n" for line in pins.lines))
        else:
            installs = f"src/{pins.source}"
        project = is_project(src)
        # One resolution for the app's pins and the extras, so they cannot disagree.
        deps = (["-r", str(stage / installs)] if _has_requirements(stage / installs)
                else []) + needed
        cached = cache_dir / "wheelhouses" / wheelhouse_key(
            python, pins, (stage / installs).read_text(), needed)
        fresh = bool(deps) and _dependency_wheels(deps, wheels, cached)
        met = project and build_requirements_met(src)
        if project and met:
            _backend_wheel(src, wheels)
        elif project:
            _pip_wheel(["--no-deps", str(src)], wheels)
        # setuptools leaves build litter in the source copy; it must not ship.
        for litter in list(src.glob("*.egg-info")) + [src / "build"]:
            shutil.rmtree(litter, ignore_errors=True)
        wheels.mkdir(parents=True, exist_ok=True)  # an app with no dependency at all
        known = {p.name for p in wheels.iterdir()}
        app_wheels = [w for w in known if _is_app_wheel(w, src)] if project else [""]
        if len(app_wheels) != 1:
            raise ArtifactError(f"expected one wheel of the app itself, found {app_wheels}")
        floated = _unpinned(wheels, pins, needed, app_wheels[0])
        _floated(floated, allow_unpinned, say)
        if fresh:
            _keep_dependency_wheels(wheels, app_wheels[0], cached)
        files = sorted(p.relative_to(stage).as_posix() for p in stage.rglob("*") if p.is_file())
        checksums = {f: _sha256(stage / f) for f in files}
        manifest = {
            "release_id": rid,
            "content": key,
            "git_sha": rid.split("-", 1)[1],
            "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "python": python,
            "app_wheel": app_wheels[0],  # empty: a plain tree, imported from src/
            "requirements": installs,
            "requirements_source": f"src/{pins.source}",
            "extra_requirements": needed,
            "unpinned": floated,
            "deps_id": deps_id(python, installs, needed, checksums, app_wheels[0]),
            "archive": f"{rid}.tar.gz",
            "files": checksums,
        }
        (stage / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
        slot.mkdir(parents=True, exist_ok=True)
        partial = slot / (manifest["archive"] + ".partial")
        with tarfile.open(partial, "w:gz") as archive:
            archive.add(stage, arcname=rid)
        partial.rename(slot / manifest["archive"])
        # Written last: its presence is what marks the slot complete.
        (slot / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    how = ("; the app's wheel with this Python's build requirements" if met else
           "; the app's wheel in an isolated build environment" if project else "")
    say(f"artifact: built {rid} in {time.monotonic() - started:.1f}s "
        f"({len(known)} wheels{how})")
    return Artifact(rid, slot / manifest["archive"], manifest)


def _floated(problems: Sequence[str], allow_unpinned: bool, say) -> None:
    """Refuse a wheelhouse with packages the app did not pin, or warn under app_allow_unpinned.
    A cached build keeps its list, so reusing it under the other setting decides alike."""
    if not problems:
        return
    if not allow_unpinned:
        raise ArtifactError("the wheelhouse would hold packages the app does not pin: "
                            + "; ".join(problems) + " (app_allow_unpinned: true lets this "
                            "through with a warning)")
    for problem in problems:
        say(f"artifact: warning, not pinned (app_allow_unpinned): {problem}")


def _has_requirements(path: Path) -> bool:
    return any(line.split("#", 1)[0].strip() for line in path.read_text().splitlines())


def _is_app_wheel(wheel: str, src: Path) -> bool:
    """The app's wheel is the one whose distribution name matches the project's name."""
    name = _project_name(src)
    return wheel.split("-", 1)[0].lower() == name.replace("-", "_").lower()


def _declared_name(app_dir: Path) -> str | None:
    """The normalised [project] name of the app's pyproject.toml, if it has one."""
    pyproject = app_dir / "pyproject.toml"
    if pyproject.is_file():
        with contextlib.suppress(tomllib.TOMLDecodeError):
            name = tomllib.loads(pyproject.read_text()).get("project", {}).get("name")
            return _normalised(name) if isinstance(name, str) else None
    return None


def _project_name(src: Path) -> str:
    name = _declared_name(src)
    if name is None:
        raise ArtifactError(f"{src}: cannot tell the project's name (pyproject [project] name)")
    return name


CODE_ONLY_SUFFIX = ".code.tar.gz"


def _dependency_wheel(name: str, art: Artifact) -> bool:
    wheels = f"{art.release_id}/wheels/"
    return (name.startswith(wheels) and name.endswith(".whl")
            and name != wheels + art.app_wheel)


def code_only(art: Artifact) -> Path:
    """The release's archive without its dependency wheels, for the hosts that already have the
    venv of its deps_id (built from exactly those wheels): a code change then sends the app, not
    the wheelhouse. Cut from the archive once and kept beside it. Its manifest still lists every
    wheel; a host checks them whenever it has to build the venv (release-install.py.j2)."""
    target = art.path.with_name(art.release_id + CODE_ONLY_SUFFIX)
    if target.is_file():
        return target
    # A partial file of its own: two deploys may cut the same archive at once (one of them is
    # then refused by the lock); whichever renames last leaves the same bytes.
    handle, name = tempfile.mkstemp(prefix=target.name + ".", suffix=".partial", dir=target.parent)
    os.close(handle)
    partial = Path(name)
    partial.chmod(0o644)  # like the archive it is cut from
    try:
        with tarfile.open(art.path) as full, tarfile.open(partial, "w:gz") as cut:
            for member in full.getmembers():
                if not _dependency_wheel(member.name, art):
                    cut.addfile(member, full.extractfile(member) if member.isfile() else None)
        partial.replace(target)
    finally:
        partial.unlink(missing_ok=True)
    return target


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
