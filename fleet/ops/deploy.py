"""`fab deploy` and `fab rollback`: the release flow (docs/architecture.md section 5), by phase.

Each phase is timed and announced. Host work is done by the release playbooks (and the roles'
`release_*` task files); this module decides the order and reads the outcome. The lock and the
audit record are fleet/ops/operation.py's: whatever happens after the lock is taken, the lock
is released and the audit record written.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import re
import shutil
import tarfile
import tempfile
import threading
import time
from collections.abc import Iterable
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from fleet import ansible, app_source, artifact, hosts, lock, phases, report, results, static
from fleet.inventory import Inventory
from fleet.ops import crashloop, hooks, prepare_run, quick_rollback, releases
from fleet.ops import maintenance as maintenance_mode
from fleet.ops import provision as provisioning
from fleet.ops.background import Background, HeldOutput
from fleet.ops.operation import lock_host, operation
from fleet.phases import Clock, Phase, Running
from fleet.settings import SettingError, setting, setting_bool, setting_list

PLAYBOOKS = ansible.ROOT / "playbooks"
APP_DIR = app_source.REFERENCE_APP


class DeployError(RuntimeError):
    """The deploy or rollback stopped; the message says where, why and what state is left.

    Raised after the lock was taken, it carries the `outcome` with the phases that ran.
    """

    outcome: Outcome | None = None


@dataclass
class Outcome:
    action: str
    env: str
    release: str
    who: str = ""
    started: str = ""
    ok: bool = False
    failure: str | None = None
    before: dict[str, str | None] = field(default_factory=dict)
    backup: str | None = None
    migration: str | None = None
    pruned: dict[str, list[str]] = field(default_factory=dict)
    phases: list[Phase] = field(default_factory=list)
    hooks: list[dict] = field(default_factory=list)  # fleet/ops/hooks.py HookResult records

    @property
    def hook_failure(self) -> str | None:
        """Why a post-deploy/post-rollback hook failed; the deploy itself stands."""
        failed = [h["message"] for h in self.hooks if not h["ok"] and h["hook"] in hooks.POST]
        return "; ".join(failed) or None

    def seconds(self, phase: str) -> float:
        return sum(p.seconds for p in self.phases if p.name == phase)

    @property
    def total(self) -> float:
        return phases.total(self.phases)

    def summary(self) -> str:
        lines = [phases.table(self.phases, self.ok)]
        if self.backup:
            lines.append(f"database backup: {self.backup}")
        if self.migration:
            lines.append(f"migrations: {self.migration}")
        verb = "deployed" if self.action == "deploy" else "rolled back to"
        lines.append(f"{verb} {self.release}" if self.ok else f"{self.action} of {self.release} "
                     f"FAILED: {self.failure}")
        if self.hook_failure:
            lines.append(f"HOOK FAILED: {self.hook_failure} (the {self.action} itself "
                         f"{'succeeded' if self.ok else 'had already failed'})")
        return "\n".join(lines)

    def audit_entry(self) -> dict:
        entry = asdict(self)
        entry["finished"] = datetime.now(UTC).isoformat(timespec="seconds")
        entry["phases"] = phases.audit_record(self.phases)
        return entry


def _preflight(env: str, say: ansible.Say, check: bool = False) -> Inventory:
    """The local half of the pre-flight: the inventory; no host is reached here."""
    try:
        inv = provisioning.check_local(env, say=say, check=check)
    except provisioning.ProvisionError as exc:
        raise DeployError(str(exc)) from None
    problems = []  # (the beat group's size is checked with the inventory, fleet/inventory.py)
    for group in ("app", "loadbalancers", "db"):
        if not inv.hosts_of(group):
            problems.append(f"the {group} group has no host")
    if problems:
        raise DeployError("pre-flight failed, nothing was changed: " + "; ".join(problems))
    return inv


def _read_hosts(inv: Inventory, say: ansible.Say, crashloops: bool
                ) -> dict[str, releases.HostReleases]:
    """The half of the pre-flight that reaches hosts, read-only: SSH and sudo on every host,
    (for a deploy) no program crash-looping, and each host's releases; over one connection per
    host."""
    with hosts.kept_open():
        return _read_hosts_over(inv, say, crashloops)


def _read_hosts_over(inv: Inventory, say: ansible.Say, crashloops: bool
                     ) -> dict[str, releases.HostReleases]:
    try:
        provisioning.reach(inv, say=say, provisioned=True)
    except provisioning.ProvisionError as exc:
        raise DeployError(str(exc)) from None
    looping = crashloop.check(inv) if crashloops else []
    if looping:
        raise DeployError(
            "pre-flight failed, nothing was changed: "
            + "; ".join(str(f) for f in looping)
            + ". A rollout over a crash-looping program cannot tell a bad release from a "
            "bad host: find the cause (`fab logs supervisor --host HOST`, `fab logs web`) "
            "and fix it, or `fab rollback`, then deploy")
    before = releases.read(inv)
    unreadable = {h: s.error for h, s in before.items() if s.error}
    if unreadable:
        raise DeployError("pre-flight failed, cannot read the releases on: " + "; ".join(
            f"{h}: {e}" for h, e in unreadable.items()))
    return before


# A release id as artifact.release_id writes it: UTC time to the second, then the git sha.
RELEASE_ID = re.compile(r"\d{8}T\d{6}Z-[A-Za-z0-9][A-Za-z0-9._-]*")


def _static_of(art: artifact.Artifact, static_dir: str, plain: str) -> Path:
    """The release's static files as published (`files/`) and their list (`list.json`).

    Prepared beside the archive once per app_static_dir and plain subdirectory (fleet/static.py):
    the copy is named after both, so a reused (cached) artifact is checked against this
    deploy's app_static_dir, never passed on a copy an earlier value left behind.
    """
    rel = static_dir.strip("/")
    key = hashlib.sha256(f"{rel}\0{plain}".encode()).hexdigest()[:12]
    target = art.path.parent / f"static-{key}"
    if (target / "list.json").is_file():
        return target
    prefix = f"{art.release_id}/src/{rel}/"
    partial = target.with_name(target.name + ".partial")
    with tarfile.open(art.path) as archive:
        members = [m for m in archive.getmembers() if m.isfile() and m.name.startswith(prefix)]
        if not rel or not members:
            raise DeployError(f"pre-flight failed, nothing was changed: app_static_dir "
                              f"{static_dir!r} is not a directory of files in the release: set "
                              "app_static_dir to the app's static directory, relative to the app "
                              "(see docs/app-contract.md)")
        shutil.rmtree(partial, ignore_errors=True)
        for member in members:
            dest = partial / "unpacked" / member.name[len(prefix):]
            dest.parent.mkdir(parents=True, exist_ok=True)
            dest.write_bytes(archive.extractfile(member).read())
    listed = static.arrange(partial / "unpacked", partial / "files", plain)
    (partial / "list.json").write_text(json.dumps(listed, indent=1, sort_keys=True) + "\n")
    shutil.rmtree(partial / "unpacked")
    partial.rename(target)
    return target


def _playbook(name: str, inv: Inventory, variables: dict,
              say: ansible.Say) -> ansible.PlaybookResult:
    return ansible.run_with_vars(PLAYBOOKS / name, inv.path, variables, say=say)


def _from_results(result: ansible.PlaybookResult) -> tuple[str | None, str | None, str | None]:
    """What the plays wrote to fleet_results_dir (fleet/results.py): the first failure's
    reason, the backup as host:path, the migration as `before=X after=Y`."""
    backup = results.last(result.results, results.Backup)
    migration = results.last(result.results, results.Migration)
    return (results.first_failure(result.results),
            f"{backup.host}:{backup.path}" if backup else None,
            f"before={migration.before} after={migration.after}" if migration else None)


@dataclass
class Plan:
    inv: Inventory
    release: str
    variables: dict
    first: bool
    before: dict[str, releases.HostReleases]
    maintenance: bool = False  # `deploy --maintenance`: the site is down from migrate to switch
    maintenance_message: str | None = None
    maintenance_on: bool = False  # switched on by this deploy and not off yet
    prepare: prepare_run.PrepareRun | None = None  # release-prepare.yml, started early

    def describe(self, batch: int) -> str:
        apps = self.inv.hosts_of("app")
        rows = [(host, state.live or "-", "yes" if self.release in state.installed else "no")
                for host, state in sorted(self.before.items())]
        lines = [report.table(("host", "live release", f"has {self.release}"), rows), "",
                 f"1. install {self.release} on {len(self.before)} host(s) and publish static "
                 f"to {', '.join(self.inv.hosts_of('loadbalancers'))}, then delete the releases "
                 "beyond the keep window (never the live or previous one) and the static files "
                 f"no kept release uses; back up the database "
                 f"on {self.inv.hosts_of('db')[0]} meanwhile (with --maintenance: in step 2, "
                 "once the page is up)",
                 f"2. migrate once from {apps[0]}"]
        current = self.variables.get("deploy_settings_current_hosts") or []
        if current:
            lines[-2] += (f"; the env files and scripts of {', '.join(current)} are as this "
                          "inventory and kit write them (their recorded settings digest): "
                          "not written again")
        at_once = "all at once" if batch == 0 or batch >= len(apps) else f"{batch} at a time"
        mode = (f"start the release in each host's other gunicorn slot, gate it, move the load "
                f"balancers to it; {at_once}")
        workers = ", ".join(self.inv.hosts_of("workers", "beat"))
        steps = [f"switch {', '.join(apps)}: {mode}"]
        if not workers:
            steps.insert(0, "no programs to restart (app_programs): the workers and beat groups "
                            "are empty")
        else:
            steps.insert(0, f"restart the programs (app_programs) on {workers} (warm shutdown) "
                            "while the app hosts start the release; one that does not stay up "
                            "stops the deploy before any load balancer moves")
        steps.append("audit, release the lock")
        lines += [f"{number}. {step}" for number, step in enumerate(steps, start=3)]
        return "\n".join(lines)


def _plan(inv: Inventory, art: artifact.Artifact, published: Path, batch: int,
          extra: dict | None, before: dict[str, releases.HostReleases],
          settings_current: list[str] | None = None) -> Plan:
    """`settings_current`: the hosts that have the env files and scripts the install would
    write (quick_rollback.settings_current); it skips them there."""
    # Hosts with the venv of the release's dependencies are sent the release without them.
    deps = art.manifest.get("deps_id")
    code_only = sorted(h for h, state in before.items() if deps and deps in state.venvs)
    variables = {"deploy_release": art.release_id, "deploy_artifact": str(art.path.resolve()),
                 "deploy_code_artifact": str(artifact.code_only(art).resolve()) if code_only
                 else "", "deploy_code_only_hosts": code_only,
                 "deploy_app_wheel": art.app_wheel,
                 "deploy_static": str((published / "files").resolve()),
                 "deploy_static_list": str((published / "list.json").resolve()),
                 "deploy_batch": batch,
                 "deploy_settings_current_hosts": settings_current or [],
                 **(extra or {})}
    first = all(state.live is None for state in before.values())
    return Plan(inv, art.release_id, variables, first, before)


def deploy(env: str = "sandbox", app_dir: Path | None = None, ref: str | None = None,
           batch: int = 0, check: bool = False, keep: int = releases.DEFAULT_KEEP,
           extra_vars: dict | None = None, say: ansible.Say = print,
           maintenance: bool = False, maintenance_message: str | None = None) -> Outcome:
    """Build (or reuse) the release of the app and roll it out to `env`.

    The app is `app_dir` when given, else the inventory's `app_source` (fleet/app_source.py);
    `ref` builds that git ref of it instead of the working tree.

    With `maintenance`, every load balancer serves the maintenance page from just before the
    migrations until the last app host has switched (for a migration that cannot run online).
    """
    if batch < 0 or keep < 1:
        raise DeployError("--batch must be at least 1 (or 0: all app hosts at once) and keep "
                          "at least 1")
    outcome = Outcome("deploy", env, release="(not built)")
    clock = Clock(outcome.phases, say)
    with contextlib.ExitStack() as runs:
        return _deploy(outcome, clock, runs, env, app_dir, ref, batch, check, keep, extra_vars,
                       say, maintenance, maintenance_message)


def _deploy(outcome: Outcome, clock: Clock, runs: contextlib.ExitStack, env: str,
            app_dir: Path | None, ref: str | None, batch: int, check: bool, keep: int,
            extra_vars: dict | None, say: ansible.Say, maintenance: bool,
            maintenance_message: str | None) -> Outcome:
    prepare = None
    with tempfile.TemporaryDirectory(prefix="flaskfleet-ref-") as tmp:
        with clock.phase("pre-flight", "inventory, artifact, then hosts"):
            # Everything that can fail without a host first: inventory, ref, build.
            inv = _preflight(env, say, check)
            _check_hooks(inv)
            if not check and not maintenance:  # its start-up overlaps the rest of the pre-flight
                prepare = runs.enter_context(prepare_run.early(inv, extra_vars))
            try:
                chosen = (app_source.of(inv, ref) if app_dir is None else
                          app_source.Source(str(app_dir), app_dir, None, ref or ""))
                say(f"app: {chosen.describe()}")
                source = app_source.fetch(chosen, Path(tmp))
            except (app_source.SourceError, SettingError) as exc:
                flag = "--ref: " if ref else ""
                raise DeployError(f"pre-flight failed, nothing was changed: {flag}{exc}"
                                  ) from None
            if not check:
                _run_hook(outcome, clock, inv, "pre-build", None, source=source.resolve(), ref=ref)
            try:
                art = artifact.build(source, say=say,
                                     requirements=setting(inv, "app_requirements"),
                                     extra=setting_list(inv, "app_extra_requirements"),
                                     allow_unpinned=setting_bool(inv, "app_allow_unpinned"))
            except artifact.ArtifactError as exc:
                raise DeployError(f"pre-flight failed, nothing was changed: {exc}") from None
            outcome.release = art.release_id
            published = _static_of(art, setting(inv, "app_static_dir"),
                                   setting(inv, "nginx_static_plain_subdir"))
            # Only now, with everything local checked, are the hosts reached (read-only).
            with hosts.kept_open():
                before = _read_hosts(inv, say, crashloops=True)
                current = (quick_rollback.settings_current(inv, list(before))
                           if set(extra_vars or {}) <= QUICK_SWITCH_VARS else [])
            plan = _plan(inv, art, published, batch, extra_vars, before, current)
    say("\n" + plan.describe(batch))
    if check:
        holder = lock.status(hosts.runner(inv, lock_host(inv)))
        say(f"lock: {'free' if holder is None else f'held by {holder.who} since {holder.since}'}")
        if maintenance:
            say("--maintenance: the load balancers would serve the maintenance page from the "
                "migrate phase until the last app host has switched")
        say("--check: nothing was changed, no hook was run")
        outcome.ok = True
        return outcome
    plan.maintenance, plan.maintenance_message = maintenance, maintenance_message
    plan.prepare = prepare
    with clock.phase("pre-deploy", "the pre-deploy hook") if _has_hook(inv, "pre-deploy") \
            else contextlib.nullcontext():
        _run_hook(outcome, clock, inv, "pre-deploy", _previous(plan), ref=ref)
    return _locked(outcome, clock, plan, "deploy", lambda: _roll_out(outcome, clock, plan, keep),
                   say)


def _locked(outcome: Outcome, clock: Clock, plan: Plan, action: str, work, say) -> Outcome:
    """Run `work` as a locked operation; maintenance off and the post hook before the audit."""
    outcome.before = {h: s.live for h, s in plan.before.items()}

    def closing() -> None:
        if plan.maintenance_on:  # the deploy failed between migrate and switch
            _maintenance(clock, plan, on=False)
        _post_hook(outcome, clock, plan, action)

    try:
        with operation(plan.inv, action, plan.release, outcome, DeployError, say,
                       closing=closing):
            work()
    except DeployError as exc:
        exc.outcome = outcome  # the phases that ran, for callers that report them
        raise
    return outcome


# The line of release-migrate.yml's "Begin the migrate step" task: the install is over on every
# host and the migrations start (the migrate phase of a release-prepare.yml run).
MIGRATE_MARK = "TASK [Begin the migrate step]"


def _roll_out(outcome: Outcome, clock: Clock, plan: Plan, keep: int) -> None:
    # The database is dumped while the release installs; with --maintenance, once the page is
    # up (no write falls between the dump and the migration). The install run also deletes
    # what the prune plan (read now, under the lock) lets go: old releases, unused static files.
    early = not plan.maintenance
    inv = plan.inv
    doomed = releases.install_prune_plan(
        inv, plan.release, json.loads(Path(plan.variables["deploy_static_list"]).read_text()),
        keep)
    variables = {**plan.variables, "deploy_backup_during_install": early,
                 "deploy_prune_releases": doomed.releases,
                 "deploy_prune_static_paths": doomed.static_paths}
    with _EarlySwitch.for_plan(plan) as switch:
        # A failure here ends the early switch on the way out, having changed nothing.
        _install_then_migrate(outcome, clock, plan, variables, doomed, keep)
        _go_live(clock, plan, "roll the app hosts over", workers_first=True, early=switch)
    _record_settings(inv, clock, _extra_names(plan))
    if plan.maintenance_on:
        _maintenance(clock, plan, on=False)


def _install_then_migrate(outcome: Outcome, clock: Clock, plan: Plan, variables: dict,
                          doomed: releases.PrunePlan, keep: int) -> None:
    inv, early = plan.inv, not plan.maintenance
    installing = clock.begin("install", "unpack, check and build the venv on every host; static"
                             + ("; back up the database" if early else "")
                             + f"; prune to {keep} releases")
    if plan.maintenance:
        result = None
        try:
            result = _playbook("release-install.yml", inv, variables, clock.say)
        finally:
            if result is None:
                clock.end(installing, ok=False)
        _installed(clock, installing, result, outcome, doomed)
        _maintenance(clock, plan, on=True)
        with clock.phase("migrate", "back up the database, migrate once"):
            _migrated(plan, _playbook("release-migrate.yml", inv, variables, clock.say),
                      outcome)
    else:
        _install_and_migrate(clock, installing, plan, variables, outcome, doomed)


def _install_and_migrate(clock: Clock, installing: Running, plan: Plan, variables: dict,
                         outcome: Outcome, doomed: releases.PrunePlan) -> None:
    """The install and migrate phases as one run of release-prepare.yml: the migrate phase
    begins at MIGRATE_MARK, which its play reaches only once every host installed."""
    migrating = None

    def say(line: str) -> None:
        nonlocal migrating
        if migrating is None and line.startswith(MIGRATE_MARK):
            clock.end(installing, ok=True)
            migrating = clock.begin("migrate", "migrate once")
        clock.say(line)

    result = None
    try:
        if plan.prepare is not None:
            plan.prepare.go(variables, say)
            result = plan.prepare.result()
        else:
            result = _playbook("release-prepare.yml", plan.inv, variables, say)
    finally:
        if result is None:  # interrupted: the phase that was running did not finish
            clock.end(migrating or installing, ok=False)
    if migrating is None:
        _installed(clock, installing, result, outcome, doomed)
        raise DeployError("the migrate step did not start although every host installed the "
                          "release (output above); no host was switched")
    clock.end(migrating, ok=result.ok)
    _report_pruned(clock, outcome, doomed)
    _migrated(plan, result, outcome)


def _installed(clock: Clock, installing: Running, result: ansible.PlaybookResult, outcome: Outcome,
               doomed: releases.PrunePlan) -> None:
    """End the install phase with its run's result; a failure stops the deploy."""
    reason, outcome.backup, _ = _from_results(result)
    clock.end(installing, ok=result.ok)
    if not result.ok:
        # A failure result (e.g. app_wsgi does not import) says what to fix.
        raise DeployError(f"installing the release failed on "
                          f"{', '.join(result.failed_hosts) or 'a host'}"
                          f"{': ' + reason if reason else ' (output above)'}; "
                          "nothing live was changed, no host was switched")
    _report_pruned(clock, outcome, doomed)


