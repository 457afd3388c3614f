"""Deploy hooks (fleet/ops/hooks.py): real executables in a temporary hooks directory."""

from __future__ import annotations

import http.server
import json
import subprocess
import threading
from pathlib import Path

import pytest

from fleet import ansible
from fleet.inventory import Inventory
from fleet.ops import deploy, hooks, releases
from fleet.phases import Clock

DUMP_ENV = """#!/bin/sh
env | grep '^FLEET_' | sort > "$(dirname "$0")/../seen-$FLEET_HOOK"
echo "hook says hello"
"""


def _hook(directory: Path, name: str, body: str, mode: int = 0o755) -> Path:
    directory.mkdir(parents=True, exist_ok=True)
    path = directory / name
    path.write_text(body)
    path.chmod(mode)
    return path


def _seen(inventory_dir: Path, hook: str) -> dict[str, str]:
    lines = (inventory_dir / f"seen-{hook}").read_text().splitlines()
    return dict(line.split("=", 1) for line in lines)


def _inventory(path: Path) -> Inventory:
    return Inventory(env="prod", path=path, groups={"app": ["app1"]}, hostvars={"app1": {}},
                     origins={}, group_sources={}, sandbox=False)


def test_no_directory_no_problem(tmp_path):
    assert hooks.check(tmp_path / "hooks") == []
    assert hooks.run(tmp_path / "hooks", "pre-deploy", {}) is None


def test_a_non_executable_hook_is_refused_by_name(tmp_path):
    _hook(tmp_path / "hooks", "pre-deploy", "#!/bin/sh\nexit 0\n", mode=0o644)
    problems = hooks.check(tmp_path / "hooks")
    assert len(problems) == 1
    assert "hooks/pre-deploy is not executable" in problems[0]
    assert "chmod +x" in problems[0]
    with pytest.raises(hooks.HookError, match="pre-deploy is not executable"):
        hooks.run(tmp_path / "hooks", "pre-deploy", {})


def test_a_misspelt_hook_is_refused_and_notes_are_not(tmp_path):
    directory = tmp_path / "hooks"
    _hook(directory, "post_deploy", "#!/bin/sh\n")
    _hook(directory, "README.md", "notes", mode=0o644)
    _hook(directory, "post-deploy.sample", "#!/bin/sh\n", mode=0o644)
    problems = hooks.check(directory)
    assert len(problems) == 1 and "post_deploy is not a hook name" in problems[0]
    assert "pre-build, pre-deploy, post-deploy, post-rollback" in problems[0]


def test_a_hook_gets_its_variables_and_its_output_is_shown(tmp_path):
    _hook(tmp_path / "hooks", "post-deploy", DUMP_ENV)
    said: list[str] = []
    env_vars = hooks.variables("post-deploy", "prod", "deploy", "20261202T101500Z-abc",
                               "20261201T090000Z-def", "ops@laptop", tmp_path, outcome="ok")
    result = hooks.run(tmp_path / "hooks", "post-deploy", env_vars, say=said.append)
    assert result is not None and result.ok and result.exit == 0
    seen = _seen(tmp_path, "post-deploy")
    assert seen == {
        "FLEET_HOOK": "post-deploy", "FLEET_ENV": "prod", "FLEET_ACTION": "deploy",
        "FLEET_RELEASE": "20261202T101500Z-abc", "FLEET_PREVIOUS": "20261201T090000Z-def",
        "FLEET_OPERATOR": "ops@laptop", "FLEET_INVENTORY": str(tmp_path.resolve()),
        "FLEET_REF": "", "FLEET_OUTCOME": "ok", "FLEET_FAILURE": ""}
    assert "  [post-deploy] hook says hello" in said


def test_a_failing_hook_says_why_with_its_last_line(tmp_path):
    _hook(tmp_path / "hooks", "pre-deploy", "#!/bin/sh\necho checking\necho 'tests red' >&2\n"
          "exit 4\n")
    result = hooks.run(tmp_path / "hooks", "pre-deploy", {}, say=lambda _: None)
    assert result is not None and not result.ok and result.exit == 4
    assert result.message.endswith("pre-deploy exited with status 4: tests red")
    assert result.record()["ok"] is False


def test_a_hanging_hook_is_stopped(tmp_path):
    _hook(tmp_path / "hooks", "post-rollback", "#!/bin/sh\nsleep 30\n")
    result = hooks.run(tmp_path / "hooks", "post-rollback", {}, say=lambda _: None,
                       timeout=0.5)
    assert result is not None and not result.ok and result.exit is None
    assert "did not finish within 0s" in result.message or "within 1s" in result.message


def test_a_hook_without_an_interpreter_line_fails_cleanly(tmp_path):
    _hook(tmp_path / "hooks", "pre-build", "echo no shebang\n")
    result = hooks.run(tmp_path / "hooks", "pre-build", {}, say=lambda _: None)
    assert result is not None and not result.ok
    assert "could not be started" in result.message


# --- as fleet/ops/deploy.py calls them ------------------------------------------------------


def _plan(tmp_path: Path) -> deploy.Plan:
    before = {"app1": releases.HostReleases("app1", "20261201T090000Z-old", None,
                                            ("20261201T090000Z-old",), ())}
    return deploy.Plan(_inventory(tmp_path), "20261202T101500Z-new", {}, False, before)


def test_a_failing_pre_deploy_hook_stops_before_the_lock(tmp_path):
    _hook(tmp_path / "hooks", "pre-deploy", "#!/bin/sh\necho 'chat is down'\nexit 1\n")
    outcome = deploy.Outcome("deploy", "prod", release="20261202T101500Z-new")
    with pytest.raises(deploy.DeployError) as caught:
        deploy._run_hook(outcome, Clock(outcome.phases, lambda _: None),
                         _inventory(tmp_path), "pre-deploy", "20261201T090000Z-old")
    assert "the lock was not taken" in str(caught.value)
    assert "chat is down" in str(caught.value)


