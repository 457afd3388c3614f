"""Flask Fleet: the operator's commands. Run `fab --list`; `fab --help TASK` for options.

Tasks stay thin: they parse options and call the `fleet` library, which does the work.
"""

from __future__ import annotations

import math
import os
import sys
from pathlib import Path

from fabric import task
from invoke import Collection, Exit

from fleet import audit as audit_trail
from fleet import hosts, inventory, report, settings
from fleet import lock as deploy_lock
from fleet.ops import appinit, database, logs, nodes, releases
from fleet.ops import apprun as app_commands
from fleet.ops import deploy as deploying
from fleet.ops import environments as scaffolding
from fleet.ops import maintenance as maintenance_mode
from fleet.ops import operation as locked
from fleet.ops import provision as provisioning
from fleet.ops import secrets_rollout as rollouts
from fleet.ops import status as fleet_status
from fleet.ops import vault as secret_store
from fleet.ops import verify as verification
from fleet.proof import rehearse as rehearsal
from fleet.sandbox import devstack as dev_stack
from fleet.sandbox import engine
from fleet.sandbox.containers import DEFAULT_NAME, Sandbox, SandboxError
from fleet.sandbox.topology import HostSpec, TopologyError, default_topology


def _sandbox() -> Sandbox:
    return Sandbox(name=os.environ.get("FLEET_SANDBOX", DEFAULT_NAME))


def _status_table(sandbox: Sandbox) -> str:
    rows = [(h.name, ",".join(h.groups), h.status, h.address) for h in sandbox.hosts()]
    return report.table(("host", "groups", "state", "address"), rows)


@task(help={"apps": "number of app hosts (1-8, default 2)",
            "workers": "number of Celery worker hosts (1-8, default 1; worker1 also runs beat)"})
def up(c, apps="2", workers="1"):
    """Start the local sandbox fleet (lb1, appN, workerN, db1) and write its inventory."""
    try:
        specs = default_topology(apps, workers)
        print(engine.ensure_engine())
        sandbox = _sandbox()
        # Fixed loopback ports for the default sandbox so its URL is stable; others pick free ones.
        ports = (8080, 8443) if sandbox.name == DEFAULT_NAME else (None, None)
        sandbox.up(specs, *ports)
    except (TopologyError, SandboxError, engine.EngineError) as exc:
        raise Exit(f"sandbox.up: {exc}") from None
    print(_status_table(sandbox))
    print(f"inventory: {sandbox.inventory_path}")
    print(f"load balancer: {'  '.join(sandbox.urls()) or 'not published'}")


@task(help={"name": "new host name, e.g. app3",
            "group": "inventory group(s), comma-separated: app, workers, ..."})
def add(c, name, group):
    """Create one more sandbox host on the sandbox network and add it to the inventory."""
    try:
        spec = HostSpec(name, tuple(g.strip() for g in group.split(",") if g.strip()))
        sandbox = _sandbox()
        if not sandbox.hosts():
            raise SandboxError("the sandbox is not running; start it with `fab sandbox.up`")
        if "beat" in spec.groups:
            raise SandboxError("the sandbox already has its single beat host (worker1)")
        sandbox.up([spec])
    except (TopologyError, SandboxError) as exc:
        raise Exit(f"sandbox.add: {exc}") from None
    print(_status_table(sandbox))


@task
def down(c):
    """Remove the sandbox: its containers, network, SSH keys and generated inventory."""
    if not engine.engine_answers():
        raise Exit("sandbox.down: no Docker engine answers; nothing to remove")
    removed = _sandbox().down()
    print("\n".join(f"removed {item}" for item in removed) or "sandbox.down: nothing to remove")


@task
def status(c):
    """Show the sandbox hosts, their groups, state and private address."""
    if not engine.engine_answers():
        raise Exit("sandbox.status: no Docker engine answers (run `make engine`)")
    sandbox = _sandbox()
    if not sandbox.hosts():
        print("sandbox: not running (start it with `fab sandbox.up`)")
        return
    print(_status_table(sandbox))