def _report_pruned(clock: Clock, outcome: Outcome, doomed: releases.PrunePlan) -> None:
    outcome.pruned = doomed.releases
    for host, gone in sorted(doomed.releases.items()):
        clock.say(f"pruned on {host}: {', '.join(gone)}")
    for lb, gone in sorted(doomed.static_files.items()):
        clock.say(f"unused static files deleted on {lb}: {len(gone)}")


def _migrated(plan: Plan, result: ansible.PlaybookResult, outcome: Outcome) -> None:
    """Read the migrate step's outcome; a failure stops the deploy and names the backup."""
    _, backup, outcome.migration = _from_results(result)
    outcome.backup = backup or outcome.backup
    if result.ok:
        return
    where = ", ".join(result.failed_hosts) or "a host"
    backup = (f"the database was backed up first: {outcome.backup} "
              f"(fab db.restore {outcome.backup.split(':', 1)[1]})"
              if outcome.backup else "no backup was taken")
    command = setting(plan.inv, "app_migrate_command")
    raise DeployError(f"the migrations of {plan.release} failed on {where}: "
                      f"app_migrate_command {command!r} did not succeed (output above; "
                      f"fix the migration or the variable); no host was switched, every "
                      f"host still runs its release; {backup}")


def _side_by_side(plan: Plan) -> bool:
    """Whether the switch runs beside the workers' restart (or alone, with no workers): not
    when a host is in both groups, nor on a first deploy, whose ready path may need beat's
    heartbeat (docs/decisions.md)."""
    workers = plan.inv.hosts_of("workers", "beat")
    return not workers or not (set(workers) & set(plan.inv.hosts_of("app")) or plan.first)


