"""fleet.ops.releases link_command() and release_name(): the one reader of a host's live release.

`fab releases`, `fab deploy`, node.add, the secrets rollout (through releases.read()) and
`fab status` (its own SSH command) all read `current` with these two. Run for real through the
local runner: an absolute link, a relative one, a trailing slash, no link at all, and a path
with a space; then `fab status`'s host command reads the same release.
"""

from __future__ import annotations

import shlex

from fleet.ops import releases, status
from fleet.remote import LocalRunner
from fleet.settings import role_defaults

RELEASE = "20260101T120000Z-abc1234"


def read_link(link) -> str | None:
    result = LocalRunner().run(releases.link_command("live", shlex.quote(str(link))), timeout=30)
    assert result.ok, result.stderr
    key, _, value = result.stdout.strip().partition("=")
    assert key == "live"
    return releases.release_name(value)


def test_absolute_link_names_its_release(tmp_path):
    (tmp_path / "releases" / RELEASE).mkdir(parents=True)
    (tmp_path / "current").symlink_to(tmp_path / "releases" / RELEASE)
    assert read_link(tmp_path / "current") == RELEASE


def test_relative_link_with_a_trailing_slash_names_its_release(tmp_path):
    (tmp_path / "releases" / RELEASE).mkdir(parents=True)
    (tmp_path / "current").symlink_to(f"releases/{RELEASE}/")
    assert read_link(tmp_path / "current") == RELEASE


def test_no_link_is_no_release(tmp_path):
    assert read_link(tmp_path / "current") is None


def test_release_name_of_empty_text_is_none():
    assert releases.release_name("") is None
    assert releases.release_name("  \n") is None


def test_status_host_command_reads_the_same_release(tmp_path):
    root = tmp_path / "srv app"
    (root / "releases" / RELEASE).mkdir(parents=True)
    (root / "current").symlink_to(root / "releases" / RELEASE)
    result = LocalRunner().run(status.host_command([], str(root), None), timeout=30)
    state = status.HostStatus("app1", ["app"])
    status.parse_host(state, result.stdout)
    scan = releases._read_command(str(root), role_defaults()["app_release_marker"])
    assert state.live == RELEASE == releases.parse(
        "app1", LocalRunner().run(scan, timeout=30).stdout).live
