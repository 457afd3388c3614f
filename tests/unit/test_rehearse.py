"""fleet.proof.rehearse without hosts: phase attribution, load targets, the report, the fresh build.

Inventories are copies of the shipped example; the one end-to-end check sends real load to a
TLS server on 127.0.0.1 that the test starts itself.
"""

from __future__ import annotations

import datetime
import json
import shutil
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from fleet import artifact, inventory
from fleet.phases import Phase
from fleet.proof import rehearse
from fleet.proof.load import LoadReport, TargetRefused, check_target
from fleet.proof.rehearse import PhaseTraffic, RehearsalReport, failures_by_phase
from fleet.sandbox.containers import HostState, Sandbox

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "production.example"
APP_DIR = Path(__file__).resolve().parents[2] / "app"
EXAMPLE_ADDRESSES = {
    "203.0.113.10", "10.0.0.10",  # lb1
    "203.0.113.21", "10.0.0.21",  # app1
    "203.0.113.22", "10.0.0.22",  # app2
    "203.0.113.31", "10.0.0.31",  # worker1
    "203.0.113.41", "10.0.0.41",  # db1
}


def copy_example(root: Path, env: str, lb_vars: dict | None = None) -> inventory.Inventory:
    """The example inventory as environment `env`, with extra variables on lb1 if given."""
    shutil.copytree(EXAMPLE, root / env)
    if lb_vars:
        hosts_file = root / env / "hosts.yml"
        data = yaml.safe_load(hosts_file.read_text())
        data["all"]["children"]["loadbalancers"]["hosts"]["lb1.example.com"].update(lb_vars)
        hosts_file.write_text(yaml.safe_dump(data))
    return inventory.load(env, root=root)


def load_with(timeline: list[tuple[int, int, int]], elapsed: float = 0.0) -> LoadReport:
    sent = sum(s for _, s, _ in timeline)
    failed = sum(f for _, _, f in timeline)
    return LoadReport(base_url="https://127.0.0.1:8443", target_rate=10, started_at=0.0,
                      elapsed=elapsed, sent=sent, failed=failed, timeline=timeline)


# --- failures_by_phase -------------------------------------------------------------------


def test_each_second_is_counted_in_the_phase_that_holds_it():
    phases = [Phase("pre-flight", 2.5, True, 1000.2),   # seconds 1000-1002
              Phase("lock", 0.6, True, 1002.5),         # 1002-1003 (1002 is pre-flight's)
              Phase("install", 5.0, True, 1003.1)]      # 1003-1008 (1003 is lock's)
    timeline = [(second, 10, 0) for second in range(1000, 1009)]
    timeline[3] = (1003, 10, 2)
    timeline[7] = (1007, 10, 3)
    rows = failures_by_phase(phases, load_with(timeline))
    assert rows == [PhaseTraffic("pre-flight", 2.5, 30, 0),
                    PhaseTraffic("lock", 0.6, 10, 2),
                    PhaseTraffic("install", 5.0, 50, 3)]


def test_traffic_outside_the_phases_gets_before_and_after_rows():
    phases = [Phase("switch", 1.5, True, 2000.4)]  # seconds 2000-2001
    timeline = [(1997, 4, 0), (1998, 5, 1), (1999, 5, 0), (2000, 5, 0), (2001, 5, 2),
                (2002, 5, 0), (2003, 3, 3)]
    rows = failures_by_phase(phases, load_with(timeline))
    assert rows == [PhaseTraffic("before", 3.0, 14, 1),
                    PhaseTraffic("switch", 1.5, 10, 2),
                    PhaseTraffic("after", 2.0, 8, 3)]
    assert sum(r.sent for r in rows) == 32 and sum(r.failed for r in rows) == 6


def test_a_gap_between_phases_is_reported_not_given_to_a_neighbour():
    phases = [Phase("pre-flight", 1.0, True, 100.0), Phase("lock", 1.0, True, 104.5)]
    timeline = [(second, 2, 1 if second == 102 else 0) for second in range(100, 106)]
    rows = failures_by_phase(phases, load_with(timeline))
    assert rows == [PhaseTraffic("pre-flight", 1.0, 4, 0),
                    PhaseTraffic("lock", 1.0, 4, 0),
                    PhaseTraffic("between phases", 2.0, 4, 1)]