@task(help={"host": "sandbox host name, e.g. app1"})
def ssh(c, host):
    """Open an SSH session on a sandbox host as the admin user."""
    sandbox = _sandbox()
    address = {h.name: h.address for h in sandbox.hosts()}.get(host)
    if not address:
        known = ", ".join(h.name for h in sandbox.hosts()) or "none (run `fab sandbox.up`)"
        raise Exit(f"sandbox.ssh: no host {host!r}; hosts: {known}")
    os.execvp("ssh", ["ssh", "-i", str(sandbox.key_path), "-o", "StrictHostKeyChecking=no",
                      "-o", "UserKnownHostsFile=/dev/null", "-o", "LogLevel=ERROR",
                      f"fleet@{address}"])


@task(help={"env": "environment: a directory under inventory/ (default sandbox)",
            "limit": "only these hosts or groups (Ansible pattern, e.g. app1 or app:!app2)",
            "check": "dry run: report what would change, change nothing",
            "full": "run the playbook even when every host is as the last provision left it"})
def provision(c, env="sandbox", limit=None, check=False, full=False):
    """Provision an environment: pre-flight (inventory, secrets, SSH), then playbooks/site.yml
    unless every host is as the last provision left it (--full: run it anyway)."""
    try:
        provisioning.provision(env, limit=limit, check=check, full=full)
    except provisioning.ProvisionError as exc:
        raise Exit(f"provision: {exc}") from None


@task(help={"env": "environment: a directory under inventory/ (default sandbox)"})
def verify(c, env="sandbox"):
    """Check an environment's hosts with the testinfra suite (services, ports, security, TLS)."""
    try:
        verification.verify(env)
    except verification.VerifyError as exc:
        raise Exit(f"verify: {exc}") from None


@task(help={"env": "environment: a directory under inventory/ (default sandbox)",
            "ref": "deploy this git ref of the app instead of the working tree",
            "batch": "app hosts switched at a time (default: all at once)",
            "check": "pre-flight, build and show the plan; change nothing, run no hook",
            "maintenance": "serve the maintenance page from before the migrations until every "
                           "app host has switched (a migration that cannot run online)",
            "message": "with --maintenance: the maintenance page's message"})
def deploy(c, env="sandbox", ref=None, batch=None, check=False, maintenance=False, message=None):
    """Build the app once and roll it out: lock, install, migrate once, rolling switch, workers."""
    if message is not None and not maintenance:
        raise Exit("deploy: --message is the maintenance page's message; it needs --maintenance")
    try:
        outcome = deploying.deploy(env, ref=ref, batch=_batch(batch), check=check,
                                   maintenance=maintenance,
                                   maintenance_message=maintenance_mode.check_message(message))
    except (deploying.DeployError, maintenance_mode.MaintenanceError) as exc:
        raise Exit(f"deploy: {exc}") from None
    _hook_exit("deploy", outcome)


def _hook_exit(action: str, outcome: deploying.Outcome) -> None:
    """A failed post hook: the release stands, but fab says so and exits with status 3."""
    if outcome.hook_failure:
        raise Exit(f"{action}: {outcome.release} is live ({action} succeeded), but "
                   f"{outcome.hook_failure}", code=HOOK_FAILED_EXIT)


@task(help={"env": "environment: a directory under inventory/ (default sandbox)",
            "to": "release id to return to (default: the previous release)",
            "batch": "app hosts switched at a time (default: all at once)"})
def rollback(c, env="sandbox", to=None, batch=None):
    """Switch back to the previous (or a named) release; the schema is left as it is."""
    try:
        outcome = deploying.rollback(env, to=to, batch=_batch(batch))
    except deploying.DeployError as exc:
        raise Exit(f"rollback: {exc}") from None
    _hook_exit("rollback", outcome)


@task(help={"rate": "requests a second (default 20)",
            "seconds": "how long to send them (default 30)",
            "env": "environment: a directory under inventory/ (default sandbox)"})
def load(c, rate="20", seconds="30", env="sandbox"):
    """Send steady traffic through the load balancer and report failures and latency."""
    requests_a_second, duration = _rate(rate), _seconds(seconds, "--seconds")
    try:
        result = rehearsal.load_environment(_inventory(env), requests_a_second, duration)
    except rehearsal.RehearsalError as exc:
        raise Exit(f"load: {exc}") from None
    print(result.summary())
    if not result.ok:
        raise Exit("load: not every request succeeded (see above)")


@task(help={"rate": "requests a second during the deploy (default 20)",
            "env": "environment: a directory under inventory/ (default sandbox)"})
