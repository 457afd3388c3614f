"""Deploy hooks on the real sandbox (issue 15): inventory/sandbox/hooks/ around fab deploy.

A failing pre-deploy hook stops the deploy before the lock: every host keeps its release, the
new one is installed nowhere, the lock is free. A post-deploy hook sees the release the hosts
now serve; when it fails, fab exits 3, says the deploy succeeded, and the audit record has it.
A post-rollback hook runs after the rollback that returns the fleet to where it was.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from fleet_helpers import ROOT, fab, live_releases, versions

from fleet import hosts, inventory, lock
from fleet.audit import last
from fleet.ops import deploy, hooks, releases

APP = ROOT / "app"
HOOKS = hooks.directory(ROOT / "inventory" / "sandbox")
RECORD = """#!/bin/sh
env | grep '^FLEET_' | sort > {out}
"""


@pytest.fixture(scope="module")
def fleet(provisioned):
    inv = inventory.load("sandbox")
    if not all(v.startswith("2") for v in versions(inv).values()):
        assert deploy.deploy(app_dir=APP).ok  # the module also runs on its own
    return inv


@pytest.fixture()
def hook_dir():
    assert not HOOKS.exists(), f"{HOOKS} exists already: not the test's, not touching it"
    HOOKS.mkdir()
    yield HOOKS
    shutil.rmtree(HOOKS)


def _variant(tmp: Path, marker: str) -> Path:
    """The reference app with one changed file: a new release id."""
    target = tmp / marker / "app"
    shutil.copytree(APP, target, ignore=shutil.ignore_patterns(
        ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".coverage", "htmlcov"))
    (target / "fleetapp" / "hook_marker.py").write_text(f'MARKER = "{marker}"\n')
    return target


def _hook(directory: Path, name: str, body: str) -> Path:
    path = directory / name
    path.write_text(body)
    path.chmod(0o755)
    return path


def _seen(path: Path) -> dict[str, str]:
    return dict(line.split("=", 1) for line in path.read_text().splitlines())


def test_a_failing_pre_deploy_hook_changes_nothing(fleet, hook_dir, tmp_path):
    inv = fleet
    app_hosts = inv.hosts_of("app", "workers", "beat")
    before = live_releases(inv, app_hosts)
    served = versions(inv)
    _hook(hook_dir, "pre-deploy", "#!/bin/sh\necho \"refusing $FLEET_RELEASE\"\nexit 7\n")
    # fab deploy builds the working tree; the library takes the variant's directory.
    with pytest.raises(deploy.DeployError) as caught:
        deploy.deploy(app_dir=_variant(tmp_path, "pre"))
    message = str(caught.value)
    assert "pre-deploy hook inventory/sandbox/hooks/pre-deploy exited with status 7" in message
    assert "the lock was not taken" in message
    new_release = message.split("refusing ", 1)[1].split()[0].rstrip(";:")
    assert live_releases(inv, app_hosts) == before
    assert versions(inv) == served
    installed = releases.read(inv)
    assert all(new_release not in state.installed for state in installed.values()), new_release
    runner = hosts.runner(inv, deploy.lock_host(inv))
    try:
        assert lock.status(runner) is None
    finally:
        runner.close()


def test_a_non_executable_hook_is_refused_before_anything_runs(fleet, hook_dir):
    (hook_dir / "post-deploy").write_text("#!/bin/sh\nexit 0\n")
    result = fab("deploy")
    assert result.returncode == 1, result.stdout[-2000:]
    assert "hooks/post-deploy is not executable" in result.stderr
    assert "nothing was changed" in result.stderr


def test_post_deploy_sees_the_live_release_and_its_failure_is_reported(fleet, hook_dir,
                                                                        tmp_path):
    inv = fleet
    previous = versions(inv)[inv.hosts_of("app")[0]]
    seen = tmp_path / "post-deploy.env"
    _hook(hook_dir, "post-deploy", RECORD.format(out=seen) + "echo 'smoke test: red'\nexit 1\n")
    outcome = deploy.deploy(app_dir=_variant(tmp_path, "post"))
    assert outcome.ok, outcome.failure
    variables = _seen(seen)
    assert set(versions(inv).values()) == {outcome.release}
    assert variables["FLEET_RELEASE"] == outcome.release
    assert variables["FLEET_PREVIOUS"] == previous
    assert (variables["FLEET_ENV"], variables["FLEET_ACTION"], variables["FLEET_OUTCOME"]) == (
        "sandbox", "deploy", "ok")
    assert variables["FLEET_OPERATOR"] == outcome.who
    assert "post-deploy" in outcome.hook_failure and "smoke test: red" in outcome.hook_failure
    runner = hosts.runner(inv, deploy.lock_host(inv))
    try:
        record = last(runner, 1)[0]
        assert lock.status(runner) is None
    finally:
        runner.close()
    assert record["release"] == outcome.release and record["ok"] is True
    assert record["hooks"][0]["hook"] == "post-deploy" and record["hooks"][0]["ok"] is False
    assert record["hooks"][0]["exit"] == 1


def test_fab_exits_3_when_only_the_post_hook_failed_then_post_rollback_runs(fleet, hook_dir,
                                                                             tmp_path):
    inv = fleet
    live = versions(inv)[inv.hosts_of("app")[0]]
    previous = releases.read(inv)[inv.hosts_of("app")[0]].previous
    seen = tmp_path / "post-rollback.env"
    _hook(hook_dir, "post-rollback", RECORD.format(out=seen) + "exit 1\n")
    result = fab("rollback")
    assert result.returncode == 3, result.stdout[-3000:] + result.stderr
    assert f"{previous} is live (rollback succeeded), but the post-rollback hook" \
        in result.stderr
    assert set(versions(inv).values()) == {previous}
    variables = _seen(seen)
    assert (variables["FLEET_RELEASE"], variables["FLEET_PREVIOUS"],
            variables["FLEET_OUTCOME"]) == (previous, live, "ok")
    assert json.dumps(variables)  # plain strings only


def test_check_runs_no_hook(fleet, hook_dir, tmp_path):
    marker = tmp_path / "ran"
    for name in ("pre-build", "pre-deploy", "post-deploy"):
        _hook(hook_dir, name, f"#!/bin/sh\ntouch {marker}\n")
    result = fab("deploy", "--check")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr
    assert "no hook was run" in result.stdout
    assert not marker.exists()
