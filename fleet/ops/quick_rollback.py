"""`fab rollback`'s quick path: a pointer flip over plain SSH, no Ansible run (and the deploy's
workers phase, which restarts the programs the same way when it can).

A switch leaves the release it replaced running in each app host's other gunicorn slot
(app_gunicorn_keep_previous). When every app host still has that slot up on the target release
and ready, and every host was last switched with the inventory and kit as they are now (the
settings digest), a rollback needs no file written and no process started on the app hosts:
it points `current` (and `previous`) back and moves the load balancers to those slots in one
reload per batch. Anything else (a slot stopped, another release in it, a changed inventory, a
host that does not answer) takes the full switch of release-switch.yml, which starts what is
missing; `probe` says why. The workers and beat are the other half, decided on their own
(`restart_workers`): when they were last switched with the inventory and kit as they are now,
their links flip and the restart script a deploy runs (templates/celery/restart-programs.sh.j2)
restarts the programs over SSH; otherwise release-workers.yml does it.

A deploy's switch takes the same path when every app host was last switched with the inventory
and kit as they are now (`probe` with `start`): its files are then the ones release-switch.yml
would write, so the switch is, per host, one SSH command (link, start the other slot, gate it)
and one reload per load balancer for the batch, with no Ansible run.
"""

from __future__ import annotations

import hashlib
import json
import shlex
import threading
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from fleet import hosts, upstream
from fleet.inventory import Inventory
from fleet.ops import releases
from fleet.remote import Result, SSHRunner
from fleet.settings import SettingError, setting, setting_bool

KIT = Path(__file__).resolve().parents[2]
# What makes the files a switch writes (gunicorn settings, program files, restart script).
KIT_SOURCES = ("roles", "templates")

Say = Callable[[str], None]


class QuickRollbackError(Exception):
    """The quick rollback failed; the message says what and where each host is now."""


def settings_digest(inv: Inventory, parts: tuple[str, ...] = KIT_SOURCES) -> str:
    """A digest of everything a switch renders onto the hosts from: the environment's inventory
    files and the kit's roles and templates (or the kit's `parts`: files or directories).
    Equal digests mean a full switch would write the files the hosts already have."""
    sha = hashlib.sha256()
    inventory_root = inv.path if inv.path.is_dir() else inv.path.parent
    for base in (inventory_root, *(KIT / part for part in parts)):
        found = [base] if base.is_file() else sorted(p for p in base.rglob("*") if p.is_file())
        for path in found:
            name = path.name if path == base else str(path.relative_to(base))
            sha.update(name.encode() + b"\0" + path.read_bytes() + b"\0")
    return sha.hexdigest()


def digest_file(inv: Inventory) -> str:
    return setting(inv, "app_settings_digest_file")


def settings_current(inv: Inventory, names: list[str]) -> list[str]:
    """The hosts among `names` whose recorded digest is this inventory's and kit's: their env
    files and scripts are the ones a deploy would write (roles/app/tasks/env.yml deletes the
    record when it changes one). A host that cannot be read is not among them."""
    wanted = settings_digest(inv)
    read = hosts.run(inv, names, f"cat {shlex.quote(digest_file(inv))} 2>/dev/null || true",
                     timeout=30)
    return [h for h in names if read[h].ok and read[h].stdout.strip() == wanted]


def record_settings(inv: Inventory, say: Say) -> None:
    """After a switch that wrote the hosts' files (a deploy, a full rollback): remember on each
    app/worker/beat host which inventory and kit they came from. Best effort: a host that
    misses it only takes the full path at the next rollback."""
    path = digest_file(inv)
    command = (f"mkdir -p {shlex.quote(str(Path(path).parent))} && "
               f"echo {settings_digest(inv)} > {shlex.quote(path)}.new && "
               f"mv {shlex.quote(path)}.new {shlex.quote(path)}")
    missed = [h for h, r in hosts.run(inv, inv.hosts_of("app", "workers", "beat"), command,
                                       timeout=30).items() if not r.ok]
    if missed:
        say(f"settings digest not recorded on {', '.join(missed)}: the next rollback there "
            "takes the full switch")