def _signal(path: Path, text: str) -> None:
    """Write a signal file a play waits for, whole (wait_for sees it only once it is there)."""
    partial = path.with_name(path.name + ".partial")
    partial.write_text(text)
    partial.rename(path)


# The extra variables (-e) a quick switch honours: they land in no file on a host. Any other
# takes release-switch.yml, which applies it.
QUICK_SWITCH_VARS = frozenset({"app_release_gate_timeout", "app_release_gate_poll"})


def _extra_names(plan: Plan) -> set[str]:
    """The names of the deploy's extra variables (-e): the plan's own all start with deploy_."""
    return {name for name in plan.variables if not name.startswith("deploy_")}


def _quick_allowed(plan: Plan) -> bool:
    return _extra_names(plan) <= QUICK_SWITCH_VARS


def _record_settings(inv: Inventory, clock: Clock, extra_vars: Iterable[str]) -> None:
    """After a switch that wrote the hosts' files, record that they are the inventory's and
    kit's (quick_rollback.record_settings), unless extra variables (-e) that land in files
    shaped them: then the next deploy or rollback writes them again."""
    shaped = sorted(set(extra_vars) - QUICK_SWITCH_VARS)
    if shaped:
        clock.say(f"settings digest not recorded ({', '.join(shaped)} given as extra "
                  "variables): the next deploy or rollback writes the hosts' files again")
        return
    quick_rollback.record_settings(inv, clock.say)