def rehearse(c, rate="20", env="sandbox"):
    """Deploy a fresh build under steady traffic; show the requests failed in each phase."""
    requests_a_second = _rate(rate)
    try:
        result = rehearsal.rehearse(env, requests_a_second)
    except (inventory.InventoryError, rehearsal.RehearsalError) as exc:
        raise Exit(f"rehearse: {exc}") from None
    print("\n" + result.table())
    if not result.ok:
        raise Exit("rehearse: the deploy failed or requests failed during it (see above)")


@task(help={"env": "environment: a directory under inventory/ (default sandbox)"})
def releases_(c, env="sandbox"):
    """List the releases on every app/worker/beat host; live and previous are marked."""
    inv = _inventory(env)
    print(releases.table(releases.read(inv)))


@task(help={"env": "environment: a directory under inventory/ (default sandbox)",
            "last": "how many records (default 10)"})
def audit(c, env="sandbox", last="10"):
    """Show the last deploys and rollbacks: who, what, when, outcome, phase timings."""
    inv = _inventory(env)
    runner = hosts.runner(inv, locked.lock_host(inv))
    entries = audit_trail.last(runner, _positive(last, "--last"))
    print(audit_trail.table(entries) if entries else "audit: no records yet")


@task(name="status", help={"env": "environment: a directory under inventory/ (default sandbox)"})
def lock_status(c, env="sandbox"):
    """Show who holds the deploy lock, for which release and since when."""
    inv = _inventory(env)
    holder = deploy_lock.status(hosts.runner(inv, locked.lock_host(inv)))
    print("lock: free" if holder is None else
          f"lock: held by {holder.who} ({holder.action} of {holder.release}) since "
          f"{holder.since}, pid {holder.pid}")


@task(name="release", help={"env": "environment: a directory under inventory/ (default sandbox)",
                            "force": "really remove a lock someone else holds"})
def lock_release(c, env="sandbox", force=False):
    """Remove a stale deploy lock (after a crash); shows the holder and needs --force."""
    inv = _inventory(env)
    runner = hosts.runner(inv, locked.lock_host(inv))
    holder = deploy_lock.status(runner)
    if holder is None:
        print("lock: free, nothing to release")
        return
    description = (f"{holder.who} ({holder.action} of {holder.release}) since {holder.since}, "
                   f"pid {holder.pid}")
    if not force:
        raise Exit(f"lock.release: the lock is held by {description}. Make sure that deploy is "
                   "not running any more, then run again with --force")
    deploy_lock.release(runner)
    print(f"lock: released (was held by {description})")


@task(name="status", help={"env": "environment: a directory under inventory/ (default sandbox)"})
def fleet_status_(c, env="sandbox"):
    """One table of the fleet: releases, programs, services, health, load-balancer state."""
    inv = _inventory(env)
    print(fleet_status.table(fleet_status.gather(inv),
                             settings.setting(inv, "app_name")))
    try:
        up = {h: s for h, s in maintenance_mode.status(inv).items() if s != "off"}
    except maintenance_mode.MaintenanceError as exc:
        up = {"?": str(exc)}
    print("maintenance: " + ("off" if not up else
                             "; ".join(f"{h}: {s}" for h, s in sorted(up.items()))))


@task(help={"service": f"one of: {', '.join(logs.SOURCES)}",
            "host": "only this host (default: every host that runs the service)",
            "lines": "lines per host (default 50)", "env": "environment (default sandbox)"})
def logs_(c, service, host=None, lines="50", env="sandbox"):
    """Show the last lines of a service's log from the hosts that run it."""
    inv = _inventory(env)
    try:
        found = logs.read(inv, service, host, _positive(lines, "--lines"))
    except logs.LogsError as exc:
        raise Exit(f"logs: {exc}") from None
    for name, text in found.items():
        print(f"==> {name}: {service} <==\n{text.rstrip()}\n")


@task(name="backup", help={"env": "environment (default sandbox)"})
def db_backup(c, env="sandbox"):
    """Dump the database now (as deploys do before migrating); copy it off-host if configured."""
    inv = _inventory(env)
    try:
        # Progress on stderr: the dump's path stays the first line of stdout, for scripts.
        path = database.backup(inv, say=lambda line: print(line, file=sys.stderr))
        print(f"db.backup: {database.db_host(inv)}:{path}")
        copies = database.copy_dir(inv)
        if copies is not None:
            database.fetch(inv, copies, [path.rsplit("/", 1)[-1]])
    except database.DatabaseError as exc:
        raise Exit(f"db.backup: {exc}") from None


