"""The bad-input catalogue (issue 18): every bad input is refused before any host is reached.

Each case starts from a real copy of inventory/production.example whose hosts all point at a
closed port on 127.0.0.1, breaks one thing, and runs it through provision, provision --check,
deploy and deploy --check (rollback where it matters). Every case asserts the error, that the
message names the field and its file or host, that the inventory tree is byte-for-byte
unchanged, and that no host was reached: the two functions that reach hosts (the Ansible ping
and the SSH runner) are wrapped to record calls while still doing their real work, and the
control case shows that a valid inventory does get as far as the ping.
"""

from __future__ import annotations

import hashlib
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path

import pytest
import tiny_app
import tls_pair
import yaml

from fleet import ansible, artifact, hosts, inventory
from fleet.ops import deploy, provision
from fleet.sandbox import secrets
from fleet.sandbox.containers import HostState, Sandbox

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "inventory" / "production.example"
FAB = str(Path(sys.executable).with_name("fab"))
SECRETS = {
    "app_secret_key": "Vq3mZ8rT1xLw5NcH7pKd2YbG9sJf4uEa",
    "mariadb_app_password": "u7Rk2PzW9mQx4LdT",
    "mariadb_migration_password": "G5nYc8HvJ3bKs6Wq",
    "redis_password": "e4TfM9aZr2XpL7Vk",
}
LB, APP1, APP2, WORKER, DB = (f"{h}.example.com" for h in ("lb1", "app1", "app2", "worker1",
                                                           "db1"))


def quiet(_: str) -> None:
    pass


# --- the environment ---------------------------------------------------------------------


def _yaml_edit(path: Path, change: Callable[[dict], None]) -> None:
    data = yaml.safe_load(path.read_text()) if path.is_file() else None
    data = data or {}
    change(data)
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(yaml.safe_dump(data, sort_keys=False))


def _hosts(env: Path) -> Path:
    return env / "hosts.yml"


def _each_host(data: dict):
    for group in data["all"]["children"].values():
        yield from (group.get("hosts") or {}).items()


def make_env(root: Path, name: str = "staging") -> Path:
    """A copy of the example with real secrets; every host at 127.0.0.1 on closed port 1."""
    env = root / name
    shutil.copytree(EXAMPLE, env)

    def unreachable(data: dict) -> None:
        for _, variables in _each_host(data):
            if variables and "ansible_host" in variables:
                variables.update(ansible_host="127.0.0.1", ansible_port=1)
        data["all"]["vars"] = {"ansible_ssh_common_args": "-o ConnectTimeout=3"}

    _yaml_edit(_hosts(env), unreachable)
    certificate, key = tls_pair.pair()
    vault = {**SECRETS, "nginx_tls_certificate": certificate, "nginx_tls_certificate_key": key}
    (env / "group_vars" / "all" / "vault.yml").write_text(yaml.safe_dump(vault))
    return env


def snapshot(tree: Path) -> dict[str, str]:
    """Every file and directory under `tree` with its content hash and mode."""
    found = {}
    for path in sorted(tree.rglob("*")):
        rel = str(path.relative_to(tree))
        if path.is_dir():
            found[rel] = f"dir {path.stat().st_mode:o}"
        else:
            found[rel] = f"{hashlib.sha256(path.read_bytes()).hexdigest()} {path.stat().st_mode:o}"
    return found


@pytest.fixture()
def reached(monkeypatch) -> list[str]:
    """Calls of the two functions that reach hosts; they still do their real work."""
    calls: list[str] = []
    real_ping, real_runner = ansible.ping, hosts.runner

    def ping(*args, **kwargs):
        calls.append(f"ansible ping {args[0]}")
        return real_ping(*args, **kwargs)

    def runner(inv, host):
        calls.append(f"ssh {host}")
        return real_runner(inv, host)

    monkeypatch.setattr(ansible, "ping", ping)
    monkeypatch.setattr(hosts, "runner", runner)
    return calls


COMMANDS: dict[str, Callable[[str], object]] = {
    "provision": lambda env: provision.provision(env, say=quiet),
    "provision --check": lambda env: provision.provision(env, check=True, say=quiet),
    "deploy": lambda env: deploy.deploy(env, say=quiet),
    "deploy --check": lambda env: deploy.deploy(env, check=True, say=quiet),
}