class _EarlySwitch:
    """The switch, prepared as the install begins (a deploy without --maintenance whose switch
    runs beside the workers). First a read-only probe of the app hosts and load balancers
    (fleet/ops/quick_rollback.py): when every app host was last switched with the inventory and
    kit as they are now, the switch is the quick one over SSH (`quick`), run by `_switch`.
    Otherwise release-switch.yml starts: its Ansible start-up, its connections and its first,
    read-only tasks overlap the install; then it waits for deploy_ready_signal, which `go`
    sets once the release is installed and migrated and `cancel` sets to end the play having
    changed nothing. Its output is held until `go`."""

    def __init__(self, plan: Plan) -> None:
        self.quick: quick_rollback.QuickPlan | None = None
        self._probed = threading.Event()
        self._tmp = tempfile.TemporaryDirectory(prefix="flaskfleet-switch-")
        base = Path(self._tmp.name)
        self._ready = base / "ready"
        self.workers_signal = base / "workers"
        self._output = HeldOutput()
        extra = {"deploy_ready_signal": str(self._ready)}
        if plan.inv.hosts_of("workers", "beat"):
            extra["deploy_workers_signal"] = str(self.workers_signal)
        self._run = Background(lambda: self._probe_then_play(plan, extra), "switch")

    @classmethod
    @contextlib.contextmanager
    def for_plan(cls, plan: Plan):
        """One for the deploy when its switch can start early, else None; ended on the way out
        whatever happened."""
        switch = cls(plan) if not plan.maintenance and _side_by_side(plan) else None
        try:
            yield switch
        finally:
            if switch is not None:
                switch.cancel()
                switch._tmp.cleanup()

    def _probe_then_play(self, plan: Plan, extra: dict) -> ansible.PlaybookResult | None:
        try:
            if _quick_allowed(plan):
                self.quick = self._probe(plan)
        finally:
            self._probed.set()
        if self.quick is not None:
            return None
        return _playbook("release-switch.yml", plan.inv, {**plan.variables, **extra},
                         self._output.line)

    def _probe(self, plan: Plan) -> quick_rollback.QuickPlan | None:
        try:
            found = quick_rollback.probe(plan.inv, plan.release,
                                         int(plan.variables["deploy_batch"]), start=True)
        except Exception as exc:  # noqa: BLE001 - the play is the way that always works
            found = f"the probe failed: {exc!r}"
        if isinstance(found, quick_rollback.QuickPlan):
            return found
        self._output.line(f"switch: the full switch, release-switch.yml ({found})")
        return None

    def quick_plan(self) -> quick_rollback.QuickPlan | None:
        """The quick switch's plan once the probe is done; None: the play switches."""
        self._probed.wait()
        return self.quick

    @property
    def ended(self) -> bool:
        """The run is over: before `go`, it failed before it could wait (it changed nothing).
        Never for a quick switch, which runs after `go`."""
        return self._run.done and self.quick is None

    def go(self, say: ansible.Say) -> None:
        self._output.release(say)
        if not self._ready.exists():
            _signal(self._ready, "ok")

    def wait(self) -> ansible.PlaybookResult:
        result = self._run.result()
        assert result is not None
        return result

    def cancel(self) -> None:
        if not self._ready.exists():
            _signal(self._ready, "failed")
        with contextlib.suppress(Exception):  # the deploy reports what went wrong
            self._run.result()


