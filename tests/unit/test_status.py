"""fleet.ops.status: reading a host's state and a load balancer's view of the app hosts.

Proven here: `parse_host()` reads the live release, services, supervisord programs and the
readiness probe from the lines `host_command()` prints; `parse_lb()` calls an app host up,
drained or failing from `flaskfleet-upstream list` lines and the probe lines; `table()` shows
reachable hosts and an UNREACHABLE row. The real `host_command()` is run through the local
runner on a directory with a `current` link (no services, so no systemctl), with and without a
readiness URL served by a local HTTP server (200, 503 and a refused connection), and
`parse_host()` reads what it really prints.
"""

from __future__ import annotations

import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from fleet.ops import status
from fleet.ops.status import HostStatus, parse_host, parse_lb
from fleet.remote import LocalRunner

RELEASE = "20260101T000000Z-abc1234"


def rows(text: str) -> list[list[str]]:
    return [re.split(r" {2,}", line.strip()) for line in text.splitlines()[2:]]


# --- parse_host --------------------------------------------------------------------------


def test_parse_host_reads_every_kind_of_line():
    output = (f"live=/srv/fleetapp/releases/{RELEASE}\n"
              "svc:nginx=active\n"
              "svc:supervisor=failed\n"
              "svc:mariadb=\n"
              "prog:fleetapp-web=RUNNING\n"
              "prog:fleetapp-celery:fleetapp-worker=FATAL\n"
              "ready=200\n")
    s = HostStatus("app1", ["app"])
    parse_host(s, output)
    assert s.live == RELEASE
    assert s.services == {"nginx": "active", "supervisor": "failed", "mariadb": "unknown"}
    assert s.programs == {"fleetapp-web": "RUNNING", "fleetapp-celery:fleetapp-worker": "FATAL"}
    assert s.ready == "ready"
    assert s.reachable


@pytest.mark.parametrize("code, shown", [("503", "not ready (503)"),
                                          ("down", "not ready (down)")])
def test_parse_host_not_ready(code, shown):
    s = HostStatus("app1", ["app"])
    parse_host(s, f"live=\nready={code}\n")
    assert s.ready == shown
    assert s.live is None


def test_parse_host_without_a_current_link_or_probe():
    s = HostStatus("db1", ["db"])
    parse_host(s, "live=\nsvc:mariadb=active\n")
    assert s.live is None and s.ready == "" and s.programs == {}


# --- parse_lb ----------------------------------------------------------------------------


def test_parse_lb_up_drained_failing():
    output = ("10.0.0.3 8000 up\n"
              "10.0.0.4 8000 down\n"
              "10.0.0.5 8001 up\n"
              "10.0.0.6 8000 up\n"
              "probe:10.0.0.3=200\n"
              "probe:10.0.0.4=down\n"
              "probe:10.0.0.5=503\n"
              "probe:10.0.0.6=down\n")
    assert parse_lb(output) == {"10.0.0.3": "up", "10.0.0.4": "drained",
                                "10.0.0.5": "failing (503)", "10.0.0.6": "failing (down)"}


def test_parse_lb_a_host_that_answers_without_the_health_path_is_still_up():
    # An app with no /healthz answers 404 there, and nginx still sends it every request.
    assert parse_lb("10.0.0.3 8000 up\nprobe:10.0.0.3=404\n", "/healthz") == {
        "10.0.0.3": "up (404 on /healthz)"}


def test_parse_lb_drained_server_answering_is_still_drained():
    assert parse_lb("10.0.0.4 8000 down\nprobe:10.0.0.4=200\n") == {"10.0.0.4": "drained"}


def test_parse_lb_listed_but_not_probed_is_failing():
    assert parse_lb("10.0.0.3 8000 up\n") == {"10.0.0.3": "failing (no probe)"}


def test_parse_lb_probe_of_an_unlisted_server_is_ignored():
    assert parse_lb("10.0.0.3 8000 up\nprobe:10.0.0.3=200\nprobe:10.0.0.9=200\n") == {
        "10.0.0.3": "up"}


def test_parse_lb_when_the_control_script_is_missing():
    output = ("sh: 1: /usr/local/sbin/flaskfleet-upstream: not found\n"
              "probe:10.0.0.3=200\n")
    assert parse_lb(output) == {}