def refused(run: Callable[[], object], tree: Path, reached: list[str],
            *expected: str) -> str:
    """Run, expect a pre-flight refusal naming `expected`, nothing written, no host reached."""
    before = snapshot(tree)
    with pytest.raises((provision.ProvisionError, deploy.DeployError)) as error:
        run()
    message = str(error.value)
    for fragment in expected:
        assert fragment in message, f"{fragment!r} not in:\n{message}"
    assert "nothing was changed" in message, message
    assert snapshot(tree) == before, "the inventory tree changed"
    assert reached == [], f"hosts were reached: {reached}"
    return message


# --- mutations -----------------------------------------------------------------------------


def set_vars(relative: str, **values) -> Callable[[Path], None]:
    def apply(env: Path) -> None:
        _yaml_edit(env / relative, lambda data: data.update(values))
    return apply


def host_var(host: str, **values) -> Callable[[Path], None]:
    def apply(env: Path) -> None:
        def change(data: dict) -> None:
            for name, variables in _each_host(data):
                if name == host and variables is not None and "ansible_host" in variables:
                    variables.update(values)
        _yaml_edit(_hosts(env), change)
    return apply


def vault(**values) -> Callable[[Path], None]:
    return set_vars("group_vars/all/vault.yml", **values)


def groups(change: Callable[[dict], None]) -> Callable[[Path], None]:
    return lambda env: _yaml_edit(_hosts(env), lambda data: change(data["all"]["children"]))


def write(relative: str, text: str) -> Callable[[Path], None]:
    def apply(env: Path) -> None:
        (env / relative).parent.mkdir(parents=True, exist_ok=True)
        (env / relative).write_text(text)
    return apply


def both(*changes: Callable[[Path], None]) -> Callable[[Path], None]:
    def apply(env: Path) -> None:
        for change in changes:
            change(env)
    return apply


def _rename(children: dict, old: str, new: str) -> None:
    children[new] = children.pop(old)