def _go_live(clock: Clock, plan: Plan, what: str, workers_first: bool,
             early: _EarlySwitch | None = None) -> None:
    """Switch the app hosts (release-switch.yml) and restart the programs on the workers and
    beat (release-workers.yml) side by side, unless a host is in both groups or nothing runs a
    release yet (a first deploy).

    `workers_first` (a deploy): the load balancers move only once the programs run the release
    too (the switch waits for the workers' signal file), so a program that does not start
    stops the deploy before any app host serves the release. A rollback does not wait: the web
    goes back as soon as its own gate passes. A failure on either side sends both back.
    """
    workers = plan.inv.hosts_of("workers", "beat")
    if early is not None and early.ended:
        early.go(clock.say)  # its output: why it stopped
        result = early.wait()
        raise DeployError("the switch stopped before the release was ready, no host was "
                          "switched: " + (results.every_failure(result.results) or
                                          f"it failed on {', '.join(result.failed_hosts)}"))
    if not workers:
        clock.say("workers: none (the workers and beat groups are empty), nothing to restart")
        _switch(clock, plan, what, {}, early)
        return
    # One play at a time when a host is in both groups, and on a first deploy.
    if not _side_by_side(plan):
        if workers_first:
            _workers(clock, plan, clock.say)
        try:
            _switch(clock, plan, what, {})
        except DeployError as exc:
            back = _workers_back(plan, clock.say) if workers_first else ""
            raise DeployError(str(exc) + back) from None
        if not workers_first:
            _workers(clock, plan, clock.say)
        return
    failures: dict[str, DeployError] = {}
    with tempfile.TemporaryDirectory(prefix="flaskfleet-golive-") as tmp:
        signal = early.workers_signal if early is not None else Path(tmp) / "workers"

        def restart() -> None:
            done = False
            try:
                _workers(clock, plan, lambda line: clock.say(f"[workers] {line}"), quick=True)
                done = True
            except DeployError as exc:
                failures["workers"] = exc
            except Exception as exc:  # noqa: BLE001 - reported below, after the switch ends
                failures["workers"] = DeployError(f"restarting the programs failed: {exc!r}")
            finally:  # the switch waits for this file, whatever happened
                _signal(signal, "ok" if done else "failed")

        thread = threading.Thread(target=restart, name="workers", daemon=True)
        thread.start()
        try:
            _switch(clock, plan, what, {"deploy_workers_signal": str(signal)}
                    if workers_first else {}, early)
        except DeployError as exc:
            failures["switch"] = exc
        finally:
            thread.join()
    if "workers" in failures:
        app_side = (f" App hosts: {failures['switch']}" if "switch" in failures else
                    f" The app hosts serve {plan.release}.")
        raise DeployError(f"{failures['workers']}{app_side}")
    if "switch" in failures:
        raise DeployError(str(failures["switch"]) + _workers_back(plan, clock.say))