@task(name="backups", help={"env": "environment (default sandbox)"})
def db_backups(c, env="sandbox"):
    """List the dumps on the db host: size, age, checksum (and off-host copy) of each."""
    inv = _inventory(env)
    try:
        found = database.backups(inv)
    except database.DatabaseError as exc:
        raise Exit(f"db.backups: {exc}") from None
    print(database.table(found) if found else "db.backups: no backup yet (fab db.backup)")
    if any(b.checksum != "ok" for b in found):
        raise Exit("db.backups: some dumps have no checksum or do not match it (see above)")


@task(name="fetch", help={"to": "directory on this machine (default: the inventory's "
                                "mariadb_backup_copy_dir)",
                          "env": "environment (default sandbox)"})
def db_fetch(c, to=None, env="sandbox"):
    """Copy every dump not copied yet (and its checksum) off the db host, checked."""
    inv = _inventory(env)
    target = Path(to).expanduser() if to else database.copy_dir(inv)
    if target is None:
        raise Exit("db.fetch: give --to DIR or set mariadb_backup_copy_dir in the inventory")
    try:
        copied = database.fetch(inv, target)
    except database.DatabaseError as exc:
        raise Exit(f"db.fetch: {exc}") from None
    print(f"db.fetch: {len(copied)} new dump(s) in {target}")


@task(name="verify-backup", help={"backup": "dump to check (default: the latest)",
                                  "env": "environment (default sandbox)"})
def db_verify_backup(c, backup=None, env="sandbox"):
    """Restore drill: load a dump into a scratch database, run readiness queries, count rows."""
    inv = _inventory(env)
    try:
        drill = database.verify_backup(inv, backup)
    except database.DatabaseError as exc:
        raise Exit(f"db.verify-backup: {exc}") from None
    print(drill.summary())
    if not drill.ok:
        raise Exit(f"db.verify-backup: {drill.failure}")


@task(name="restore", help={"backup": "path of the dump on the db host (see db.backup)",
                            "yes": "really overwrite the database", "env": "environment"})
def db_restore(c, backup, yes=False, env="sandbox"):
    """Load a dump into the database (takes a safety backup first; needs --yes)."""
    inv = _inventory(env)
    if not yes:
        raise Exit(f"db.restore: this overwrites the database on {database.db_host(inv)} with "
                   f"{backup}; run again with --yes")
    try:
        safety = database.restore(inv, backup)
    except database.DatabaseError as exc:
        raise Exit(f"db.restore: {exc}") from None
    print(f"db.restore: restored {backup}; the database before it is in {safety}")


@task(name="add", help={"host": "inventory name of the new host (sandbox: created by sandbox.add)",
                        "group": "app or workers",
                        "address": "its private address, if it is not in the inventory yet",
                        "ssh_host": "where SSH reaches it, if not at --address",
                        "env": "environment (default sandbox)"})
def node_add(c, host, group, address=None, ssh_host=None, env="sandbox"):
    """Add a host to the running fleet: provision it, install the live release, gate, balance."""
    try:
        nodes.add(env, host, group, address=address, ssh_host=ssh_host)
    except nodes.NodeError as exc:
        raise Exit(f"node.add: {exc}") from None


@task(name="drain", help={"host": "app host to take out of the load balancers",
                          "timeout": "seconds to wait for in-flight requests (default: the "
                                     "nginx role's nginx_drain_timeout)",
                          "force": "drain even the last app host taking requests",
                          "env": "environment (default sandbox)"})
def node_drain(c, host, timeout=None, force=False, env="sandbox"):
    """Stop sending new requests to an app host; wait for the ones in flight."""
    try:
        nodes.drain_host(env, host, _seconds(timeout, "--timeout"), force=force)
    except nodes.NodeError as exc:
        raise Exit(f"node.drain: {exc}") from None


@task(name="enable", help={"host": "drained app host", "env": "environment (default sandbox)"})
def node_enable(c, host, env="sandbox"):
    """Send requests to a drained app host again (it must pass /readyz first)."""
    try:
        nodes.enable_host(env, host)
    except nodes.NodeError as exc:
        raise Exit(f"node.enable: {exc}") from None


