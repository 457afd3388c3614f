"""The tier firewall inside two containers: an app+db+redis host and a load balancer.

Probes run from inside one container against the other's private address, so they go through
the real rule set: open (connected), closed (allowed, nothing listens: a TCP reset) or filtered
(refused by the firewall: ICMP admin-prohibited, or no answer within a second).
"""

import json
import time
from pathlib import Path

import pytest
import testinfra

APP = "docker://molecule-firewall"
LB = "docker://molecule-firewall-lb"
TABLE = ["nft", "list", "table", "inet", "flaskfleet"]

# The kit's own probe script, sent to the container (one copy for the kit and this test).
PROBE = (Path(__file__).resolve().parents[5] / "fleet" / "port_probe.py").read_text()


def _host(spec):
    return testinfra.get_host(spec)


def _address(host) -> str:
    return host.check_output("hostname -I").split()[0]


def probe(source, address: str, *ports: int) -> dict[int, str]:
    targets = [f"{address}:{p}" for p in ports]
    found = json.loads(source.check_output("python3 -c " + _quote(PROBE) + " 1 "
                                           + " ".join(targets)))
    return {int(t.rsplit(":", 1)[1]): v for t, v in found.items()}


def _quote(text: str) -> str:
    return "'" + text.replace("'", "'\\''") + "'"


@pytest.fixture()
def listener():
    """A throwaway TCP listener on a port of a host, removed afterwards."""
    started = []

    def start(host, port: int) -> None:
        unit = f"molecule-listen-{port}"
        host.check_output(f"systemd-run --unit {unit} python3 -m http.server {port} "
                          f"--bind {_address(host)}")
        started.append((host, unit))
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if host.socket(f"tcp://{_address(host)}:{port}").is_listening:
                return
            time.sleep(0.2)
        raise AssertionError(f"nothing listens on {port}")

    yield start
    for host, unit in started:
        host.run(f"systemctl stop {unit}")


def test_rules_are_loaded_default_deny():
    for spec in (APP, LB):
        listing = _host(spec).check_output(" ".join(TABLE))
        assert "policy drop;" in listing
        assert 'iifname "lo" accept' in listing
        assert "ct state established,related accept" in listing


def test_boot_unit_loads_the_confirmed_rules():
    host = _host(APP)
    assert host.service("flaskfleet-firewall").is_enabled
    confirmed = host.file("/var/lib/flaskfleet/firewall/confirmed.nft")
    assert confirmed.mode == 0o600 and confirmed.user == "root"
    assert confirmed.content == host.file("/etc/flaskfleet/firewall.nft").content
    assert host.check_output("/usr/local/sbin/flaskfleet-firewall status") == "confirmed"


def test_load_balancer_reaches_gunicorn_but_not_the_data_tier(listener):
    app, lb = _host(APP), _host(LB)
    listener(app, 8000)
    found = probe(lb, _address(app), 8000, 8001, 3306, 6379, 22)
    # 8001 (the second gunicorn slot) is open to the load balancer but nothing listens on it now.
    assert found == {8000: "open", 8001: "closed", 3306: "filtered", 6379: "filtered",
                     22: "filtered"}


def test_app_host_reaches_http_of_the_load_balancer_only(listener):
    app, lb = _host(APP), _host(LB)
    listener(lb, 8000)
    found = probe(app, _address(lb), 80, 443, 8000, 22)
    # Nothing listens on 80/443 (no nginx here): allowed shows as closed. 8000 listens on the
    # load balancer and is still filtered: the load balancer opens no gunicorn port.
    assert found == {80: "closed", 443: "closed", 8000: "filtered", 22: "filtered"}


def test_a_host_reaches_itself_on_its_private_address(listener):
    app = _host(APP)
    listener(app, 8000)
    # The health gate's path: loopback, even on the private address and for closed ports.
    assert probe(app, _address(app), 8000, 22) == {8000: "open", 22: "open"}


def test_an_unconfirmed_rule_set_is_reverted_in_time():
    app, lb = _host(APP), _host(LB)
    before = app.check_output(" ".join(TABLE))
    # A rule set that opens MariaDB to everyone, loaded but never confirmed.
    opened = app.check_output("cat /etc/flaskfleet/firewall.nft").replace(
        "policy drop;", "policy drop;\n        tcp dport 3306 accept", 1)
    app.check_output("printf '%s\\n' " + _quote(opened) + " > /tmp/opened.nft")
    assert app.check_output("/usr/local/sbin/flaskfleet-firewall apply /tmp/opened.nft 3") \
        == "applied"
    assert app.check_output("/usr/local/sbin/flaskfleet-firewall status") == "pending"
    assert probe(lb, _address(app), 3306) == {3306: "closed"}
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline and app.check_output(
            "/usr/local/sbin/flaskfleet-firewall status") == "pending":
        time.sleep(0.5)
    assert app.check_output(" ".join(TABLE)) == before
    assert probe(lb, _address(app), 3306) == {3306: "filtered"}
    late = app.run("/usr/local/sbin/flaskfleet-firewall confirm /tmp/opened.nft")
    assert late.rc != 0 and "already restored" in late.stderr
    # The confirmed rules are what is loaded again, so the next apply has nothing to do.
    assert app.check_output("/usr/local/sbin/flaskfleet-firewall apply "
                            "/etc/flaskfleet/firewall.nft 30") == "unchanged"
    assert app.check_output("/usr/local/sbin/flaskfleet-firewall status") == "confirmed"


def test_a_rule_set_nft_refuses_changes_nothing():
    app = _host(APP)
    before = app.check_output(" ".join(TABLE))
    app.check_output("printf 'table inet flaskfleet {\\n  chain input { nonsense }\\n}\\n' "
                     "> /tmp/broken.nft")
    result = app.run("/usr/local/sbin/flaskfleet-firewall apply /tmp/broken.nft 30")
    assert result.rc != 0 and "unchanged" in result.stderr
    assert app.check_output(" ".join(TABLE)) == before
    assert app.check_output("/usr/local/sbin/flaskfleet-firewall status") == "confirmed"