def test_seconds_with_nothing_sent_outside_the_phases_add_no_row():
    phases = [Phase("install", 1.0, True, 50.0)]
    rows = failures_by_phase(phases, load_with([(48, 0, 0), (50, 7, 0), (53, 0, 0)]))
    assert rows == [PhaseTraffic("install", 1.0, 7, 0)]


def test_an_empty_timeline_still_lists_every_phase_in_order():
    phases = [Phase("switch", 2.0, False, 30.0), Phase("install", 1.0, True, 10.0)]
    assert failures_by_phase(phases, load_with([])) == [
        PhaseTraffic("install", 1.0, 0, 0), PhaseTraffic("switch", 2.0, 0, 0)]


# --- load_target -------------------------------------------------------------------------


def test_a_real_environment_is_loaded_through_its_first_load_balancer(tmp_path):
    url, allowed = rehearse.load_target(copy_example(tmp_path, "production"))
    assert url == "https://203.0.113.10"
    assert set(allowed) == EXAMPLE_ADDRESSES
    check_target(url, allowed)
    with pytest.raises(TargetRefused):
        check_target("https://198.51.100.7", allowed)


def test_the_https_port_clients_use_is_in_the_url(tmp_path):
    inv = copy_example(tmp_path, "production", {"nginx_https_port": 8443})
    assert rehearse.load_target(inv)[0] == "https://203.0.113.10:8443"
    behind_nat = copy_example(tmp_path, "staging", {"nginx_https_port": 8443,
                                                    "nginx_redirect_https_port": 443})
    assert rehearse.load_target(behind_nat)[0] == "https://203.0.113.10"


def test_an_ipv6_load_balancer_is_bracketed(tmp_path):
    inv = copy_example(tmp_path, "production", {"ansible_host": "2001:db8::10"})
    url, allowed = rehearse.load_target(inv)
    assert url == "https://[2001:db8::10]"
    check_target(url, allowed)


class OfflineSandbox(Sandbox):
    """The real inventory writer, without asking Docker for the sandbox network."""

    def _network(self):
        return None


def test_the_sandbox_is_loaded_on_its_published_loopback_port(tmp_path):
    # The inventory `fab sandbox.up` writes, written by the sandbox's own code (no Docker).
    states = [HostState("lb1", ("loadbalancers",), "running", "172.30.0.2"),
              HostState("app1", ("app", "workers", "beat", "db", "redis"), "running",
                        "172.30.0.3")]
    OfflineSandbox(root=tmp_path, client=None)._write_inventory(states, tmp_path / "id_ed25519")
    inv = inventory.load("sandbox", root=tmp_path / "inventory")
    assert inv.is_sandbox
    url, allowed = rehearse.load_target(inv)
    assert url == "https://127.0.0.1:8443"
    assert set(allowed) == {"172.30.0.2", "172.30.0.3"}


def test_a_copy_named_sandbox_is_loaded_like_any_environment(tmp_path):
    inv = copy_example(tmp_path, "sandbox")
    assert not inv.is_sandbox
    url, allowed = rehearse.load_target(inv)
    assert url == "https://203.0.113.10"
    assert set(allowed) == EXAMPLE_ADDRESSES


# --- the report --------------------------------------------------------------------------


def test_the_report_is_one_table_with_a_total_then_the_load_summary():
    phases = [Phase("install", 4.0, True, 500.2), Phase("switch", 6.25, True, 504.2)]
    timeline = [(second, 20, 1 if second == 507 else 0) for second in range(497, 512)]
    result = RehearsalReport("sandbox", "20260101T000000Z-nogit", phases,
                             load_with(timeline, elapsed=15.0))
    lines = result.table().splitlines()
    assert lines[0].split() == ["phase", "seconds", "requests", "sent", "failed"]
    assert [line.split() for line in lines[2:6]] == [
        ["before", "3.0", "60", "0"],
        ["install", "4.0", "100", "0"],
        ["switch", "6.2", "120", "1"],
        ["after", "1.0", "20", "0"]]
    assert lines[6].split() == ["total", "15.0", "300", "1"]
    assert lines[8].startswith("load on https://127.0.0.1:8443: 300 sent")
    assert "deploy of 20260101T000000Z-nogit to sandbox: ok" in lines
    assert lines[-1] == "rehearsal: NOT OK"  # one request failed
    assert not result.ok


