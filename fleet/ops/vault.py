"""An environment's secrets: `fab secrets.init`, `secrets.edit` and `secrets.rotate`.

A real environment keeps its secrets in `group_vars/all/vault.yml`, encrypted with
ansible-vault; the sandbox keeps them in a plain, generated, git-ignored `secrets.yml`
(fleet/sandbox/secrets.py). Both are a `Store` here, so rotation works the same on either.

The vault password is a file: `--password-file`, else `ANSIBLE_VAULT_PASSWORD_FILE` (the
variable ansible-playbook and the pre-flight read too). Without one, nothing is read or written.
Encryption uses Ansible's own VaultLib, so the files are exactly what `ansible-vault` writes and
reads, and an executable password file (a script printing the password) works as it does there.

Rotation edits the store as text: only the lines of the rotated secrets change, so comments,
order and every other value stay exactly as the operator left them. A rotated password the
servers can accept twice (Redis, MariaDB) keeps its old value as `<name>_previous` until the
roll-out (fleet/ops/secrets_rollout.py) has moved every client and removes it.
"""

from __future__ import annotations

import contextlib
import difflib
import os
import re
import subprocess
import sys
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

import yaml

from fleet.inventory import INVENTORY_ROOT, SANDBOX_ENV, SECRETS, TLS_SECRETS, inventory_dir
from fleet.sandbox import secrets as sandbox_secrets

VAULT_FILE = Path("group_vars") / "all" / "vault.yml"
PASSWORD_ENV = "ANSIBLE_VAULT_PASSWORD_FILE"
PREVIOUS_SUFFIX = "_previous"
# Secrets whose servers accept an old and a new value at the same time during a roll-out:
# Redis (two passwords on one ACL user) and MariaDB (two authentications on one account).
DUAL = ("redis_password", "mariadb_app_password", "mariadb_migration_password")
VAULT_HEADER = (
    "# Secrets of the environment {env}, written by `fab secrets.init`.\n"
    "# Edit: fab secrets.edit --env {env}   Rotate: fab secrets.rotate --env {env} --secret NAME\n"
)
PEM = {"nginx_tls_certificate": "CERTIFICATE", "nginx_tls_certificate_key": "PRIVATE KEY"}


class VaultError(RuntimeError):
    """A secrets command cannot run; the message names the file, variable or option at fault."""


# --- the password ------------------------------------------------------------------------


def password_file(given: str | None = None) -> Path:
    """The vault password file: `given` (--password-file), else $ANSIBLE_VAULT_PASSWORD_FILE."""
    chosen = given or os.environ.get(PASSWORD_ENV)
    if not chosen:
        raise VaultError(f"no vault password: pass --password-file FILE or set {PASSWORD_ENV}; "
                         "nothing was read or written")
    path = Path(chosen).expanduser()
    source = "--password-file" if given else PASSWORD_ENV
    if not path.is_file():
        raise VaultError(f"the vault password file {path} ({source}) does not exist; "
                         "nothing was read or written")
    return path.resolve()


def _vault(password: Path):
    # Imported here: Ansible is heavy and only the secrets commands need it.
    from ansible.errors import AnsibleError
    from ansible.parsing.dataloader import DataLoader
    from ansible.parsing.vault import VaultLib, get_file_vault_secret

    try:
        secret = get_file_vault_secret(filename=str(password), loader=DataLoader())
        secret.load()
    except AnsibleError as exc:
        raise VaultError(f"cannot read the vault password from {password}: {exc}") from None
    if not secret.bytes:
        raise VaultError(f"the vault password file {password} is empty")
    return VaultLib([("default", secret)])


def encrypt(text: str, password: Path) -> str:
    """`text` encrypted as ansible-vault writes it."""
    return _vault(password).encrypt(text).decode()


def decrypt(data: str, password: Path, source: Path) -> str:
    from ansible.errors import AnsibleError

    try:
        return _vault(password).decrypt(data.encode()).decode()
    except AnsibleError as exc:
        raise VaultError(f"{source}: cannot decrypt it with the password in {password} "
                         f"({str(exc).splitlines()[0]})") from None


@contextlib.contextmanager
def password_in_environment(password: Path | None) -> Iterator[None]:
    """Hand the password file to what fab runs (ansible-playbook, the pre-flight's check)."""
    if password is None:
        yield
        return
    before = os.environ.get(PASSWORD_ENV)
    os.environ[PASSWORD_ENV] = str(password)
    try:
        yield
    finally:
        if before is None:
            os.environ.pop(PASSWORD_ENV, None)
        else:
            os.environ[PASSWORD_ENV] = before


# --- stores ------------------------------------------------------------------------------


def _write_private(path: Path, text: str) -> None:
    """Replace `path` by `text` atomically; the file is 0600 from its first byte."""
    path.parent.mkdir(parents=True, exist_ok=True)
    descriptor, temporary = tempfile.mkstemp(prefix=f".{path.name}.", dir=path.parent)
    try:
        with os.fdopen(descriptor, "w") as handle:  # mkstemp creates it 0600
            handle.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


