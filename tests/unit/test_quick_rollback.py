"""fleet.ops.quick_rollback: the pieces of the quick rollback that need no host.

Proven here: the link command, run by a real shell on a directory laid out like a host, points
current at the target and previous at the release it replaces, leaves previous alone when the
host already runs the target, and never leaves a moment without a `current` link (a rename over
the old one); the settings digest is stable, follows every inventory file and the kit's own
templates, and so tells a changed inventory from an unchanged one; a slot counts as warm only
when it works in the target's directory, answers ready with 200 and (with a version path) names
the target; the probe's KEY=VALUE lines parse. The probe and the flip themselves run on real
sandbox hosts in tests/integration/test_deploy.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fleet import inventory
from fleet.ops import deploy, quick_rollback
from fleet.ops.quick_rollback import _link_command, _parse_probe, _warm
from fleet.phases import Clock
from fleet.remote import LocalRunner

A, B = "20261201T000000Z-aaaaaaa", "20261202T000000Z-bbbbbbb"


def _env(tmp_path: Path, group_vars: dict | None = None) -> inventory.Inventory:
    env = tmp_path / "env"
    env.mkdir(parents=True, exist_ok=True)
    hosts = {"all": {"children": {g: {"hosts": {f"{g}1": {"ansible_host": "10.0.0.9"}}}
                                  for g in ("loadbalancers", "app", "db")}}}
    (env / "hosts.yml").write_text(yaml.safe_dump(hosts))
    (env / "group_vars").mkdir(exist_ok=True)
    (env / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars or {}))
    return inventory.load(str(env))


def _host(tmp_path: Path, live: str | None, previous: str | None) -> Path:
    root = tmp_path / "srv app"
    for release in (A, B):
        (root / "releases" / release).mkdir(parents=True, exist_ok=True)
    for name, release in (("current", live), ("previous", previous)):
        if release:
            (root / name).symlink_to(root / "releases" / release)
    return root


def _links(root: Path) -> tuple[str, ...]:
    """The releases current and previous name ("" for a missing link)."""
    return tuple((root / n).readlink().name if (root / n).is_symlink() else ""
                 for n in ("current", "previous"))


def test_the_link_command_points_current_at_the_target_and_previous_at_the_replaced(tmp_path):
    root = _host(tmp_path, live=B, previous=A)
    command = _link_command(str(root), str(root / "releases" / A), str(root / "releases" / B))
    assert LocalRunner().run(command).ok
    assert _links(root) == (A, B)
    assert not list(root.glob("*.quick")), "the temporary links were renamed into place"


def test_the_link_command_leaves_previous_alone_when_the_host_runs_the_target(tmp_path):
    root = _host(tmp_path, live=A, previous=B)
    command = _link_command(str(root), str(root / "releases" / A), str(root / "releases" / A))
    assert LocalRunner().run(command).ok
    assert _links(root) == (A, B)


def test_the_link_command_puts_back_a_host_that_had_no_previous(tmp_path):
    root = _host(tmp_path, live=A, previous=None)
    assert LocalRunner().run(_link_command(str(root), str(root / "releases" / B), "")).ok
    assert _links(root) == (B, "")


def test_the_link_command_renames_over_the_old_link():
    command = _link_command("/srv/app", "/srv/app/releases/x", "/srv/app/releases/y")
    assert "mv -T /srv/app/current.quick /srv/app/current" in command
    assert "rm " not in command


def test_the_settings_digest_follows_the_inventory(tmp_path):
    inv = _env(tmp_path, {"app_name": "shop"})
    first = quick_rollback.settings_digest(inv)
    assert first == quick_rollback.settings_digest(_env(tmp_path, {"app_name": "shop"}))
    changed = _env(tmp_path, {"app_name": "shop", "app_gunicorn_workers": 3})
    second = quick_rollback.settings_digest(changed)
    assert second != first
    (tmp_path / "env" / "group_vars" / "extra.yml").write_text("celery_ready_timeout: 9\n")
    assert quick_rollback.settings_digest(changed) not in (first, second)


def test_the_settings_digest_covers_the_kits_templates():
    covered = {p for base in quick_rollback.KIT_SOURCES
               for p in (quick_rollback.KIT / base).rglob("*") if p.is_file()}
    assert quick_rollback.KIT / "templates" / "celery" / "restart-programs.sh.j2" in covered
    assert quick_rollback.KIT / "roles" / "app" / "tasks" / "release_switch.yml" in covered


@pytest.mark.parametrize(("line", "version_path", "warm"), [
    (f"/srv/fleetapp/releases/{A} 200 " + json.dumps({"release": A}), "/version", True),
    (f"/srv/fleetapp/releases/{A} 200 " + json.dumps({"release": B}), "/version", False),
    (f"/srv/fleetapp/releases/{A} 503 " + json.dumps({"release": A}), "/version", False),
    (f"/srv/fleetapp/releases/{B} 200 " + json.dumps({"release": A}), "/version", False),
    (f"/srv/fleetapp/releases/{A} 200 <html>oops", "/version", False),
    (" 000 ", "/version", False),
    (f"/srv/fleetapp/releases/{A} 200 ", "", True),
    (f"/srv/fleetapp/releases/{B} 200 ", "", False),
])
def test_a_slot_is_warm_only_on_the_target_and_ready(tmp_path, line, version_path, warm):
    inv = _env(tmp_path, {"app_name": "fleetapp", "app_version_path": version_path})
    assert _warm(inv, line, A) is warm


def test_the_probe_lines_parse():
    found = _parse_probe("settings=abc\ncurrent=/srv/x/releases/B\nprevious=\n"
                         f"slot8001=/srv/x/releases/A 200 {json.dumps({'release': A})}\n"
                         "stray line\n")
    assert found["settings"] == "abc" and found["previous"] == ""
    assert found["slot8001"].split(" ", 2)[:2] == ["/srv/x/releases/A", "200"]
    assert "stray line" not in found


# A deploy's quick switch: one command per app host, then the message of a batch that went back.
def _app(root: Path, start: bool) -> quick_rollback.AppHost:
    return quick_rollback.AppHost("app1", "10.0.0.9", 8000, 8001, "fleetapp-gunicorn",
                                  str(root / "releases" / B), str(root / "releases" / A),
                                  "fleetapp-gunicorn-handover", start=start)


def _switch_env(tmp_path: Path, root: Path) -> inventory.Inventory:
    # Nothing listens on 127.0.0.1:8001 here: the slot's probe line reads "000" at once.
    return _env(tmp_path, {"app_root": str(root), "app_gunicorn_bind_address": "127.0.0.1"})


def test_the_start_command_refuses_a_release_without_its_marker(tmp_path):
    root = _host(tmp_path, live=B, previous=A)
    inv = _switch_env(tmp_path, root)
    command = quick_rollback._start_command(inv, _app(root, start=True), A,
                                            quick_rollback.Gate(5, 0.25))
    res = LocalRunner().run(command)
    assert not res.ok and f"release {A} is not installed on app1" in res.stderr
    assert _links(root) == (B, A)


def test_the_start_command_links_then_reports_the_slot(tmp_path):
    root = _host(tmp_path, live=B, previous=A)
    inv = _switch_env(tmp_path, root)
    (root / "releases" / A / ".installed").write_text(A)
    app = _app(root, start=False)  # warm: nothing to start, the slot is only read
    res = LocalRunner().run(quick_rollback._start_command(inv, app, A,
                                                          quick_rollback.Gate(5, 0.25)))
    assert res.ok, res.stderr
    assert _links(root) == (A, B)
    why = quick_rollback._served(inv, app, A, res.stdout)
    assert why == f"/version shows nothing, expected {A}", why


def test_a_batch_that_went_back_names_each_host_its_release_and_its_logs(tmp_path):
    root = _host(tmp_path, live=B, previous=A)
    inv = _switch_env(tmp_path, root)
    failed = _app(root, start=True)
    other = quick_rollback.AppHost("app2", "10.0.0.8", 8001, 8000, "fleetapp-gunicorn-handover",
                                   str(root / "releases" / B), "", "fleetapp-gunicorn")
    message = quick_rollback._deploy_failure(
        inv, A, [failed, other], {"app1": "/readyz did not answer 200 within 5s (last: 503 )"})
    assert message.startswith(f"host=app1: release {A} failed: /readyz did not answer 200")
    assert f"The host is back on {B}" in message
    assert "gunicorn-handover.log (the other slot: gunicorn.log) on app1" in message
    assert "app2 of the same batch went back with it" in message
    assert "workers" not in message
    workers = quick_rollback._deploy_failure(inv, A, [failed], {"workers": "the workers "
                                                                "phase says why"})
    assert workers.startswith(f"not switched: the workers and beat did not start {A}")


def _hosts_are_this_machine(monkeypatch) -> None:
    """Every host's commands run in a real shell on this machine."""
    class Shell(LocalRunner):
        def close(self) -> None:
            pass

    monkeypatch.setattr(quick_rollback.hosts, "runner", lambda inv, host: Shell())


