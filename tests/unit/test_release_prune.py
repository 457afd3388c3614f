"""The app role's release_prune task, run for real on this machine: how a deploy's install deletes
the old releases fleet chose for a host, and the dependency venvs no release links to any more.

It is one shell task, so its refusals are pinned here: a list naming the live release, a path or
a blank id deletes nothing and says why.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from local_play import local_app_host

from fleet import ansible

PLAY = """---
- name: Prune like a deploy's install does
  hosts: app1
  gather_facts: false
  tasks:
    - name: Delete the old releases
      ansible.builtin.include_role:
        name: app
        tasks_from: release_prune
"""


@pytest.fixture
def host(tmp_path: Path) -> Path:
    """Three releases: r1 and r2 on venv A, r3 (live) on venv B; venv C used by none."""
    venvs = tmp_path / "venvs"
    for venv in ("A", "B", "C"):
        (venvs / venv / "bin").mkdir(parents=True)
    for release, venv in (("r1", "A"), ("r2", "A"), ("r3", "B")):
        path = tmp_path / "releases" / release
        path.mkdir(parents=True)
        (path / "venv").symlink_to(venvs / venv)
    (tmp_path / "current").symlink_to("releases/r3/")
    local_app_host(tmp_path, {"app_root": str(tmp_path), "app_venvs_dir": str(venvs)}, PLAY)
    return tmp_path


def _prune(root: Path, releases: list[str]) -> ansible.PlaybookResult:
    return ansible.run_with_vars(root / "play.yml", root / "inventory",
                                 {"app_prune_releases": releases}, say=lambda _: None)


def _left(root: Path, kind: str) -> set[str]:
    return {path.name for path in (root / kind).iterdir()}


def test_old_releases_go_and_so_do_the_venvs_none_uses(host):
    result = _prune(host, ["r1"])
    assert result.ok and result.changed["app1"] == 1
    assert _left(host, "releases") == {"r2", "r3"}
    assert _left(host, "venvs") == {"A", "B"}  # C had no release; A still has r2
    result = _prune(host, ["r2", "gone-already"])
    assert result.ok
    assert _left(host, "releases") == {"r3"} and _left(host, "venvs") == {"B"}
    again = _prune(host, ["r2"])
    assert again.ok and again.changed.get("app1", 0) == 0


@pytest.mark.parametrize("bad", [["r1", "r3"], ["../r1"], ["r1", ".."], [""]])
def test_a_list_naming_the_live_release_or_a_path_deletes_nothing(host, bad):
    result = _prune(host, bad)
    assert not result.ok
    output = "\n".join(result.output)
    assert "app_prune_releases must name old release ids" in output, output
    assert "not the live release (r3)" in output and "nothing was deleted" in output, output
    assert _left(host, "releases") == {"r1", "r2", "r3"}
    assert _left(host, "venvs") == {"A", "B", "C"}
