"""app_shared_paths, run for real: the app role's release_shared tasks on this machine.

A path the app writes to (its instance folder) becomes a link into the shared directory: the
first release seeds it with what it ships there, and what the app wrote stays across releases.
"""

from __future__ import annotations

import getpass
import grp
import os
from pathlib import Path

from local_play import local_app_host

from fleet import ansible

PLAY = """---
- name: Link the shared paths like a deploy does
  hosts: app1
  gather_facts: false
  tasks:
    - name: Link the shared paths into the release
      ansible.builtin.include_role:
        name: app
        tasks_from: release_shared
"""


def _host(tmp_path: Path) -> tuple[Path, Path]:
    variables = {"app_releases_dir": str(tmp_path / "releases"),
                 "app_shared_dir": str(tmp_path / "shared"), "app_user": getpass.getuser(),
                 "app_group": grp.getgrgid(os.getgid()).gr_name}
    return local_app_host(tmp_path, variables, PLAY, "shared.yml")


def _release(tmp_path: Path, name: str, shipped: str) -> Path:
    src = tmp_path / "releases" / name / "src"
    (src / "instance").mkdir(parents=True)
    (src / "instance" / "settings.cfg").write_text(shipped)
    return src


def _link(playbook: Path, inventory: Path, release: str, paths: list[str]):
    return ansible.run_with_vars(playbook, inventory, {"deploy_release": release,
                                                       "app_shared_paths": paths},
                                 say=lambda _: None)


def test_a_shared_path_is_seeded_once_and_kept_across_releases(tmp_path):
    playbook, inventory = _host(tmp_path)
    first = _release(tmp_path, "r1", "shipped by r1\n")
    assert _link(playbook, inventory, "r1", ["instance", "var/uploads"]).ok
    shared = tmp_path / "shared" / "linked" / "instance"
    assert (first / "instance").is_symlink() and (first / "instance").resolve() == shared
    assert (shared / "settings.cfg").read_text() == "shipped by r1\n"
    assert (first / "var" / "uploads").resolve() == tmp_path / "shared/linked/var/uploads"
    (first / "instance" / "app.sqlite").write_text("written by the app\n")

    second = _release(tmp_path, "r2", "shipped by r2\n")
    assert _link(playbook, inventory, "r2", ["instance", "var/uploads"]).ok
    assert (second / "instance" / "app.sqlite").read_text() == "written by the app\n"
    assert (second / "instance" / "settings.cfg").read_text() == "shipped by r1\n"


def test_a_path_out_of_the_release_is_refused_naming_the_variable(tmp_path):
    playbook, inventory = _host(tmp_path)
    _release(tmp_path, "r1", "x\n")
    result = _link(playbook, inventory, "r1", ["../escape"])
    assert not result.ok
    assert "app_shared_paths" in "\n".join(result.output)
    assert not (tmp_path / "shared").exists() and not (tmp_path / "releases/escape").exists()
