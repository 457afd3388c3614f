"""Maintenance mode on a real nginx: the kit's own site config, rendered and served locally.

nginx runs from a private prefix on loopback ports in front of a stub app; the maintenance
switch is the flag file the role and `fab maintenance.on` create. Two source addresses tell the
allow-list apart: 127.0.0.1 is outside it, 127.0.0.2 (also loopback) inside.
"""

from __future__ import annotations

import http.client
import http.server
import json
import shutil
import ssl
import sys
import threading
from pathlib import Path

import local_nginx
import pytest
import yaml
from test_templates import render

from fleet import inventory
from fleet.ops import maintenance

ALLOWED = "127.0.0.2"
OUTSIDE = "127.0.0.1"


class _App(http.server.BaseHTTPRequestHandler):
    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        body = b'{"from": "app"}'
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture(scope="module")
def site(tmp_path_factory):
    """nginx with the kit's nginx.conf, upstream and site, in front of a stub app."""
    app = http.server.ThreadingHTTPServer(("127.0.0.1", 0), _App)
    threading.Thread(target=app.serve_forever, daemon=True).start()
    running = local_nginx.start(
        tmp_path_factory.mktemp("nginx"), app.server_address[1],
        {"nginx_maintenance_allow": [f"{ALLOWED}/32"],
         "nginx_maintenance_message": "Back <soon> & \"safe\""},
        pages={page: f"nginx/{page}.j2" for page in maintenance.PAGES})  # what the role installs
    yield {"port": running.port, "flag": Path(running.ctx["nginx_maintenance_flag"]),
           "dir": running.dir / "maintenance", "ctx": running.ctx}
    running.stop()
    app.shutdown()


def _get(site, path: str, source: str) -> tuple[int, dict[str, str], str]:
    context = ssl.create_default_context()
    context.check_hostname, context.verify_mode = False, ssl.CERT_NONE
    conn = http.client.HTTPSConnection("127.0.0.1", site["port"], context=context, timeout=5,
                                       source_address=(source, 0))
    try:
        conn.request("GET", path)
        response = conn.getresponse()
        headers = {k.lower(): v for k, v in response.getheaders()}
        return response.status, headers, response.read().decode()
    finally:
        conn.close()


@pytest.fixture()
def flag(site):
    site["flag"].write_text("on\n")
    yield site["flag"]
    site["flag"].unlink(missing_ok=True)
    shutil.rmtree(site["dir"] / "message", ignore_errors=True)


def test_off_everyone_reaches_the_app(site):
    assert site["flag"].exists() is False
    for source in (OUTSIDE, ALLOWED):
        status, _, body = _get(site, "/", source)
        assert (status, json.loads(body)) == (200, {"from": "app"})


def test_on_outside_the_allow_list_gets_503_with_retry_after(site, flag):
    status, headers, body = _get(site, "/papers", OUTSIDE)
    assert status == 503
    assert headers["retry-after"] == "120"
    assert headers["content-type"].startswith("text/html")
    assert "cache-control" in headers and headers["cache-control"] == "no-store"
    # The inventory's message, escaped: no markup of its own reaches the page.
    assert "Back &lt;soon&gt; &amp; &#34;safe&#34;" in body
    assert "<soon>" not in body


def test_on_api_paths_get_json(site, flag):
    for path in ("/api/papers", "/api"):
        status, headers, body = _get(site, path, OUTSIDE)
        assert status == 503
        assert headers["content-type"] == "application/json"
        assert headers["retry-after"] == "120"
        assert json.loads(body) == {"error": "maintenance", "retry_after": 120,
                                    "message": 'Back <soon> & "safe"'}
    # Only the /api prefix: /apiary is a page like any other.
    assert _get(site, "/apiary", OUTSIDE)[1]["content-type"].startswith("text/html")


def test_on_the_allow_list_still_reaches_the_app(site, flag):
    status, _, body = _get(site, "/api/papers", ALLOWED)
    assert (status, json.loads(body)) == (200, {"from": "app"})


def test_a_message_set_at_run_time_wins_and_is_escaped(site, flag):
    # What playbooks/maintenance.yml renders into message/: the role's pages, another message.
    (site["dir"] / "message").mkdir()
    for page in maintenance.PAGES:
        context = {**site["ctx"], "nginx_maintenance_message": "Upgrade <b>db</b> until 18:00"}
        (site["dir"] / "message" / page).write_text(render(f"nginx/{page}.j2", context))
    status, _, body = _get(site, "/", OUTSIDE)
    assert status == 503
    assert "Upgrade &lt;b&gt;db&lt;/b&gt; until 18:00" in body and "<b>" not in body
    status, _, body = _get(site, "/api/x", OUTSIDE)
    assert json.loads(body)["message"] == "Upgrade <b>db</b> until 18:00"


def test_static_assets_are_served_during_maintenance(site, flag):
    (Path(site["ctx"]["nginx_static_root"]) / "app.css").write_text("body{}")
    status, _, body = _get(site, "/static/app.css", OUTSIDE)
    assert (status, body) == (200, "body{}")


@pytest.mark.parametrize("message", ["", "   ", "x" * 501, "two\nlines"])
def test_bad_messages_are_refused(message):
    with pytest.raises(maintenance.MaintenanceError, match="--message"):
        maintenance.check_message(message)


def _local_balancer(tmp_path: Path, maintenance_dir: Path, flag_path: Path):
    """An inventory whose one load balancer is this machine (a local connection, no sudo)."""
    local = {"ansible_connection": "local", "ansible_become": False,
             "ansible_python_interpreter": sys.executable}
    (tmp_path / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "children": {"loadbalancers": {"hosts": {"localhost": local}}},
        "vars": {"nginx_maintenance_dir": str(maintenance_dir),
                 "nginx_maintenance_flag": str(flag_path)}}}))
    return inventory.load(str(tmp_path))


def test_the_play_switches_the_page_on_with_a_message_and_off(site, tmp_path):
    """playbooks/maintenance.yml itself, run by fab's code, in front of the real nginx."""
    inv = _local_balancer(tmp_path, site["dir"], site["flag"])
    said: list[str] = []
    try:
        maintenance.switch_on(inv, "Upgrade <b>db</b> until 18:00", say=said.append)
        assert said == ["maintenance: localhost: maintenance on"]
        assert json.loads(site["flag"].read_text())["message"] == "Upgrade <b>db</b> until 18:00"
        status, _, body = _get(site, "/", OUTSIDE)
        assert status == 503
        assert "Upgrade &lt;b&gt;db&lt;/b&gt; until 18:00" in body and "<b>" not in body
        maintenance.switch_off(inv, say=said.append)
        assert not site["flag"].exists() and not (site["dir"] / "message").exists()
        assert _get(site, "/", OUTSIDE)[0] == 200
    finally:
        site["flag"].unlink(missing_ok=True)
        shutil.rmtree(site["dir"] / "message", ignore_errors=True)


def test_a_balancer_never_provisioned_is_refused_and_left_alone(tmp_path):
    missing = tmp_path / "never-provisioned"
    inv = _local_balancer(tmp_path, missing, missing / "maintenance.on")
    with pytest.raises(maintenance.MaintenanceError,
                       match=f"localhost: no {missing} on localhost: provision the load"):
        maintenance.switch_on(inv, say=lambda _line: None)
    assert not missing.exists()