def _switch(clock: Clock, plan: Plan, what: str, extra: dict,
            early: _EarlySwitch | None = None) -> None:
    """The switch phase: release-switch.yml, the run started early told to go on, or the
    quick switch the early probe found possible."""
    with clock.phase("switch", what):
        quick = early.quick_plan() if early is not None else None
        if quick is not None:
            early.go(clock.say)
            _quick_switch(clock, plan, quick, extra)
            return
        if early is None:
            result = _playbook("release-switch.yml", plan.inv, {**plan.variables, **extra},
                               clock.say)
        else:
            early.go(clock.say)
            result = early.wait()
        if not result.ok:
            raise DeployError(results.every_failure(result.results) or
                              f"switching failed on {', '.join(result.failed_hosts)}")


def _quick_switch(clock: Clock, plan: Plan, quick: quick_rollback.QuickPlan,
                  extra: dict) -> None:
    """The app hosts switched over SSH (fleet/ops/quick_rollback.py), gated like the play; the
    load balancers move once the workers' signal says ok."""
    def value(name: str) -> float:
        return float(plan.variables.get(name, setting(plan.inv, name)))

    gate = quick_rollback.Gate(value("app_release_gate_timeout"),
                               value("app_release_gate_poll"))
    signal = extra.get("deploy_workers_signal")
    before_move = None
    if signal:
        def before_move() -> str | None:
            return _workers_outcome(Path(signal), value("app_switch_workers_timeout"))
    try:
        quick_rollback.switch_apps(plan.inv, quick, clock.say, gate=gate,
                                   before_move=before_move)
    except quick_rollback.QuickRollbackError as exc:
        raise DeployError(str(exc)) from None


def _workers_outcome(signal: Path, timeout: float) -> str | None:
    """Wait for the workers' signal file: None once it says ok, else why the switch stops."""
    end = time.monotonic() + timeout
    while not signal.exists():
        if time.monotonic() > end:
            return f"no word from the workers after {timeout:.0f} s"
        time.sleep(0.05)
    return None if signal.read_text() == "ok" else "the workers phase says why"


