"""Releases on the hosts: which one is live, which came before, which can go.

On every app, worker and beat host (docs/architecture.md section 4):
    <app_root>/releases/<id>/   one release: code, its own venv, `.installed` once complete
    <app_root>/current          -> the live release
    <app_root>/previous         -> the release current pointed at before the last switch
Release ids start with a UTC timestamp, so sorting them sorts them by build time.
"""

from __future__ import annotations

import json
import shlex
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import PurePosixPath

from fleet import hosts, report
from fleet.inventory import Inventory
from fleet.settings import setting

DEFAULT_KEEP = 5
RELEASE_GROUPS = ("app", "workers", "beat")


def app_root(inv: Inventory) -> str:
    """The app's root on the hosts (app_root)."""
    return setting(inv, "app_root")


@dataclass(frozen=True)
class HostReleases:
    host: str
    live: str | None
    previous: str | None
    installed: tuple[str, ...]      # complete releases, oldest first
    incomplete: tuple[str, ...]     # unpacked but never finished (no marker)
    error: str | None = None
    venvs: tuple[str, ...] = ()     # complete dependency venvs (app_venvs_dir), by deps_id


def link_command(key: str, link: str) -> str:
    """A shell command printing `key=<target of link>`, empty when there is no such link.

    With release_name() the one reader of a host's live release: `fab status` asks for it in
    the same SSH command as the rest of a host's state.
    """
    return f"printf '{key}=%s\\n' \"$(readlink {link} 2>/dev/null)\""


def release_name(target: str) -> str | None:
    """The release id a link target (or a releases/<id>/ path) names; None when empty."""
    return PurePosixPath(target.strip().rstrip("/")).name if target.strip() else None


def _read_command(root: str, marker: str, venvs: str | None = None) -> str:
    quoted = shlex.quote(root)
    command = (f"cd {quoted} 2>/dev/null || exit 0; "
               f"{link_command('live', 'current')}; {link_command('previous', 'previous')}; "
               f"for d in releases/*/; do [ -d \"$d\" ] || continue; "
               f"if [ -e \"$d{marker}\" ]; then echo \"installed=$d\"; "
               "else echo \"incomplete=$d\"; fi; done")
    if venvs:  # marked .complete last by the installer (templates/app/release-install.py.j2)
        command += (f"; for v in {shlex.quote(venvs)}/*/; do [ -e \"$v.complete\" ] && "
                    "echo \"venv=$v\"; done; true")
    return command


def parse(host: str, output: str) -> HostReleases:
    live = previous = None
    installed: list[str] = []
    incomplete: list[str] = []
    venvs: list[str] = []
    for line in output.splitlines():
        key, _, value = line.partition("=")
        name = release_name(value)
        if key == "live":
            live = name
        elif key == "previous":
            previous = name
        elif key == "installed" and name:
            installed.append(name)
        elif key == "incomplete" and name:
            incomplete.append(name)
        elif key == "venv" and name:
            venvs.append(name)
    return HostReleases(host, live, previous, tuple(sorted(installed)), tuple(sorted(incomplete)),
                        venvs=tuple(sorted(venvs)))


def read(inv: Inventory, targets: Iterable[str] | None = None) -> dict[str, HostReleases]:
    """The releases of every app/worker/beat host (or of `targets`), read in parallel."""
    names = list(targets) if targets is not None else inv.hosts_of(*RELEASE_GROUPS)
    command = _read_command(app_root(inv), setting(inv, "app_release_marker"),
                            setting(inv, "app_venvs_dir"))
    results = hosts.run(inv, names, command, timeout=30)
    found = {}
    for host, result in results.items():
        if result.ok:
            found[host] = parse(host, result.stdout)
        else:
            found[host] = HostReleases(host, None, None, (), (),
                                       error=(result.stderr or result.stdout).strip()[:300])
    return found


def prune_plan(state: HostReleases, keep: int = DEFAULT_KEEP) -> list[str]:
    """Releases to delete: all but the newest `keep`, never the live or previous one.

    Incomplete releases (a crashed install) go too, unless one is the newest thing on the host,
    which may be an install still running.
    """
    if keep < 1:
        raise ValueError("keep must be at least 1")
    protected = {state.live, state.previous} - {None}
    kept = set(state.installed[-keep:]) | protected
    doomed = [r for r in state.installed if r not in kept]
    newest = max(state.installed + state.incomplete, default=None)
    doomed += [r for r in state.incomplete if r != newest and r not in protected]
    return sorted(doomed)


@dataclass(frozen=True)
class PrunePlan:
    """What the install of a release deletes (playbooks/release-install.yml, after the install
    itself): old releases per app/worker/beat host, static paths per load balancer."""
    releases: dict[str, list[str]]
    static_paths: dict[str, list[str]]
    static_files: dict[str, list[str]]   # load balancer -> static files among those paths


