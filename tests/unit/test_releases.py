"""fleet.ops.releases: reading a host's releases, planning prunes, and the `fab releases` table.

Proven here: `parse()` turns the read command's lines (absolute or relative `readlink` targets,
`releases/<id>/` globs) into the live, previous, installed and incomplete releases; the real
shell command of `_read_command()`, run through the local runner on a directory laid out like a
host (with a space in its path), produces output that `parse()` reads correctly; `prune_plan()`
keeps the newest N installed releases, never the live or previous one, removes crashed
installs unless one is the newest thing on the host, and refuses keep < 1 (also checked as
invariants over many random hosts); `static_prune_plan()` keeps what any kept release's list
names; `table()` marks live, previous and incomplete releases.
"""

from __future__ import annotations

import random
import re

import pytest

from fleet.ops import releases
from fleet.ops.releases import HostReleases, install_prune, parse, prune_plan, static_prune_plan
from fleet.remote import LocalRunner
from fleet.settings import role_defaults

MARKER = role_defaults()["app_release_marker"]

R1, R2, R3, R4, R5, R6, R7 = (f"2026010{i}T000000Z-{c * 7}" for i, c in
                              zip(range(1, 8), "abcdefg", strict=True))


def state(installed=(), incomplete=(), live=None, previous=None, host="app1"):
    return HostReleases(host, live, previous, tuple(sorted(installed)), tuple(sorted(incomplete)))


def rows(text: str) -> list[list[str]]:
    """The table's data rows, cells split on the two-space column gap."""
    return [re.split(r" {2,}", line.strip()) for line in text.splitlines()[2:]]


# --- parse -------------------------------------------------------------------------------


def test_parse_reads_absolute_link_targets_and_release_globs():
    output = (f"live=/srv/fleetapp/releases/{R3}\n"
              f"previous=/srv/fleetapp/releases/{R2}\n"
              f"installed=releases/{R3}/\n"
              f"installed=releases/{R1}/\n"
              f"installed=releases/{R2}/\n"
              f"incomplete=releases/{R4}/\n")
    got = parse("app1", output)
    assert got == HostReleases("app1", R3, R2, (R1, R2, R3), (R4,))
    assert got.error is None


def test_parse_reads_relative_and_trailing_slash_link_targets():
    got = parse("app1", f"live=releases/{R2}/\nprevious={R1}\ninstalled=releases/{R2}/\n")
    assert (got.live, got.previous, got.installed) == (R2, R1, (R2,))


def test_parse_of_a_host_without_links_or_releases():
    assert parse("app1", "live=\nprevious=\n") == HostReleases("app1", None, None, (), ())
    assert parse("app1", "") == HostReleases("app1", None, None, (), ())


def test_parse_ignores_noise_and_empty_values():
    output = ("Warning: something\n\ninstalled=\nincomplete=\n"
              f"unknown=releases/{R1}/\ninstalled=releases/{R1}/\n")
    got = parse("app1", output)
    assert got.installed == (R1,) and got.incomplete == ()
    assert got.live is None and got.previous is None


def test_parse_sorts_releases_oldest_first():
    output = "".join(f"installed=releases/{r}/\n" for r in (R5, R1, R3))
    assert parse("h", output).installed == (R1, R3, R5)


# --- the real read command ----------------------------------------------------------------


def host_root(tmp_path, installed=(), incomplete=(), live=None, previous=None, relative=False):
    """A directory laid out like <app_root> on a host; its path has a space to test quoting."""
    root = tmp_path / "srv dir" / "fleetapp"
    (root / "releases").mkdir(parents=True)
    for release in installed:
        (root / "releases" / release / "src").mkdir(parents=True)
        (root / "releases" / release / MARKER).write_text("")
    for release in incomplete:
        (root / "releases" / release / "src").mkdir(parents=True)
    (root / "releases" / "stray-file.txt").write_text("not a release")
    for link, release in (("current", live), ("previous", previous)):
        if release:
            target = f"releases/{release}" if relative else str(root / "releases" / release)
            (root / link).symlink_to(target)
    return root


def read_for_real(root) -> tuple[str, HostReleases]:
    result = LocalRunner().run(releases._read_command(str(root), MARKER), timeout=30)
    assert result.ok, result.stderr
    return result.stdout, parse("app1", result.stdout)


def test_real_read_command_and_parser_agree(tmp_path):
    root = host_root(tmp_path, installed=(R1, R2, R3), incomplete=(R4,), live=R3, previous=R2)
    stdout, got = read_for_real(root)
    # The shape parse() is written for: absolute link targets, glob paths with a slash.
    assert f"live={root}/releases/{R3}" in stdout.splitlines()
    assert f"incomplete=releases/{R4}/" in stdout.splitlines()
    assert got == HostReleases("app1", R3, R2, (R1, R2, R3), (R4,))


def test_real_read_command_with_relative_links(tmp_path):
    root = host_root(tmp_path, installed=(R1, R2), live=R2, previous=R1, relative=True)
    _, got = read_for_real(root)
    assert (got.live, got.previous, got.installed, got.incomplete) == (R2, R1, (R1, R2), ())


