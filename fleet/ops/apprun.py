"""Run one command of the live release, once, on one app host (`fab app.run`, `fab seed`).

The command runs as the app user through the run wrapper the app role installs, so it sees
exactly what the programs see: the env file, the live release's venv first on PATH, the release
directory as its working directory. `fab seed` is the reference app's `seed-demo` run that way,
with the demo login remembered on the control node so `fab open` can print it.
"""

from __future__ import annotations

import json
import secrets
import shlex
import ssl
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path

from fleet import hosts
from fleet.inventory import Inventory
from fleet.proof.rehearse import load_target
from fleet.settings import setting

LOGIN_DIR = Path(".cache/demo")
DEFAULT_ADMIN_EMAIL = "admin@example.org"


class AppRunError(RuntimeError):
    """The command could not be run, or it failed (its output is in the message)."""


def app_host(inv: Inventory, host: str | None = None) -> str:
    """The host to run on: the one named (it must be an app host), else the first app host."""
    apps = inv.hosts_of("app")
    if not apps:
        raise AppRunError(f"environment {inv.env} has no host in group app to run the command on")
    if host is None:
        return apps[0]
    if host not in apps:
        raise AppRunError(f"--host {host!r} is not an app host of {inv.env}; app hosts: "
                          f"{', '.join(apps)}")
    return host


def wrapped(inv: Inventory, command: str, env: dict[str, str] | None = None) -> str:
    """The shell command that runs `command` as the app user through the run wrapper."""
    user = setting(inv, "app_user")
    wrapper = setting(inv, "app_run_wrapper")
    exports = " ".join(f"{name}={shlex.quote(value)}" for name, value in (env or {}).items())
    # runuser keeps the environment it is given, so the variables reach the command.
    return (f"{'env ' + exports + ' ' if exports else ''}runuser -u {shlex.quote(user)} -- "
            f"{shlex.quote(wrapper)} sh -c {shlex.quote(command)}")


def run(inv: Inventory, command: str, host: str | None = None,
        env: dict[str, str] | None = None, timeout: float = 600) -> tuple[str, str]:
    """Run `command` once on one app host; (host, output). Raises with the output on failure."""
    if not command.strip():
        raise AppRunError("the command is empty")
    target = app_host(inv, host)
    runner = hosts.runner(inv, target)
    try:
        result = runner.run(wrapped(inv, command, env), timeout=timeout)
    finally:
        runner.close()
    output = (result.stdout + result.stderr).strip()
    if not result.ok:
        raise AppRunError(f"{target}: `{command}` failed:\n{output[-3000:]}")
    return target, output


@dataclass(frozen=True)
class DemoLogin:
    email: str
    password: str
    url: str


def login_file(env: str) -> Path:
    return LOGIN_DIR / f"{env}.json"


def remembered_login(env: str) -> DemoLogin | None:
    path = login_file(env)
    if not path.is_file():
        return None
    data = json.loads(path.read_text())
    return DemoLogin(data["email"], data["password"], data["url"])


def seed(inv: Inventory, email: str | None = None, password: str | None = None) -> DemoLogin:
    """Seed the demo data once (idempotent) and prove the login works through the balancer.

    The password is the one given, else the one remembered for this environment, else a new
    random one. `seed-demo` leaves an existing admin's password alone, so the login is checked
    against the live site rather than assumed.
    """
    known = remembered_login(inv.env)
    email = (email or (known.email if known else DEFAULT_ADMIN_EMAIL)).strip().lower()
    password = password or (known.password if known and known.email == email
                            else secrets.token_urlsafe(12))
    if len(password) < 8:
        raise AppRunError("--password must be at least 8 characters")
    wsgi = setting(inv, "app_wsgi")
    command = f"flask --app {shlex.quote(wsgi)} seed-demo --admin-email {shlex.quote(email)}"
    host, output = run(inv, command, env={"FLEETAPP_SEED_ADMIN_PASSWORD": password})
    url = load_target(inv)[0].rstrip("/") + "/"
    login = DemoLogin(email, password, url)
    check_login(login)
    path = login_file(inv.env)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(login.__dict__, indent=2) + "\n")
    path.chmod(0o600)
    print(f"seed: {host}: {output.splitlines()[-1] if output else 'done'}")
    return login


def check_login(login: DemoLogin, timeout: float = 10) -> None:
    """POST the login to the live site's API; raises naming the problem when it is refused."""
    context = ssl.create_default_context()
    # The sandbox's certificate is self-signed; the check is about the login, not TLS.
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    body = json.dumps({"email": login.email, "password": login.password}).encode()
    request = urllib.request.Request(login.url + "api/auth/login", data=body, method="POST",
                                     headers={"Content-Type": "application/json",
                                              "Accept": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=context) as response:
            response.read()
    except urllib.error.HTTPError as exc:
        if exc.code == 401:
            raise AppRunError(
                f"{login.email} exists with another password than the one remembered here; "
                f"run `fab seed --email another@example.org` or pass its --password") from None
        raise AppRunError(f"logging in at {login.url} answered {exc.code}") from None
    except (urllib.error.URLError, OSError) as exc:
        raise AppRunError(f"cannot reach {login.url} to check the login: {exc}") from None
