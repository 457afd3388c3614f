"""A tiny app that honours the contract, written for real into a test's directory.

Its package has a static directory; `hashed=True` gives it the reference app's shape
(`<name>.<sha256-12>.<ext>` files and a manifest.json naming them), `hashed=False` an ordinary
`static/` directory of files named as the developer wrote them.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

STATIC_DIR = "tinyapp/static"
ASSETS = {"app.css": "body { color: #123; }\n", "img/logo.svg": "<svg/>\n"}


def hashed_name(name: str, content: str) -> str:
    """`app.css` -> `app.<sha256-12>.css`, the reference app's naming."""
    stem, _, ext = name.rpartition(".")
    return f"{stem}.{hashlib.sha256(content.encode()).hexdigest()[:12]}.{ext}"


def make(root: Path, hashed: bool = True, requirements: str = "# no dependencies\n") -> Path:
    """Write the app under `root/tinyapp`; return its directory."""
    app = root / "tinyapp"
    (app / "tinyapp").mkdir(parents=True)
    (app / "tinyapp" / "__init__.py").write_text("VERSION = 1\n")
    (app / "pyproject.toml").write_text(
        '[build-system]\nrequires = ["setuptools>=69"]\nbuild-backend = "setuptools.build_meta"\n'
        '[project]\nname = "tinyapp"\nversion = "0.1"\n'
        '[tool.setuptools]\npackages = ["tinyapp"]\n')
    (app / "requirements.txt").write_text(requirements)
    static = app / STATIC_DIR
    manifest = {}
    for name, content in ASSETS.items():
        published = hashed_name(name, content) if hashed else name
        (static / published).parent.mkdir(parents=True, exist_ok=True)
        (static / published).write_text(content)
        manifest[name] = published
    if hashed:
        (static / "manifest.json").write_text(json.dumps(manifest, indent=1) + "\n")
    return app