@dataclass
class Store:
    """The secrets file of one environment: an ansible-vault file, or the sandbox's plain one."""

    env: str
    path: Path
    password: Path | None  # None: a plain file

    @property
    def encrypted(self) -> bool:
        return self.password is not None

    def read_text(self) -> str:
        data = self.path.read_text()
        if data.startswith("$ANSIBLE_VAULT;"):
            if self.password is None:
                raise VaultError(f"{self.path} is vault-encrypted but no password was given")
            return decrypt(data, self.password, self.path)
        if self.encrypted:
            raise VaultError(f"{self.path} is not encrypted: encrypt it first "
                             f"(ansible-vault encrypt {self.path})")
        return data

    def write_text(self, text: str) -> None:
        _write_private(self.path, encrypt(text, self.password) if self.password else text)

    def values(self) -> dict:
        return _parse(self.read_text(), self.path)

    def pending(self) -> dict[str, str]:
        """Secrets of an unfinished roll-out: name -> its old value, still accepted."""
        values = self.values()
        return {name: str(values[name + PREVIOUS_SUFFIX]) for name in DUAL
                if values.get(name + PREVIOUS_SUFFIX)}


def _parse(text: str, source: Path) -> dict:
    try:
        data = yaml.safe_load(text) or {}
    except yaml.YAMLError as exc:
        raise VaultError(f"{source}: not valid YAML ({exc})") from None
    if not isinstance(data, dict):
        raise VaultError(f"{source}: must be a mapping of variables")
    return data


def store(env: str, password: str | None = None, root: Path = INVENTORY_ROOT) -> Store:
    """The existing secrets of `env`: its vault, or (sandbox) its generated secrets file."""
    directory = _existing_env(env, root)
    vault = directory / VAULT_FILE
    if vault.is_file():
        return Store(env, vault, password_file(password))
    plain = directory / sandbox_secrets.SECRETS_FILE
    if plain.is_file():
        return Store(env, plain, None)
    hint = ("`fab provision` generates the sandbox's" if env == SANDBOX_ENV
            else f"create it with `fab secrets.init --env {env}`")
    raise VaultError(f"{env} has no secrets yet ({vault} does not exist); {hint}")


def _existing_env(env: str, root: Path) -> Path:
    directory = inventory_dir(env, root)
    if not directory.is_dir():
        raise VaultError(f"no environment {env!r}: {directory} does not exist "
                         f"(create it with `fab env.new {env}`)")
    return directory


# --- secrets.init ------------------------------------------------------------------------


