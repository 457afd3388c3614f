"""fleet.inventory and the provision pre-flight: bad input is refused, naming the problem."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest
import yaml

from fleet import ansible, inventory, provision, secrets

GOOD_SECRETS = {
    "app_secret_key": "k" * 40,
    "mariadb_app_password": "app-pw-0123456789",
    "mariadb_migration_password": "migrate-pw-0123456789",
    "redis_password": "redis-pw-0123456789",
}


def host(address: str) -> dict:
    return {"ansible_host": address, "fleet_private_address": address}


def fleet_groups(**overrides) -> dict:
    groups = {
        "loadbalancers": {"hosts": {"lb1": host("10.0.0.2")}},
        "app": {"hosts": {"app1": host("10.0.0.3"), "app2": host("10.0.0.4")}},
        "workers": {"hosts": {"worker1": host("10.0.0.5")}},
        "beat": {"hosts": {"worker1": host("10.0.0.5")}},
        "db": {"hosts": {"db1": host("10.0.0.6")}},
        "redis": {"hosts": {"db1": host("10.0.0.6")}},
    }
    groups.update(overrides)
    return {name: body for name, body in groups.items() if body is not None}


def write_env(root: Path, name: str = "sandbox", groups: dict | None = None,
              all_vars: dict | None = None, files: dict | None = None) -> Path:
    env = root / name
    (env / "group_vars" / "all").mkdir(parents=True)
    base = {"fleet_env": name, "nginx_tls_mode": "self_signed"}
    data = {"all": {"vars": {**base, **(all_vars or {})},
                    "children": fleet_groups() if groups is None else groups}}
    (env / "hosts.yml").write_text(yaml.safe_dump(data))
    for relative, content in (files or {}).items():
        path = env / relative
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(content if isinstance(content, str) else yaml.safe_dump(content))
    return env


def problems(root: Path, name: str = "sandbox") -> list[str]:
    return inventory.validate(inventory.load(name, root))


@pytest.fixture()
def secrets_file() -> dict:
    return {"group_vars/all/secrets.yml": GOOD_SECRETS}


def test_complete_sandbox_inventory_is_valid(tmp_path, secrets_file):
    write_env(tmp_path, files=secrets_file)
    inv = inventory.load("sandbox", tmp_path)
    assert inventory.validate(inv) == []
    assert inv.groups["beat"] == ["worker1"]
    assert inv.hosts_of("app", "workers") == ["app1", "app2", "worker1"]
    assert inv.hostvars["db1"]["redis_password"] == GOOD_SECRETS["redis_password"]


@pytest.mark.parametrize("group", inventory.REQUIRED_GROUPS)
def test_missing_group_is_named(tmp_path, secrets_file, group):
    write_env(tmp_path, groups=fleet_groups(**{group: None}), files=secrets_file)
    assert any(f"group '{group}' is missing" in p for p in problems(tmp_path))


@pytest.mark.parametrize("group", inventory.NON_EMPTY_GROUPS)
def test_empty_group_is_refused(tmp_path, secrets_file, group):
    write_env(tmp_path, groups=fleet_groups(**{group: {"hosts": {}}}), files=secrets_file)
    assert any(f"group '{group}' has no hosts" in p for p in problems(tmp_path))


def test_two_beat_hosts_are_refused(tmp_path, secrets_file):
    beat = {"hosts": {"worker1": host("10.0.0.5"), "app1": host("10.0.0.3")}}
    write_env(tmp_path, groups=fleet_groups(beat=beat), files=secrets_file)
    found = [p for p in problems(tmp_path) if "'beat'" in p]
    assert found and "exactly one host" in found[0] and "it has 2: " in found[0]


def test_empty_beat_group_is_refused(tmp_path, secrets_file):
    write_env(tmp_path, groups=fleet_groups(beat={"hosts": {}}), files=secrets_file)
    assert any("'beat' must have exactly one host" in p and "it has 0" in p
               for p in problems(tmp_path))


@pytest.mark.parametrize(("name", "value", "expected"), [
    ("celery_worker_concurrency", "lots", "celery_worker_concurrency must be a whole number"),
    ("app_gunicorn_workers", 2.5, "app_gunicorn_workers must be a whole number"),
    ("app_gunicorn_workers", 0, "app_gunicorn_workers must be at least 1"),
    ("celery_worker_numprocs", True, "celery_worker_numprocs must be a whole number"),
    ("nginx_tls_mode", "letsencrypt", "nginx_tls_mode must be one of"),
    ("nginx_maintenance_enabled", "maybe", "nginx_maintenance_enabled must be true or false"),
    ("app_env", ["A=1"], "app_env must be a mapping"),
    ("mariadb_memory_share", "half", "mariadb_memory_share must be a number"),
])
def test_badly_typed_variables_are_named(tmp_path, secrets_file, name, value, expected):
    write_env(tmp_path, all_vars={name: value}, files=secrets_file)
    assert any(expected in p for p in problems(tmp_path)), problems(tmp_path)


def test_typed_values_that_ansible_accepts_pass(tmp_path, secrets_file):
    write_env(tmp_path, all_vars={
        "celery_worker_concurrency": "4",
        "app_gunicorn_workers": "{{ ansible_facts['processor_vcpus'] * 2 }}",
        "nginx_maintenance_enabled": "yes",
        "mariadb_memory_share": 0.3,
    }, files=secrets_file)
    assert problems(tmp_path) == []


def test_host_vars_override_group_vars(tmp_path, secrets_file):
    files = dict(secrets_file)
    files["group_vars/workers.yml"] = {"celery_worker_concurrency": 2}
    files["host_vars/worker1.yml"] = {"celery_worker_concurrency": "many"}
    write_env(tmp_path, files=files)
    inv = inventory.load("sandbox", tmp_path)
    assert inv.hostvars["worker1"]["celery_worker_concurrency"] == "many"
    assert any("celery_worker_concurrency must be a whole number" in p
               for p in inventory.validate(inv))


def test_missing_private_address_is_named(tmp_path, secrets_file):
    groups = fleet_groups(loadbalancers={"hosts": {"lb1": {"ansible_host": "10.0.0.2"}}})
    write_env(tmp_path, groups=groups, files=secrets_file)
    assert any("host lb1: fleet_private_address is not set" in p for p in problems(tmp_path))


@pytest.mark.parametrize("secret", sorted(inventory.SECRETS))
def test_missing_secret_is_named_even_in_the_sandbox(tmp_path, secret):
    partial = {k: v for k, v in GOOD_SECRETS.items() if k != secret}
    write_env(tmp_path, files={"group_vars/all/secrets.yml": partial})
    assert any(f"secret {secret} is not set" in p for p in problems(tmp_path))


def production(tmp_path: Path, values: dict) -> list[str]:
    vault = {**GOOD_SECRETS, "nginx_tls_certificate": "PEM", "nginx_tls_certificate_key": "KEY",
             **values}
    write_env(tmp_path, name="production", all_vars={"nginx_tls_mode": "provided"},
              files={"group_vars/all/vault.yml": vault})
    return problems(tmp_path, "production")


def test_production_with_real_secrets_is_valid(tmp_path):
    assert production(tmp_path, {}) == []


@pytest.mark.parametrize("secret", sorted(inventory.SECRETS))
def test_production_refuses_blank_secrets(tmp_path, secret):
    assert f"secret {secret} is blank" in production(tmp_path, {secret: "  "})


@pytest.mark.parametrize("secret", sorted(inventory.SECRETS))
def test_production_refuses_the_example_values(tmp_path, secret):
    example = inventory.example_secrets()[secret]
    found = production(tmp_path, {secret: example})
    assert any(f"secret {secret} still has the example value" in p for p in found)


def test_production_needs_a_certificate_in_provided_mode(tmp_path):
    vault = dict(GOOD_SECRETS)
    write_env(tmp_path, name="production", all_vars={"nginx_tls_mode": "provided"},
              files={"group_vars/all/vault.yml": vault})
    found = problems(tmp_path, "production")
    assert any("secret nginx_tls_certificate is not set for lb1" in p for p in found)


def test_sandbox_accepts_any_generated_value(tmp_path):
    write_env(tmp_path, files={"group_vars/all/secrets.yml": {
        **GOOD_SECRETS, "redis_password": inventory.example_secrets()["redis_password"]}})
    assert problems(tmp_path) == []


def test_inline_vault_values_count_as_present(tmp_path):
    tagged = "\n".join(f"{k}: !vault |\n  $ANSIBLE_VAULT;1.1;AES256\n  3031" for k in GOOD_SECRETS)
    tagged += "\nnginx_tls_certificate: PEM\nnginx_tls_certificate_key: KEY\n"
    write_env(tmp_path, name="production", files={"group_vars/all/vault.yml": tagged})
    assert problems(tmp_path, "production") == []


def test_encrypted_vault_file_needs_a_password(tmp_path, monkeypatch):
    monkeypatch.delenv("ANSIBLE_VAULT_PASSWORD_FILE", raising=False)
    monkeypatch.delenv("ANSIBLE_VAULT_IDENTITY_LIST", raising=False)
    write_env(tmp_path, name="production",
              files={"group_vars/all/vault.yml": "$ANSIBLE_VAULT;1.1;AES256\n3031\n"})
    with pytest.raises(inventory.InventoryError, match="ANSIBLE_VAULT_PASSWORD_FILE"):
        inventory.load("production", tmp_path)


def test_unknown_role_variable_is_warned_with_a_suggestion(tmp_path, secrets_file):
    write_env(tmp_path, all_vars={"celery_worker_concurency": 2}, files=secrets_file)
    inv = inventory.load("sandbox", tmp_path)
    assert inventory.validate(inv) == []
    assert any("did you mean celery_worker_concurrency" in w for w in inv.warnings)


def test_missing_environment_is_named(tmp_path):
    with pytest.raises(inventory.InventoryError, match="no inventory directory"):
        inventory.load("staging", tmp_path)


def test_committed_inventories_parse():
    example = inventory.load("production.example")
    assert set(example.groups) >= set(inventory.REQUIRED_GROUPS)
    assert len(example.groups["beat"]) == 1
    # The example is a template: it must be refused until real secrets are set.
    assert any("secret app_secret_key" in p for p in inventory.validate(example))


def test_every_role_variable_has_a_spec():
    specs = inventory.argument_specs()
    for defaults in sorted(inventory.ROLES_DIR.glob("*/defaults/main.yml")):
        for name in yaml.safe_load(defaults.read_text()):
            assert name in specs, f"{name} ({defaults}) has no entry in meta/argument_specs.yml"


# --- sandbox secrets ---------------------------------------------------------------------


def test_sandbox_secrets_generated_private_and_kept(tmp_path):
    generated = secrets.ensure_sandbox_secrets(tmp_path)
    assert sorted(generated) == sorted(inventory.SECRETS)
    path = tmp_path / secrets.SECRETS_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    first = yaml.safe_load(path.read_text())
    assert all(len(v) >= 40 for v in first.values())
    assert secrets.ensure_sandbox_secrets(tmp_path) == []
    assert yaml.safe_load(path.read_text()) == first


def test_sandbox_secrets_completed_not_replaced(tmp_path):
    path = tmp_path / secrets.SECRETS_FILE
    path.parent.mkdir(parents=True)
    path.write_text(yaml.safe_dump({"redis_password": "kept"}))
    generated = secrets.ensure_sandbox_secrets(tmp_path)
    assert "redis_password" not in generated
    assert yaml.safe_load(path.read_text())["redis_password"] == "kept"


# --- pre-flight: nothing runs unless everything is right ---------------------------------


@pytest.fixture()
def no_ansible(monkeypatch):
    """Record calls instead of reaching hosts; every host answers unless told otherwise."""
    calls: dict[str, list] = {"ping": [], "playbook": []}
    answers: dict[str, str | None] = {}

    def ping(path, limit=None, timeout=15):
        calls["ping"].append(path)
        hosts = inventory.load(str(path)).hosts
        return {h: answers.get(h) for h in hosts}

    def run_playbook(*args, **kwargs):
        calls["playbook"].append(args)
        return ansible.PlaybookResult(0, {}, 0.0)

    monkeypatch.setattr(ansible, "ping", ping)
    monkeypatch.setattr(ansible, "run_playbook", run_playbook)
    calls["answers"] = answers
    return calls


def test_unreachable_host_stops_before_any_change(tmp_path, secrets_file, no_ansible,
                                                    monkeypatch):
    env = write_env(tmp_path, name="staging", files=secrets_file)
    monkeypatch.setattr(inventory, "inventory_dir", lambda name, root=None: env)
    monkeypatch.setattr(inventory, "INVENTORY_ROOT", tmp_path)
    no_ansible["answers"]["app2"] = "Failed to connect to the host via ssh: timed out"
    with pytest.raises(provision.ProvisionError) as error:
        provision.provision("staging", say=lambda _: None)
    assert "app2: Failed to connect" in str(error.value)
    assert "nothing was changed" in str(error.value)
    assert no_ansible["playbook"] == []


def test_invalid_inventory_stops_before_reaching_hosts(tmp_path, no_ansible, monkeypatch):
    env = write_env(tmp_path, name="staging", groups=fleet_groups(db={"hosts": {}}),
                    files={"group_vars/all/vault.yml": GOOD_SECRETS})
    monkeypatch.setattr(inventory, "inventory_dir", lambda name, root=None: env)
    with pytest.raises(provision.ProvisionError, match="group 'db' has no hosts"):
        provision.provision("staging", say=lambda _: None)
    assert no_ansible["ping"] == [] and no_ansible["playbook"] == []


def test_sandbox_preflight_generates_missing_secrets(tmp_path, no_ansible, monkeypatch):
    env = write_env(tmp_path)
    monkeypatch.setattr(inventory, "inventory_dir", lambda name, root=None: env)
    provision.provision("sandbox", say=lambda _: None)
    assert (env / secrets.SECRETS_FILE).is_file()
    assert len(no_ansible["playbook"]) == 1


# --- ansible output parsing --------------------------------------------------------------

RECAP = """\
PLAY RECAP *********************************************************************
app1                       : ok=33   changed=0    unreachable=0    failed=0    skipped=6    rescued=0    ignored=0
db1                        : ok=30   changed=2    unreachable=0    failed=1    skipped=8    rescued=0    ignored=0
lb1                        : ok=0    changed=0    unreachable=1    failed=0    skipped=0    rescued=0    ignored=0
"""  # noqa: E501


def test_recap_is_parsed_per_host():
    recap = ansible.parse_recap("TASK [x] ***\nok: [app1]\n\n" + RECAP)
    assert recap["app1"] == ansible.HostRecap(ok=33, skipped=6)
    assert recap["db1"].changed == 2 and not recap["db1"].healthy
    assert recap["lb1"].unreachable == 1
    result = ansible.PlaybookResult(2, recap, 1.0)
    assert result.failed_hosts == ["db1", "lb1"] and not result.ok
    assert result.changed == {"app1": 0, "db1": 2, "lb1": 0}


def test_ping_output_is_parsed():
    output = (
        'app1 | SUCCESS => {"changed": false,"ping": "pong"}\n'
        'app2 | UNREACHABLE! => {"changed": false,"msg": "Failed to connect to the host via '
        'ssh: ssh: connect to host 10.0.0.4 port 22: No route to host","unreachable": true}\n'
    )
    status = ansible.parse_ping(output)
    assert status["app1"] is None
    assert "No route to host" in status["app2"]


def test_task_times_follow_banners():
    clock = ansible._TaskClock()
    for line in ["PLAY [p] ***", "TASK [common : Install] ***", "changed: [app1]",
                 "TASK [common : Configure] ***", "ok: [app1]", "ok: [app2]"]:
        clock.line(line)
    assert set(clock.times) == {"common : Install", "common : Configure"}


def test_production_example_lists_every_role_variable():
    example = inventory.INVENTORY_ROOT / "production.example" / "group_vars" / "all"
    for defaults in sorted(inventory.ROLES_DIR.glob("*/defaults/main.yml")):
        role = defaults.parent.parent.name
        listed = (example / f"{role}.yml").read_text()
        for name in yaml.safe_load(defaults.read_text()):
            assert f"# {name}:" in listed, f"{name} is missing from {example / role}.yml"
