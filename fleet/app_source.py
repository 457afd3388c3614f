"""Where the app a deploy builds comes from: the inventory's `app_source`, the kit's own by default.

`app_source` is a directory on the control node (absolute, or relative to the environment's
inventory directory) or a git repository (a URL, `git@host:path`, or a local path ending in
`.git`) checked out at `app_source_ref`. Empty means the kit's reference app (`app/`).
`fab deploy --ref REF` builds REF of whichever source the inventory names: for a directory,
REF of the git repository that holds it.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

from fleet import ansible
from fleet.inventory import Inventory
from fleet.settings import setting

REFERENCE_APP = ansible.ROOT / "app"
GIT_URL = re.compile(r"^(?:[a-z][a-z0-9+.-]*://|[\w.-]+@[\w.-]+:)|\.git/?$")


class SourceError(RuntimeError):
    """The app source cannot be found or fetched; the message names the variable to fix."""


@dataclass(frozen=True)
class Source:
    """What a deploy builds: a directory here, or a git repository and a ref."""

    location: str  # as the inventory says it ("" for the reference app)
    path: Path | None  # the directory, for a local source
    repo: str | None  # the repository, for a git source
    ref: str  # "" for the working tree (a directory) or the default branch (a repository)

    def describe(self) -> str:
        if self.repo:
            return f"{self.repo} at {self.ref or 'its default branch'} (app_source)"
        what = "the kit's reference app" if not self.location else "app_source"
        return f"{self.path}" + (f" at git ref {self.ref}" if self.ref else "") + f" ({what})"


def of(inv: Inventory, ref: str | None = None) -> Source:
    """The source the inventory names; `ref` (from --ref) overrides app_source_ref."""
    location = setting(inv, "app_source").strip()
    chosen = ref if ref is not None else setting(inv, "app_source_ref").strip()
    if location and GIT_URL.search(location):
        return Source(location, None, location, chosen)
    if not location:
        return Source("", REFERENCE_APP, None, chosen)
    path = Path(location).expanduser()
    if not path.is_absolute():
        path = inv.path / path
    path = path.resolve()
    if not path.is_dir():
        raise SourceError(f"app_source {location!r} is not a directory (looked in {path}): set "
                          f"app_source to the app's directory, absolute or relative to {inv.path}, "
                          "or to a git repository URL")
    return Source(location, path, None, chosen)


def _git(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(["git", *args], cwd=cwd, capture_output=True, text=True)


def fetch(source: Source, dest: Path) -> Path:
    """The app directory to build: the directory itself, or `dest` holding the checkout."""
    if source.repo:
        return _clone(source, dest)
    assert source.path is not None
    if not source.ref:
        return source.path
    return _export(source.path, source.ref, dest)


def _clone(source: Source, dest: Path) -> Path:
    target = dest / "app"
    cloned = _git("clone", "--quiet", "--no-checkout", source.repo, str(target))
    if cloned.returncode != 0:
        raise SourceError(f"app_source {source.repo!r} could not be cloned: "
                          f"{cloned.stderr.strip()[-500:]}")
    ref = source.ref or "HEAD"
    checked = _git("-c", "advice.detachedHead=false", "checkout", "--quiet", ref, cwd=target)
    if checked.returncode != 0:
        raise SourceError(f"app_source_ref {ref!r} is not a ref of {source.repo}: "
                          f"{checked.stderr.strip()[-300:]}")
    return target


def _export(app_dir: Path, ref: str, dest: Path) -> Path:
    """`ref` of the git repository holding `app_dir`, the app's part of it exported to `dest`."""
    top = _git("rev-parse", "--show-toplevel", cwd=app_dir)
    if top.returncode != 0:
        raise SourceError(f"{app_dir} is not in a git repository, so it has no ref {ref!r}")
    root = Path(top.stdout.strip()).resolve()
    prefix = app_dir.resolve().relative_to(root).as_posix()
    archive = subprocess.run(["git", "-C", str(root), "archive", "--format=tar", ref, "--",
                              prefix], capture_output=True)
    if archive.returncode != 0:
        raise SourceError(f"git ref {ref!r}: {archive.stderr.decode().strip()}")
    dest.mkdir(parents=True, exist_ok=True)
    subprocess.run(["tar", "-x", "-C", str(dest)], input=archive.stdout, check=True)
    return dest if prefix == "." else dest / prefix