def test_only_hosts_whose_recorded_digest_is_current_skip_the_env_files(tmp_path, monkeypatch):
    # The install skips the env files and scripts on the hosts settings_current names: those
    # whose record (read by a real shell here) is this inventory's and kit's digest.
    record = tmp_path / "record" / "settings.sha256"
    inv = _env(tmp_path, {"app_settings_digest_file": str(record)})
    _hosts_are_this_machine(monkeypatch)
    assert quick_rollback.settings_current(inv, ["app1"]) == []  # nothing recorded
    record.parent.mkdir()
    record.write_text("0" * 64 + "\n")  # recorded from another inventory or kit
    assert quick_rollback.settings_current(inv, ["app1"]) == []
    record.write_text(quick_rollback.settings_digest(inv) + "\n")
    assert quick_rollback.settings_current(inv, ["app1"]) == ["app1"]


@pytest.mark.parametrize(("extra_vars", "recorded"), [
    ({}, True),
    ({"app_release_gate_timeout": 15}, True),  # lands in no file on a host
    ({"celery_worker_log_level": "DEBUG"}, False),  # lands in the worker's program file
])
def test_the_digest_is_recorded_only_for_files_the_inventory_and_kit_shaped(
        tmp_path, monkeypatch, extra_vars, recorded):
    # After a switch that wrote the hosts' files, the record (written by a real shell here)
    # vouches for them at the next quick switch; files written with extra variables that land
    # in them are not the inventory's, so nothing is recorded and the next run writes them.
    record = tmp_path / "record" / "settings.sha256"
    inv = _env(tmp_path, {"app_settings_digest_file": str(record)})
    _hosts_are_this_machine(monkeypatch)
    said: list[str] = []
    deploy._record_settings(inv, Clock([], said.append), extra_vars)
    assert record.exists() == recorded, said
    assert quick_rollback.settings_current(inv, ["app1"]) == (["app1"] if recorded else [])
    if not recorded:
        assert "celery_worker_log_level" in " ".join(said), said