@dataclass(frozen=True)
class AppHost:
    name: str
    address: str          # in the load balancers' upstream
    live_port: int
    next_port: int        # the warm slot, running the target release
    live_program: str
    old_current: str      # link targets before the flip, to put back on a failure
    old_previous: str
    next_program: str = ""
    start: bool = False   # a deploy starts the release in the other slot (it is not warm)


@dataclass(frozen=True)
class QuickPlan:
    target: str
    apps: list[AppHost]
    batches: list[list[AppHost]]


def _slots(inv: Inventory) -> dict[int, str]:
    return {int(setting(inv, "app_gunicorn_port")): setting(inv, "app_gunicorn_program"),
            int(setting(inv, "app_gunicorn_handover_port")):
                setting(inv, "app_gunicorn_handover_program")}


def _bind_address(inv: Inventory, host: str) -> str:
    try:
        return setting(inv, "app_gunicorn_bind_address")
    except SettingError:  # the default follows each host's private address
        return str(inv.hostvars[host].get("fleet_private_address") or host)


def _probe_command(inv: Inventory, host: str, target: str) -> str:
    """One shell command: the host's digest, links, and per slot (PORT program cwd ready
    version-json), as KEY=VALUE lines."""
    root = setting(inv, "app_root")
    bind = _bind_address(inv, host)
    parts = [f"printf 'settings=%s\\n' \"$(cat {shlex.quote(digest_file(inv))} 2>/dev/null)\"",
             releases.link_command("current", shlex.quote(root + "/current")),
             releases.link_command("previous", shlex.quote(root + "/previous")),
             f"printf 'target=%s\\n' \"$(test -e {shlex.quote(f'{root}/releases/{target}/')}"
             f"{shlex.quote(setting(inv, 'app_release_marker'))} && echo yes)\""]
    parts += [_slot_command(inv, bind, port, program) for port, program in _slots(inv).items()]
    return "; ".join(parts)


def _supervise(inv: Inventory, *args: str) -> str:
    """The supervisor role's helper (templates/supervisor/supervise.py.j2) with `args`: it asks
    supervisord directly, without supervisorctl's start-up, on every app host of a switch."""
    return " ".join(shlex.quote(a) for a in (setting(inv, "app_supervise_script"), *args))


def _slot_command(inv: Inventory, bind: str, port: int, program: str) -> str:
    """One shell command printing `slotPORT=CWD READY VERSION-JSON` for a gunicorn slot: the
    directory its process runs in, its readiness status code, its version answer."""
    url = f"http://{bind}:{port}"
    version = setting(inv, "app_version_path")
    return (f"pid=$({_supervise(inv, 'pid', program)} 2>/dev/null); "
            f"cwd=$([ \"$pid\" -gt 0 ] 2>/dev/null && readlink /proc/$pid/cwd); "
            f"ready=$(curl -s -o /dev/null -m 3 -w '%{{http_code}}' "
            f"{shlex.quote(url + setting(inv, 'app_ready_path'))}); "
            + (f"version=$(curl -s -m 3 {shlex.quote(url + version)} | tr -d '\\n'); "
               if version else "version=; ")
            + f"printf 'slot{port}=%s %s %s\\n' \"$cwd\" \"$ready\" \"$version\"")


def _parse_probe(output: str) -> dict[str, str]:
    found = {}
    for line in output.splitlines():
        key, sep, value = line.partition("=")
        if sep:
            found[key] = value
    return found


def _warm(inv: Inventory, slot: str, target: str) -> bool:
    """The slot's probe line says it runs `target` and is ready (release_gate.yml's gate)."""
    cwd, _, rest = slot.partition(" ")
    ready, _, version = rest.partition(" ")
    if cwd != f"{setting(inv, 'app_root')}/releases/{target}" or ready != "200":
        return False
    if not setting(inv, "app_version_path"):
        return True
    try:
        return json.loads(version).get("release") == target
    except (ValueError, AttributeError):
        return False


