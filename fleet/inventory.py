"""Load an environment's inventory and check it before anything touches a host.

An environment is a directory `inventory/<env>/` holding a YAML inventory (`hosts.yml`) and
optionally `group_vars/` and `host_vars/`. The checks here are the pre-flight of provision and
deploy: required groups, group sizes, variable types (taken from the roles'
`meta/argument_specs.yml`, so the roles and the pre-flight never disagree), and secrets —
present everywhere, and outside the sandbox neither blank nor the values of the example vault.
Every problem names the variable, group or file at fault.
"""

from __future__ import annotations

import difflib
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parents[1]
INVENTORY_ROOT = ROOT / "inventory"
ROLES_DIR = ROOT / "roles"
VAULT_EXAMPLE = INVENTORY_ROOT / "production.example" / "group_vars" / "all" / "vault.yml.example"

SANDBOX_ENV = "sandbox"
REQUIRED_GROUPS = ("loadbalancers", "app", "workers", "beat", "db", "redis")
NON_EMPTY_GROUPS = ("db", "redis", "app", "loadbalancers")
# Secret -> the groups whose hosts need it.
SECRETS: dict[str, tuple[str, ...]] = {
    "app_secret_key": ("app", "workers", "beat"),
    "mariadb_app_password": ("db", "app", "workers", "beat"),
    "mariadb_migration_password": ("db", "app", "workers", "beat"),
    "redis_password": ("redis", "app", "workers", "beat"),
}
TLS_SECRETS = ("nginx_tls_certificate", "nginx_tls_certificate_key")
# Lower bounds the argument specs cannot express.
MINIMUMS = {
    "app_gunicorn_workers": 1,
    "app_gunicorn_threads": 1,
    "app_gunicorn_port": 1,
    "celery_worker_numprocs": 1,
    "celery_worker_concurrency": 1,
    "celery_worker_stopwaitsecs": 1,
    "mariadb_port": 1,
    "redis_port": 1,
    "nginx_http_port": 1,
    "nginx_https_port": 1,
}
VAR_FILE_SUFFIXES = (".yml", ".yaml", ".json")
BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0", "y", "n"}


class InventoryError(ValueError):
    """The inventory is unusable; `problems` lists every reason, each naming its culprit."""

    def __init__(self, env: str, problems: list[str]) -> None:
        self.env = env
        self.problems = problems
        super().__init__(
            f"inventory '{env}' is not usable:\n" + "\n".join(f"  - {p}" for p in problems))


class VaultValue(str):
    """An inline `!vault` value: present and not blank, its clear text unknown here."""


@dataclass
class Inventory:
    env: str
    path: Path
    groups: dict[str, list[str]]
    hostvars: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)

    @property
    def hosts(self) -> list[str]:
        return sorted(self.hostvars)

    @property
    def is_sandbox(self) -> bool:
        envs = {str(v.get("fleet_env", "")) for v in self.hostvars.values()}
        return self.env == SANDBOX_ENV or envs == {SANDBOX_ENV}

    def hosts_of(self, *groups: str) -> list[str]:
        found: list[str] = []
        for group in groups:
            found += [h for h in self.groups.get(group, []) if h not in found]
        return found


def inventory_dir(env: str, root: Path = INVENTORY_ROOT) -> Path:
    """The directory of an environment: a name under inventory/, or a path to a directory."""
    candidate = Path(env)
    if candidate.is_dir() and (candidate.is_absolute() or "/" in env):
        return candidate.resolve()
    return root / env


# --- loading -----------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML as Ansible writes it, including inline `!vault` values."""


_Loader.add_constructor(
    "!vault", lambda loader, node: VaultValue(loader.construct_scalar(node)))
_Loader.add_constructor(
    "!unsafe", lambda loader, node: loader.construct_scalar(node))


def _read_yaml(path: Path) -> Any:
    text = path.read_text()
    if text.startswith("$ANSIBLE_VAULT;"):
        text = _decrypt(path)
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise InventoryError(path.parent.name, [f"{path}: not valid YAML ({exc})"]) from None


