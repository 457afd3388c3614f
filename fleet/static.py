"""A release's static files, sorted on the control node for the load balancers.

Any directory the app names (`app_static_dir`) is published. Its files are of two kinds, told
apart by the directory's own `manifest.json` (logical name -> published name, the reference
app's format, docs/app-contract.md section 2):

- content-hashed: a manifest value naming a file of the directory under another name than its
  logical one. Its name changes whenever its content does, so it is published at the top of the
  static root and nginx serves it with the long, `immutable` Cache-Control.
- plain: every other file (an app without a manifest has only these). Its name stays when its
  content changes, so it is published under `PLAIN/` (nginx_static_plain_subdir) and served
  with a short max-age; nginx looks there for any name the top level does not have, so the URL
  is the same (`/static/app.css`).

The manifest itself stays at the top, as it always was, when it names hashed files. Each release
also gets a list (name -> published path) that the prune (fleet/ops/releases.py) keeps by.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

MANIFEST = "manifest.json"


def _files(directory: Path) -> list[str]:
    """Every file under `directory`, as a relative POSIX path, sorted."""
    return sorted(p.relative_to(directory).as_posix() for p in directory.rglob("*") if p.is_file())


def hashed_names(directory: Path) -> dict[str, str]:
    """The manifest's entries whose published name is a file of `directory` other than its key.

    No manifest, one that is not a JSON object (a web app manifest, say) or entries that name
    nothing give no hashed file: those files are served as plain ones, which is always safe.
    """
    try:
        manifest = json.loads((directory / MANIFEST).read_text())
    except (OSError, ValueError):
        return {}
    if not isinstance(manifest, dict):
        return {}
    return {key: value for key, value in manifest.items()
            if isinstance(value, str) and value not in (key, MANIFEST) and _inside(value)
            and (directory / value).is_file()}


def _inside(rel: str) -> bool:
    """A relative path that stays inside its directory."""
    parts = Path(rel).parts
    return bool(parts) and not Path(rel).is_absolute() and ".." not in parts


def arrange(source: Path, dest: Path, plain: str) -> dict[str, str]:
    """Copy `source` into `dest` as it is published; return the release's list.

    Hashed files (and their manifest) keep their place; every other file moves under `plain/`.
    The list maps the manifest's logical names to hashed files, and each plain file's published
    path to itself.
    """
    hashed = hashed_names(source)
    at_top = set(hashed.values()) | ({MANIFEST} if hashed else set())
    listed = dict(hashed)
    for rel in _files(source):
        published = rel if rel in at_top else f"{plain}/{rel}"
        (dest / published).parent.mkdir(parents=True, exist_ok=True)
        shutil.copy2(source / rel, dest / published)
        if rel not in at_top:
            listed[published] = published
    return listed
