"""fleet.ops.nodes: the decisions node.add/drain/enable/remove make before touching a host.

Proven on real inventories (copies of the shipped example) and real artifact-cache directories;
what the commands do to hosts is proven against the sandbox in tests/integration/test_nodes.py.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from fleet import inventory
from fleet.ops import nodes
from fleet.phases import Phase

EXAMPLE = Path(__file__).resolve().parents[2] / "inventory" / "production.example"


@pytest.fixture
def inv(tmp_path) -> inventory.Inventory:
    shutil.copytree(EXAMPLE, tmp_path / "production")
    return inventory.load("production", root=tmp_path)


def test_parse_list_reads_the_upstream_script_output():
    out = "10.0.0.21 8000 up\n10.0.0.22 8001 down\nnoise\n10.0.0.23 8000 maybe\n"
    assert nodes.parse_list(out) == {"10.0.0.21": "up", "10.0.0.22": "down"}


def test_serving_needs_every_load_balancer_to_send_requests(inv):
    ups = {"lb1": {"10.0.0.21": "up", "10.0.0.22": "up"},
           "lb2": {"10.0.0.21": "up", "10.0.0.22": "down"}}
    assert nodes.serving(inv, ups) == ["app1.example.com"]
    assert nodes.serving(inv, {}) == []


def test_the_beat_host_and_the_last_worker_cannot_be_removed(inv):
    problems = " ".join(nodes.removal_problems(inv, "worker1.example.com"))
    assert "runs beat" in problems and "last worker" in problems


def test_databases_and_load_balancers_are_not_node_remove_material(inv):
    assert "db group" in " ".join(nodes.removal_problems(inv, "db1.example.com"))
    assert "redis group" in " ".join(nodes.removal_problems(inv, "db1.example.com"))
    assert "loadbalancers group" in " ".join(nodes.removal_problems(inv, "lb1.example.com"))


def test_an_app_host_can_go_unless_it_is_the_last(inv, tmp_path):
    assert nodes.removal_problems(inv, "app2.example.com") == []
    assert "not in inventory" in nodes.removal_problems(inv, "app7.example.com")[0]
    nodes.inventory_file.remove_host(inv.path, "app2.example.com")
    alone = inventory.load("production", root=tmp_path)
    assert "last app host" in " ".join(nodes.removal_problems(alone, "app1.example.com"))


def test_add_refuses_groups_it_does_not_manage_before_reading_anything():
    with pytest.raises(nodes.NodeError, match="--group must be one of app, workers"):
        nodes.add("no-such-env", "lb2", "loadbalancers")


def test_a_new_host_needs_an_address_and_nothing_is_written_without_it(inv):
    before = (inv.path / "hosts.yml").read_text()
    with pytest.raises(nodes.NodeError, match="--address"):
        nodes._add_to_inventory(inv, "app3.example.com", "app", None, None)
    assert (inv.path / "hosts.yml").read_text() == before


def test_inventory_edit_can_be_undone_exactly(inv, tmp_path):
    before = (inv.path / "hosts.yml").read_text()
    undo = nodes._add_to_inventory(inv, "app3.example.com", "app", "10.0.0.23", "203.0.113.23")
    grown = inventory.load("production", root=tmp_path)
    assert grown.hostvars["app3.example.com"]["ansible_host"] == "203.0.113.23"
    assert grown.hostvars["app3.example.com"]["fleet_private_address"] == "10.0.0.23"
    nodes._undo(undo)
    assert (inv.path / "hosts.yml").read_text() == before


def test_a_host_already_in_the_group_needs_no_edit(inv):
    assert nodes._add_to_inventory(inv, "app1.example.com", "app", None, None) is None


def _cache_entry(cache: Path, slot: str, release: str, archive: bool = True) -> Path:
    (cache / slot).mkdir(parents=True)
    name = f"{release}.tar.gz"
    (cache / slot / "manifest.json").write_text(json.dumps({"release_id": release,
                                                            "archive": name}))
    if archive:
        (cache / slot / name).write_bytes(b"not checked here")
    return cache / slot / name


def test_cached_artifact_is_found_by_release_id(tmp_path):
    cache = tmp_path / "artifacts"
    _cache_entry(cache, "aaaa", "20261121T100000Z-abc")
    wanted = _cache_entry(cache, "bbbb", "20261121T110000Z-def")
    assert nodes.cached_artifact("20261121T110000Z-def", cache) == wanted
    assert nodes.cached_artifact("20261121T120000Z-xyz", cache) is None


def test_a_cache_entry_without_its_archive_is_not_used(tmp_path):
    cache = tmp_path / "artifacts"
    _cache_entry(cache, "aaaa", "20261121T100000Z-abc", archive=False)
    (cache / "broken").mkdir()
    (cache / "broken" / "manifest.json").write_text("{not json")
    assert nodes.cached_artifact("20261121T100000Z-abc", cache) is None


def test_outcome_summary_and_audit_record():
    outcome = nodes.NodeOutcome("node.add", "sandbox", "app3", "R1", who="me@here",
                                started="2026-11-21T12:00:00+00:00")
    outcome.phases = [Phase("provision", 61.25, True), Phase("join", 9.5, False)]
    outcome.failure = "app3 did not pass its health gate"
    text = outcome.summary()
    assert "provision" in text and "61.2" in text and "70.8" in text
    assert "node.add app3 FAILED: app3 did not pass its health gate" in text
    entry = outcome.audit_entry()
    assert entry["action"] == "node.add app3" and entry["release"] == "R1"
    assert entry["phases"] == [["provision", 61.25], ["join", 9.5]] and entry["ok"] is False