def _decrypt(path: Path) -> str:
    if not (os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
            or os.environ.get("ANSIBLE_VAULT_IDENTITY_LIST")):
        raise InventoryError(path.parent.name, [
            f"{path} is vault-encrypted: set ANSIBLE_VAULT_PASSWORD_FILE so it can be checked"])
    tool = Path(sys.executable).with_name("ansible-vault")
    result = subprocess.run([str(tool if tool.exists() else "ansible-vault"), "view", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise InventoryError(path.parent.name, [
            f"{path}: ansible-vault could not decrypt it: {result.stderr.strip()}"])
    return result.stdout


def _var_files(base: Path, name: str) -> list[Path]:
    """group_vars/<name>.yml or every file under group_vars/<name>/, as Ansible reads them."""
    files = [base / f"{name}{suffix}" for suffix in ("", *VAR_FILE_SUFFIXES)]
    found = [f for f in files if f.is_file()]
    directory = base / name
    if directory.is_dir():
        found += sorted(p for p in directory.rglob("*")
                        if p.is_file() and p.suffix in VAR_FILE_SUFFIXES
                        and not p.name.startswith("."))
    return found


def _vars_from_files(base: Path, name: str) -> dict[str, Any]:
    merged: dict[str, Any] = {}
    for path in _var_files(base, name):
        data = _read_yaml(path)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise InventoryError(base.parent.name, [f"{path}: must be a mapping of variables"])
        merged.update(data)
    return merged


@dataclass
class _Group:
    name: str
    depth: int
    vars: dict[str, Any] = field(default_factory=dict)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)


def _parse_groups(data: Mapping[str, Any], source: Path) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}

    def visit(name: str, body: Any, depth: int) -> None:
        group = groups.setdefault(name, _Group(name, depth))
        group.depth = max(group.depth, depth)
        if body is None:
            return
        if not isinstance(body, dict):
            raise InventoryError(source.parent.name,
                                 [f"{source}: group '{name}' must be a mapping"])
        group.vars.update(body.get("vars") or {})
        for host, host_vars in (body.get("hosts") or {}).items():
            group.hosts.setdefault(str(host), {}).update(host_vars or {})
        for child, child_body in (body.get("children") or {}).items():
            if child not in group.children:
                group.children.append(child)
            visit(child, child_body, depth + 1)

    top = groups.setdefault("all", _Group("all", 0))
    if "all" in data:
        visit("all", data["all"], 0)
    for name, body in data.items():
        if name == "all":
            continue
        visit(name, body, 1)
        if name not in top.children:
            top.children.append(name)
    return groups


def load(env: str, root: Path = INVENTORY_ROOT) -> Inventory:
    """Read `inventory/<env>/`: hosts, group membership and each host's merged variables."""
    path = inventory_dir(env, root)
    if not path.is_dir():
        raise InventoryError(env, [f"no inventory directory {path}"])
    sources = sorted(p for p in path.iterdir()
                     if p.is_file() and p.suffix in (".yml", ".yaml")
                     and not p.name.startswith("."))
    if not sources:
        raise InventoryError(env, [f"{path} has no hosts.yml"])
    groups: dict[str, _Group] = {}
    for source in sources:
        data = _read_yaml(source) or {}
        if not isinstance(data, dict):
            raise InventoryError(env, [f"{source}: must be a YAML inventory mapping"])
        for name, group in _parse_groups(data, source).items():
            known = groups.setdefault(name, _Group(name, group.depth))
            known.depth = max(known.depth, group.depth)
            known.vars.update(group.vars)
            for host, host_vars in group.hosts.items():
                known.hosts.setdefault(host, {}).update(host_vars)
            known.children += [c for c in group.children if c not in known.children]

    def members(name: str, seen: frozenset[str] = frozenset()) -> list[str]:
        if name in seen:
            return []
        group = groups[name]
        found = list(group.hosts)
        for child in group.children:
            found += [h for h in members(child, seen | {name}) if h not in found]
        return found

    membership = {name: members(name) for name in groups}
    group_vars = {name: {**groups[name].vars, **_vars_from_files(path / "group_vars", name)}
                  for name in groups}
    order = sorted(groups, key=lambda n: (groups[n].depth, n))
    hostvars: dict[str, dict[str, Any]] = {}
    for host in membership["all"]:
        merged: dict[str, Any] = {}
        for name in order:
            if host in membership[name]:
                merged.update(group_vars[name])
        for name in order:
            merged.update(groups[name].hosts.get(host, {}))
        merged.update(_vars_from_files(path / "host_vars", host))
        hostvars[host] = merged
    return Inventory(env=env, path=path,
                     groups={n: membership[n] for n in groups if n != "all"},
                     hostvars=hostvars)


