"""`fab node.*`: grow, service and shrink a running fleet behind its load balancers.

add     inventory -> provision only that host (and the database's grants) -> install the live
        release from the same artifact -> start and health-gate it -> only then into every
        load balancer's upstream (app) or consuming jobs (workers).
drain   every load balancer marks the host `down` and waits for its in-flight requests.
enable  the host must pass /readyz, then every load balancer sends it requests again.
remove  drain, stop its programs, out of the inventory, the upstreams and the database grants.

add and remove change the fleet, so they hold the deploy lock and leave an audit record, like a
deploy. drain and enable are quick but take the lock too, so they never race a deploy's own
drains and re-enables (a deploy leaves a host that was drained by hand drained).
"""

from __future__ import annotations

import json
import shlex
import tarfile
import tempfile
from collections.abc import Callable
from contextlib import AbstractContextManager
from dataclasses import dataclass
from pathlib import Path

from fleet import ansible, artifact, hosts, inventory, inventory_file, phases, upstream
from fleet.inventory import Inventory
from fleet.ops import provision as provisioning
from fleet.ops import releases, status
from fleet.ops.operation import Tracked, operation
from fleet.phases import Clock
from fleet.settings import setting

PLAYBOOKS = ansible.ROOT / "playbooks"
NODE_GROUPS = ("app", "workers")
Say = Callable[[str], None]


class NodeError(RuntimeError):
    """The node operation was refused or stopped; the message says what state is left."""


@dataclass
class NodeOutcome(Tracked):
    action: str
    env: str
    host: str
    release: str = ""

    def summary(self) -> str:
        verdict = (f"{self.action} {self.host}: done" if self.ok
                   else f"{self.action} {self.host} FAILED: {self.failure}")
        return phases.table(self.phases, self.ok) + "\n" + verdict

    def audit_entry(self) -> dict:
        return self.audit_record(f"{self.action} {self.host}", self.env, self.release)


# --- the load balancers' upstreams ----------------------------------------------------------

def _ctl(inv: Inventory) -> str:
    return setting(inv, "nginx_upstream_ctl")


def address_of(inv: Inventory, host: str) -> str:
    return str(inv.hostvars[host].get("fleet_private_address") or host)


parse_list = upstream.parse  # the name tests and callers know


def upstreams(inv: Inventory) -> dict[str, dict[str, str]]:
    """Every load balancer's upstream: lb -> {address: up | down}."""
    results = hosts.run(inv, inv.hosts_of("loadbalancers"), f"{shlex.quote(_ctl(inv))} list")
    unreadable = {lb: (r.stderr or r.stdout).strip() for lb, r in results.items() if not r.ok}
    if unreadable:
        raise NodeError("cannot read the upstream of " + "; ".join(
            f"{lb}: {why}" for lb, why in unreadable.items()) + "; nothing was changed")
    return {lb: parse_list(r.stdout) for lb, r in results.items()}


def serving(inv: Inventory, ups: dict[str, dict[str, str]]) -> list[str]:
    """App hosts every load balancer sends requests to."""
    return [h for h in inv.hosts_of("app")
            if ups and all(u.get(address_of(inv, h)) == "up" for u in ups.values())]


def _on_load_balancers(inv: Inventory, action: str, address: str,
                       timeout: float | None = None, say: Say = print) -> None:
    """playbooks/node-upstream.yml: `action` (drain | enable) for `address` on every LB."""
    variables = {"nginx_ctl_action": action, "nginx_ctl_address": address}
    if timeout is not None:
        variables["nginx_ctl_timeout"] = f"{timeout:g}"
    result = ansible.run_with_vars(PLAYBOOKS / "node-upstream.yml", inv.path, variables, say=say)
    if not result.ok:
        failed = ", ".join(result.failed_hosts) or ", ".join(inv.hosts_of("loadbalancers"))
        raise NodeError(f"{action} {address} failed on {failed} (the play's output above says "
                        "why)")


def _require_app_host(inv: Inventory, host: str, action: str) -> None:
    if host not in inv.hostvars:
        raise NodeError(f"{host} is not in inventory '{inv.env}' ({inv.path}/hosts.yml)")
    if host not in inv.hosts_of("app"):
        raise NodeError(f"{action} works on app hosts behind the load balancers; {host} is in "
                        f"{', '.join(g for g, m in inv.groups.items() if host in m)}")