@task(name="remove", help={"host": "app or worker host to take out of the fleet",
                           "timeout": "seconds to wait for in-flight requests when draining",
                           "env": "environment (default sandbox)"})
def node_remove(c, host, timeout=None, env="sandbox"):
    """Drain a host, stop its programs, take it out of the upstreams and the inventory."""
    try:
        nodes.remove(env, host, _seconds(timeout, "--timeout"))
    except nodes.NodeError as exc:
        raise Exit(f"node.remove: {exc}") from None
    if env == inventory.SANDBOX_ENV and _sandbox().remove_host(host):
        print(f"sandbox: removed the container of {host}")


@task(name="up")
def dev_up(c):
    """Start the development stack (docker compose): nginx, gunicorn --reload, MariaDB, Redis,
    Celery worker and beat, configs rendered from templates/, the app's code mounted."""
    try:
        print(engine.ensure_engine())
        dev_stack.up()
    except (dev_stack.DevStackError, engine.EngineError) as exc:
        raise Exit(f"dev.up: {exc}") from None


@task(name="down", help={"keep_data": "keep the database and Redis volumes for the next dev.up"})
def dev_down(c, keep_data=False):
    """Remove the development stack: its containers, network and (unless --keep-data) volumes."""
    if not engine.engine_answers():
        raise Exit("dev.down: no Docker engine answers; nothing to remove")
    try:
        removed = dev_stack.down(keep_data=keep_data)
    except dev_stack.DevStackError as exc:
        raise Exit(f"dev.down: {exc}") from None
    print("\n".join(f"removed {item}" for item in removed) or "dev.down: nothing left to remove")


@task(name="logs", help={"service": f"one of: {', '.join(dev_stack.SERVICES)} (default: all)",
                         "lines": "lines per service (default 100)",
                         "follow": "keep printing new lines until Ctrl-C"})
def dev_logs(c, service=None, lines="100", follow=False):
    """Show the development stack's logs (one service or all)."""
    try:
        dev_stack.logs(service, _positive(lines, "--lines"), follow=follow)
    except dev_stack.DevStackError as exc:
        raise Exit(f"dev.logs: {exc}") from None


@task(name="seed", help={"password": "the demo admin's password (8+ characters)",
                         "email": "the demo admin's e-mail (default admin@example.org)"})
def dev_seed(c, password, email=dev_stack.DEV_ADMIN_EMAIL):
    """Seed the development stack with the app's demo data (idempotent)."""
    try:
        print(dev_stack.seed(password, email))
    except dev_stack.DevStackError as exc:
        raise Exit(f"dev.seed: {exc}") from None
    print(f"login: {email} at https://127.0.0.1:{dev_stack.HTTPS_PORT}/")


@task(name="run", help={"command": "shell command, run in the live release's directory",
                        "host": "app host to run it on (default: the first)",
                        "env": "environment (default sandbox)"})
def app_run(c, command, host=None, env="sandbox"):
    """Run an app command once, as the app user with its env file, from the live release."""
    inv = _inventory(env)
    try:
        target, output = app_commands.run(inv, command, host=host)
    except app_commands.AppRunError as exc:
        raise Exit(f"app.run: {exc}") from None
    print(f"==> {target}: {command} <==\n{output}")


@task(help={"email": "the demo admin's e-mail (default admin@example.org)",
            "password": "its password (default: the one remembered for this environment, "
                        "else a new random one)",
            "env": "environment (default sandbox)"})
def seed(c, email=None, password=None, env="sandbox"):
    """Seed the reference app's demo data (idempotent) and print a login that works."""
    inv = _inventory(env)
    try:
        login = app_commands.seed(inv, email=email, password=password)
    except app_commands.AppRunError as exc:
        raise Exit(f"seed: {exc}") from None
    print(f"login: {login.email} / {login.password} at {login.url}")


@task(name="open", help={"env": "environment (default sandbox)"})
def open_(c, env="sandbox"):
    """Print where the app is served and the demo login; open a browser if there is a display."""
    inv = _inventory(env)
    url = rehearsal.load_target(inv)[0].rstrip("/") + "/"
    login = app_commands.remembered_login(env)
    print(f"open: {url}" + (" (self-signed certificate)" if inv.is_sandbox else ""))
    print(f"login: {login.email} / {login.password}" if login else
          "login: none remembered here; `fab seed` makes one")
    if os.environ.get("DISPLAY") or os.environ.get("WAYLAND_DISPLAY"):
        import webbrowser

        if webbrowser.open(url):
            print("open: opened in your browser")