# --- checks ------------------------------------------------------------------------------


def argument_specs(roles_dir: Path = ROLES_DIR) -> dict[str, dict[str, Any]]:
    """Every role variable's spec (type, choices, elements), from meta/argument_specs.yml."""
    specs: dict[str, dict[str, Any]] = {}
    for spec_file in sorted(roles_dir.glob("*/meta/argument_specs.yml")):
        data = yaml.safe_load(spec_file.read_text()) or {}
        for entry in (data.get("argument_specs") or {}).values():
            specs.update(entry.get("options") or {})
    return specs


def _is_templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _type_problem(name: str, value: Any, spec: Mapping[str, Any]) -> str | None:
    kind = spec.get("type", "str")
    if isinstance(value, VaultValue) or _is_templated(value):
        return None
    if kind == "int":
        ok = (isinstance(value, int) and not isinstance(value, bool)) or (
            isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()) is not None)
        if not ok:
            return f"{name} must be a whole number, got {value!r}"
        number = int(value)
        if name in MINIMUMS and number < MINIMUMS[name]:
            return f"{name} must be at least {MINIMUMS[name]}, got {number}"
    elif kind == "float":
        try:
            float(value)
            if isinstance(value, bool):
                raise ValueError
        except (TypeError, ValueError):
            return f"{name} must be a number, got {value!r}"
    elif kind == "bool":
        if not (isinstance(value, bool) or str(value).strip().lower() in BOOL_WORDS):
            return f"{name} must be true or false, got {value!r}"
    elif kind == "list":
        if not isinstance(value, list):
            return f"{name} must be a list, got {value!r}"
    elif kind == "dict":
        if not isinstance(value, dict):
            return f"{name} must be a mapping, got {value!r}"
    elif kind in ("str", "path", "raw"):
        if isinstance(value, (dict, list)) and kind != "raw":
            return f"{name} must be a string, got {value!r}"
    choices = spec.get("choices")
    if choices and value not in choices and str(value) not in [str(c) for c in choices]:
        return f"{name} must be one of {', '.join(map(str, choices))}, got {value!r}"
    return None


def example_secrets(path: Path = VAULT_EXAMPLE) -> dict[str, str]:
    """The placeholder values of the example vault: never acceptable outside the sandbox."""
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return {k: str(v) for k, v in data.items() if v is not None}


def _check_groups(inv: Inventory) -> list[str]:
    problems = []
    hosts_file = inv.path / "hosts.yml"
    for group in REQUIRED_GROUPS:
        if group not in inv.groups:
            problems.append(f"group '{group}' is missing from {hosts_file}")
    for group in NON_EMPTY_GROUPS:
        if group in inv.groups and not inv.groups[group]:
            problems.append(f"group '{group}' has no hosts; it needs at least one")
    if "beat" in inv.groups and len(inv.groups["beat"]) != 1:
        beat = inv.groups["beat"]
        listed = f": {', '.join(beat)}" if beat else ""
        problems.append(
            f"group 'beat' must have exactly one host (two beats run every periodic task "
            f"twice), it has {len(beat)}{listed}")
    return problems


