"""The page, the Vue bundle and the content-hashed static files."""

from __future__ import annotations

import json
import re
from collections.abc import Callable
from pathlib import Path

import pytest
from flask import Flask
from flask.testing import FlaskClient

from fleetapp import assets


def test_page_links_hashed_assets_from_the_manifest(client: FlaskClient) -> None:
    response = client.get("/")
    assert response.status_code == 200
    html = response.get_data(as_text=True)
    manifest = json.loads((assets.STATIC_DIR / "manifest.json").read_text())
    for logical in ("app.css", "app.js", "vendor/vue.global.prod.js"):
        url = f"/static/{manifest[logical]}"
        assert url in html
        served = client.get(url)
        assert served.status_code == 200
        assert served.data == (assets.SOURCE_DIR / logical).read_bytes()
        served.close()
    assert 'data-release="test-release"' in html
    # No inline script: the CSP forbids it.
    assert re.search(r"<script>(?!</script>)", html) is None
    assert "script-src 'self'" in response.headers["Content-Security-Policy"]


def test_vendored_vue_is_the_production_build() -> None:
    head = (assets.SOURCE_DIR / "vendor" / "vue.global.prod.js").read_text()[:200]
    assert re.search(r"vue v3\.\d+\.\d+", head)


def test_committed_static_files_are_up_to_date(tmp_path: Path) -> None:
    # Rebuilding must reproduce exactly what is committed; otherwise run `make assets`.
    manifest = assets.build_assets(assets.SOURCE_DIR, tmp_path)
    committed = json.loads((assets.STATIC_DIR / "manifest.json").read_text())
    assert manifest == committed
    for hashed in manifest.values():
        assert (assets.STATIC_DIR / hashed).read_bytes() == (tmp_path / hashed).read_bytes()
    built = {p.relative_to(assets.STATIC_DIR).as_posix() for p in assets.STATIC_DIR.rglob("*")
             if p.is_file()}
    assert built == set(manifest.values()) | {"manifest.json"}


def test_build_hashes_content_and_prunes_stale_files(tmp_path: Path) -> None:
    source, output = tmp_path / "src", tmp_path / "out"
    (source / "sub").mkdir(parents=True)
    (source / "a.js").write_text("one")
    (source / "sub" / "b.min.css").write_text("two")
    first = assets.build_assets(source, output)
    assert first["a.js"] == assets.hashed_name(Path("a.js"), b"one")
    assert re.fullmatch(r"sub/b\.min\.[0-9a-f]{12}\.css", first["sub/b.min.css"])
    (source / "a.js").write_text("changed")
    second = assets.build_assets(source, output)
    assert second["a.js"] != first["a.js"]
    assert not (output / first["a.js"]).exists()
    assert (output / second["a.js"]).read_text() == "changed"


def test_missing_manifest_names_the_fix(
    make_app: Callable[..., Flask], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    app = make_app()
    app.static_folder = str(tmp_path)
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="make -C app assets"):
        assets.asset_url("app.js")
    app.extensions[assets.MANIFEST_KEY] = {}
    with app.test_request_context("/"), pytest.raises(RuntimeError, match="not in the manifest"):
        assets.asset_url("app.js")


def test_assets_command_builds_the_manifest(
    app: Flask, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    source = tmp_path / "src"
    source.mkdir()
    (source / "app.js").write_text("console.log(1)")
    monkeypatch.setattr(
        "fleetapp.cli.build_assets", lambda: assets.build_assets(source, tmp_path / "out")
    )
    result = app.test_cli_runner().invoke(args=["assets"])
    assert result.exit_code == 0
    hashed = assets.hashed_name(Path("app.js"), b"console.log(1)")
    assert result.output == f"app.js -> {hashed}\n"
    assert json.loads((tmp_path / "out" / "manifest.json").read_text()) == {"app.js": hashed}


# Scripts drive the page by these ids (the kit's browser test among them); renaming one is a
# breaking change for them.
PAGE_IDS = ("auth-email", "auth-password", "login-button", "register-button", "signed-in",
            "logout-button", "search-input", "search-button", "papers-total", "papers", "error",
            "keyword-input", "follow-button")


def test_header_shows_the_release_id(client: FlaskClient) -> None:
    html = client.get("/").get_data(as_text=True)
    assert '<span id="release-id">test-release</span>' in html


def test_page_script_gives_every_control_a_stable_id() -> None:
    script = (assets.SOURCE_DIR / "app.js").read_text()
    for element_id in PAGE_IDS:
        assert re.search(rf'\bid: "{element_id}"|input\("{element_id}"', script), element_id
    assert '"data-paper-id": paper.id' in script
