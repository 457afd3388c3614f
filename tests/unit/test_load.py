"""fleet.proof.load against a real HTTP server on 127.0.0.1.

Bounds are asserted on counts, not timing.
"""

import ast
import asyncio
import datetime
import json
import socket
import ssl
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fleet.proof.load import (
    BackgroundLoad,
    LoadReport,
    Request,
    TargetRefused,
    check_target,
    default_mix,
    run_load,
)

API_PY = Path(__file__).resolve().parents[2] / "app" / "fleetapp" / "blueprints" / "api.py"
PAPERS = [(Request("GET", "/api/papers"), 1)]


class StubApp(BaseHTTPRequestHandler):
    """Answers like the reference app where the load needs it, plus a few misbehaving paths."""

    protocol_version = "HTTP/1.1"  # keep-alive, as nginx offers it

    def log_message(self, *args):
        pass

    def _reply(self, status, body=None):
        data = json.dumps(body if body is not None else {"status": status}).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def _count(self):
        state = self.server.state
        with state["lock"]:
            state["paths"][self.path] = n = state["paths"].get(self.path, 0) + 1
            state["connections"].add(self.client_address)
        return n

    def do_GET(self):
        n = self._count()
        if self.path == "/version":
            self._reply(200, {"release": "r1", "host": f"app{n % 2 + 1}"})
        elif self.path in ("/api/papers", "/healthz"):
            self._reply(200, {"items": []})
        elif self.path == "/flaky":
            self._reply(500 if n % 2 == 0 else 200)
        elif self.path == "/limited":
            self._reply(429)
        elif self.path == "/slow":
            time.sleep(1.0)
            self._reply(200)
        elif self.path == "/drops-idle":
            # Promises keep-alive, then hangs up: what nginx does to idle connections on reload.
            self._reply(200)
            self.close_connection = True
        else:
            self._reply(404)

    def do_POST(self):
        self._count()
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        is_json = self.headers.get("Content-Type") == "application/json"
        if self.path == "/api/papers/query" and is_json and json.loads(body) == {
            "page": 1,
            "per_page": 10,
        }:
            self._reply(200, {"items": []})
        else:
            self._reply(422)


@pytest.fixture
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), StubApp)
    httpd.state = {"lock": threading.Lock(), "paths": {}, "connections": set()}
    # A short poll interval keeps shutdown (and so each test's teardown) quick.
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


@pytest.fixture
def tls_server(server, tmp_path):
    """The same stub behind TLS with a self-signed certificate, like the sandbox's nginx."""
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "fleet-sandbox")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - datetime.timedelta(days=1))
        .not_valid_after(now + datetime.timedelta(days=1))
        .sign(key, hashes.SHA256())
    )
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(
        key.private_bytes(
            serialization.Encoding.PEM,
            serialization.PrivateFormat.PKCS8,
            serialization.NoEncryption(),
        )
    )
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    server.socket = context.wrap_socket(server.socket, server_side=True)
    return server


def url(httpd, scheme="http"):
    return f"{scheme}://127.0.0.1:{httpd.server_address[1]}"


def received(httpd):
    return sum(httpd.state["paths"].values())


def load(base_url, **options):
    return asyncio.run(run_load(base_url, **options))


def test_counts_add_up_and_the_rate_bounds_the_count(server):
    progress = []
    report = load(url(server), rate=50, seconds=1.2, mix=PAPERS, on_progress=progress.append)
    assert 0 < report.sent <= 61
    assert report.sent == received(server) == report.statuses[200]
    assert report.ok and report.failed == 0 and report.failure_rate == 0
    assert sum(sent for _, sent, _ in report.timeline) == report.sent
    assert all(abs(second - time.time()) < 60 for second, _, _ in report.timeline)
    assert 0 < report.p50_ms <= report.p95_ms <= report.p99_ms <= report.max_ms
    # Kept-alive connections are reused rather than opened per request.
    assert len(server.state["connections"]) < report.sent
    assert progress and all(isinstance(snapshot, LoadReport) for snapshot in progress)


def test_max_requests_ends_the_run_early(server):
    report = load(url(server), rate=200, seconds=5, max_requests=20, mix=PAPERS)
    assert report.sent == received(server) == 20
    assert report.elapsed < 5


def test_server_errors_and_429_count_as_failed(server):
    mix = [
        (Request("GET", "/flaky"), 1),
        (Request("GET", "/limited"), 1),
        (Request("GET", "/api/papers"), 2),
    ]
    report = load(url(server), rate=200, seconds=5, max_requests=40, mix=mix)
    assert report.statuses == {200: 25, 429: 10, 500: 5}
    assert report.failed == 15 and not report.ok and report.failure_rate == 15 / 40
    assert report.failures_by_request == {"GET /flaky": 5, "GET /limited": 10}
    assert sum(failed for _, _, failed in report.timeline) == 15
    assert "15 failed" in report.summary()
    assert json.loads(json.dumps(report.to_dict()))["failed"] == 15


