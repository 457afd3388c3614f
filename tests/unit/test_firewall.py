"""fleet.firewall's matrix and the rendered rule set, on sandbox-shaped and all-in-one inventories.

The inventories are written the way `fab sandbox.up` writes them (fleet.sandbox.topology) and
read back with fleet.inventory.load; the rule set is the real template rendered with every role's
defaults, parsed back and checked by `nft -c` (parse and evaluate, nothing loaded).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from test_templates import render, resolve_defaults

from fleet import firewall, inventory
from fleet.sandbox import topology

GATEWAY = "172.20.0.1"
SANDBOX = {"lb1": "172.20.0.2", "app1": "172.20.0.3", "app2": "172.20.0.4",
           "worker1": "172.20.0.5", "db1": "172.20.0.6"}
SANDBOX_GROUPS = {spec.name: spec.groups for spec in topology.default_topology()}
ALL_IN_ONE = {"solo1": ("loadbalancers", "app", "workers", "beat", "db", "redis")}


def _write(tmp_path: Path, addresses: dict[str, str], groups: dict[str, tuple[str, ...]],
           group_vars: dict | None = None, name: str = "env") -> inventory.Inventory:
    path = tmp_path / name
    path.mkdir()
    doc = topology.inventory(addresses, groups, "/keys/id", control_address=GATEWAY)
    (path / "hosts.yml").write_text(yaml.safe_dump(doc, sort_keys=False))
    if group_vars:
        (path / "group_vars" / "all").mkdir(parents=True)
        (path / "group_vars" / "all" / "extra.yml").write_text(yaml.safe_dump(group_vars))
    return inventory.load(str(path))


@pytest.fixture()
def sandbox(tmp_path) -> inventory.Inventory:
    return _write(tmp_path, SANDBOX, SANDBOX_GROUPS)


def _allowed(pairs: list[firewall.Pair]) -> set[tuple[str, str, int]]:
    return {(p.source, p.target, p.port) for p in pairs if p.allowed}


def test_generated_sandbox_inventory_admits_the_control_node(sandbox):
    for host in sandbox.hosts:
        assert sandbox.hostvars[host]["firewall_admin_networks"] == [f"{GATEWAY}/32"]
        assert sandbox.hostvars[host]["firewall_control_networks"] == [f"{GATEWAY}/32"]


def test_sandbox_matrix(sandbox):
    pairs = firewall.matrix(sandbox)
    assert firewall.probed_ports(sandbox) == [22, 80, 443, 3306, 6379, 8000, 8001]
    # 5 hosts, 4 others each, 7 ports.
    assert len(pairs) == 5 * 4 * 7
    expected = {(src, "lb1", port) for src in ("app1", "app2", "worker1", "db1")
                for port in (80, 443)}
    expected |= {("lb1", app, port) for app in ("app1", "app2") for port in (8000, 8001)}
    expected |= {(src, "db1", port) for src in ("app1", "app2", "worker1")
                 for port in (3306, 6379)}
    assert _allowed(pairs) == expected
    assert firewall.counts(pairs) == (18, 122)
    # No host may SSH to another: only the control node is an admin network.
    assert not [p for p in pairs if p.port == 22 and p.allowed]


def test_expected_probe_answers(sandbox):
    by_key = {(p.source, p.target, p.port): p for p in firewall.matrix(sandbox)}
    # Allowed: connected, or a TCP reset when nothing listens yet (no release deployed).
    assert by_key[("lb1", "app1", 8000)].expected == {"open", "closed"}
    assert by_key[("lb1", "app1", 8001)].expected == {"open", "closed"}
    assert by_key[("app1", "db1", 3306)].expected == {"open", "closed"}
    assert by_key[("lb1", "db1", 3306)].expected == {"filtered"}
    assert by_key[("worker1", "app1", 8000)].expected == {"filtered"}
    assert by_key[("db1", "app2", 22)].expected == {"filtered"}


def test_all_in_one_has_no_pairs_but_opens_every_tier(tmp_path):
    inv = _write(tmp_path, {"solo1": "10.1.0.9"}, ALL_IN_ONE)
    assert firewall.matrix(inv) == []
    opened = {o.service: o for o in firewall.openings(inv, "solo1")}
    assert set(opened) == {"ssh", "http", "https", "gunicorn", "gunicorn-handover", "mariadb",
                           "redis"}
    assert opened["http"].anywhere and opened["https"].anywhere
    assert opened["mariadb"].sources == {"10.1.0.9"}
    assert opened["mariadb"].admits(GATEWAY) and not opened["mariadb"].admits("10.1.0.10")
    assert opened["ssh"].admits(GATEWAY) and not opened["ssh"].admits("10.1.0.9")


def test_a_host_in_several_groups_gets_the_union(tmp_path):
    groups = {"edge1": ("loadbalancers", "app"), "work1": ("workers", "beat"),
              "data1": ("db",), "cache1": ("redis",)}
    addresses = {"edge1": "10.2.0.2", "work1": "10.2.0.3", "data1": "10.2.0.4",
                 "cache1": "10.2.0.5"}
    inv = _write(tmp_path, addresses, groups)
    allowed = _allowed(firewall.matrix(inv))
    # edge1 is a load balancer and an app host: http(s) for all, gunicorn from itself only
    # (loopback), and its app role reaches both data tiers.
    assert ("work1", "edge1", 80) in allowed and ("work1", "edge1", 8000) not in allowed
    assert {("edge1", "data1", 3306), ("work1", "data1", 3306),
            ("edge1", "cache1", 6379), ("work1", "cache1", 6379)} <= allowed
    assert ("cache1", "data1", 3306) not in allowed and ("data1", "cache1", 6379) not in allowed
    assert {p for p in allowed if p[1] in ("data1", "cache1")} == {
        ("edge1", "data1", 3306), ("work1", "data1", 3306),
        ("edge1", "cache1", 6379), ("work1", "cache1", 6379)}


def test_inventory_ports_and_admin_networks_are_followed(tmp_path):
    inv = _write(tmp_path, SANDBOX, SANDBOX_GROUPS, {
        "app_gunicorn_port": 9000, "mariadb_port": 3307, "common_ssh_port": 2222,
        "firewall_admin_networks": [f"{GATEWAY}/32", "172.20.0.2/32"]})
    allowed = _allowed(firewall.matrix(inv))
    assert firewall.probed_ports(inv) == [80, 443, 2222, 3307, 6379, 8001, 9000]
    assert ("lb1", "app1", 9000) in allowed and ("lb1", "app1", 8000) not in allowed
    assert ("app1", "db1", 3307) in allowed and ("app1", "db1", 3306) not in allowed
    # lb1's address is an admin network now: it may SSH everywhere, nobody else may.
    ssh = {p for p in allowed if p[2] == 2222}
    assert ssh == {("lb1", h, 2222) for h in ("app1", "app2", "worker1", "db1")}
    assert "tcp dport 2222 accept" in _rendered(inv, "db1")


def test_a_host_without_the_firewall_accepts_everything(tmp_path):
    path = tmp_path / "env"
    inv = _write(tmp_path, SANDBOX, SANDBOX_GROUPS)
    (path / "host_vars").mkdir()
    (path / "host_vars" / "worker1.yml").write_text("firewall_enabled: false\n")
    inv = inventory.load(str(path))
    pairs = [p for p in firewall.matrix(inv) if p.target == "worker1"]
    assert pairs and all(p.allowed for p in pairs)
    assert firewall.counts(firewall.matrix(inv)) == (18 + 28, 122 - 28)


def test_bad_settings_are_named(tmp_path):
    inv = _write(tmp_path, SANDBOX, SANDBOX_GROUPS, {"app_gunicorn_port": "http"})
    with pytest.raises(firewall.FirewallError, match=r"host app1: firewall_services\[2\] "
                                                      r"\(gunicorn\) port"):
        firewall.matrix(inv)
    inv = _write(tmp_path, SANDBOX, SANDBOX_GROUPS,
                 {"firewall_admin_networks": ["10.0.0.300/8"]}, name="env2")
    with pytest.raises(firewall.FirewallError, match="firewall_admin_networks"):
        firewall.matrix(inv)


def test_service_table_is_the_roles_default():
    services = firewall.role_defaults()["firewall_services"]
    assert [(s["name"], s["groups"]) for s in services] == [
        ("http", ["loadbalancers"]), ("https", ["loadbalancers"]), ("gunicorn", ["app"]),
        ("gunicorn-handover", ["app"]), ("mariadb", ["db"]), ("redis", ["redis"])]


# --- the rendered rule set ----------------------------------------------------------------

RULE = re.compile(r"^\s*(?:(?:ip6?) saddr \{ (?P<sources>[^}]*) \} )?tcp dport (?P<port>\d+) "
                  r"accept$")


def _rendered(inv: inventory.Inventory, host: str) -> str:
    variables = dict(inv.hostvars[host])
    context = resolve_defaults({
        **variables, "inventory_hostname": host,
        "groups": {"all": inv.hosts, **inv.groups}, "hostvars": inv.hostvars})
    return render("firewall/nftables.conf.j2", context)


def _accepts(text: str) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for line in text.splitlines():
        match = RULE.match(line)
        if match:
            sources = match["sources"]
            found.setdefault(int(match["port"]), set()).update(
                {"*"} if sources is None else {s.strip() for s in sources.split(",")})
    return found


def _openings(inv: inventory.Inventory, host: str) -> dict[int, set[str]]:
    found: dict[int, set[str]] = {}
    for opening in firewall.openings(inv, host):
        found.setdefault(opening.port, set()).update(
            {"*"} if opening.anywhere else opening.sources | {str(n) for n in opening.networks})
    return found


@pytest.mark.parametrize("shape", ["sandbox", "all-in-one"])
def test_rendered_rules_match_the_matrix_and_pass_nft(shape, tmp_path):
    inv = (_write(tmp_path, SANDBOX, SANDBOX_GROUPS) if shape == "sandbox"
           else _write(tmp_path, {"solo1": "10.1.0.9"}, ALL_IN_ONE))
    nft = shutil.which("nft") or "/usr/sbin/nft"
    # `make unit` installs nftables (make sysdeps); a missing nft is a broken setup, not a skip.
    assert Path(nft).exists(), "nft is not installed: run `make sysdeps`"
    for host in inv.hosts:
        text = _rendered(inv, host)
        assert _accepts(text) == _openings(inv, host), host
        assert "policy drop;" in text and 'iifname "lo" accept' in text
        assert text.index("delete table inet flaskfleet") < text.index("chain input")
        rules = tmp_path / f"{host}.nft"
        rules.write_text(text)
        check = subprocess.run([nft, "-c", "-f", str(rules)], capture_output=True, text=True)
        assert check.returncode == 0, f"{host}: {check.stderr}"


def test_rendered_rules_of_the_load_balancer(sandbox):
    text = _rendered(sandbox, "lb1")
    assert _accepts(text) == {22: {f"{GATEWAY}/32"}, 80: {"*"}, 443: {"*"}}
    assert text.rstrip().endswith("reject with icmpx type admin-prohibited\n    }\n}")


def test_rendered_rules_of_the_database(sandbox):
    assert _accepts(_rendered(sandbox, "db1")) == {
        22: {f"{GATEWAY}/32"},
        3306: {"172.20.0.3", "172.20.0.4", "172.20.0.5", f"{GATEWAY}/32"},
        6379: {"172.20.0.3", "172.20.0.4", "172.20.0.5", f"{GATEWAY}/32"}}


def test_drop_instead_of_reject(sandbox, tmp_path):
    path = tmp_path / "env" / "host_vars"
    path.mkdir()
    (path / "lb1.yml").write_text("firewall_reject: false\nfirewall_icmp_echo: false\n")
    text = _rendered(inventory.load(str(tmp_path / "env")), "lb1")
    assert "reject" not in text and "echo-request" not in text
    assert "policy drop;" in text


def test_ipv6_sources_get_their_own_rule(tmp_path):
    inv = _write(tmp_path, {"lb1": "fd00::2", "app1": "fd00::3", "db1": "fd00::4"},
                 {"lb1": ("loadbalancers",), "app1": ("app", "workers", "beat"),
                  "db1": ("db", "redis")})
    text = _rendered(inv, "app1")
    assert "ip6 saddr { fd00::2 } tcp dport 8000 accept" in text
    assert f"ip saddr {{ {GATEWAY}/32 }} tcp dport 8000 accept" in text
    rules = tmp_path / "v6.nft"
    rules.write_text(text)
    nft = shutil.which("nft") or "/usr/sbin/nft"
    check = subprocess.run([nft, "-c", "-f", str(rules)], capture_output=True, text=True)
    assert check.returncode == 0, check.stderr


def test_scripts_parse(sandbox, tmp_path):
    script = tmp_path / "ctl"
    context = resolve_defaults({})
    script.write_text(render("firewall/flaskfleet-firewall.sh.j2", context))
    result = subprocess.run(["sh", "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


ADMIN_CHECK = Path(__file__).resolve().parents[2] / "roles" / "firewall" / "files" / \
    "admin_check.py"


def _admin_check(*args: str, ssh_client: str | None = None) -> dict:
    env = {"PATH": "/usr/bin:/bin"}
    if ssh_client is not None:
        env["SSH_CLIENT"] = ssh_client
    run = subprocess.run(["python3", str(ADMIN_CHECK), *args], capture_output=True, text=True,
                         env=env, check=True)
    return json.loads(run.stdout)


def test_admin_check_reads_the_ssh_client():
    found = _admin_check("", "10.0.0.0/8", "172.20.0.0/16", ssh_client="172.20.0.1 51234 22")
    assert found == {"address": "172.20.0.1", "source": "SSH_CLIENT",
                     "admitted_by": "172.20.0.0/16", "invalid": []}
    outside = _admin_check("", "10.0.0.0/8", ssh_client="172.20.0.1 51234 22")
    assert outside["address"] == "172.20.0.1" and outside["admitted_by"] is None
    mapped = _admin_check("", "172.20.0.1/32", ssh_client="::ffff:172.20.0.1 51234 22")
    assert mapped["admitted_by"] == "172.20.0.1/32"


def test_admin_check_explicit_address_bad_networks_and_no_ssh():
    found = _admin_check("198.51.100.7", "192.0.2.0/24", "10.0.0.300/8",
                         ssh_client="172.20.0.1 51234 22")
    assert found["address"] == "198.51.100.7" and found["source"] == "firewall_control_address"
    assert found["admitted_by"] is None
    assert len(found["invalid"]) == 1 and "'10.0.0.300/8'" in found["invalid"][0]
    assert _admin_check("", "192.0.2.0/24") == {"address": "", "source": "none",
                                               "admitted_by": None, "invalid": []}
