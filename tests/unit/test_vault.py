"""`fab secrets.init/edit/rotate`: real ansible-vault files in temporary environments.

Nothing is mocked: files are encrypted with Ansible's VaultLib and read back with the real
`ansible-vault` and `ansible-inventory` executables, and the pre-flight (fleet.inventory.check)
judges the result as it judges a real environment.
"""

from __future__ import annotations

import json
import os
import shutil
import stat
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from fleet import ansible, inventory
from fleet.ops import environments, vault
from fleet.sandbox import secrets as sandbox_secrets

EXAMPLE = inventory.INVENTORY_ROOT / environments.EXAMPLE_ENV
PASSWORD = "correct horse battery staple"


@pytest.fixture(autouse=True)
def no_password_from_the_caller(monkeypatch):
    """Each test decides where the password comes from."""
    monkeypatch.delenv(vault.PASSWORD_ENV, raising=False)


@pytest.fixture()
def root(tmp_path: Path) -> Path:
    inventory_root = tmp_path / "inventory"
    inventory_root.mkdir()
    shutil.copytree(EXAMPLE, inventory_root / environments.EXAMPLE_ENV)
    environments.new("staging", root=inventory_root)
    return inventory_root


@pytest.fixture()
def password(tmp_path: Path) -> Path:
    path = tmp_path / "vault-password"
    path.write_text(PASSWORD + "\n")
    path.chmod(0o600)
    return path


