"""What a provision records about the files it manages (fleet/ops/converged.py).

The kit's callback names the files each host's template and copy tasks wrote; a real local
playbook run shows it keeps a host's files and leaves out what a delegated task wrote on the
control node, a skipped task and a failed one. The record and its check run on the sandbox
(tests/integration/test_provision.py): they need systemd and nftables.
"""

from __future__ import annotations

import sys
from pathlib import Path

import yaml

from fleet import ansible, inventory
from fleet.ops import converged


def test_the_callback_names_the_files_a_hosts_template_and_copy_tasks_wrote(tmp_path):
    (tmp_path / "inventory.yml").write_text(
        "all:\n  hosts:\n    here:\n      ansible_connection: local\n"
        f"      ansible_python_interpreter: {sys.executable}\n")
    (tmp_path / "page.j2").write_text("{{ 40 + 2 }}\n")
    target = tmp_path / "host"
    (tmp_path / "play.yml").write_text(f"""
- hosts: all
  gather_facts: false
  tasks:
    - ansible.builtin.template:
        src: {tmp_path}/page.j2
        dest: {target}/page.txt
    - ansible.builtin.copy:
        content: "{{{{ item }}}}\\n"
        dest: "{target}/{{{{ item }}}}.txt"
      loop: [one, two]
    - ansible.builtin.copy:
        content: "skipped\\n"
        dest: {target}/skipped.txt
      when: false
    - ansible.builtin.copy:
        content: "a report\\n"
        dest: {tmp_path}/control-node.txt
      delegate_to: localhost
    - ansible.builtin.copy:
        src: {tmp_path}/no-such-file
        dest: {target}/failed.txt
      ignore_errors: true
""")
    target.mkdir()
    result = ansible.run_playbook(tmp_path / "play.yml", tmp_path / "inventory.yml",
                                  say=lambda _line: None)
    assert result.ok, "\n".join(result.output[-30:])
    assert (target / "page.txt").read_text().strip() == "42"
    assert result.written == {"here": {str(target / "page.txt"), str(target / "one.txt"),
                                       str(target / "two.txt")}}


def test_a_record_is_only_complete_once_its_digest_is_written():
    command = converged.record_command("abc123", ["/etc/b.conf", "/etc/a file.conf"])
    steps = command.split("; ")
    assert steps[-1] == f"echo abc123 > {converged.RECORD_DIR}/digest"
    assert f"rm -f {converged.RECORD_DIR}/digest" in steps[:3]
    assert "'/etc/a file.conf' /etc/b.conf" in command  # quoted, in a stable order


def test_the_provision_digest_follows_the_inventory_and_covers_the_kit(tmp_path):
    env = tmp_path / "env"
    env.mkdir()
    (env / "hosts.yml").write_text(yaml.safe_dump(
        {"all": {"children": {"app": {"hosts": {"app1": {"ansible_host": "10.0.0.9"}}}}}}))
    first = converged.digest(inventory.load(str(env)))
    assert converged.digest(inventory.load(str(env))) == first
    (env / "group_vars").mkdir()
    (env / "group_vars" / "all.yml").write_text("app_name: shop\n")
    assert converged.digest(inventory.load(str(env))) != first
    kit = Path(converged.__file__).resolve().parents[2]
    assert {"playbooks", "roles", "templates", "ansible.cfg"} <= set(converged.KIT_PARTS)
    assert all((kit / part).exists() for part in converged.KIT_PARTS)