def drain(inv: Inventory, host: str, timeout: float | None = None, force: bool = False,
          say: Say = print) -> None:
    """Stop sending new requests to `host` and wait for the ones in flight (every LB)."""
    _require_app_host(inv, host, "node.drain")
    others = [h for h in serving(inv, upstreams(inv)) if h != host]
    if not others and not force:
        raise NodeError(f"{host} is the last app host taking requests: draining it would leave "
                        "the load balancers with no server, so every request would fail. Add or "
                        "enable another app host first (or pass --force); nothing was changed")
    say(f"node.drain: taking {host} out of {', '.join(inv.hosts_of('loadbalancers'))} and "
        "waiting for its in-flight requests")
    _on_load_balancers(inv, "drain", address_of(inv, host), timeout, say)


def ready(inv: Inventory, host: str) -> str:
    """`host`'s answer on app_ready_path, asked from the first load balancer (as nginx would),
    on the port it sends the host's requests to."""
    port = status.live_ports(inv)[host]
    url = f"http://{address_of(inv, host)}:{port}{setting(inv, 'app_ready_path')}"
    lb = inv.hosts_of("loadbalancers")[0]
    result = hosts.run(inv, [lb], status.probe_command(url))[lb]
    return (result.stdout or result.stderr).strip() or "no answer"


def enable(inv: Inventory, host: str, say: Say = print) -> None:
    """Send requests to `host` again, once it passes /readyz."""
    _require_app_host(inv, host, "node.enable")
    answer = ready(inv, host)
    if answer != "200":
        raise NodeError(f"{host} does not pass /readyz (answer: {answer}), so it stays out of "
                        f"the load balancers; see `fab logs web --host {host}`")
    say(f"node.enable: {host} passes /readyz; putting it back into "
        f"{', '.join(inv.hosts_of('loadbalancers'))}")
    _on_load_balancers(inv, "enable", address_of(inv, host), say=say)


# --- add and remove: locked, timed, audited --------------------------------------------------

def _locked(inv: Inventory, outcome: NodeOutcome, say: Say) -> AbstractContextManager[Clock]:
    """The node command as a locked operation (fleet/ops/operation.py)."""
    return operation(inv, outcome.action, outcome.release or "-", outcome, NodeError, say)


def live_release(inv: Inventory, exclude: str) -> tuple[str, str]:
    """(release, a host that runs it): the one release every other app/worker host runs."""
    others = [h for h in inv.hosts_of(*releases.RELEASE_GROUPS) if h != exclude]
    states = releases.read(inv, others)
    broken = {h: s.error for h, s in states.items() if s.error}
    if broken:
        raise NodeError("cannot read the releases on " + "; ".join(
            f"{h}: {e}" for h, e in broken.items()) + "; nothing was changed")
    live = {s.live for s in states.values() if s.live}
    if not live:
        raise NodeError("no release is live on the fleet yet: node.add joins a running fleet. "
                        "Provision and deploy instead (`fab provision`, `fab deploy`); nothing "
                        "was changed")
    if len(live) > 1:
        runs = ", ".join(f"{h}={s.live}" for h, s in sorted(states.items()))
        raise NodeError(f"the hosts run different releases ({runs}): finish the deploy or roll "
                        "back first, so the new node gets the one live release; nothing was "
                        "changed")
    release = live.pop()
    source = next(h for h, s in sorted(states.items()) if s.live == release)
    return release, source


def cached_artifact(release: str, cache_dir: Path = artifact.CACHE_DIR) -> Path | None:
    """The archive of `release` in this machine's artifact cache, if it was built here."""
    for manifest in sorted(cache_dir.glob("*/manifest.json")):
        try:
            data = json.loads(manifest.read_text())
        except (OSError, ValueError):
            continue
        archive = manifest.parent / str(data.get("archive", ""))
        if data.get("release_id") == release and archive.is_file():
            return archive
    return None


def fetch_artifact(inv: Inventory, release: str, source: str, dest_dir: Path) -> Path:
    """Pack the release as installed on `source` (manifest, src, wheels) and copy it here.

    The same files the artifact shipped, checked again against its manifest on install.
    """
    root = releases.app_root(inv)
    remote = f"/tmp/flaskfleet-{release}.tar.gz"
    runner = hosts.runner(inv, source)
    try:
        packed = runner.run(
            f"tar -C {shlex.quote(root + '/releases')} -czf {shlex.quote(remote)} "
            + " ".join(shlex.quote(f"{release}/{part}") for part in ("manifest.json", "src",
                                                                     "wheels")), timeout=300)
        if not packed.ok:
            raise NodeError(f"could not pack release {release} on {source}: "
                            f"{packed.stderr.strip()}; nothing was changed on the new node")
        local = dest_dir / f"{release}.tar.gz"
        runner.get(remote, local)
        runner.run(f"rm -f {shlex.quote(remote)}")
    finally:
        runner.close()
    return local


