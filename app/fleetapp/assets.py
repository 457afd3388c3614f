"""Content-hashed static files and the manifest that maps logical names to them.

Sources live in fleetapp/assets/; `flask assets` (or `make assets`) writes <name>.<hash>.<ext>
copies plus manifest.json into fleetapp/static/, which is what gets published to nginx with
far-future caching. The built files are committed, and a test fails if they are out of date.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

from flask import Flask, current_app, url_for

PACKAGE_DIR = Path(__file__).resolve().parent
SOURCE_DIR = PACKAGE_DIR / "assets"
STATIC_DIR = PACKAGE_DIR / "static"
MANIFEST_NAME = "manifest.json"
MANIFEST_KEY = "fleetapp.assets"
HASH_LENGTH = 12


def hashed_name(relative: Path, content: bytes) -> str:
    digest = hashlib.sha256(content).hexdigest()[:HASH_LENGTH]
    # vendor/vue.global.prod.js -> vendor/vue.global.prod.<hash>.js
    return relative.with_name(f"{relative.stem}.{digest}{relative.suffix}").as_posix()


def build_assets(source_dir: Path = SOURCE_DIR, output_dir: Path = STATIC_DIR) -> dict[str, str]:
    """Write hashed copies and the manifest; remove outputs no longer in the manifest."""
    manifest: dict[str, str] = {}
    output_dir.mkdir(parents=True, exist_ok=True)
    for source in sorted(path for path in source_dir.rglob("*") if path.is_file()):
        relative = source.relative_to(source_dir)
        content = source.read_bytes()
        target_name = hashed_name(relative, content)
        target = output_dir / target_name
        target.parent.mkdir(parents=True, exist_ok=True)
        if not target.exists() or target.read_bytes() != content:
            shutil.copyfile(source, target)
        manifest[relative.as_posix()] = target_name
    keep = set(manifest.values()) | {MANIFEST_NAME}
    for stale in sorted(path for path in output_dir.rglob("*") if path.is_file()):
        if stale.relative_to(output_dir).as_posix() not in keep:
            stale.unlink()
    (output_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2, sort_keys=True) + "\n")
    return manifest


def load_manifest(static_dir: Path) -> dict[str, str]:
    path = static_dir / MANIFEST_NAME
    try:
        return json.loads(path.read_text())
    except FileNotFoundError:
        raise RuntimeError(
            f"asset manifest {path} is missing: run `make -C app assets` (flask assets)"
        ) from None


def asset_url(name: str) -> str:
    """URL of the hashed file for a logical asset name, e.g. asset_url("app.js")."""
    manifest = current_app.extensions.get(MANIFEST_KEY)
    if manifest is None:
        # Read once per process: the manifest belongs to the release and never changes under it.
        manifest = load_manifest(Path(current_app.static_folder or STATIC_DIR))
        current_app.extensions[MANIFEST_KEY] = manifest
    try:
        return url_for("static", filename=manifest[name])
    except KeyError:
        raise RuntimeError(f"asset {name!r} is not in the manifest; rebuild the assets") from None


def init_assets(app: Flask) -> None:
    app.add_template_global(asset_url)