def _check_hosts(inv: Inventory, specs: Mapping[str, Mapping[str, Any]]) -> list[str]:
    problems: list[str] = []
    seen: set[str] = set()
    for host in inv.hosts:
        variables = inv.hostvars[host]
        address = variables.get("fleet_private_address")
        if not address or not isinstance(address, str):
            problems.append(f"host {host}: fleet_private_address is not set (the private "
                            "address its services bind to)")
        for name, value in sorted(variables.items()):
            if name in specs:
                problem = _type_problem(name, value, specs[name])
                if problem and problem not in seen:
                    seen.add(problem)
                    problems.append(problem)
    return problems


def _unknown_variables(inv: Inventory, specs: Mapping[str, Any]) -> list[str]:
    """Role-prefixed names no role knows: most likely typos (warnings, not errors)."""
    prefixes = tuple(f"{p.name}_" for p in ROLES_DIR.iterdir() if p.is_dir()) \
        if ROLES_DIR.is_dir() else ()
    names = {n for v in inv.hostvars.values() for n in v}
    warnings = []
    for name in sorted(names):
        if name.startswith(prefixes) and name not in specs and name not in SECRETS:
            close = difflib.get_close_matches(name, list(specs), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            warnings.append(f"{name} is not a variable of any role{hint}")
    return warnings


def _check_secrets(inv: Inventory, examples: Mapping[str, str]) -> list[str]:
    problems = []
    vault_hint = "group_vars/all/vault.yml" if not inv.is_sandbox else \
        "group_vars/all/secrets.yml (generated by fleet.secrets)"
    required = dict(SECRETS)
    lb_modes = {str(inv.hostvars[h].get("nginx_tls_mode", "provided"))
                for h in inv.hosts_of("loadbalancers")}
    if "provided" in lb_modes:
        for name in TLS_SECRETS:
            required[name] = ("loadbalancers",)
    for name, groups in required.items():
        hosts = inv.hosts_of(*groups)
        missing = [h for h in hosts if name not in inv.hostvars[h]]
        if missing:
            problems.append(f"secret {name} is not set for {', '.join(missing)}; "
                            f"put it in {inv.path.name}/{vault_hint}")
            continue
        if inv.is_sandbox:
            continue
        values = {str(inv.hostvars[h][name]) for h in hosts}
        if any(not v.strip() for v in values):
            problems.append(f"secret {name} is blank")
        elif name in examples and examples[name] in values:
            problems.append(f"secret {name} still has the example value from "
                            f"vault.yml.example; set a real one")
    return problems


def validate(inv: Inventory, specs: Mapping[str, Mapping[str, Any]] | None = None,
             examples: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of the inventory; an empty list means it is usable."""
    specs = argument_specs() if specs is None else specs
    examples = example_secrets() if examples is None else examples
    problems = _check_groups(inv) + _check_hosts(inv, specs) + _check_secrets(inv, examples)
    inv.warnings = _unknown_variables(inv, specs)
    return problems


def check(env: str, root: Path = INVENTORY_ROOT) -> Inventory:
    """Load and validate an environment, raising InventoryError with every problem found."""
    inv = load(env, root)
    problems = validate(inv)
    if problems:
        raise InventoryError(env, problems)
    return inv


def group_summary(inv: Inventory, groups: Iterable[str] = REQUIRED_GROUPS) -> list[tuple]:
    """(group, hosts) rows for a report."""
    return [(g, ", ".join(inv.groups.get(g, [])) or "-") for g in groups]


def setting(inv: Inventory, name: str, default: str) -> str:
    """A kit variable as the inventory sets it (first host that has it), else `default`.

    For the few values the control node needs itself (ports, paths); a templated value cannot
    be resolved here and falls back to the default too.
    """
    value = next((hv[name] for hv in inv.hostvars.values() if name in hv), default)
    return default if isinstance(value, str) and "{{" in value else str(value)