def test_real_read_command_on_a_fresh_host(tmp_path):
    root = host_root(tmp_path, incomplete=(R1,))
    _, got = read_for_real(root)
    assert got == HostReleases("app1", None, None, (), (R1,))


def test_real_read_command_when_the_app_root_is_missing(tmp_path):
    _, got = read_for_real(tmp_path / "no such root")
    assert got == HostReleases("app1", None, None, (), ())


def test_real_read_command_keeps_a_dangling_previous_link(tmp_path):
    root = host_root(tmp_path, installed=(R2, R3), live=R3)
    (root / "previous").symlink_to(str(root / "releases" / R1))  # R1 itself is gone
    _, got = read_for_real(root)
    assert got.previous == R1 and got.installed == (R2, R3)


def test_plan_from_real_output_spares_the_install_in_progress(tmp_path):
    root = host_root(tmp_path, installed=(R1, R2, R3, R4), incomplete=(R5,), live=R4,
                     previous=R3)
    _, got = read_for_real(root)
    assert prune_plan(got, keep=2) == [R1, R2]


# --- prune_plan ---------------------------------------------------------------------------


def test_prune_keeps_the_newest_n():
    s = state(installed=(R1, R2, R3, R4, R5, R6, R7), live=R7, previous=R6)
    assert prune_plan(s, keep=5) == [R1, R2]
    assert prune_plan(s, keep=2) == [R1, R2, R3, R4, R5]
    assert prune_plan(s) == [R1, R2]  # DEFAULT_KEEP is 5


def test_prune_never_removes_live_or_previous_even_when_old():
    # Rolled back far: live is old, previous is the newest.
    s = state(installed=(R1, R2, R3, R4, R5, R6, R7), live=R2, previous=R1)
    assert prune_plan(s, keep=3) == [R3, R4]


def test_prune_keep_one_still_spares_previous():
    s = state(installed=(R1, R2, R3), live=R3, previous=R2)
    assert prune_plan(s, keep=1) == [R1]


def test_prune_with_fewer_releases_than_keep_removes_nothing():
    assert prune_plan(state(installed=(R1, R2), live=R2, previous=R1), keep=5) == []
    assert prune_plan(state(), keep=5) == []


def test_prune_removes_crashed_installs_but_not_the_newest():
    s = state(installed=(R1, R3, R5), incomplete=(R2, R4, R6), live=R5, previous=R3)
    # R6 may be an install still running; R2 and R4 are crashed installs.
    assert prune_plan(s, keep=5) == [R2, R4]


def test_prune_removes_every_incomplete_older_than_the_newest_install():
    s = state(installed=(R1, R4), incomplete=(R2, R3), live=R4)
    assert prune_plan(s, keep=5) == [R2, R3]


def test_prune_spares_an_incomplete_release_that_is_live():
    s = state(installed=(R3,), incomplete=(R1, R2), live=R1, previous=R2)
    assert prune_plan(s, keep=1) == []


@pytest.mark.parametrize("keep", [0, -1])
def test_prune_refuses_keep_below_one(keep):
    with pytest.raises(ValueError, match="at least 1"):
        prune_plan(state(installed=(R1,)), keep=keep)


def test_prune_invariants_over_random_hosts():
    rng = random.Random(20260101)
    names = [f"2026{m:02d}01T000000Z-{m:07x}" for m in range(1, 13)]
    for _ in range(500):
        present = rng.sample(names, rng.randint(0, len(names)))
        incomplete = {r for r in present if rng.random() < 0.3}
        installed = sorted(set(present) - incomplete)
        live = rng.choice([None, *present])
        previous = rng.choice([None, *present])
        keep = rng.randint(1, 6)
        s = state(installed=installed, incomplete=incomplete, live=live, previous=previous)
        doomed = prune_plan(s, keep=keep)
        left = set(present) - set(doomed)
        assert doomed == sorted(set(doomed)) and set(doomed) <= set(present)
        assert live not in doomed and previous not in doomed
        if present:
            assert max(present) in left
        assert set(installed[-keep:]) <= left
        assert len([r for r in installed if r in left]) <= keep + 2
        assert not [r for r in incomplete if r in left and r not in (live, previous)
                    and r != max(present)]


# --- install_prune: what a deploy's install run deletes -----------------------------------


def test_install_prune_counts_the_new_release_among_the_kept():
    # Deploying R7 over live R6 (previous R5) with keep=3: R7, R6, R5 stay.
    s = state(installed=(R1, R2, R3, R4, R5, R6), live=R6, previous=R5)
    assert install_prune(s, R7, keep=3) == [R1, R2, R3, R4]


def test_install_prune_spares_what_is_live_and_previous_now():
    # Rolled back far: live R2, previous R1; deploying R7 with keep=1 keeps them both.
    s = state(installed=(R1, R2, R3, R4, R5, R6), live=R2, previous=R1)
    assert install_prune(s, R7, keep=1) == [R3, R4, R5, R6]