def test_a_failed_deploy_is_shown_even_when_every_request_succeeded():
    load = load_with([(10, 5, 0)], elapsed=1.0)
    failed = RehearsalReport("sandbox", None, [Phase("deploy (failed)", 1.0, False, 10.0)],
                             load, failure="installing the release failed on app1")
    text = failed.table()
    assert "deploy to sandbox FAILED: installing the release failed on app1" in text
    assert text.endswith("rehearsal: NOT OK") and not failed.ok
    clean = RehearsalReport("sandbox", "r1", [Phase("switch", 1.0, True, 10.0)], load)
    assert clean.ok and clean.table().endswith("rehearsal: OK")


# --- the fresh build and the entry points ------------------------------------------------


def test_the_fresh_copy_is_a_new_build_without_local_litter(tmp_path):
    copy = rehearse.fresh_app_copy(tmp_path, APP_DIR)
    stamp = (copy / rehearse.MARKER_FILE).read_text()
    assert stamp.startswith("rehearsal build made at ")
    made = datetime.datetime.fromisoformat(stamp.split(" at ")[1].strip())
    assert abs(datetime.datetime.now(datetime.UTC) - made) < datetime.timedelta(minutes=1)
    assert (copy / "pyproject.toml").read_bytes() == (APP_DIR / "pyproject.toml").read_bytes()
    litter = [p for p in copy.rglob("*")
              if p.name in artifact.EXCLUDED_PARTS or p.name.endswith(artifact.EXCLUDED_SUFFIXES)]
    assert litter == []
    assert artifact.content_hash(copy, "3.11") != artifact.content_hash(APP_DIR, "3.11")


def test_rehearse_checks_its_arguments_before_touching_anything(tmp_path):
    for rate in (0, -5, float("nan"), float("inf")):
        with pytest.raises(ValueError, match="positive"):
            rehearse.rehearse("no-such-env", rate=rate)
    with pytest.raises(inventory.InventoryError, match="no inventory directory"):
        rehearse.rehearse(str(tmp_path / "missing"), rate=20)


class ReferenceLikeApp(BaseHTTPRequestHandler):
    """Answers every request of the default mix as the healthy reference app would."""

    protocol_version = "HTTP/1.1"

    def log_message(self, *args):
        pass

    def _answer(self) -> None:
        body = {"release": "r1", "host": "app1"} if self.path == "/version" else {"items": []}
        data = json.dumps(body).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def do_GET(self):
        self._answer()

    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length", 0)))
        self._answer()


@pytest.fixture
def tls_server(tmp_path):
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "lb1.example.com")])
    now = datetime.datetime.now(datetime.UTC)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name)
            .public_key(key.public_key()).serial_number(x509.random_serial_number())
            .not_valid_before(now - datetime.timedelta(days=1))
            .not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    (tmp_path / "cert.pem").write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    (tmp_path / "key.pem").write_bytes(key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption()))
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(tmp_path / "cert.pem", tmp_path / "key.pem")
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), ReferenceLikeApp)
    httpd.socket = context.wrap_socket(httpd.socket, server_side=True)
    thread = threading.Thread(target=httpd.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    yield httpd
    httpd.shutdown()
    httpd.server_close()


def test_fab_load_sends_its_rate_to_the_environments_load_balancer(tmp_path, tls_server):
    port = tls_server.server_address[1]
    inv = copy_example(tmp_path / "inventories", "production",
                       {"ansible_host": "127.0.0.1", "nginx_https_port": port})
    result = rehearse.load_environment(inv, rate=40, seconds=1)
    assert result.base_url == f"https://127.0.0.1:{port}"
    assert result.sent == 40 and result.failed == 0 and result.ok
    assert result.backends == {"app1": result.releases["r1"]} and result.releases["r1"] > 0
