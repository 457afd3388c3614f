"""The static files of a release, prepared on the control node for the load balancers.

Artifacts are built for real with pip from a tiny app (tests/unit/tiny_app.py) into a private
cache; the checks are the deploy's own pre-flight functions.
"""

from __future__ import annotations

import hashlib
import json
import shutil
import sys
from pathlib import Path

import local_nginx
import pytest
import tiny_app
from test_maintenance import _get

from fleet import artifact, static
from fleet.ops import deploy, releases

PYTHON = f"{sys.version_info.major}.{sys.version_info.minor}"


def quiet(_: str) -> None:
    pass


def tree(root: Path) -> dict[str, str]:
    """Every file under `root` with its content hash."""
    return {str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
            for p in sorted(root.rglob("*")) if p.is_file()}


@pytest.fixture()
def cache(tmp_path) -> Path:
    return tmp_path / "cache"


def test_a_reused_artifact_is_checked_against_this_deploys_static_dir(tmp_path, cache):
    app = tiny_app.make(tmp_path)
    first = artifact.build(app, PYTHON, cache, say=quiet)
    published = deploy._static_of(first, tiny_app.STATIC_DIR, ".plain")
    assert (published / "files" / "manifest.json").is_file()

    reused = artifact.build(app, PYTHON, cache, say=quiet)
    assert reused == first  # the cached artifact, not a new build
    before = tree(cache)
    with pytest.raises(deploy.DeployError) as refused:
        deploy._static_of(reused, "tinyapp/no-such-static", ".plain")
    message = str(refused.value)
    assert "app_static_dir" in message and "tinyapp/no-such-static" in message, message
    assert "nothing was changed" in message, message
    assert tree(cache) == before, "the refused check left files behind"


def test_a_reused_artifact_with_the_right_static_dir_reuses_its_copy(tmp_path, cache):
    app = tiny_app.make(tmp_path)
    built = artifact.build(app, PYTHON, cache, say=quiet)
    first = deploy._static_of(built, tiny_app.STATIC_DIR, ".plain")
    before = tree(cache)
    again = deploy._static_of(artifact.build(app, PYTHON, cache, say=quiet),
                              "/" + tiny_app.STATIC_DIR + "/", ".plain")
    assert again == first and tree(cache) == before


# --- which files are content-hashed, and where they are published --------------------------

REFERENCE_STATIC = Path(__file__).resolve().parents[2] / "app" / "fleetapp" / "static"


def test_the_reference_apps_files_are_published_where_they_always_were(tmp_path):
    """Every file hashed, so nothing moves: the same tree, and the list is its manifest."""
    listed = static.arrange(REFERENCE_STATIC, tmp_path / "files", ".plain")
    assert tree(tmp_path / "files") == tree(REFERENCE_STATIC)
    assert listed == json.loads((REFERENCE_STATIC / "manifest.json").read_text())


def test_an_ordinary_static_dir_is_published_plain(tmp_path):
    app = tiny_app.make(tmp_path, hashed=False)
    listed = static.arrange(app / tiny_app.STATIC_DIR, tmp_path / "files", ".plain")
    assert sorted(tree(tmp_path / "files")) == [".plain/app.css", ".plain/img/logo.svg"]
    assert listed == {".plain/app.css": ".plain/app.css",
                      ".plain/img/logo.svg": ".plain/img/logo.svg"}


def test_files_the_manifest_does_not_hash_are_plain(tmp_path):
    """A manifest entry names a hashed file only if it names a file under another name."""
    source = tiny_app.make(tmp_path) / tiny_app.STATIC_DIR
    (source / "robots.txt").write_text("User-agent: *\n")
    hashed_css = tiny_app.hashed_name("app.css", tiny_app.ASSETS["app.css"])
    manifest = json.loads((source / "manifest.json").read_text())
    manifest.update({"robots.txt": "robots.txt", "gone.js": "gone.123456789abc.js",
                     "escape": "../tinyapp/__init__.py", "icons": ["a.png"]})
    (source / "manifest.json").write_text(json.dumps(manifest))
    listed = static.arrange(source, tmp_path / "files", ".plain")
    published = set(tree(tmp_path / "files"))
    assert {hashed_css, "manifest.json", ".plain/robots.txt"} <= published
    assert listed[".plain/robots.txt"] == ".plain/robots.txt" and "robots.txt" not in listed
    assert "gone.js" not in listed and "escape" not in listed and "icons" not in listed