def _app_wheel(archive: Path) -> str:
    with tarfile.open(archive) as tar:
        member = next(m for m in tar.getmembers() if m.name.endswith("/manifest.json")
                      and m.name.count("/") == 1)
        return json.load(tar.extractfile(member))["app_wheel"] or ""


def _add_to_inventory(inv: Inventory, host: str, group: str, address: str | None,
                      ssh_host: str | None) -> dict[Path, str] | None:
    """Put `host` into `group` in the inventory file; the files' old text, to undo it."""
    if host in inv.hosts_of(group):
        return None
    if host not in inv.hostvars and not address:
        raise NodeError(f"{host} is not in inventory '{inv.env}': give its private address with "
                        "--address (and --ssh-host if SSH reaches it elsewhere); nothing was "
                        "changed")
    variables = {}
    if host not in inv.hostvars:
        variables = {"ansible_host": ssh_host or address, "fleet_private_address": address}
    before = {p: p.read_text() for p in inv.path.glob("*.y*ml")}
    try:
        changed = inventory_file.add_host(inv.path, group, host, variables)
    except inventory_file.InventoryFileError as exc:
        raise NodeError(f"{exc}; nothing was changed") from None
    return {changed: before[changed]}


def _undo(files: dict[Path, str] | None) -> None:
    for path, text in (files or {}).items():
        path.write_text(text)


def add(env: str, host: str, group: str, address: str | None = None,
        ssh_host: str | None = None, say: Say = print) -> NodeOutcome:
    """Add `host` to a running fleet as an app or worker host, on the live release."""
    if group not in NODE_GROUPS:
        raise NodeError(f"--group must be one of {', '.join(NODE_GROUPS)}, not {group!r} (the "
                        "single beat host, load balancers and databases are set up with "
                        "`fab provision`)")
    inv = _inventory(env)
    if host in inv.hosts_of(group) and _already_working(inv, host, group):
        raise NodeError(f"{host} is already a working {group} host; nothing was changed")
    release, source = live_release(inv, exclude=host)
    outcome = NodeOutcome("node.add", env, host, release)
    with _locked(inv, outcome, say) as clock:
        with clock.phase("inventory", f"{host} into group {group}"):
            undo = _add_to_inventory(inv, host, group, address, ssh_host)
            say(f"inventory: {host} is in group {group} of {inv.path}"
                + ("" if undo is None else " (added)"))
        try:
            _join(env, host, group, release, source, clock, say)
        except NodeError:
            if undo:
                _undo(undo)
                say(f"inventory: {host} taken out of {inv.path} again")
            raise
    return outcome


def _already_working(inv: Inventory, host: str, group: str) -> bool:
    """Whether `host` already runs a release (and, for app, is in every upstream)."""
    if not releases.read(inv, [host])[host].live:
        return False
    return group != "app" or all(address_of(inv, host) in u for u in upstreams(inv).values())


def _join(env: str, host: str, group: str, release: str, source: str, clock: Clock,
          say: Say) -> None:
    # db and redis too: their grants and their firewall open to the app/worker groups.
    with clock.phase("provision", f"provision {host} (and the data tiers' client lists)"):
        try:
            provisioning.provision(env, limit=f"{host}:db:redis", say=say)
        except provisioning.ProvisionError as exc:
            raise NodeError(f"provisioning {host} failed: {exc}") from None
    inv = _inventory(env)
    with tempfile.TemporaryDirectory(prefix="flaskfleet-node-") as tmp:
        with clock.phase("install", f"install the live release {release} on {host}"):
            archive = cached_artifact(release)
            if archive is None:
                say(f"artifact: {release} is not in {artifact.CACHE_DIR}; copying it from "
                    f"{source}")
                archive = fetch_artifact(inv, release, source, Path(tmp))
            else:
                say(f"artifact: {archive} (built here)")
            variables = {"deploy_release": release, "deploy_artifact": str(archive.resolve()),
                         "deploy_app_wheel": _app_wheel(archive)}
            result = ansible.run_with_vars(PLAYBOOKS / "release-install.yml", inv.path, variables,
                                           limit=host, say=say)
            if not result.ok:
                raise NodeError(f"installing {release} on {host} failed (output above); no "
                                "load balancer sends it requests")
    what = ("start, gate on /readyz and /version, add to every upstream" if group == "app"
            else "start the worker on the release")
    with clock.phase("join", what):
        result = ansible.run_with_vars(PLAYBOOKS / "node-join.yml", inv.path,
                                       {"deploy_release": release, "node_host": host},
                                       limit=f"{host}:loadbalancers", say=say)
        if not result.ok:
            raise NodeError(f"{host} did not start or pass its health gate on {release} "
                            f"(output above); no load balancer sends it requests. Logs: "
                            f"`fab logs {'web' if group == 'app' else 'worker'} --host {host}`")