VAULT = "group_vars/all/vault.yml"
HOSTS = "hosts.yml"
# (id, change, fragments the message must contain: the field and its file or host)
CASES = [
    # 1. a copied inventory claiming to be the sandbox gets no leniency (and no secrets file)
    ("claims-sandbox-with-example-secrets",
     both(set_vars("group_vars/all/main.yml", fleet_env="sandbox"),
          write(VAULT, (EXAMPLE / "group_vars/all/vault.yml.example").read_text())),
     ["secret app_secret_key still has the example value", VAULT]),
    ("claims-sandbox-with-no-secrets",
     both(set_vars("group_vars/all/main.yml", fleet_env="sandbox"), write(VAULT, "---\n")),
     ["secret redis_password is not set", VAULT]),
    # 2. secret values
    ("null-secret", vault(redis_password=None), ["secret redis_password is null", VAULT]),
    ("number-secret", vault(mariadb_app_password=12345678901234567),
     ["secret mariadb_app_password must be a string", VAULT]),
    ("short-secret", vault(app_secret_key="s3Cr-t9"),
     ["secret app_secret_key is 7 characters long", VAULT]),
    ("low-entropy-secret", vault(redis_password="abababababababababab"),
     ["secret redis_password has only 2 different characters", VAULT]),
    ("change-me-secret", vault(mariadb_migration_password="CHANGE-ME"),
     ["secret mariadb_migration_password looks like a placeholder", VAULT]),
    ("certificate-not-pem", vault(nginx_tls_certificate="my certificate goes here"),
     ["nginx_tls_certificate is not a PEM certificate", LB, VAULT]),
    ("key-of-another-certificate", vault(nginx_tls_certificate_key=tls_pair.other_key()),
     ["nginx_tls_certificate_key is not the key of nginx_tls_certificate", LB]),
    ("expired-certificate",
     vault(nginx_tls_certificate=tls_pair.pair(-1)[0],
           nginx_tls_certificate_key=tls_pair.pair(-1)[1]),
     ["nginx_tls_certificate expired", LB]),
    # 3. groups
    ("unknown-group",
     groups(lambda c: c.update(webservers={"hosts": {"web1.example.com": {
         "ansible_host": "127.0.0.1", "ansible_port": 1, "fleet_private_address": "10.0.0.99"}}})),
     ["group 'webservers'", HOSTS, "web1.example.com"]),
    ("misspelt-group", groups(lambda c: _rename(c, "app", "apps")),
     ["group 'app' is missing", "did you mean 'apps'?", HOSTS]),
    # 4. values the specs cannot express
    ("address-not-an-ip", host_var(APP1, fleet_private_address="not-an-ip"),
     ["fleet_private_address 'not-an-ip' is not an IP address", APP1, HOSTS]),
    ("address-out-of-range", host_var(APP1, fleet_private_address="999.1.1.1"),
     ["fleet_private_address '999.1.1.1' is not an IP address", APP1]),
    ("two-hosts-one-address", host_var(APP2, fleet_private_address="10.0.0.21"),
     ["share fleet_private_address 10.0.0.21", APP1, APP2, HOSTS]),
    ("integer-address", host_var(DB, fleet_private_address=167772161),
     ["fleet_private_address must be an IP address written as a string", DB]),
    ("port-out-of-range", set_vars("group_vars/all/app.yml", app_gunicorn_port=70000),
     ["app_gunicorn_port must be between 1 and 65535", "group_vars/all/app.yml"]),
    ("port-is-the-handover-port", set_vars("group_vars/all/app.yml", app_gunicorn_port=8001),
     ["app_gunicorn_port (", "app_gunicorn_handover_port (the role default) are both 8001",
      "group_vars/all/app.yml", f"hosts {APP1}, {APP2})"]),
    ("http-port-is-the-https-port", set_vars("group_vars/all/nginx.yml", nginx_http_port=443),
     ["nginx_http_port (", "group_vars/all/nginx.yml) and nginx_https_port", "are both 443",
      f"host {LB})"]),
    ("graceful-longer-than-stop-wait",
     set_vars("group_vars/all/app.yml", app_gunicorn_graceful_timeout=60,
              app_gunicorn_stopwaitsecs=30),
     ["app_gunicorn_graceful_timeout (60, ", "must be smaller than app_gunicorn_stopwaitsecs",
      "group_vars/all/app.yml"]),
    ("empty-app-wsgi", set_vars("group_vars/all/main.yml", app_wsgi=""),
     ["app_wsgi must be module:callable", "group_vars/all/main.yml"]),
    ("app-wsgi-without-callable", set_vars("group_vars/all/main.yml", app_wsgi="fleetapp.wsgi"),
     ["app_wsgi must be module:callable", "'fleetapp.wsgi'", "group_vars/all/main.yml"]),
    ("app-name-with-spaces", set_vars("group_vars/all/main.yml", app_name="my app"),
     ["app_name must be lower-case letters", "group_vars/all/main.yml"]),
    ("zero-timeout", set_vars("group_vars/all/nginx.yml", nginx_proxy_read_timeout=0),
     ["nginx_proxy_read_timeout must be at least 1", "group_vars/all/nginx.yml"]),
    ("redis-db-above-count", set_vars("group_vars/all/redis.yml", redis_results_db=16),
     ["redis_results_db is 16 but Redis on db1.example.com has 16 databases",
      "group_vars/all/redis.yml"]),
    # 6. messages that say where to fix
    ("type-error-in-host-vars",
     set_vars(f"host_vars/{WORKER}.yml", celery_worker_concurrency="lots"),
     ["celery_worker_concurrency must be a whole number", f"host_vars/{WORKER}.yml", WORKER]),
    ("blank-secret-on-one-host", set_vars(f"host_vars/{APP2}.yml", app_secret_key="  "),
     ["secret app_secret_key is blank", f"host_vars/{APP2}.yml", f"host {APP2}"]),
    ("yaml-error-in-group-vars", write("group_vars/all/app.yml", "app_name: [unclosed\n"),
     ["not valid YAML", "group_vars/all/app.yml"]),
    ("yaml-error-in-host-vars", write(f"host_vars/{APP1}.yml", "a: b: c\n"),
     ["not valid YAML", f"host_vars/{APP1}.yml"]),
    ("typo-warning-beside-an-error",
     both(set_vars("group_vars/all/celery.yml", celery_worker_concurency=2),
          vault(redis_password="")),
     ["secret redis_password is blank", "did you mean celery_worker_concurrency?",
      "group_vars/all/celery.yml"]),
    # the ones that already held
    ("two-beat-hosts", groups(lambda c: c["beat"]["hosts"].update({APP1: {}})),
     ["group 'beat' must have at most one host", "it has 2", HOSTS]),
    ("missing-db-group", groups(lambda c: c.pop("db")), ["group 'db' is missing", HOSTS]),
    ("empty-db-group", groups(lambda c: c.update(db={"hosts": {}})),
     ["group 'db' has no hosts", HOSTS]),
    ("example-vault", write(VAULT, (EXAMPLE / "group_vars/all/vault.yml.example").read_text()),
     ["secret redis_password still has the example value", VAULT]),
    ("blank-secret", vault(redis_password=""), ["secret redis_password is blank", VAULT]),
    ("wrong-type", set_vars("group_vars/all/app.yml", app_gunicorn_workers="many"),
     ["app_gunicorn_workers must be a whole number", "group_vars/all/app.yml"]),
    ("unknown-choice", set_vars("group_vars/all/main.yml", nginx_tls_mode="letsencrypt"),
     ["nginx_tls_mode must be one of", "group_vars/all/main.yml"]),
    ("hosts-as-a-list", groups(lambda c: c.update(app={"hosts": [APP1, APP2]})),
     ["hosts of group 'app' must be a mapping", HOSTS]),
    ("vars-file-not-a-mapping", write("group_vars/all/app.yml", "- app_name\n"),
     ["group_vars/all/app.yml: must be a mapping of variables"]),
]