def test_a_web_app_manifest_is_not_taken_for_a_hash_manifest(tmp_path):
    source = tiny_app.make(tmp_path, hashed=False) / tiny_app.STATIC_DIR
    (source / "manifest.json").write_text(json.dumps({"name": "Tiny", "start_url": "/",
                                                      "icons": [{"src": "img/logo.svg"}]}))
    static.arrange(source, tmp_path / "files", ".plain")
    assert all(p.startswith(".plain/") for p in tree(tmp_path / "files"))


def test_a_plain_static_dir_passes_pre_flight(tmp_path, cache):
    app = tiny_app.make(tmp_path, hashed=False)
    published = deploy._static_of(artifact.build(app, PYTHON, cache, say=quiet),
                                  tiny_app.STATIC_DIR, ".plain")
    assert sorted(tree(published / "files")) == [".plain/app.css", ".plain/img/logo.svg"]
    assert json.loads((published / "list.json").read_text()) == {
        ".plain/app.css": ".plain/app.css", ".plain/img/logo.svg": ".plain/img/logo.svg"}


def test_pruning_keeps_the_plain_files_of_kept_releases(tmp_path):
    """static_prune_plan on what two real releases published: one plain, one hashed."""
    lists, published = {}, tmp_path / "root"
    for release, hashed in (("R1", False), ("R2", True)):
        app = tiny_app.make(tmp_path / release, hashed=hashed)
        lists[release] = static.arrange(app / tiny_app.STATIC_DIR, published, ".plain")
    files = list(tree(published))
    assert releases.static_prune_plan(files, lists, ["R2"]) == [
        ".plain/app.css", ".plain/img/logo.svg"]
    assert releases.static_prune_plan(files, lists, ["R1"]) == sorted(
        f for f in files if not f.startswith(".plain/") and f != "manifest.json")
    assert releases.static_prune_plan(files, lists, ["R1", "R2"]) == []


# --- served by the kit's own site config on a real nginx -----------------------------------


@pytest.fixture(scope="module")
def nginx(tmp_path_factory):
    """nginx with the kit's nginx.conf, upstream and site; the static root is `root`."""
    running = local_nginx.start(tmp_path_factory.mktemp("nginx"), local_nginx.free_port(),
                                {"nginx_static_plain_max_age": 120})
    yield {"port": running.port, "root": running.dir / "static"}
    running.stop()


def _publish(nginx, tmp_path: Path, hashed: bool) -> None:
    """What the nginx role's static task does: merge the arranged files into the root."""
    app = tiny_app.make(tmp_path, hashed=hashed)
    static.arrange(app / tiny_app.STATIC_DIR, tmp_path / "files", ".plain")
    shutil.copytree(tmp_path / "files", nginx["root"], dirs_exist_ok=True)


def test_hashed_files_are_immutable_and_plain_ones_short_lived(nginx, tmp_path):
    _publish(nginx, tmp_path / "hashed", hashed=True)
    _publish(nginx, tmp_path / "plain", hashed=False)
    hashed = tiny_app.hashed_name("app.css", tiny_app.ASSETS["app.css"])
    status, headers, body = _get(nginx, f"/static/{hashed}", "127.0.0.1")
    assert status == 200 and body == tiny_app.ASSETS["app.css"]
    assert headers["cache-control"] == "public, max-age=31536000, immutable"
    for path, name in (("/static/app.css", "app.css"), ("/static/img/logo.svg", "img/logo.svg")):
        status, headers, body = _get(nginx, path, "127.0.0.1")
        assert status == 200 and body == tiny_app.ASSETS[name], (path, status)
        assert headers["cache-control"] == "public, max-age=120", path
        assert headers["x-content-type-options"] == "nosniff", path


@pytest.mark.parametrize("path", ["/static/.plain/app.css", "/static/missing.css", "/static/",
                                  "/static/.plain/"])
def test_the_plain_subdir_is_not_addressable_and_missing_files_are_404(nginx, tmp_path, path):
    _publish(nginx, tmp_path, hashed=False)
    status, headers, _ = _get(nginx, path, "127.0.0.1")
    assert status == 404, (path, status)
    assert "immutable" not in headers.get("cache-control", ""), path