# --- table -------------------------------------------------------------------------------


def test_table_with_an_unreachable_host():
    app = HostStatus("app1", ["app"], live=RELEASE,
                     programs={"fleetapp:fleetapp-web": "RUNNING",
                               "fleetapp-worker": "STOPPED"},
                     services={"supervisor": "active"}, ready="ready",
                     balancing={"lb2": "drained", "lb1": "up"})
    db = HostStatus("db1", ["db", "redis"], reachable=False)
    lb = HostStatus("lb1", ["loadbalancers"], services={"nginx": "active"})
    text = status.table([app, db, lb])
    assert text.splitlines()[0].split("  ")[0] == "host"
    assert rows(text) == [
        ["app1", "app", RELEASE, "web:RUNNING worker:STOPPED", "supervisor:active", "ready",
         "lb1:up lb2:drained"],
        ["db1", "db,redis", "?", "UNREACHABLE", "-", "-", "-"],
        ["lb1", "loadbalancers", "-", "-", "nginx:active", "-", "-"],
    ]


def test_table_names_a_served_release_that_is_not_the_live_one():
    other = "20260202T000000Z-def5678"
    app = HostStatus("app1", ["app"], live=RELEASE, ready="ready", serves=other)
    same = HostStatus("app2", ["app"], live=RELEASE, ready="ready", serves=RELEASE)
    assert [r[5] for r in rows(status.table([app, same]))] == [f"ready, serves {other}",
                                                              "ready"]


def test_table_shortens_programs_of_another_app_name():
    s = HostStatus("w1", ["workers"], programs={"shop-worker": "RUNNING"})
    assert rows(status.table([s], app_name="shop"))[0][3] == "worker:RUNNING"


# --- the real host command ---------------------------------------------------------------


class _Ready(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        body = b""
        if self.path == "/version":
            code, body = 200, b'{"release": "20260303T000000Z-served1", "host": "app1"}'
        else:
            code = 200 if self.path == "/readyz" else 503
        self.send_response(code)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, *args):
        pass


@pytest.fixture
def ready_server():
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Ready)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_address[1]}"
    server.shutdown()
    server.server_close()


@pytest.fixture
def root(tmp_path):
    root = tmp_path / "srv dir" / "fleetapp"
    (root / "releases" / RELEASE).mkdir(parents=True)
    (root / "current").symlink_to(str(root / "releases" / RELEASE))
    return root


def run_host(services, root, ready_url, version_url=None):
    result = LocalRunner().run(status.host_command(services, str(root), ready_url, version_url),
                               timeout=30)
    assert result.ok, result.stderr
    state = HostStatus("app1", ["app"])
    parse_host(state, result.stdout)
    return result.stdout, state


def test_real_host_command_reads_the_live_release(root):
    stdout, s = run_host([], root, None)
    assert stdout == f"live={root}/releases/{RELEASE}\n"
    assert s.live == RELEASE and s.ready == "" and s.services == {}


def test_real_host_command_without_a_current_link(tmp_path):
    _, s = run_host([], tmp_path / "nothing here", None)
    assert s.live is None


def test_real_host_command_probes_readiness(root, ready_server):
    _, s = run_host([], root, f"{ready_server}/readyz")
    assert (s.live, s.ready) == (RELEASE, "ready")


def test_real_host_command_reports_a_non_200_answer(root, ready_server):
    _, s = run_host([], root, f"{ready_server}/not-ready")
    assert s.ready == "not ready (503)"


def test_real_host_command_reports_a_refused_connection(root, ready_server):
    # The server is bound to 127.0.0.1 only, so 127.0.0.2 refuses at once.
    port = ready_server.rsplit(":", 1)[1]
    _, s = run_host([], root, f"http://127.0.0.2:{port}/readyz")
    assert s.ready == "not ready (down)"


def test_real_host_command_reads_the_release_the_version_path_names(root, ready_server):
    _, s = run_host([], root, f"{ready_server}/readyz", f"{ready_server}/version")
    assert (s.live, s.ready, s.serves) == (RELEASE, "ready", "20260303T000000Z-served1")


def test_real_host_command_with_a_version_path_that_is_not_json(root, ready_server):
    _, s = run_host([], root, f"{ready_server}/readyz", f"{ready_server}/readyz")
    assert s.serves is None