@pytest.mark.parametrize("command", list(COMMANDS))
@pytest.mark.parametrize(("change", "expected"), [pytest.param(c, e, id=i) for i, c, e in CASES])
def test_bad_input_is_refused_before_any_host(tmp_path, reached, command, change, expected):
    env = make_env(tmp_path)
    change(env)
    message = refused(lambda: COMMANDS[command](str(env)), env, reached, *expected)
    # The header names this environment, never the directory a bad file sits in.
    assert f"inventory '{env}' is not usable" in message or "not usable" not in message, message


def test_the_unbroken_copy_gets_as_far_as_the_ping(tmp_path, reached):
    """The control case: what a refusal above would look like had it reached the hosts."""
    env = make_env(tmp_path)
    assert inventory.validate(inventory.load(str(env))) == []
    before = snapshot(env)
    with pytest.raises(provision.ProvisionError, match="unreachable host") as error:
        provision.provision(str(env), say=quiet)
    assert f"{APP1}: " in str(error.value)
    assert reached == [f"ansible ping {env}"]
    assert snapshot(env) == before


def test_a_rollback_reaches_its_hosts_over_ssh_without_ansible(tmp_path, reached):
    """Deploys and rollbacks go to provisioned hosts: a direct SSH probe, no Ansible start-up;
    an unreachable host is refused the same way, named, before the lock."""
    env = make_env(tmp_path)
    before = snapshot(env)
    with pytest.raises(deploy.DeployError, match="unreachable host") as error:
        deploy.rollback(str(env), say=quiet)
    assert f"  - {APP1}: " in str(error.value) and "nothing was changed" in str(error.value)
    inv = inventory.load(str(env))
    assert sorted(reached) == sorted(f"ssh {host}" for host in inv.hosts)
    assert snapshot(env) == before


# --- 1. only the generated sandbox is a sandbox --------------------------------------------


class OfflineSandbox(Sandbox):
    """The real inventory writer, without asking Docker for the sandbox network."""

    def _network(self):
        return None


def generated_sandbox(root: Path) -> Path:
    """The inventory `fab sandbox.up` writes, by the sandbox's own code, under root/inventory."""
    states = [HostState("lb1", ("loadbalancers",), "running", "127.0.0.2"),
              HostState("app1", ("app",), "running", "127.0.0.3"),
              HostState("worker1", ("workers", "beat"), "running", "127.0.0.4"),
              HostState("db1", ("db", "redis"), "running", "127.0.0.5")]
    OfflineSandbox(root=root, client=None)._write_inventory(states, root / "id_ed25519")
    env = root / "inventory" / "sandbox"
    shutil.copytree(ROOT / "inventory" / "sandbox" / "group_vars", env / "group_vars",
                    ignore=shutil.ignore_patterns("secrets.yml"))
    return env


def test_the_generated_sandbox_gets_its_secrets(tmp_path):
    env = generated_sandbox(tmp_path)
    inv = provision.check_local("sandbox", say=quiet, root=env.parent)
    assert inv.is_sandbox
    assert sorted(yaml.safe_load((env / secrets.SECRETS_FILE).read_text())) == sorted(SECRETS)


