"""`fab env.new`: a new environment from the example, refused for a bad name or an existing one."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from fleet import ansible, inventory
from fleet.ops import environments

EXAMPLE = inventory.INVENTORY_ROOT / environments.EXAMPLE_ENV


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    """An inventory/ with the real example in it (and a sandbox directory, as in the kit)."""
    shutil.copytree(EXAMPLE, tmp_path / environments.EXAMPLE_ENV)
    (tmp_path / "sandbox").mkdir()
    return tmp_path


def _snapshot(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


def test_new_copies_hosts_and_group_vars_and_notes_the_vault(root):
    created = environments.new("staging", root=root)
    target = root / "staging"
    assert created.path == target
    assert (target / "hosts.yml").read_bytes() == (EXAMPLE / "hosts.yml").read_bytes()
    for source in (EXAMPLE / "group_vars" / "all").glob("*.yml"):
        assert (target / "group_vars" / "all" / source.name).read_bytes() == source.read_bytes()
    # The example vault is a note, not a (placeholder) vault the pre-flight would refuse.
    assert not (target / environments.VAULT_EXAMPLE).exists()
    assert not (target / "group_vars" / "all" / "vault.yml").exists()
    note = (target / environments.VAULT_NOTE).read_text()
    assert "fab secrets.init --env staging" in note and "ANSIBLE_VAULT_PASSWORD_FILE" in note
    steps = "\n".join(created.next_steps())
    assert str(target / "hosts.yml") in steps and "secrets.init --env staging" in steps
    assert not list(root.glob(".staging*")), "no partial copy is left behind"


def test_new_environment_loads_with_the_example_hosts(root):
    environments.new("staging", root=root)
    inv = inventory.load("staging", root)
    assert inv.hosts_of("app") == ["app1.example.com", "app2.example.com"]
    assert inv.hostvars["db1.example.com"]["fleet_env"] == "production"


def test_ansible_reads_the_new_environment_despite_the_note(root):
    """Ansible's own group_vars loader must skip the markdown note (only YAML is read)."""
    environments.new("staging", root=root)
    result = subprocess.run(
        [ansible.tool("ansible-inventory"), "-i", str(root / "staging"), "--host",
         "app1.example.com"], capture_output=True, text=True, env=ansible.environment())
    assert result.returncode == 0, result.stderr
    hostvars = json.loads(result.stdout)
    assert hostvars["fleet_private_address"] == "10.0.0.21"
    assert hostvars["app_name"] == "fleetapp"


def test_new_refuses_an_existing_environment_and_changes_nothing(root):
    environments.new("staging", root=root)
    (root / "staging" / "hosts.yml").write_text("# edited by the operator\n")
    before = _snapshot(root)
    with pytest.raises(environments.EnvError) as refused:
        environments.new("staging", root=root)
    assert str(root / "staging") in str(refused.value)
    assert "already exists" in str(refused.value)
    assert _snapshot(root) == before


@pytest.mark.parametrize(("name", "why"), [
    ("prod/eu", "path separator"),
    ("../escape", "path separator"),
    ("my env", "whitespace"),
    ("sandbox", "sandbox"),
    (".hidden", "dot"),
    ("", "empty"),
    (environments.EXAMPLE_ENV, "template"),
    ("-staging", "letter or digit"),
])
def test_new_refuses_bad_names_and_creates_nothing(root, name, why):
    before = _snapshot(root)
    entries = sorted(p.name for p in root.iterdir())
    with pytest.raises(environments.EnvError) as refused:
        environments.new(name, root=root)
    assert why in str(refused.value)
    assert sorted(p.name for p in root.iterdir()) == entries
    assert _snapshot(root) == before


def test_new_refuses_a_source_that_is_not_a_template(root):
    with pytest.raises(environments.EnvError) as refused:
        environments.new("staging", source="nowhere", root=root)
    assert "--from 'nowhere'" in str(refused.value)
    assert not (root / "staging").exists()
