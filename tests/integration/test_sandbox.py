"""A small real sandbox: up, reach every host by Ansible and Fabric, down, nothing left."""

import json
import os
import subprocess
import sys
import uuid
from pathlib import Path

import docker
import pytest
import yaml
from fabric import Connection

from fleet.sandbox.containers import LABEL, Sandbox, SandboxError
from fleet.sandbox.topology import HostSpec

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent


@pytest.fixture
def client():
    c = docker.from_env()
    yield c
    c.close()


def _owned(client, name):
    label = {"label": f"{LABEL}={name}"}
    return (client.containers.list(all=True, filters=label), client.networks.list(filters=label))


def test_two_host_sandbox_answers_ansible_and_fabric_then_leaves_nothing(client, tmp_path):
    name = f"fftest-{uuid.uuid4().hex[:6]}"
    sandbox = Sandbox(name=name, root=tmp_path, client=client, say=lambda _: None)
    specs = [HostSpec("lb1", ("loadbalancers",)), HostSpec("app1", ("app", "workers", "beat"))]
    try:
        states = sandbox.up(specs, http_port=None, https_port=None)
        assert {s.name for s in states} == {"lb1", "app1"}
        assert all(s.status == "running" and s.address for s in states)

        ping = subprocess.run(
            [BIN / "ansible", "all", "-i", sandbox.inventory_path, "-m", "ansible.builtin.ping",
             "-o"], capture_output=True, text=True, cwd=ROOT, timeout=120)
        assert ping.returncode == 0, ping.stdout + ping.stderr
        assert ping.stdout.count("SUCCESS") == 2

        for state in states:
            with Connection(state.address, user="fleet", connect_kwargs={
                    "key_filename": str(sandbox.key_path), "look_for_keys": False}) as conn:
                assert conn.run("hostname", hide=True, in_stream=False).stdout.strip() == state.name
                assert conn.run("sudo -n systemctl is-system-running", hide=True,
                                warn=True, in_stream=False).stdout.strip() == "running"

        # Re-running changes nothing and reports the same hosts.
        ids = sorted(c.id for c in _owned(client, name)[0])
        again = sandbox.up(specs, http_port=None, https_port=None)
        assert again == sandbox.hosts()
        assert sorted(c.id for c in _owned(client, name)[0]) == ids

        # Adding a host (as `fab sandbox.add` does) keeps the others and registers the new one.
        sandbox.up([HostSpec("app2", ("app",))], http_port=None, https_port=None)
        assert {c.id for c in _owned(client, name)[0]} > set(ids)
        assert set(yaml.safe_load(sandbox.inventory_path.read_text())
                   ["all"]["children"]["app"]["hosts"]) == {"app1", "app2"}
    finally:
        removed = sandbox.down()
    assert any(r.startswith("network ") for r in removed)
    containers, networks = _owned(client, name)
    assert containers == [] and networks == []
    assert not (tmp_path / ".sandbox" / name).exists()
    assert not sandbox.inventory_path.exists()


def test_foreign_network_with_our_name_is_refused_and_kept(client, tmp_path):
    name = f"fftest-{uuid.uuid4().hex[:6]}"
    foreign = client.networks.create(f"{name}-net", driver="bridge")
    try:
        sandbox = Sandbox(name=name, root=tmp_path, client=client, say=lambda _: None)
        with pytest.raises(SandboxError, match=f"network named {name}-net exists and was not"):
            sandbox.up([HostSpec("app1", ("app",))], http_port=None, https_port=None)
        assert _owned(client, name) == ([], [])
        assert client.networks.get(foreign.id).name == f"{name}-net"
        assert not (tmp_path / ".sandbox").exists()
    finally:
        foreign.remove()


@pytest.mark.parametrize(("args", "message"), [
    (["--apps", "0"], "--apps must be between 1 and 8, got 0"),
    (["--workers", "99"], "--workers must be between 1 and 8, got 99"),
    (["--colour", "red"], "No idea what '--colour' is"),
])
def test_bad_options_create_nothing(client, args, message):
    name = f"fftest-{uuid.uuid4().hex[:6]}"
    env = dict(os.environ, FLEET_SANDBOX=name)
    before = json.dumps(sorted(i.id for i in client.images.list()))
    run = subprocess.run([BIN / "fab", "sandbox.up", *args], capture_output=True, text=True,
                         cwd=ROOT, env=env, timeout=60)
    assert run.returncode != 0
    assert message in run.stdout + run.stderr
    assert _owned(client, name) == ([], [])
    assert json.dumps(sorted(i.id for i in client.images.list())) == before
    assert not (ROOT / ".sandbox" / name).exists()