def test_a_failing_post_hook_is_recorded_and_the_deploy_stands(tmp_path):
    _hook(tmp_path / "hooks", "post-deploy", DUMP_ENV + "exit 2\n")
    outcome = deploy.Outcome("deploy", "prod", release="20261202T101500Z-new", who="ops@x",
                             ok=True)
    clock = Clock(outcome.phases, lambda _: None)
    deploy._post_hook(outcome, clock, _plan(tmp_path), "deploy")  # never raises
    assert outcome.ok
    assert "post-deploy exited with status 2" in outcome.hook_failure
    assert "HOOK FAILED" in outcome.summary() and "deploy itself succeeded" in outcome.summary()
    entry = json.loads(json.dumps(outcome.audit_entry()))
    assert entry["hooks"][0]["hook"] == "post-deploy" and entry["hooks"][0]["ok"] is False
    assert ["post-deploy", entry["phases"][0][1]] == entry["phases"][0]
    assert outcome.phases[0].ok is False
    seen = _seen(tmp_path, "post-deploy")
    assert (seen["FLEET_RELEASE"], seen["FLEET_PREVIOUS"], seen["FLEET_OPERATOR"]) == (
        "20261202T101500Z-new", "20261201T090000Z-old", "ops@x")


def test_post_rollback_sees_a_failed_outcome(tmp_path):
    _hook(tmp_path / "hooks", "post-rollback", DUMP_ENV)
    outcome = deploy.Outcome("rollback", "prod", release="20261201T090000Z-old", who="ops@x",
                             failure="switching failed on app1")
    deploy._post_hook(outcome, Clock(outcome.phases, lambda _: None), _plan(tmp_path),
                      "rollback")
    seen = _seen(tmp_path, "post-rollback")
    assert (seen["FLEET_ACTION"], seen["FLEET_OUTCOME"], seen["FLEET_FAILURE"]) == (
        "rollback", "failed", "switching failed on app1")
    assert outcome.hook_failure is None


def test_ansible_does_not_run_hooks_as_inventory_scripts(tmp_path):
    """The hooks directory sits inside the inventory Ansible reads (ansible.cfg ignores it)."""
    (tmp_path / "hosts.yml").write_text("all:\n  hosts:\n    h1:\n")
    marker = tmp_path / "ran"
    _hook(tmp_path / "hooks", "pre-deploy", f"#!/bin/sh\ntouch {marker}\necho '{{}}'\n")
    result = subprocess.run([ansible.tool("ansible-inventory"), "-i", str(tmp_path), "--list"],
                            capture_output=True, text=True, env=ansible.environment(),
                            cwd=ansible.ROOT, timeout=120)
    assert result.returncode == 0, result.stderr
    assert "h1" in result.stdout
    assert not marker.exists(), "ansible-inventory executed the hook"


def test_the_audit_table_shows_a_failed_post_hook():
    from fleet import audit

    entry = {"started": "2026-12-02T10:00:00+00:00", "who": "ops@x", "action": "deploy",
             "release": "20261202T101500Z-new", "ok": True, "phases": [["switch", 20.0]],
             "hooks": [{"hook": "post-deploy", "ok": False, "exit": 1}]}
    row = audit.table([entry]).splitlines()[2]
    assert "ok (post-deploy hook failed)" in row
    assert "hook failed" not in audit.table([{**entry, "hooks": []}])


# --- the example hook of inventory/production.example ------------------------------------

EXAMPLE = hooks.ROOT / "inventory" / "production.example" / "hooks"


def test_the_example_directory_passes_the_check():
    assert hooks.check(EXAMPLE) == []  # .sample files are examples, not hooks


@pytest.fixture()
def version_server():
    served = {"release": "20261202T101500Z-new"}

    class Handler(http.server.BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # noqa: N802 (http.server's name)
            body = json.dumps(served).encode()
            self.send_response(200 if self.path == "/version" else 404)
            self.send_header("Content-Type", "application/json")
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args) -> None:
            pass

    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", served
    server.shutdown()


@pytest.mark.parametrize("outcome", ["ok", "failed"])
def test_the_example_smoke_test_passes_when_the_release_is_served(tmp_path, version_server,
                                                                  outcome):
    url, _ = version_server
    directory = tmp_path / "hooks"
    _hook(directory, "post-deploy", (EXAMPLE / "post-deploy.sample").read_text())
    env_vars = {**hooks.variables("post-deploy", "prod", "deploy", "20261202T101500Z-new",
                                  None, "ops@x", tmp_path, outcome=outcome), "SITE_URL": url}
    result = hooks.run(directory, "post-deploy", env_vars, say=lambda _: None)
    assert result is not None and result.ok, result.message


def test_the_example_smoke_test_fails_when_another_release_is_served(tmp_path,
                                                                   version_server):
    url, served = version_server
    served["release"] = "20261201T090000Z-old"
    directory = tmp_path / "hooks"
    _hook(directory, "post-deploy", (EXAMPLE / "post-deploy.sample").read_text())
    env_vars = {**hooks.variables("post-deploy", "prod", "deploy", "20261202T101500Z-new",
                                  None, "ops@x", tmp_path, outcome="ok"), "SITE_URL": url}
    result = hooks.run(directory, "post-deploy", env_vars, say=lambda _: None)
    assert result is not None and not result.ok
    assert "serves 20261201T090000Z-old, expected 20261202T101500Z-new" in result.message
