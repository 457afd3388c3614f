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

from fleet import ansible, hosts, report
from fleet.inventory import Inventory
from fleet.settings import setting

DEFAULT_KEEP = 5
RELEASE_GROUPS = ("app", "workers", "beat")
PRUNE_PLAYBOOK = ansible.ROOT / "playbooks" / "release-prune.yml"


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


def link_command(key: str, link: str) -> str:
    """A shell command printing `key=<target of link>`, empty when there is no such link.

    With release_name() the one reader of a host's live release: `fab status` asks for it in
    the same SSH command as the rest of a host's state.
    """
    return f"printf '{key}=%s\\n' \"$(readlink {link} 2>/dev/null)\""


def release_name(target: str) -> str | None:
    """The release id a link target (or a releases/<id>/ path) names; None when empty."""
    return PurePosixPath(target.strip().rstrip("/")).name if target.strip() else None


def _read_command(root: str, marker: str) -> str:
    quoted = shlex.quote(root)
    return (f"cd {quoted} 2>/dev/null || exit 0; "
            f"{link_command('live', 'current')}; {link_command('previous', 'previous')}; "
            f"for d in releases/*/; do [ -d \"$d\" ] || continue; "
            f"if [ -e \"$d{marker}\" ]; then echo \"installed=$d\"; "
            "else echo \"incomplete=$d\"; fi; done")


def parse(host: str, output: str) -> HostReleases:
    live = previous = None
    installed: list[str] = []
    incomplete: list[str] = []
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
    return HostReleases(host, live, previous, tuple(sorted(installed)), tuple(sorted(incomplete)))


def read(inv: Inventory, targets: Iterable[str] | None = None) -> dict[str, HostReleases]:
    """The releases of every app/worker/beat host (or of `targets`), read in parallel."""
    names = list(targets) if targets is not None else inv.hosts_of(*RELEASE_GROUPS)
    command = _read_command(app_root(inv), setting(inv, "app_release_marker"))
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


def prune(inv: Inventory, keep: int = DEFAULT_KEEP,
          say: ansible.Say = print) -> tuple[dict[str, list[str]], dict[str, list[str]]]:
    """Delete old releases on every host and the static files no kept release uses, in one run
    of playbooks/release-prune.yml: (host -> releases removed, load balancer -> files removed).
    """
    states = read(inv)
    plans = {host: doomed for host, state in states.items()
             if state.error is None and (doomed := prune_plan(state, keep))}
    kept = {r for host, state in states.items() for r in state.installed
            if r not in plans.get(host, ())}
    static = static_plans(inv, kept)
    paths = {lb: removed for lb, (_, removed) in static.items() if removed}
    if not plans and not paths:
        return {}, {}
    result = ansible.run_with_vars(PRUNE_PLAYBOOK, inv.path,
                                   {"prune_releases": plans, "prune_static_paths": paths},
                                   limit=",".join(sorted({*plans, *paths})), say=say)
    return ({host: doomed for host, doomed in plans.items() if _pruned(result, host)},
            {lb: doomed for lb, (doomed, _) in static.items() if doomed and _pruned(result, lb)})


def _pruned(result: ansible.PlaybookResult, host: str) -> bool:
    recap = result.recap.get(host)
    return recap is not None and recap.healthy


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


def static_plans(inv: Inventory, keep_releases: Iterable[str]
                 ) -> dict[str, tuple[list[str], list[str]]]:
    """On every load balancer, the static files no kept release uses and the paths to delete
    (those files and the lists of releases not kept): lb -> (files, paths). Only reads.

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
        lists = {}
        for line in lists_part.splitlines():
            release, _, body = line.partition(" ")
            try:
                lists[release] = json.loads(body)
            except json.JSONDecodeError:
                continue
        if not keep & set(lists):
            return [], []
        doomed = static_prune_plan(files_part.split(), lists, keep)
        stale_lists = [f"{lists_dir}/{r}.json" for r in lists if r not in keep]
        return doomed, [f"{static_root}/{f}" for f in doomed] + stale_lists

    # Read over SSH; deleted by a play (nginx static_prune) like every change to a host.
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