def test_install_prune_never_deletes_the_release_being_installed():
    # Redeploying an old build (its id sorts before the live one's) or retrying a crashed install.
    assert install_prune(state(installed=(R1, R2, R3), live=R3, previous=R2), R1, keep=1) == []
    s = state(installed=(R2, R3), incomplete=(R1, R4), live=R3, previous=R2)
    assert install_prune(s, R4, keep=2) == [R1]


def test_install_prune_matches_the_prune_after_the_switch_once_the_release_is_live():
    rng = random.Random(20261206)
    names = [f"2026{m:02d}01T000000Z-{m:07x}" for m in range(1, 13)]
    for _ in range(500):
        present = sorted(rng.sample(names[:-1], rng.randint(0, len(names) - 1)))
        live = rng.choice([None, *present])
        previous = rng.choice([None, *present])
        keep = rng.randint(1, 6)
        s = state(installed=present, live=live, previous=previous)
        # After the switch: the new release live, the old live release previous.
        after = state(installed=[*present, names[-1]], live=names[-1], previous=live)
        now, later = set(install_prune(s, names[-1], keep)), set(prune_plan(after, keep))
        assert now <= later, (s, keep)
        assert later - now <= {previous}, (s, keep)


# --- static_prune_plan -------------------------------------------------------------------


FILES = ["manifest.json", "app.aaaaaaaaaaaa.js", "app.bbbbbbbbbbbb.js",
         "vendor/vue.global.prod.cccccccccccc.js", "style.dddddddddddd.css", "orphan.txt"]
LISTS = {
    R1: {"app.js": "app.aaaaaaaaaaaa.js", "vendor/vue.global.prod.js":
         "vendor/vue.global.prod.cccccccccccc.js", "style.css": "style.dddddddddddd.css"},
    R2: {"app.js": "app.bbbbbbbbbbbb.js", "vendor/vue.global.prod.js":
         "vendor/vue.global.prod.cccccccccccc.js"},
}


def test_static_prune_keeps_what_kept_releases_name():
    assert static_prune_plan(FILES, LISTS, [R2]) == [
        "app.aaaaaaaaaaaa.js", "orphan.txt", "style.dddddddddddd.css"]
    assert static_prune_plan(FILES, LISTS, [R1, R2]) == ["orphan.txt"]


def test_static_prune_keeps_the_manifest_itself():
    assert "manifest.json" not in static_prune_plan(FILES, LISTS, [R2])


def test_static_prune_without_a_list_of_any_kept_release_deletes_nothing():
    assert static_prune_plan(FILES, LISTS, [R3]) == []
    assert static_prune_plan(FILES, {}, [R1]) == []
    assert static_prune_plan(FILES, LISTS, []) == []


def test_static_prune_ignores_lists_of_releases_not_kept():
    # R1's list names style.css, but R1 is not kept any more.
    assert "style.dddddddddddd.css" in static_prune_plan(FILES, LISTS, [R2, R3])


# --- table --------------------------------------------------------------------------------


def test_table_marks_live_previous_and_incomplete_newest_first():
    text = releases.table({
        "app2": state(installed=(R1, R2, R3), incomplete=(R4,), live=R3, previous=R2,
                      host="app2"),
        "app1": state(installed=(R2,), live=R2, host="app1"),
    })
    assert text.splitlines()[0].split() == ["host", "release", "state"]
    assert rows(text) == [
        ["app1", R2, "live"],
        ["app2", R4, "incomplete"],
        ["app2", R3, "live"],
        ["app2", R2, "previous"],
        ["app2", R1, "-"],
    ]


def test_table_marks_a_release_that_is_both_live_and_previous():
    text = releases.table({"w1": state(installed=(R1,), live=R1, previous=R1, host="w1")})
    assert rows(text) == [["w1", R1, "live, previous"]]


def test_table_shows_unreadable_and_empty_hosts():
    broken = HostReleases("db1", None, None, (), (), error="Permission denied (publickey)")
    text = releases.table({"db1": broken, "beat1": state(host="beat1")})
    assert rows(text) == [["beat1", "-", "no release"],
                          ["db1", "?", "unreadable: Permission denied (publickey)"]]


def test_table_is_newest_first_with_an_old_crashed_install():
    text = releases.table({"app1": state(installed=(R1, R3), incomplete=(R2,), live=R3)})
    assert [r[1] for r in rows(text)] == [R3, R2, R1]


def test_the_read_names_the_complete_venvs_only(tmp_path):
    root = host_root(tmp_path, installed=(R1,), incomplete=(), live=R1, previous=None)
    venvs = tmp_path / "venvs"
    (venvs / "deps-a").mkdir(parents=True)
    (venvs / "deps-a" / ".complete").touch()
    (venvs / "deps-b").mkdir()  # half built: not a venv to rely on
    result = LocalRunner().run(releases._read_command(str(root), MARKER, str(venvs)), timeout=30)
    assert result.ok, result.stderr
    assert parse("app1", result.stdout).venvs == ("deps-a",)
    empty = LocalRunner().run(releases._read_command(str(root), MARKER, str(tmp_path / "none")),
                              timeout=30)
    assert empty.ok and parse("app1", empty.stdout).venvs == ()