def test_check_never_writes_the_sandbox_secrets(tmp_path, reached):
    env = generated_sandbox(tmp_path)
    refused(lambda: provision.check_local("sandbox", say=quiet, root=env.parent, check=True),
            env, reached, "--check writes no file", "app_secret_key", str(secrets.SECRETS_FILE))
    assert not (env / secrets.SECRETS_FILE).exists()


@pytest.mark.parametrize("forgery", ["no-header", "copied-production", "elsewhere"])
def test_a_forged_sandbox_gets_no_leniency(tmp_path, reached, forgery):
    if forgery == "elsewhere":
        # The generated hosts.yml, header and all, copied to another environment.
        generated = generated_sandbox(tmp_path / "kit")
        env = tmp_path / "inventory" / "staging"
        shutil.copytree(generated, env)
        name = "staging"
    elif forgery == "no-header":
        env = generated_sandbox(tmp_path)
        text = (env / "hosts.yml").read_text()
        (env / "hosts.yml").write_text(text.split("\n", 1)[1])
        name = "sandbox"
    else:
        env = make_env(tmp_path / "inventory", "sandbox")
        set_vars("group_vars/all/main.yml", fleet_env="sandbox")(env)
        write(VAULT, "---\n")(env)
        name = "sandbox"
    assert not inventory.load(name, env.parent).is_sandbox
    refused(lambda: provision.check_local(name, say=quiet, root=env.parent), env, reached,
            "secret app_secret_key is not set", "vault.yml")


def test_a_missing_sandbox_says_how_to_start_it(tmp_path, reached):
    env = generated_sandbox(tmp_path)
    (env / "hosts.yml").unlink()
    refused(lambda: provision.check_local("sandbox", say=quiet, root=env.parent), env, reached,
            "the sandbox is not running", "fab sandbox.up")


# --- 5. local checks of deploy and rollback come before any host ---------------------------


def test_a_bad_ref_is_refused_before_any_host(tmp_path, reached):
    env = make_env(tmp_path)
    refused(lambda: deploy.deploy(str(env), ref="no-such-ref-18", say=quiet), env, reached,
            "--ref", "no-such-ref-18")


def test_an_app_that_cannot_be_built_is_refused_before_any_host(tmp_path, reached):
    env = make_env(tmp_path)
    app = tmp_path / "notanapp"
    app.mkdir()
    refused(lambda: deploy.deploy(str(env), app_dir=app, say=quiet), env, reached,
            "requirements.txt", str(app))


def test_a_wrong_static_dir_is_refused_even_when_the_artifact_is_reused(tmp_path, reached,
                                                                        monkeypatch):
    """The artifact cache must not carry an earlier deploy's static check over (issue 16)."""
    monkeypatch.chdir(tmp_path)  # the artifact cache (.cache/artifacts) is this test's own
    app = tiny_app.make(tmp_path / "src")
    deploy._static_of(artifact.build(app, say=quiet), tiny_app.STATIC_DIR, ".plain")  # earlier
    env = make_env(tmp_path)
    set_vars("group_vars/all/main.yml", app_static_dir="tinyapp/statics")(env)
    refused(lambda: deploy.deploy(str(env), app_dir=app, say=quiet), env, reached,
            "app_static_dir", "tinyapp/statics")


@pytest.mark.parametrize(("variables", "expected"), [
    ({"app_extra_requirements": ["gunicorn>=27"]}, ["app_extra_requirements", "'gunicorn>=27'"]),
    ({"app_requirements": "requirements-prod.txt"}, ["app_requirements",
                                                     "requirements-prod.txt"]),
])
def test_bad_requirements_are_refused_before_any_host(tmp_path, reached, monkeypatch,
                                                       variables, expected):
    monkeypatch.chdir(tmp_path)  # the artifact cache (.cache/artifacts) is this test's own
    app = tiny_app.make(tmp_path / "src")
    env = make_env(tmp_path)
    set_vars("group_vars/all/main.yml", **variables)(env)
    refused(lambda: deploy.deploy(str(env), app_dir=app, say=quiet), env, reached, *expected)
    assert not (tmp_path / ".cache").exists()


@pytest.mark.parametrize("to", ["UNKNOWN", "20261121T101500Z", "../../etc"])
def test_rollback_to_a_non_release_is_refused_before_any_host(tmp_path, reached, to):
    env = make_env(tmp_path)
    refused(lambda: deploy.rollback(str(env), to=to, say=quiet), env, reached,
            f"--to {to!r} is not a release id", "fab releases")