def install_prune(state: HostReleases, release: str, keep: int = DEFAULT_KEEP) -> list[str]:
    """The releases of one host that installing `release` lets go: prune_plan() of the host as
    it will be once `release` is live, sparing its live and previous release of now too."""
    after = HostReleases(state.host, release, state.live,
                         tuple(sorted({*state.installed, release})),
                         tuple(r for r in state.incomplete if r != release))
    spared = {state.live, state.previous, release}
    return [r for r in prune_plan(after, keep) if r not in spared]


def install_prune_plan(inv: Inventory, release: str, release_list: dict[str, str],
                       keep: int = DEFAULT_KEEP) -> PrunePlan:
    """Read the hosts (under the deploy lock) and plan the prune that goes with installing
    `release`: what prune_plan() lets go once `release` is live. Nothing live now goes either:
    not the live release, nor the previous one (a rollback's target), nor `release` itself.
    `release_list` is the new release's static list, not yet on the load balancers.
    """
    plans = {}
    kept: set[str] = set()
    for host, state in read(inv).items():
        if state.error is not None:
            continue
        doomed = install_prune(state, release, keep)
        if doomed:
            plans[host] = doomed
        kept.update(r for r in {*state.installed, release} if r not in doomed)
    static = static_plans(inv, kept, {release: release_list})
    return PrunePlan(plans, {lb: paths for lb, (_, paths) in static.items() if paths},
                     {lb: files for lb, (files, _) in static.items() if files})


def static_prune_plan(files: Iterable[str], lists: dict[str, dict[str, str]],
                      keep_releases: Iterable[str]) -> list[str]:
    """Static files (relative paths) no kept release names; lists: release -> its manifest."""
    keep = set(keep_releases)
    wanted = {"manifest.json"}
    for release, manifest in lists.items():
        if release in keep:
            wanted.update(manifest.values())
    # With no list of any kept release, nothing is known to be unused: delete nothing.
    if not keep & set(lists):
        return []
    return sorted(f for f in files if f not in wanted)


def static_plans(inv: Inventory, keep_releases: Iterable[str],
                 new_lists: dict[str, dict[str, str]] | None = None
                 ) -> dict[str, tuple[list[str], list[str]]]:
    """On every load balancer, the static files no kept release uses and the paths to delete
    (those files and the lists of releases not kept): lb -> (files, paths). Only reads.
    `new_lists`: lists of releases not published yet (release -> list), kept by as well.

    Where they are is the nginx role's to say (nginx_static_root, nginx_static_lists_dir).
    """
    keep = set(keep_releases)
    static_root = setting(inv, "nginx_static_root")
    lists_dir = setting(inv, "nginx_static_lists_dir")
    read_cmd = (f"cd {shlex.quote(static_root)} && find . -type f -printf '%P\\n'; echo ---; "
                f"for f in {shlex.quote(lists_dir)}/*.json; do [ -f \"$f\" ] && "
                "printf '%s %s\\n' \"$(basename \"$f\" .json)\" \"$(tr -d '\\n' < \"$f\")\"; "
                "done; true")

    def one(runner) -> tuple[list[str], list[str]]:
        result = runner.run(read_cmd, timeout=60)
        if not result.ok:
            return [], []
        files_part, _, lists_part = result.stdout.partition("---\n")
        lists = dict(new_lists or {})
        for line in lists_part.splitlines():
            release, _, body = line.partition(" ")
            try:
                lists[release] = json.loads(body)
            except json.JSONDecodeError:
                continue
        if not keep & set(lists):
            return [], []
        doomed = static_prune_plan(files_part.split(), lists, keep)
        stale_lists = [f"{lists_dir}/{r}.json" for r in lists
                       if r not in keep and r not in (new_lists or {})]
        return doomed, [f"{static_root}/{f}" for f in doomed] + stale_lists

    # Read over SSH; deleted by a play (nginx static_prune, in release-install.yml) like every
    # change to a host.
    return hosts.each(inv, inv.hosts_of("loadbalancers"), one)


def table(states: dict[str, HostReleases]) -> str:
    """One row per host and release, newest first; live and previous marked."""
    rows = []
    for host, state in sorted(states.items()):
        if state.error:
            rows.append((host, "?", f"unreadable: {state.error}"))
            continue
        if not state.installed and not state.incomplete:
            rows.append((host, "-", "no release"))
        for release in sorted(state.installed + state.incomplete, reverse=True):
            marks = [m for m, r in (("live", state.live), ("previous", state.previous))
                     if r == release]
            if release in state.incomplete:
                marks.append("incomplete")
            rows.append((host, release, ", ".join(marks)))
    return report.table(("host", "release", "state"), rows)