@pytest.fixture(scope="module")
def tls_pair(tmp_path_factory) -> tuple[Path, Path]:
    """A real self-signed pair made by openssl, standing in for the operator's CA pair."""
    where = tmp_path_factory.mktemp("tls")
    cert, key = where / "fullchain.pem", where / "privkey.pem"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt",
                    "ec_paramgen_curve:P-256", "-nodes", "-days", "30", "-subj",
                    "/CN=www.example.com", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def _view(path: Path, password: Path) -> dict:
    """The vault as the real ansible-vault decrypts it."""
    tool = Path(sys.executable).with_name("ansible-vault")
    result = subprocess.run([str(tool), "view", "--vault-password-file", str(password),
                             str(path)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    return yaml.safe_load(result.stdout)


def _files(root: Path) -> dict[str, bytes]:
    return {str(p.relative_to(root)): p.read_bytes() for p in root.rglob("*") if p.is_file()}


# --- secrets.init ------------------------------------------------------------------------


def test_init_writes_an_encrypted_vault_ansible_vault_can_decrypt(root, password):
    done = vault.init("staging", str(password), root=root)
    path = root / "staging" / vault.VAULT_FILE
    assert done.path == path and not done.tls
    raw = path.read_text()
    assert raw.startswith("$ANSIBLE_VAULT;1.1;AES256")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    values = _view(path, password)
    assert set(values) == set(inventory.SECRETS)
    assert len(set(values.values())) == len(values), "every secret is a different value"
    for name, value in values.items():
        assert len(value) >= 40 and value not in raw, name


def test_init_values_are_random(root, password, tmp_path):
    vault.init("staging", str(password), root=root)
    environments.new("staging2", root=root)
    vault.init("staging2", str(password), root=root)
    first = _view(root / "staging" / vault.VAULT_FILE, password)
    second = _view(root / "staging2" / vault.VAULT_FILE, password)
    assert all(first[n] != second[n] for n in inventory.SECRETS)


def test_password_from_the_environment_variable(root, password, monkeypatch):
    monkeypatch.setenv(vault.PASSWORD_ENV, str(password))
    vault.init("staging", root=root)
    assert set(_view(root / "staging" / vault.VAULT_FILE, password)) == set(inventory.SECRETS)


def test_preflight_accepts_the_vault_of_a_copied_example(root, password, tls_pair,
                                                         monkeypatch):
    cert, key = tls_pair
    done = vault.init("staging", str(password), str(cert), str(key), root=root)
    assert done.tls
    values = _view(done.path, password)
    assert values["nginx_tls_certificate"] == cert.read_text().strip() + "\n"
    assert "PRIVATE KEY" in values["nginx_tls_certificate_key"]
    # The pre-flight decrypts through ANSIBLE_VAULT_PASSWORD_FILE, like ansible-playbook.
    monkeypatch.setenv(vault.PASSWORD_ENV, str(password))
    inv = inventory.check("staging", root)
    assert inv.hostvars["app1.example.com"]["redis_password"] == values["redis_password"]


def test_preflight_refuses_the_vault_without_the_password(root, password):
    vault.init("staging", str(password), root=root)
    with pytest.raises(inventory.InventoryError) as refused:
        inventory.check("staging", root)
    assert "ANSIBLE_VAULT_PASSWORD_FILE" in str(refused.value)


def test_ansible_reads_the_vault_with_the_password_from_the_environment(root, password,
                                                                        monkeypatch):
    """What ansible-playbook sees: fleet.ansible passes ANSIBLE_VAULT_PASSWORD_FILE through."""
    vault.init("staging", str(password), root=root)
    monkeypatch.setenv(vault.PASSWORD_ENV, str(password))
    result = subprocess.run(
        [ansible.tool("ansible-inventory"), "-i", str(root / "staging"), "--host",
         "db1.example.com"], capture_output=True, text=True, env=ansible.environment())
    assert result.returncode == 0, result.stderr
    stored = _view(root / "staging" / vault.VAULT_FILE, password)
    assert json.loads(result.stdout)["mariadb_app_password"] == stored["mariadb_app_password"]


def test_missing_password_is_refused_and_nothing_is_written(root):
    before = _files(root)
    with pytest.raises(vault.VaultError) as refused:
        vault.init("staging", root=root)
    message = str(refused.value)
    assert "--password-file" in message and vault.PASSWORD_ENV in message
    assert _files(root) == before


def test_password_file_that_does_not_exist_is_refused(root, tmp_path, monkeypatch):
    missing = tmp_path / "nowhere"
    monkeypatch.setenv(vault.PASSWORD_ENV, str(missing))
    before = _files(root)
    with pytest.raises(vault.VaultError) as refused:
        vault.init("staging", root=root)
    assert str(missing) in str(refused.value) and vault.PASSWORD_ENV in str(refused.value)
    assert _files(root) == before


def test_init_refuses_to_overwrite_a_vault(root, password):
    vault.init("staging", str(password), root=root)
    path = root / "staging" / vault.VAULT_FILE
    before = path.read_bytes()
    with pytest.raises(vault.VaultError) as refused:
        vault.init("staging", str(password), root=root)
    assert str(path) in str(refused.value) and "already exists" in str(refused.value)
    assert path.read_bytes() == before


def test_init_refuses_the_sandbox_and_unknown_environments(root, password):
    (root / "sandbox").mkdir()
    with pytest.raises(vault.VaultError, match="sandbox needs no vault"):
        vault.init("sandbox", str(password), root=root)
    with pytest.raises(vault.VaultError, match="fab env.new qa"):
        vault.init("qa", str(password), root=root)
    assert not (root / "sandbox" / vault.VAULT_FILE).exists()


def test_init_refuses_half_a_tls_pair_or_a_file_that_is_no_certificate(root, password,
                                                                       tls_pair):
    cert, key = tls_pair
    with pytest.raises(vault.VaultError, match="go together"):
        vault.init("staging", str(password), str(cert), root=root)
    with pytest.raises(vault.VaultError, match="nginx_tls_certificate: .* is not a PEM"):
        vault.init("staging", str(password), str(key), str(key), root=root)
    assert not (root / "staging" / vault.VAULT_FILE).exists()


def test_wrong_password_is_refused(root, password, tmp_path):
    vault.init("staging", str(password), root=root)
    wrong = tmp_path / "wrong"
    wrong.write_text("not the password\n")
    with pytest.raises(vault.VaultError, match="cannot decrypt"):
        vault.store("staging", str(wrong), root).values()


# --- secrets.edit ------------------------------------------------------------------------


def test_edit_runs_ansible_vault_edit_with_the_password(root, password, tmp_path, monkeypatch):
    vault.init("staging", str(password), root=root)
    editor = tmp_path / "editor.sh"
    editor.write_text("#!/bin/sh\nprintf 'operator_note: edited\\n' >> \"$1\"\n")
    editor.chmod(0o755)
    monkeypatch.setenv("EDITOR", str(editor))
    assert vault.edit("staging", str(password), root) == 0
    values = _view(root / "staging" / vault.VAULT_FILE, password)
    assert values["operator_note"] == "edited"
    assert set(inventory.SECRETS) <= set(values)


def test_edit_without_password_is_refused(root, password):
    vault.init("staging", str(password), root=root)
    with pytest.raises(vault.VaultError, match=vault.PASSWORD_ENV):
        vault.edit("staging", root=root)


# --- secrets.rotate ----------------------------------------------------------------------


def test_rotate_changes_only_the_named_values(root, password, tls_pair):
    cert, key = tls_pair
    vault.init("staging", str(password), str(cert), str(key), root=root)
    path = root / "staging" / vault.VAULT_FILE
    store = vault.store("staging", str(password), root)
    before_text = store.read_text()
    before = _view(path, password)
    rotated = vault.rotate(store, ["redis_password", "app_secret_key"])
    assert rotated == ["redis_password", "app_secret_key"]
    after = _view(path, password)
    assert after["redis_password"] != before["redis_password"]
    assert after["app_secret_key"] != before["app_secret_key"]
    assert len(after["redis_password"]) >= 40
    # Redis accepts the old password until the roll-out has moved every client.
    assert after["redis_password_previous"] == before["redis_password"]
    assert "app_secret_key_previous" not in after  # nothing on the server side to keep
    untouched = set(before) - {"redis_password", "app_secret_key"}
    assert {n: after[n] for n in untouched} == {n: before[n] for n in untouched}
    # Every other line, comments included, is exactly as it was.
    changed = {"redis_password", "app_secret_key"}
    kept = [line for line in before_text.splitlines()
            if not any(line.startswith(f"{n}:") for n in changed)]
    after_lines = store.read_text().splitlines()
    assert [line for line in after_lines if line in kept] == kept
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert store.pending() == {"redis_password": before["redis_password"]}


def test_rotate_refuses_unknown_names_with_a_suggestion(root, password):
    vault.init("staging", str(password), root=root)
    path = root / "staging" / vault.VAULT_FILE
    before = path.read_bytes()
    store = vault.store("staging", str(password), root)
    with pytest.raises(vault.VaultError) as refused:
        vault.rotate(store, ["redis_pasword", "mariadb_app_password"])
    assert "unknown secret 'redis_pasword' (did you mean redis_password?)" in str(refused.value)
    assert "nothing was changed" in str(refused.value)
    with pytest.raises(vault.VaultError, match="provided by the operator"):
        vault.rotate(store, ["nginx_tls_certificate_key"])
    with pytest.raises(vault.VaultError, match="names nothing"):
        vault.rotate(store, [" ", ""])
    assert path.read_bytes() == before


def test_rotate_refuses_while_a_rotation_is_not_rolled_out(root, password):
    vault.init("staging", str(password), root=root)
    store = vault.store("staging", str(password), root)
    vault.rotate(store, ["mariadb_app_password", "mariadb_migration_password"])
    before = store.path.read_bytes()
    with pytest.raises(vault.VaultError, match="secrets.rollout --env staging"):
        vault.rotate(store, ["redis_password"])
    assert store.path.read_bytes() == before
    assert vault.finish(store) == ["mariadb_app_password", "mariadb_migration_password"]
    values = store.values()
    assert not [n for n in values if n.endswith(vault.PREVIOUS_SUFFIX)]
    assert set(values) == set(inventory.SECRETS)


def test_rotate_the_sandbox_plain_file(tmp_path):
    sandbox = tmp_path / "sandbox"
    sandbox.mkdir()
    sandbox_secrets.ensure_sandbox_secrets(sandbox)
    path = sandbox / sandbox_secrets.SECRETS_FILE
    before_text = path.read_text()
    before = yaml.safe_load(before_text)
    store = vault.store("sandbox", root=tmp_path)
    assert not store.encrypted
    vault.rotate(store, ["mariadb_migration_password"])
    after = yaml.safe_load(path.read_text())
    assert after["mariadb_migration_password"] != before["mariadb_migration_password"]
    assert after["mariadb_migration_password_previous"] == before["mariadb_migration_password"]
    assert {n: after[n] for n in before if n != "mariadb_migration_password"} == {
        n: before[n] for n in before if n != "mariadb_migration_password"}
    assert path.read_text().startswith(before_text.split("\n", 1)[0])  # header kept
    assert not path.read_text().startswith("$ANSIBLE_VAULT")
    assert stat.S_IMODE(path.stat().st_mode) == 0o600


def test_store_of_an_environment_without_secrets_says_how_to_make_them(root, password):
    with pytest.raises(vault.VaultError, match="fab secrets.init --env staging"):
        vault.store("staging", str(password), root)


def test_set_values_replaces_block_values_and_keeps_the_rest():
    text = ("---\n# head\na: 1\ncert: |\n  line1\n  line2\n\n# about b\nb: 'x'\n")
    updated = vault.set_values(text, {"cert": "new", "b": None, "c": "3"})
    assert updated == "---\n# head\na: 1\ncert: 'new'\n\n# about b\nc: '3'\n"
    assert yaml.safe_load(updated) == {"a": 1, "cert": "new", "c": "3"}


def test_vault_written_by_kit_is_readable_by_an_executable_password_file(root, tmp_path):
    """ansible-vault runs an executable password file and reads its output; so does the kit."""
    script = tmp_path / "vault-pass.sh"
    script.write_text(f"#!/bin/sh\necho '{PASSWORD}'\n")
    script.chmod(0o700)
    vault.init("staging", str(script), root=root)
    plain = tmp_path / "plain"
    plain.write_text(PASSWORD + "\n")
    assert set(_view(root / "staging" / vault.VAULT_FILE, plain)) == set(inventory.SECRETS)
    assert os.access(script, os.X_OK)


# --- the fab commands --------------------------------------------------------------------


def _fab(*args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in ansible.environment().items() if k != vault.PASSWORD_ENV}
    return subprocess.run([str(Path(sys.executable).with_name("fab")), *args],
                          cwd=inventory.ROOT, capture_output=True, text=True, env=env)


def test_fab_secrets_commands_refuse_and_accept_as_the_library_does(root, password):
    staging = str(root / "staging")  # --env also takes a path to an environment directory
    refused = _fab("secrets.init", "--env", staging)
    assert refused.returncode != 0
    assert "--password-file" in refused.stderr and vault.PASSWORD_ENV in refused.stderr
    assert not (root / "staging" / vault.VAULT_FILE).exists()
    done = _fab("secrets.init", "--env", staging, "--password-file", str(password))
    assert done.returncode == 0, done.stderr
    assert "nginx_tls_certificate" in done.stdout  # says the TLS pair is the operator's
    before = (root / "staging" / vault.VAULT_FILE).read_bytes()
    typo = _fab("secrets.rotate", "--env", staging, "--secret", "mariadb_app_pasword",
                "--password-file", str(password))
    assert typo.returncode != 0 and "did you mean mariadb_app_password?" in typo.stderr
    assert (root / "staging" / vault.VAULT_FILE).read_bytes() == before
    sandbox = _fab("env.new", "sandbox")
    assert sandbox.returncode != 0 and "'sandbox' is the local sandbox" in sandbox.stderr