def _seconds(value: str | None, option: str) -> float | None:
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        seconds = -1
    if seconds <= 0:
        raise Exit(f"{option} must be a positive number of seconds, not {value!r}")
    return seconds


def _rate(value: str) -> float:
    try:
        rate = float(value)
    except ValueError:
        rate = -1
    if not (rate > 0 and math.isfinite(rate)):
        raise Exit(f"--rate must be a positive number of requests a second, not {value!r}")
    return rate


def _positive(value: str, option: str) -> int:
    try:
        number = int(value)
    except ValueError:
        number = 0
    if number < 1:
        raise Exit(f"{option} must be a whole number of at least 1, not {value!r}")
    return number


def _batch(value: str | None) -> int:
    """--batch: a whole number of at least 1; not given, 0 (every app host at once)."""
    return 0 if value is None else _positive(value, "--batch")


def _inventory(env: str) -> inventory.Inventory:
    try:
        return inventory.check(env)
    except inventory.InventoryError as exc:
        raise Exit(str(exc)) from None


# `fab deploy`/`rollback` exit status when the work succeeded but a post hook failed (a failed
# deploy exits 1), so a script can tell "not deployed" from "deployed, smoke test failed".
HOOK_FAILED_EXIT = 3


@task(name="on", help={"message": "the page's message (HTML-escaped; default: the inventory's "
                                  "nginx_maintenance_message)",
                       "env": "environment (default sandbox)"})
def maintenance_on(c, message=None, env="sandbox"):
    """Serve the maintenance page (503, JSON under /api) at every load balancer."""
    inv = _inventory(env)
    try:
        maintenance_mode.switch_on(inv, message)
    except maintenance_mode.MaintenanceError as exc:
        raise Exit(f"maintenance.on: {exc}") from None


@task(name="off", help={"env": "environment (default sandbox)"})
def maintenance_off(c, env="sandbox"):
    """Pass every request to the app again at every load balancer."""
    inv = _inventory(env)
    try:
        maintenance_mode.switch_off(inv)
    except maintenance_mode.MaintenanceError as exc:
        raise Exit(f"maintenance.off: {exc}") from None


@task(name="status", help={"env": "environment (default sandbox)"})
def maintenance_status(c, env="sandbox"):
    """Show whether each load balancer serves the maintenance page, since when, by whom."""
    inv = _inventory(env)
    try:
        found = maintenance_mode.status(inv)
    except maintenance_mode.MaintenanceError as exc:
        raise Exit(f"maintenance.status: {exc}") from None
    print(report.table(("load balancer", "maintenance"), sorted(found.items())))


@task(name="new", help={"name": "the new environment: a directory name under inventory/",
                        "from_": "the environment to copy (default production.example)"})
def env_new(c, name, from_=scaffolding.EXAMPLE_ENV):
    """Scaffold inventory/NAME/ from the documented example; print what to edit next."""
    try:
        created = scaffolding.new(name, from_)
    except scaffolding.EnvError as exc:
        raise Exit(f"env.new: {exc}") from None
    print(f"env.new: created {inventory.shown(created.path)} "
          f"({len(created.files)} files, the example hosts are placeholders)")
    print("\n".join(created.next_steps()))


@task(name="init", help={"app_dir": "the app's directory (its Python files are read, never run)",
                         "env": "the new environment: a name under inventory/ or a path "
                                "(default: the app's name)",
                         "name": "app_name (default: the directory's name, lowercased)"})
def init_(c, app_dir, env=None, name=None):
    """Read an app's files and write a new environment whose app.yml holds the guessed contract."""
    try:
        done = appinit.init(Path(app_dir), env=env, name=name)
    except appinit.InitError as exc:
        raise Exit(f"init: {exc}") from None
    print(report.table(("variable", "value", "why"), done.rows()))
    for notice in done.scan.notices:
        print(f"init: note: {notice}")
    if done.scan.unmapped:
        print("init: the app reads variables no preset sets (listed under app_extra_env): "
              + ", ".join(done.scan.unmapped))
    print(f"init: created {inventory.shown(done.created.path)}; wrote "
          f"{inventory.shown(done.app_vars)}")
    print("\n".join(done.next_steps()))