def _workers(clock: Clock, plan: Plan, say: ansible.Say, quick: bool = False) -> bool:
    """The workers phase: release-workers.yml, or with `quick` the hosts' restart script over
    SSH when each host's files are already the ones that play would write (the settings digest,
    fleet/ops/quick_rollback.py). True when the play ran."""
    with clock.phase("workers", "switch workers and beat, restart app_programs (warm shutdown)"):
        if quick:
            try:
                why = quick_rollback.restart_workers(plan.inv, plan.release,
                                                     plan.inv.hosts_of("workers", "beat"), say)
            except quick_rollback.QuickRollbackError as exc:
                raise DeployError(str(exc)) from None
            if why is None:
                return False
            say(f"the workers play ({why})")
        _run_workers_play(plan, say)
        return True


def _run_workers_play(plan: Plan, say: ansible.Say) -> None:
    result = _playbook("release-workers.yml", plan.inv, plan.variables, say)
    if not result.ok:
        # The failure result names the program and says where each host is now.
        reason = _from_results(result)[0]
        raise DeployError(reason or f"restarting the programs (app_programs) on "
                                    f"{', '.join(result.failed_hosts)} failed (output above); "
                                    f"see `fab logs worker --host HOST`")


def _workers_back(plan: Plan, say: ansible.Say) -> str:
    """After a failed switch, the workers and beat return to the release they ran before the
    deploy moved them; what happened, as a sentence for the failure message."""
    hosts = plan.inv.hosts_of("workers", "beat")
    if not hosts:
        return ""
    earlier = {plan.before[h].live or "" for h in hosts if h in plan.before}
    if plan.first or earlier in (set(), {""}):
        return (f" The workers and beat ({', '.join(hosts)}) had no earlier release and stay on "
                f"{plan.release}.")
    if len(earlier) > 1:
        ran = ", ".join(sorted(r or "none" for r in earlier))
        return (f" The workers and beat ran different releases before ({ran}) and stay on "
                f"{plan.release}: `fab rollback --to RELEASE` moves them.")
    back = earlier.pop()
    say(f"switch failed: the workers and beat go back to {back}")
    result = _playbook("release-workers.yml", plan.inv, {**plan.variables, "deploy_release": back},
                       say)
    if result.ok:
        return f" The workers and beat ({', '.join(hosts)}) are back on {back}."
    return (f" Putting the workers and beat back on {back} failed on "
            f"{', '.join(result.failed_hosts) or 'a host'}: run `fab rollback --to {back}`.")


def rollback(env: str = "sandbox", to: str | None = None, batch: int = 0,
             extra_vars: dict | None = None, say: ansible.Say = print) -> Outcome:
    """Switch every host back to the previous release (or `to`), the same way a deploy does."""
    outcome = Outcome("rollback", env, release=to or "(previous)")
    clock = Clock(outcome.phases, say)
    with clock.phase("pre-flight", "inventory, target release, then hosts"):
        if batch < 0:
            raise DeployError("--batch must be at least 1 (or 0: all app hosts at once)")
        if to is not None and not RELEASE_ID.fullmatch(to):
            raise DeployError(f"pre-flight failed, nothing was changed: --to {to!r} is not a "
                              "release id (they look like 20261121T101500Z-1a2b3c4d5e; "
                              "`fab releases` lists them)")
        inv = _preflight(env, say)
        _check_hooks(inv)
        before = _read_hosts(inv, say, crashloops=False)
        target = to or before[inv.hosts_of("app")[0]].previous
        if not target:
            raise DeployError("there is no previous release to roll back to; name one with "
                              "--to (see `fab releases`)")
        missing = [h for h, s in before.items() if target not in s.installed]
        if missing:
            everywhere = sorted(set.intersection(*(set(s.installed) for s in before.values())))
            known = ", ".join(reversed(everywhere)) or "none"
            raise DeployError(f"release {target} is not installed on {', '.join(missing)}; "
                              f"releases installed on every host (newest first): {known}. "
                              "`fab releases` shows what each host has")
        outcome.release = target
    # The slot that served the target release may still run it (app_gunicorn_keep_previous).
    plan = Plan(inv, target, {"deploy_release": target, "deploy_batch": batch,
                              "app_switch_reuse_warm": True,
                              **(extra_vars or {})}, first=False, before=before)

    def go_back() -> None:
        workers = inv.hosts_of("workers", "beat")
        whole = ("extra variables were given (-e), which only a full switch applies" if extra_vars
                 else "a host is in both the app and the workers/beat groups"
                 if set(workers) & set(inv.hosts_of("app")) else None)
        if whole:
            clock.say(f"rollback: the full switch ({whole})")
            _go_live(clock, plan, f"roll the app hosts back to {target}", workers_first=False)
            _record_settings(inv, clock, extra_vars or {})
        else:
            _roll_back_both_halves(clock, plan)

    return _locked(outcome, clock, plan, "rollback", go_back, say)