def test_slow_answers_count_as_timeouts(server):
    mix = [(Request("GET", "/slow"), 1)]
    report = load(url(server), rate=20, seconds=5, max_requests=3, mix=mix, timeout=0.3)
    assert report.sent == 3 and report.timeouts == 3 and report.failed == 3
    assert report.statuses == {} and report.p50_ms is None


def test_a_closed_port_counts_as_connection_errors():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port = sock.getsockname()[1]
    report = load(f"http://127.0.0.1:{port}", rate=100, seconds=5, max_requests=5, mix=PAPERS)
    assert report.connection_errors == report.failed == report.sent == 5
    assert report.errors == {"ConnectionRefusedError": 5}


def test_connections_dropped_while_idle_are_retried_once_not_failed(server):
    mix = [(Request("GET", "/drops-idle"), 1)]
    report = load(url(server), rate=20, seconds=5, max_requests=5, mix=mix)
    assert report.ok and report.statuses == {200: 5}
    assert report.stale_retries >= 1


def test_https_with_a_self_signed_certificate(tls_server):
    base = url(tls_server, "https")
    report = load(base, rate=100, seconds=5, max_requests=5, mix=PAPERS)
    assert report.ok and report.statuses == {200: 5}
    # With verification on, the self-signed certificate is a connection error, not a pass.
    checked = load(base, rate=100, seconds=5, max_requests=2, mix=PAPERS, verify_tls=True)
    assert checked.errors == {"SSLCertVerificationError": 2} and checked.connection_errors == 2


def test_arrivals_beyond_max_in_flight_are_dropped_not_delayed(server):
    mix = [(Request("GET", "/slow"), 1)]
    report = load(
        url(server), rate=50, seconds=5, max_requests=10, mix=mix, timeout=1.5, max_in_flight=2
    )
    assert report.sent == 2 and report.dropped == 8
    assert report.failed == 0 and not report.ok


def test_backends_and_releases_come_from_version_answers(server):
    report = load(url(server), rate=200, seconds=5, max_requests=20)
    # The default mix is 2 of every 10 requests to /version; its POST body is accepted.
    assert report.statuses == {200: 20}
    assert report.backends == {"app1": 2, "app2": 2}
    assert report.releases == {"r1": 4}
    assert server.state["paths"]["/api/papers/query"] == 2


def test_the_default_post_body_passes_the_apps_validation():
    tree = ast.parse(API_PY.read_text())
    constants = {
        node.targets[0].id: ast.literal_eval(node.value)
        for node in tree.body
        if isinstance(node, ast.Assign) and node.targets[0].id in ("QUERY_FIELDS", "MAX_PER_PAGE")
    }
    posts = [request for request, _ in default_mix() if request.method == "POST"]
    assert posts
    for request in posts:
        assert request.path == "/api/papers/query"
        assert set(request.body) <= set(constants["QUERY_FIELDS"])
        assert 1 <= request.body["per_page"] <= constants["MAX_PER_PAGE"]


@pytest.mark.parametrize("target", ["http://8.8.8.8/", "https://example.com/", "http://10.1.2.3"])
def test_targets_outside_loopback_are_refused_before_sending(target):
    host = target.split("/")[2]
    with pytest.raises(TargetRefused, match=host):
        check_target(target)
    with pytest.raises(TargetRefused):
        load(target, rate=10, seconds=1)
    with pytest.raises(TargetRefused):
        BackgroundLoad(target, rate=10, seconds=1).start()


def test_loopback_and_allowed_hosts_are_accepted():
    for target in ("http://127.0.0.1:8080", "https://127.9.8.7/", "http://[::1]:80", "http://localhost"):
        check_target(target)
    check_target("https://172.30.0.5:443/", allowed_hosts=["172.30.0.5"])
    check_target("http://ff-lb1:80/", allowed_hosts=["FF-LB1"])
    with pytest.raises(TargetRefused, match="172.30.0.6"):
        check_target("https://172.30.0.6/", allowed_hosts=["172.30.0.5"])
    with pytest.raises(TargetRefused, match="only http"):
        check_target("ftp://127.0.0.1/")


def test_invalid_arguments_are_refused():
    with pytest.raises(ValueError, match="positive integer weight"):
        load("http://127.0.0.1:9", rate=10, seconds=1, mix=[(Request("GET", "/healthz"), 0)])
    background = BackgroundLoad("http://127.0.0.1:9", rate=0, seconds=1).start()
    with pytest.raises(ValueError, match="must be positive"):
        background.stop()


def test_background_load_stops_early_and_reports(server):
    background = BackgroundLoad(url(server), rate=20, seconds=30, mix=PAPERS).start()
    time.sleep(0.5)
    asked = time.monotonic()
    report = background.stop()
    assert time.monotonic() - asked < 5
    assert background.report is report
    assert 0 < report.sent <= 31 and report.sent == received(server)
    assert report.ok and report.elapsed < 10


def test_background_load_as_context_manager_ends_by_itself(server):
    with BackgroundLoad(url(server), rate=50, seconds=0.2, mix=PAPERS) as background:
        time.sleep(0.5)
    assert 0 < background.report.sent <= 11