_PASSWORD_HELP = f"vault password file (default: ${secret_store.PASSWORD_ENV})"


@task(name="init", help={"env": "environment: a directory under inventory/",
                         "password_file": _PASSWORD_HELP,
                         "tls_certificate": "PEM certificate (with chain) of the load balancers",
                         "tls_key": "PEM private key of that certificate"})
def secrets_init(c, env, password_file=None, tls_certificate=None, tls_key=None):
    """Write the environment's vault: random strong secrets, encrypted with ansible-vault."""
    try:
        done = secret_store.init(env, password_file, tls_certificate, tls_key)
    except secret_store.VaultError as exc:
        raise Exit(f"secrets.init: {exc}") from None
    print(f"secrets.init: wrote {inventory.shown(done.path)} (encrypted, mode 0600): "
          f"{', '.join(done.generated)}")
    if not done.tls:
        print("secrets.init: no TLS pair: with nginx_tls_mode: provided, add your certificate "
              "authority's nginx_tls_certificate and nginx_tls_certificate_key with "
              f"`fab secrets.edit --env {env}` (or use nginx_tls_mode: external)")


@task(name="edit", help={"env": "environment: a directory under inventory/",
                         "password_file": _PASSWORD_HELP})
def secrets_edit(c, env, password_file=None):
    """Edit the environment's vault in $EDITOR (ansible-vault edit)."""
    try:
        code = secret_store.edit(env, password_file)
    except secret_store.VaultError as exc:
        raise Exit(f"secrets.edit: {exc}") from None
    if code:
        raise Exit(f"secrets.edit: ansible-vault edit exited with {code}")


@task(name="rotate", help={"env": "environment: a directory under inventory/",
                           "secret": "secret(s) to replace, comma-separated, e.g. redis_password",
                           "password_file": _PASSWORD_HELP,
                           "apply": "roll the new values out through the fleet right away"})
def secrets_rotate(c, env, secret, password_file=None, apply=False):
    """Give secrets new random values in the store; --apply rolls them out (no failed request)."""
    try:
        store = secret_store.store(env, password_file)
        rotated = secret_store.rotate(store, secret.split(","))
    except secret_store.VaultError as exc:
        raise Exit(f"secrets.rotate: {exc}") from None
    print(f"secrets.rotate: new values for {', '.join(rotated)} in {inventory.shown(store.path)}")
    if not apply:
        print(f"secrets.rotate: the fleet still uses the old values; roll them out with "
              f"`fab secrets.rollout --env {env}`")
        return
    _rollout(env, password_file)


@task(name="rollout", help={"env": "environment: a directory under inventory/",
                            "password_file": _PASSWORD_HELP})
def secrets_rollout_(c, env, password_file=None):
    """Bring the fleet to the stored secrets: servers accept both, clients move, old dropped."""
    _rollout(env, password_file)


def _rollout(env: str, password_file: str | None) -> None:
    try:
        rollouts.rollout(env, password_file)
    except (secret_store.VaultError, rollouts.RolloutError) as exc:
        raise Exit(f"secrets.rollout: {exc}") from None


ns = Collection()
ns.add_task(init_, name="init")
ns.add_task(provision)
ns.add_task(verify)
ns.add_task(deploy)
ns.add_task(rollback)
ns.add_task(load)
ns.add_task(rehearse)
ns.add_task(releases_, name="releases")
ns.add_task(audit)
ns.add_task(fleet_status_, name="status")
ns.add_task(logs_, name="logs")
ns.add_collection(Collection("lock", lock_status, lock_release))
ns.add_collection(Collection("db", db_backup, db_backups, db_fetch, db_restore,
                             db_verify_backup))
ns.add_collection(Collection("maintenance", maintenance_on, maintenance_off, maintenance_status))
ns.add_collection(Collection("node", node_add, node_drain, node_enable, node_remove))
ns.add_collection(Collection("sandbox", up, add, down, status, ssh))
ns.add_task(seed)
ns.add_task(open_, name="open")
ns.add_collection(Collection("app", app_run))
ns.add_collection(Collection("dev", dev_up, dev_down, dev_logs, dev_seed))
ns.add_collection(Collection("env", env_new))
ns.add_collection(Collection("secrets", secrets_init, secrets_edit, secrets_rotate,
                             secrets_rollout_))