def _roll_back_both_halves(clock: Clock, plan: Plan) -> None:
    """The app hosts and the workers go back side by side, each half by the quickest way its
    hosts allow (fleet/ops/quick_rollback.py): the warm slots' pointer flip or the full switch
    of release-switch.yml; the restart script over SSH or release-workers.yml. Like any
    rollback, the web does not wait for the workers; when the app hosts fail to go back, the
    workers return to the release they ran."""
    inv, target = plan.inv, plan.release
    workers = inv.hosts_of("workers", "beat")
    failures: dict[str, str] = {}
    full: list[str] = []

    def say_workers(line: str) -> None:
        clock.say(f"[workers] {line}")

    def workers_half() -> None:
        try:
            if _workers(clock, plan, say_workers, quick=True):
                full.append("workers")
        except DeployError as exc:
            failures["workers"] = str(exc)
        except Exception as exc:  # noqa: BLE001 - reported below, after the switch ends
            failures["workers"] = f"restarting the programs failed: {exc!r}"

    thread = threading.Thread(target=workers_half, name="workers", daemon=True)
    if workers:
        thread.start()
    else:
        clock.say("workers: none (the workers and beat groups are empty), nothing to restart")
    try:
        with clock.phase("probe", "can the warm slots take the traffic back as they are?"):
            quick = quick_rollback.probe(inv, target, plan.variables["deploy_batch"])
            if isinstance(quick, str):
                clock.say(f"rollback: the full switch ({quick})")
            else:
                clock.say("rollback: quick, every app host's other slot runs "
                          f"{target} and is ready; no file is written on the app hosts")
        if isinstance(quick, str):
            full.append("apps")
            _switch(clock, plan, f"roll the app hosts back to {target}", {})
        else:
            with clock.phase("switch", f"point the app hosts and load balancers back at "
                                       f"{target} (the warm slots)"):
                quick_rollback.switch_apps(inv, quick, clock.say)
    except (DeployError, quick_rollback.QuickRollbackError) as exc:
        failures["switch"] = str(exc)
    finally:
        if workers:
            thread.join()
    if "workers" in failures:
        app_side = failures.get("switch", f"The app hosts serve {target}.")
        raise DeployError(f"{failures['workers']} {app_side}")
    if "switch" in failures:  # the workers follow the app hosts back, as in a deploy
        raise DeployError(failures["switch"] + _workers_back(plan, clock.say))
    if full:
        quick_rollback.record_settings(inv, clock.say)


# --- local hooks (fleet/ops/hooks.py) and maintenance mode (fleet/ops/maintenance.py) ---


def _check_hooks(inv: Inventory) -> None:
    problems = hooks.check(hooks.directory(inv.path))
    if problems:
        raise DeployError("pre-flight failed, nothing was changed: " + "; ".join(problems))


def _has_hook(inv: Inventory, hook: str) -> bool:
    return (hooks.directory(inv.path) / hook).exists()


def _previous(plan: Plan) -> str | None:
    """The release the first app host served before this deploy or rollback."""
    state = plan.before.get(plan.inv.hosts_of("app")[0])
    return state.live if state else None


class _HookFailed(Exception):
    """Marks a post hook's phase FAILED without failing the deploy."""


def _run_hook(outcome: Outcome, clock: Clock, inv: Inventory, hook: str,
              previous: str | None, **extra) -> None:
    """Run one hook if the environment has it; a failing pre-hook stops the deploy."""
    if not _has_hook(inv, hook):
        return
    who = outcome.who or lock.Holder.me(outcome.action, outcome.release).who
    release = "" if hook == "pre-build" else outcome.release
    env_vars = hooks.variables(hook, outcome.env, outcome.action, release, previous, who,
                               inv.path, outcome=("ok" if outcome.ok else "failed"),
                               failure=outcome.failure, **extra)
    try:
        result = hooks.run(hooks.directory(inv.path), hook, env_vars, say=clock.say)
    except hooks.HookError as exc:
        raise DeployError(f"{exc}; nothing was changed") from None
    if result is None:
        return
    outcome.hooks.append(result.record())
    if not result.ok and hook in hooks.PRE:
        raise DeployError(f"{result.message}; nothing was changed, the lock was not taken")
    if not result.ok:
        raise _HookFailed(result.message)


def _post_hook(outcome: Outcome, clock: Clock, plan: Plan, action: str) -> None:
    """post-deploy / post-rollback, under the lock so the audit record has its result."""
    hook = "post-deploy" if action == "deploy" else "post-rollback"
    if not _has_hook(plan.inv, hook):
        return
    try:
        with clock.phase(hook, f"the {hook} hook"):
            _run_hook(outcome, clock, plan.inv, hook, _previous(plan))
    except (_HookFailed, DeployError) as exc:
        clock.say(f"{hook}: {exc}")


def _maintenance(clock: Clock, plan: Plan, on: bool) -> None:
    """Switch the maintenance page on every load balancer; a failure to switch on stops."""
    verb = "on" if on else "off"
    try:
        with clock.phase(f"maintenance {verb}", f"maintenance page {verb} at every load balancer"):
            if on:
                plan.maintenance_on = True  # even partly on must be switched off again
                maintenance_mode.switch_on(plan.inv, plan.maintenance_message, say=clock.say)
            else:
                maintenance_mode.switch_off(plan.inv, say=clock.say)
                plan.maintenance_on = False
    except maintenance_mode.MaintenanceError as exc:
        if on:
            raise DeployError(f"{exc}; no migration ran, no host was switched") from None
        # Off failed: the release is live behind the page; say how to lift it, do not hide it.
        clock.say(f"WARNING: {exc}; the maintenance page is still up: run `fab maintenance.off`")