def _inventory(env: str) -> Inventory:
    try:
        return inventory.check(env)
    except inventory.InventoryError as exc:
        raise NodeError(str(exc)) from None


def removal_problems(inv: Inventory, host: str) -> list[str]:
    """Why `host` cannot be removed from the fleet (empty: it can)."""
    if host not in inv.hostvars:
        return [f"{host} is not in inventory '{inv.env}'"]
    problems = []
    if host in inv.hosts_of("beat"):
        problems.append(f"{host} runs beat, the fleet's single scheduler: move beat to another "
                        "host in the inventory and provision first")
    for group in ("loadbalancers", "db", "redis"):
        if host in inv.hosts_of(group):
            problems.append(f"{host} is in the {group} group; node.remove takes app and worker "
                            "hosts only")
    if inv.hosts_of("app") == [host]:
        problems.append(f"{host} is the last app host: nothing would serve requests")
    if host in inv.hosts_of("workers") and inv.hosts_of("workers") == [host]:
        problems.append(f"{host} is the last worker: queued jobs would never run")
    return problems


def drain_host(env: str, host: str, timeout: float | None = None, force: bool = False,
               say: Say = print) -> NodeOutcome:
    """`fab node.drain`: drain under the deploy lock, with an audit record."""
    inv = _inventory(env)
    _require_app_host(inv, host, "node.drain")
    outcome = NodeOutcome("node.drain", env, host, "-")
    with _locked(inv, outcome, say) as clock, clock.phase("drain", f"drain {host}"):
        drain(inv, host, timeout, force, say)
    return outcome


def enable_host(env: str, host: str, say: Say = print) -> NodeOutcome:
    """`fab node.enable`: enable under the deploy lock, with an audit record."""
    inv = _inventory(env)
    _require_app_host(inv, host, "node.enable")
    outcome = NodeOutcome("node.enable", env, host, "-")
    with _locked(inv, outcome, say) as clock, clock.phase("enable", f"enable {host}"):
        enable(inv, host, say)
    return outcome


def remove(env: str, host: str, timeout: float | None = None, say: Say = print) -> NodeOutcome:
    """Drain `host`, stop its programs, take it out of the upstreams, inventory and grants."""
    inv = _inventory(env)
    problems = removal_problems(inv, host)
    if problems:
        raise NodeError("cannot remove " + host + ": " + "; ".join(problems)
                        + "; nothing was changed")
    address = address_of(inv, host)
    is_app = host in inv.hosts_of("app")
    outcome = NodeOutcome("node.remove", env, host, "-")
    with _locked(inv, outcome, say) as clock:
        if is_app:
            with clock.phase("drain", f"take {host} out of every load balancer"):
                drain(inv, host, timeout, say=say)
        with clock.phase("stop", f"stop {host}'s programs and keep them off at boot"):
            stopped = ansible.run_playbook(PLAYBOOKS / "node-stop.yml", inv.path, limit=host,
                                           say=say)
            if not stopped.ok:
                say(f"warning: could not stop the programs on {host} (output above"
                    "); it is taken out of the fleet anyway: make sure it stays off")
        with clock.phase("inventory", f"remove {host} from {inv.path}"):
            for path in inventory_file.remove_host(inv.path, host):
                say(f"inventory: {host} removed from {path}")
        with clock.phase("upstreams", "render the upstreams without it, drop its database "
                                      "accounts"):
            inv = _inventory(env)
            result = ansible.run_with_vars(PLAYBOOKS / "node-leave.yml", inv.path,
                                           {"node_address": address},
                                           limit="loadbalancers:db:redis", say=say)
            if not result.ok:
                raise NodeError(f"{host} is drained, stopped and out of the inventory, but "
                                "updating the load balancers, the database or the data tiers' "
                                "firewall failed (output above); run "
                                "`fab provision --limit loadbalancers:db:redis`")
    return outcome