def probe(inv: Inventory, target: str, batch: int, start: bool = False) -> QuickPlan | str:
    """The app hosts' quick plan, or why they take the full switch (read-only). With `start`
    (a deploy, probing while the release installs) the other slot need not be warm, nor the
    release installed yet: the switch starts the slot, and its link checks the marker."""
    apps = inv.hosts_of("app")
    ctl = shlex.quote(setting(inv, "nginx_upstream_ctl"))
    balancers = inv.hosts_of("loadbalancers")
    wanted = settings_digest(inv)
    commands = {h: _probe_command(inv, h, target) for h in apps}
    commands |= {h: f"{ctl} list" for h in balancers}
    found = hosts.each(inv, commands, lambda r: r.run(commands[r.name], timeout=20))
    silent = [h for h, r in found.items() if not r.ok]
    if silent:
        return f"{', '.join(silent)} did not answer the probe"
    served = [upstream.ports(found[lb].stdout) for lb in balancers]
    slots = _slots(inv)
    planned = []
    for host in apps:
        state = _parse_probe(found[host].stdout)
        address = str(inv.hostvars[host].get("fleet_private_address") or host)
        if state.get("settings") != wanted:
            return f"{host} was last switched with another inventory or kit"
        if state.get("target") != "yes" and not start:
            return f"{target} is not installed on {host}"
        ports = {s.get(address) for s in served}
        if len(ports) != 1 or None in ports:
            return f"the load balancers do not agree on {host}'s port"
        live = ports.pop()
        others = [p for p in slots if p != live]
        if live not in slots or len(others) != 1:
            return f"{host} is served on port {live}, not one of its slots"
        warm = _warm(inv, state.get(f"slot{others[0]}", ""), target)
        if not warm and not start:
            return f"{host}'s other slot (port {others[0]}) does not run {target} ready"
        planned.append(AppHost(host, address, live, others[0], slots[live],
                               state.get("current", ""), state.get("previous", ""),
                               slots[others[0]], start=not warm))
    size = batch if 0 < batch < len(planned) else len(planned)
    return QuickPlan(target, planned,
                     [planned[i:i + size] for i in range(0, len(planned), size)])


def _link_command(root: str, current: str, previous: str) -> str:
    """Point current and previous at the given targets, each by renaming a new link over the
    old one (never a moment without a link); an empty previous is left alone."""
    steps = []
    for name, target in (("previous", previous), ("current", current)):
        if target and (name == "current" or target != current):
            link = shlex.quote(f"{root}/{name}")
            steps.append(f"ln -sfn {shlex.quote(target)} {link}.quick && "
                         f"mv -T {link}.quick {link}")
    return " && ".join(steps)


def _on(runners: dict[str, SSHRunner], commands: dict[str, str],
        timeout: float = 30) -> dict[str, Result]:
    """Run each host's command, all at once, over the hosts' open connections."""
    found: dict[str, Result] = {}

    def one(host: str) -> None:
        found[host] = runners[host].run(commands[host], timeout=timeout)

    threads = [threading.Thread(target=one, args=(h,)) for h in commands]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return found


def _failures(found: dict[str, Result]) -> dict[str, str]:
    return {h: (r.stderr or r.stdout).strip()[-600:] or "failed"
            for h, r in found.items() if not r.ok}


@dataclass(frozen=True)
class Gate:
    """A deploy's gate of the slot it starts (release_gate.yml's): app_ready_path answers 200
    within `timeout` seconds, looked at every `poll`; then the slot serves the release."""
    timeout: float
    poll: float


def switch_apps(inv: Inventory, plan: QuickPlan, say: Say, gate: Gate | None = None,
                before_move: Callable[[], str | None] | None = None) -> None:
    """Flip each batch's links and load balancers; a batch that fails goes back as a whole.
    With `gate` (a deploy), hosts whose other slot is not warm start the release in it and
    pass the gate first; `before_move` is asked before the load balancers move (a deploy: the
    workers' outcome) and a reason it returns sends the batch back."""
    names = [a.name for a in plan.apps] + inv.hosts_of("loadbalancers")
    runners = {h: hosts.runner(inv, h) for h in names}
    try:
        for batch in plan.batches:
            _switch_batch(inv, runners, plan.target, batch, say, gate, before_move)
    finally:
        for runner in runners.values():
            runner.close()