def test_rollback_checks_the_inventory_before_any_host(tmp_path, reached):
    env = make_env(tmp_path)
    vault(redis_password="")(env)
    refused(lambda: deploy.rollback(str(env), say=quiet), env, reached,
            "secret redis_password is blank", VAULT)


# --- the command line ----------------------------------------------------------------------


def fab(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([FAB, "-r", str(ROOT), *args], capture_output=True, text=True,
                          cwd=ROOT, env=ansible.environment(), timeout=300)


@pytest.mark.parametrize(("args", "expected"), [
    (["provision"], ["secret app_secret_key still has the example value", VAULT]),
    (["provision", "--check"], ["secret app_secret_key still has the example value", VAULT]),
    (["deploy", "--check"], ["secret app_secret_key still has the example value", VAULT]),
    (["rollback", "--to", "UNKNOWN"], ["--to 'UNKNOWN' is not a release id"]),
    (["deploy", "--ref", "no-such-ref-18"], ["--ref", "no-such-ref-18"]),
])
def test_fab_refuses_a_copy_that_claims_to_be_the_sandbox(tmp_path, args, expected):
    env = make_env(tmp_path)
    if args[0] != "rollback" and "--ref" not in args:
        both(set_vars("group_vars/all/main.yml", fleet_env="sandbox"),
             write(VAULT, (EXAMPLE / "group_vars/all/vault.yml.example").read_text()))(env)
    before = snapshot(env)
    run = fab(*args, "--env", str(env))
    output = run.stdout + run.stderr
    assert run.returncode == 1, output
    for fragment in expected:
        assert fragment in output, output
    # Had a host been tried, the refusal would be the ping's (see the control case below).
    assert "unreachable host" not in output, output
    assert snapshot(env) == before


@pytest.mark.parametrize(("args", "expected"), [
    (["deploy", "--batch", "0"], "--batch must be a whole number of at least 1, not '0'"),
    (["rollback", "--batch", "x"], "--batch must be a whole number of at least 1, not 'x'"),
    (["provision", "--colour", "red"], "No idea what '--colour' is"),
])
def test_fab_refuses_bad_options(tmp_path, args, expected):
    env = make_env(tmp_path)
    before = snapshot(env)
    run = fab(*args, "--env", str(env))
    assert run.returncode != 0
    assert expected in run.stdout + run.stderr
    assert snapshot(env) == before


def test_fab_on_a_valid_copy_reaches_the_ping(tmp_path):
    """The control case of the command line: this is what reaching a host looks like."""
    env = make_env(tmp_path)
    run = fab("provision", "--env", str(env))
    assert run.returncode == 1
    assert "unreachable host" in run.stdout + run.stderr


def test_generated_secrets_are_never_taken_for_placeholders(tmp_path):
    """What `fleet.sandbox.secrets.generate` makes passes the strict checks: no false refusals."""
    env = make_env(tmp_path)
    for _ in range(25):
        vault(**secrets.generate())(env)
        assert inventory.validate(inventory.load(str(env))) == []


def test_an_app_source_that_is_not_a_directory_is_refused(tmp_path, reached):
    env = make_env(tmp_path)
    set_vars("group_vars/all/main.yml", app_source="../no-such-app")(env)
    refused(lambda: deploy.deploy(str(env), say=quiet), env, reached,
            "app_source '../no-such-app' is not a directory")


def test_an_app_source_repository_that_cannot_be_cloned_is_refused(tmp_path, reached):
    env = make_env(tmp_path)
    set_vars("group_vars/all/main.yml", app_source=str(tmp_path / "gone.git"))(env)
    refused(lambda: deploy.deploy(str(env), say=quiet), env, reached,
            "app_source", "could not be cloned")


def test_the_inventorys_app_source_is_the_app_that_is_built(tmp_path, reached, monkeypatch):
    """The tiny app has no fleetapp/static: only building it (not the kit's app) fails so."""
    monkeypatch.chdir(tmp_path)  # the artifact cache (.cache/artifacts) is this test's own
    tiny_app.make(tmp_path / "apps")
    env = make_env(tmp_path / "inventory")
    set_vars("group_vars/all/main.yml", app_source="../../apps/tinyapp")(env)
    said: list[str] = []
    refused(lambda: deploy.deploy(str(env), say=said.append), env, reached,
            "app_static_dir 'fleetapp/static'")
    assert f"app: {(tmp_path / 'apps' / 'tinyapp').resolve()} (app_source)" in said