def _quoted(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _entry(name: str, value: str) -> str:
    if "\n" in value:
        body = value if value.endswith("\n") else value + "\n"
        return f"{name}: |\n" + "".join(f"  {line}\n" for line in body.splitlines())
    return f"{name}: {_quoted(value)}\n"


def _pem(name: str, path: str | None) -> str | None:
    if path is None:
        return None
    source = Path(path).expanduser()
    if not source.is_file():
        raise VaultError(f"{name}: {source} does not exist; nothing was written")
    text = source.read_text()
    if f"-----BEGIN {PEM[name]}" not in text and not (
            PEM[name] == "PRIVATE KEY" and re.search(r"-----BEGIN [A-Z ]*PRIVATE KEY", text)):
        raise VaultError(f"{name}: {source} is not a PEM {PEM[name].lower()}; "
                         "nothing was written")
    return text.strip() + "\n"


@dataclass
class Initialised:
    path: Path
    generated: list[str]
    tls: bool


def init(env: str, password: str | None = None, certificate: str | None = None,
         key: str | None = None, root: Path = INVENTORY_ROOT) -> Initialised:
    """Write `env`'s vault: a random value for every kit secret, the TLS pair if given."""
    directory = _existing_env(env, root)
    if env == SANDBOX_ENV or directory == (root / SANDBOX_ENV).resolve():
        raise VaultError("the sandbox needs no vault: `fab provision` generates its secrets "
                         f"into {directory / sandbox_secrets.SECRETS_FILE}")
    target = directory / VAULT_FILE
    if target.exists():
        raise VaultError(f"{target} already exists; nothing was written. Change values with "
                         f"`fab secrets.edit --env {env}` or `fab secrets.rotate --env {env}`")
    if (certificate is None) != (key is None):
        raise VaultError("--tls-certificate and --tls-key go together; nothing was written")
    secret_file = password_file(password)
    pems = {"nginx_tls_certificate": _pem("nginx_tls_certificate", certificate),
            "nginx_tls_certificate_key": _pem("nginx_tls_certificate_key", key)}
    values = sandbox_secrets.generate(tuple(SECRETS))
    text = "---\n" + VAULT_HEADER.format(env=env)
    text += "".join(_entry(name, value) for name, value in values.items())
    if certificate is not None:
        text += "# TLS certificate (with chain) and key of the load balancers.\n"
        text += "".join(_entry(name, pems[name]) for name in TLS_SECRETS)
    expected = {**values, **({n: pems[n] for n in TLS_SECRETS} if certificate else {})}
    if _parse(text, target) != expected:  # never write a vault that does not say what we mean
        raise VaultError(f"internal error: the vault text for {target} does not parse back")
    Store(env, target, secret_file).write_text(text)
    return Initialised(target, list(values), tls=certificate is not None)


def edit(env: str, password: str | None = None, root: Path = INVENTORY_ROOT) -> int:
    """Open the vault in $EDITOR through `ansible-vault edit`; its exit code."""
    found = store(env, password, root)
    if not found.encrypted:
        raise VaultError(f"{found.path} is the sandbox's plain, generated file: edit it directly "
                         "(or delete it to get new secrets)")
    tool = Path(sys.executable).with_name("ansible-vault")
    command = [str(tool if tool.exists() else "ansible-vault"), "edit",
               "--vault-password-file", str(found.password), str(found.path)]
    return subprocess.run(command).returncode


# --- secrets.rotate ----------------------------------------------------------------------


def _span(lines: list[str], name: str) -> tuple[int, int] | None:
    """[start, end) of the lines holding top-level key `name` and its (indented) value."""
    pattern = re.compile(rf"^{re.escape(name)}\s*:(\s|$)")
    for start, line in enumerate(lines):
        if pattern.match(line):
            end = start + 1
            while end < len(lines) and (lines[end][:1] in (" ", "\t") or not lines[end].strip()):
                end += 1
            while end > start + 1 and not lines[end - 1].strip():
                end -= 1  # blank lines after the value belong to what follows
            return start, end
    return None


def set_values(text: str, values: dict[str, str | None]) -> str:
    """`text` with each top-level key set to its value (None: removed); nothing else changes."""
    lines = text.splitlines(keepends=True)
    for name, value in values.items():
        found = _span(lines, name)
        replacement = [] if value is None else [_entry(name, value)]
        if found:
            lines[found[0]:found[1]] = replacement
        elif replacement:
            if lines and not lines[-1].endswith("\n"):
                lines[-1] += "\n"
            lines += replacement
    return "".join(lines)


def check_names(names: Iterable[str]) -> list[str]:
    """The secret names, each one the kit rotates; a clear refusal for anything else."""
    chosen = [n.strip() for n in names if n.strip()]
    if not chosen:
        raise VaultError(f"--secret names nothing; choose from {', '.join(SECRETS)}")
    problems = []
    for name in chosen:
        if name in TLS_SECRETS:
            problems.append(f"{name} is provided by the operator (the certificate authority's "
                            "pair), not a random value: replace it with `fab secrets.edit`")
        elif name not in SECRETS:
            close = difflib.get_close_matches(name, [*SECRETS, *TLS_SECRETS], n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            problems.append(f"unknown secret {name!r}{hint}; the kit's secrets are "
                            f"{', '.join(SECRETS)}")
    if problems:
        raise VaultError("; ".join(problems) + "; nothing was changed")
    return list(dict.fromkeys(chosen))


def rotate(found: Store, names: Iterable[str]) -> list[str]:
    """Give each named secret a new random value in the store; return the names rotated.

    A password of DUAL keeps its old value beside it as <name>_previous: the servers accept
    both until the roll-out has moved every client.
    """
    chosen = check_names(names)
    text = found.read_text()
    current = _parse(text, found.path)
    pending = found.pending()
    if pending:
        raise VaultError(f"a rotation of {', '.join(pending)} is not rolled out yet; finish it "
                         f"with `fab secrets.rollout --env {found.env}` first; nothing was "
                         "changed")
    missing = [n for n in chosen if not current.get(n)]
    if missing:
        raise VaultError(f"{', '.join(missing)} not set in {found.path}: nothing to rotate; "
                         "nothing was changed")
    fresh = sandbox_secrets.generate(chosen)
    changes: dict[str, str | None] = dict(fresh)
    for name in chosen:
        if name in DUAL:
            changes[name + PREVIOUS_SUFFIX] = str(current[name])
    updated = set_values(text, changes)
    if _parse(updated, found.path) != {**current, **changes}:
        raise VaultError(f"internal error: the rotated text of {found.path} does not parse "
                         "back; nothing was changed")
    found.write_text(updated)
    return chosen


def finish(found: Store) -> list[str]:
    """Forget the old values of a rolled-out rotation; return the names they belonged to."""
    pending = found.pending()
    if pending:
        found.write_text(set_values(found.read_text(),
                                    {n + PREVIOUS_SUFFIX: None for n in pending}))
    return list(pending)