def _start_command(inv: Inventory, app: AppHost, target: str, gate: Gate) -> str:
    """One shell command for a deploy: check the release is installed, point current (and
    previous) at it, apply the other slot's program file and start the release in it (unless
    warm), wait for its readiness path, then print the slot's probe line."""
    root = setting(inv, "app_root")
    marker = f"{root}/releases/{target}/{setting(inv, 'app_release_marker')}"
    bind = _bind_address(inv, app.name)
    ready_path = setting(inv, "app_ready_path")
    ready = shlex.quote(f"http://{bind}:{app.next_port}{ready_path}")
    steps = ["set -e",
             f"test -e {shlex.quote(marker)} || "
             f"{{ echo 'release {target} is not installed on {app.name}' >&2; exit 1; }}",
             _link_command(root, f"{root}/releases/{target}", app.old_current)]
    if app.start:
        # supervisord may hold an older definition of the slot than its file (a switch
        # writes both slots' files and applies only the one it starts): apply it first.
        steps += [
            _supervise(inv, "update", app.next_program),
            f"{_supervise(inv, 'restart', app.next_program)} {ready}",
            f"end=$(($(date +%s) + {int(gate.timeout)})); body=$(mktemp)",
            f"until code=$(curl -s -o \"$body\" -m 5 -w '%{{http_code}}' {ready} || true); "
            f"[ \"$code\" = 200 ]; do if [ \"$(date +%s)\" -ge \"$end\" ]; then "
            f"echo \"{ready_path} did not answer 200 within {int(gate.timeout)}s (last: $code "
            f"$(head -c 400 \"$body\" | tr '\\n' ' '))\" >&2; rm -f \"$body\"; exit 1; fi; "
            f"sleep {gate.poll}; done; rm -f \"$body\""]
    # The probe line reads what may fail (no pid, no answer): it is read, never fatal.
    steps += ["set +e", _slot_command(inv, bind, app.next_port, app.next_program)]
    return "; ".join(steps)


def _served(inv: Inventory, app: AppHost, target: str, output: str) -> str | None:
    """Why the slot's probe line (the last step of _start_command) is not the gate passed."""
    slot = _parse_probe(output).get(f"slot{app.next_port}", "")
    if _warm(inv, slot, target):
        return None
    cwd, _, rest = slot.partition(" ")
    version = rest.partition(" ")[2]
    path = setting(inv, "app_version_path")
    if path:
        return f"{path} shows {version or 'nothing'}, expected {target}"
    return (f"the gunicorn on port {app.next_port} runs in {cwd or 'no directory'}, "
            f"expected {target}")


def _switch_batch(inv: Inventory, runners: dict[str, SSHRunner], target: str,
                  batch: list[AppHost], say: Say, gate: Gate | None = None,
                  before_move: Callable[[], str | None] | None = None) -> None:
    root = setting(inv, "app_root")
    ctl = shlex.quote(setting(inv, "nginx_upstream_ctl"))
    balancers = inv.hosts_of("loadbalancers")
    names = ", ".join(a.name for a in batch)
    if gate is None:
        problems = _failures(_on(runners, {a.name: _link_command(
            root, f"{root}/releases/{target}", a.old_current) for a in batch}))
    else:
        started = [a.name for a in batch if a.start]
        if started:
            say(f"switch: {', '.join(started)}: start {target} in the other slot and gate it")
        found = _on(runners, {a.name: _start_command(inv, a, target, gate) for a in batch},
                    timeout=gate.timeout + 120)
        problems = _failures(found)
        for app in batch:
            why = (None if app.name in problems else
                   _served(inv, app, target, found[app.name].stdout))
            if why:
                problems[app.name] = why
    moves = " ".join(f"{a.address} {a.next_port}" for a in batch)
    moved = False
    if not problems and before_move is not None:
        waited = before_move()
        if waited:
            problems = {"workers": waited}
    if not problems:
        moved = True
        problems = _failures(_on(runners, {lb: f"{ctl} port {moves}" for lb in balancers}))
    if problems:
        if moved:
            back = " ".join(f"{a.address} {a.live_port}" for a in batch)
            _on(runners, {lb: f"{ctl} port {back}" for lb in balancers})
        _on(runners, {a.name: _link_command(root, a.old_current, a.old_previous)
                      + (f"; {_supervise(inv, 'stop', a.next_program)}"
                         if gate is not None and a.start else "")
                      for a in batch})
        if gate is not None:
            raise QuickRollbackError(_deploy_failure(inv, target, batch, problems))
        raise QuickRollbackError(
            "the quick rollback failed on " + "; ".join(
                f"{h}: {e}" for h, e in sorted(problems.items()))
            + f". The hosts of this batch ({names}) are back on the slot that served; earlier "
            f"batches serve {target}")
    say(f"switch: {names} serve {target} "
        + (f"({moves})" if gate is not None else f"from the warm slot ({moves})"))
    if not setting_bool(inv, "app_gunicorn_keep_previous"):
        _on(runners, {a.name: _supervise(inv, "stop", a.live_program) for a in batch})


