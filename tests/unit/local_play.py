"""A role's tasks run for real on this machine: an inventory of one app host, app1, that is this
machine over Ansible's local connection, and a playbook beside it."""

from __future__ import annotations

import sys
from pathlib import Path

import yaml


def local_app_host(tmp_path: Path, variables: dict, play: str,
                   name: str = "play.yml") -> tuple[Path, Path]:
    """(playbook, inventory) under tmp_path: `play` run against app1 with `variables`."""
    local = {"ansible_connection": "local", "ansible_python_interpreter": sys.executable,
             "ansible_become": False}
    inventory = tmp_path / "inventory"
    inventory.mkdir()
    (inventory / "hosts.yml").write_text(yaml.safe_dump({"all": {
        "vars": variables, "children": {"app": {"hosts": {"app1": local}}}}}))
    playbook = tmp_path / name
    playbook.write_text(play)
    return playbook, inventory
