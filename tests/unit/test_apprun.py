"""`fab app.run` / `fab seed`: the host chosen, the command built, the login proven."""

from __future__ import annotations

import json
import shlex
import subprocess
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from pathlib import Path

import pytest

from fleet.inventory import Inventory
from fleet.ops import apprun


def _inventory(apps: list[str], **hostvars) -> Inventory:
    hosts = {name: dict(hostvars) for name in [*apps, "db1"]}
    return Inventory(env="staging", path=Path("inventory/staging"),
                     groups={"app": apps, "db": ["db1"]}, hostvars=hosts)


def test_the_first_app_host_unless_one_is_named():
    inv = _inventory(["app1", "app2"])
    assert apprun.app_host(inv) == "app1"
    assert apprun.app_host(inv, "app2") == "app2"
    with pytest.raises(apprun.AppRunError, match="'db1' is not an app host of staging; app "
                                                 "hosts: app1, app2"):
        apprun.app_host(inv, "db1")
    with pytest.raises(apprun.AppRunError, match="no host in group app"):
        apprun.app_host(_inventory([]))


def test_an_empty_command_is_refused_before_any_host_is_reached():
    with pytest.raises(apprun.AppRunError, match="the command is empty"):
        apprun.run(_inventory(["app1"]), "   ")


def test_the_command_runs_as_the_app_user_through_the_run_wrapper():
    inv = _inventory(["app1"], app_user="paper", app_run_wrapper="/usr/local/bin/paper-run")
    command = apprun.wrapped(inv, "flask seed-demo --admin-email a@b.org",
                             {"SECRET": "it's $HOME; `x`"})
    words = shlex.split(command)
    assert words[:2] == ["env", "SECRET=it's $HOME; `x`"]
    assert words[2:7] == ["runuser", "-u", "paper", "--", "/usr/local/bin/paper-run"]
    assert words[7:] == ["sh", "-c", "flask seed-demo --admin-email a@b.org"]


def test_the_quoting_survives_a_real_shell(tmp_path):
    # The wrapper and user replaced by stand-ins; what reaches the command is what was given.
    inv = _inventory(["app1"], app_run_wrapper=str(tmp_path / "run"))
    (tmp_path / "run").write_text('#!/bin/sh\nexec "$@"\n')
    (tmp_path / "run").chmod(0o755)
    command = apprun.wrapped(inv, 'printf "%s|%s" "$SECRET" "two words"',
                             {"SECRET": "it's $HOME; `x`"})
    command = command.replace("runuser -u fleetapp -- ", "")
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, check=True)
    assert out.stdout == "it's $HOME; `x`|two words"


def test_a_short_password_is_refused(monkeypatch, tmp_path):
    monkeypatch.setattr(apprun, "LOGIN_DIR", tmp_path)
    with pytest.raises(apprun.AppRunError, match="at least 8 characters"):
        apprun.seed(_inventory(["app1"]), password="short")


class _Login(BaseHTTPRequestHandler):
    password = "right-password"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        ok = self.path == "/api/auth/login" and body["password"] == self.password
        self.send_response(200 if ok else 401)
        self.end_headers()
        self.wfile.write(b"{}")

    def log_message(self, *args):
        pass


@pytest.fixture()
def login_server():
    server = HTTPServer(("127.0.0.1", 0), _Login)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/"
    server.shutdown()
    server.server_close()


def test_check_login_passes_a_working_login_and_names_a_wrong_one(login_server):
    apprun.check_login(apprun.DemoLogin("a@example.org", "right-password", login_server))
    with pytest.raises(apprun.AppRunError, match="exists with another password"):
        apprun.check_login(apprun.DemoLogin("a@example.org", "wrong-password", login_server))


def test_check_login_says_when_the_site_is_unreachable():
    with pytest.raises(apprun.AppRunError, match="cannot reach http://127.0.0.1:9/"):
        apprun.check_login(apprun.DemoLogin("a@example.org", "pw-pw-pw-pw", "http://127.0.0.1:9/"),
                           timeout=2)


def test_no_login_is_remembered_until_one_is_written(monkeypatch, tmp_path):
    monkeypatch.setattr(apprun, "LOGIN_DIR", tmp_path)
    assert apprun.remembered_login("staging") is None
    (tmp_path / "staging.json").write_text(json.dumps(
        {"email": "a@example.org", "password": "p" * 12, "url": "https://x/"}))
    assert apprun.remembered_login("staging") == apprun.DemoLogin("a@example.org", "p" * 12,
                                                                  "https://x/")