def _deploy_failure(inv: Inventory, target: str, batch: list[AppHost],
                    problems: dict[str, str]) -> str:
    """The deploy's message for a batch that went back, in the words of release-switch.yml."""
    log_dir = setting(inv, "app_log_dir")
    first_port = int(setting(inv, "app_gunicorn_port"))
    lines = []
    if "workers" in problems:
        lines.append(f"not switched: the workers and beat did not start {target} "
                     f"({problems['workers']})")
    for app in batch:
        if app.name not in problems:
            continue
        web = app.next_port == first_port
        lines.append(
            f"host={app.name}: release {target} failed: {problems[app.name].strip()}. The host "
            f"is back on {releases.release_name(app.old_current) or 'its release'}, served as "
            f"before. Logs of the slot it started: {log_dir}/"
            f"{'gunicorn.log' if web else 'gunicorn-handover.log (the other slot: gunicorn.log)'}"
            f" on {app.name} (fab logs {'web' if web else 'handover'} --host {app.name})")
    others = [a.name for a in batch if a.name not in problems]
    if others:
        lines.append(f"{', '.join(others)} of the same batch went back with it, served as "
                     "before")
    return "; ".join(lines) + "; hosts of later batches stay on their release"


def restart_workers(inv: Inventory, target: str, workers: list[str], say: Say) -> str | None:
    """Point the workers and beat at the target and restart their programs with the restart
    script, when every one of them was last switched with the inventory and kit as they are
    now; else return why release-workers.yml must do it (nothing changed then). A host whose
    programs do not work goes back to its release, restarted, and QuickRollbackError says so."""
    root = setting(inv, "app_root")
    script = setting(inv, "celery_restart_script")
    wanted = settings_digest(inv)
    runners = {h: hosts.runner(inv, h) for h in workers}
    try:
        timeout = float(setting(inv, "celery_ready_timeout")) + 660
        read = _on(runners, {h: "; ".join(
            [f"printf 'settings=%s\\n' \"$(cat {shlex.quote(digest_file(inv))} 2>/dev/null)\"",
             f"printf 'script=%s\\n' \"$(test -x {shlex.quote(script)} && echo yes)\""]
            + [releases.link_command(name, shlex.quote(f"{root}/{name}"))
               for name in ("current", "previous")]) for h in workers})
        state = {h: _parse_probe(res.stdout) for h, res in read.items()}
        for host in workers:
            if not read[host].ok:
                return f"{host} did not answer the probe"
            if state[host].get("script") != "yes":
                return f"{host} has no restart script ({script})"
            if state[host].get("settings") != wanted:
                return f"{host} was last switched with another inventory or kit"
        links = {h: (state[h].get("current", ""), state[h].get("previous", "")) for h in workers}
        restart = shlex.quote(script)
        problems = _failures(_on(runners, {h: _link_command(
            root, f"{root}/releases/{target}", links[h][0]) + f" && {restart}"
            for h in workers}, timeout))
        if not problems:
            say(f"workers: {', '.join(workers)} run {target}")
            return None
        _on(runners, {h: _link_command(root, *links[h]) + f" && {restart}"
                      for h in problems if links[h][0]}, timeout)
        raise QuickRollbackError(
            "a program of app_programs did not work on " + "; ".join(
                f"{h}: {e}" for h, e in sorted(problems.items()))
            + ". Those hosts are back on the release they ran; logs: `fab logs worker --host "
            "HOST`")
    finally:
        for runner in runners.values():
            runner.close()
