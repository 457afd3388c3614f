"""The app role's release_link tasks, run for real on this machine: how every deploy, rollback
and node.add points `current` (and `previous`) at a release.

One task does it all, so its edge cases are pinned here: the first link, a switch that moves
previous, a re-run that changes nothing, a relative link with a trailing slash, and a release
without its marker, which is refused naming it and leaves both links alone.
"""

from __future__ import annotations

from pathlib import Path

from local_play import local_app_host

from fleet import ansible
from fleet.settings import role_defaults

PLAY = """---
- name: Link a release like a deploy does
  hosts: app1
  gather_facts: false
  tasks:
    - name: Point current at the release
      ansible.builtin.include_role:
        name: app
        tasks_from: release_link
"""
MARKER = role_defaults()["app_release_marker"]


def _release(tmp_path: Path, name: str, installed: bool = True) -> Path:
    path = tmp_path / "releases" / name
    path.mkdir(parents=True)
    if installed:
        (path / MARKER).write_text(name + "\n")
    return path


def _link(tmp_path: Path, release: str) -> ansible.PlaybookResult:
    if not (tmp_path / "link.yml").exists():
        local_app_host(tmp_path, {"app_root": str(tmp_path)}, PLAY, "link.yml")
    return ansible.run_with_vars(tmp_path / "link.yml", tmp_path / "inventory",
                                 {"app_link_release": release}, say=lambda _: None)


def _changed(result: ansible.PlaybookResult) -> bool:
    return result.changed.get("app1", 0) > 0


def test_first_link_sets_current_and_no_previous(tmp_path):
    first = _release(tmp_path, "r1")
    result = _link(tmp_path, "r1")
    assert result.ok and _changed(result)
    assert (tmp_path / "current").resolve() == first
    assert not (tmp_path / "previous").exists() and not (tmp_path / "previous").is_symlink()


def test_a_switch_moves_previous_and_a_rerun_changes_nothing(tmp_path):
    first, second = _release(tmp_path, "r1"), _release(tmp_path, "r2")
    assert _link(tmp_path, "r1").ok
    assert _link(tmp_path, "r2").ok
    assert (tmp_path / "current").resolve() == second
    assert (tmp_path / "previous").resolve() == first
    again = _link(tmp_path, "r2")
    assert again.ok and not _changed(again)
    assert (tmp_path / "previous").resolve() == first
    assert not list(tmp_path.glob("*.new"))


def test_a_relative_link_with_a_trailing_slash_is_the_same_release(tmp_path):
    first, second = _release(tmp_path, "r1"), _release(tmp_path, "r2")
    (tmp_path / "current").symlink_to("releases/r1/")
    assert _link(tmp_path, "r1").ok
    assert not (tmp_path / "previous").is_symlink()  # r1 did not replace itself
    assert _link(tmp_path, "r2").ok
    assert (tmp_path / "previous").resolve() == first
    assert (tmp_path / "current").resolve() == second


def test_a_release_without_its_marker_is_refused_and_nothing_moves(tmp_path):
    first = _release(tmp_path, "r1")
    _release(tmp_path, "r2", installed=False)
    assert _link(tmp_path, "r1").ok
    result = _link(tmp_path, "r2")
    assert not result.ok
    assert "release r2 is not installed on app1" in "\n".join(result.output)
    assert (tmp_path / "current").resolve() == first
    assert not (tmp_path / "previous").is_symlink()
