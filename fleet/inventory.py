"""Load an environment's inventory and check it before anything touches a host.

An environment is a directory `inventory/<env>/` holding a YAML inventory (`hosts.yml`) and
optionally `group_vars/` and `host_vars/`. The checks here are the pre-flight of provision and
deploy: required groups, group sizes, variable types (taken from the roles'
`meta/argument_specs.yml`, so the roles and the pre-flight never disagree), and secrets —
present everywhere, and outside the sandbox neither blank, short, a placeholder nor the values of
the example vault. Ranges and relations the specs cannot express (ports, timeouts, gunicorn's
graceful timeout against supervisord's stop wait, Redis database indexes) are in the small tables
below. Every problem names the variable, group or host at fault and the file it is set in.

Only the sandbox's own generated inventory is a sandbox (see `sandbox_claim`): setting
`fleet_env: sandbox` in a copied inventory gets none of the sandbox's leniency.
"""

from __future__ import annotations

import difflib
import ipaddress
import os
import re
import subprocess
import sys
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from fleet import app_rules

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
# Inclusive (low, high) bounds the argument specs cannot express, matched by name pattern; the
# first pattern that matches a variable applies. None: no bound on that side.
RANGES: tuple[tuple[str, tuple[int | None, int | None]], ...] = (
    (r".*_port", (1, 65535)),
    (r".*timeout.*", (1, None)),
    (r".*stopwaitsecs", (1, None)),
    (r"(app_)?redis_\w+_db", (0, None)),
    (r"redis_databases", (1, None)),
)
# Values with a fixed shape: name -> (pattern, what it must look like).
FORMATS: dict[str, tuple[str, str]] = {
    "app_wsgi": (r"[A-Za-z_]\w*(\.[A-Za-z_]\w*)*:[A-Za-z_]\w*(\(.*\))?",
                 "module:callable, e.g. fleetapp.wsgi:app"),
    "app_celery": (r"([A-Za-z_]\w*(\.[A-Za-z_]\w*)*(:[A-Za-z_]\w*)?)?",
                   "empty or module:attribute, e.g. fleetapp.celery_app:celery"),
    # It names a Unix user, directories and supervisord programs.
    "app_name": (r"[a-z][a-z0-9_-]{0,30}",
                 "lower-case letters, digits, '-' and '_', starting with a letter, at most 31"),
}
# Relations between variables of one host of a group: (group, smaller, larger, why). Both must
# be set (by the inventory or a role default) and untemplated for the check to apply.
MUST_BE_SMALLER: tuple[tuple[str, str, str, str], ...] = (
    ("app", "app_gunicorn_graceful_timeout", "app_gunicorn_stopwaitsecs",
     "supervisord must not KILL gunicorn while its workers finish their requests"),
)
MUST_DIFFER: tuple[tuple[str, str, str, str], ...] = (
    ("app", "app_gunicorn_port", "app_gunicorn_handover_port",
     "the handover gunicorn of a single-host deploy listens beside the main one"),
    ("loadbalancers", "nginx_http_port", "nginx_https_port",
     "nginx cannot serve HTTP and HTTPS on one port"),
)
# Redis database indexes the fleet uses; each must be below redis_databases of the redis host.
REDIS_DB_INDEXES = ("redis_cache_db", "redis_broker_db", "redis_results_db",
                    "app_redis_cache_db", "app_redis_broker_db", "app_redis_results_db")
# Secrets outside the sandbox: at least this long, this many different characters, and none of
# the words people type while they mean to come back later. The words must stand apart (no
# letter on either side), so a long random value does not trip over one by chance.
MIN_SECRET_LENGTH = 16
MIN_SECRET_DISTINCT = 8
PLACEHOLDER = re.compile(
    r"(?<![a-z])(change[-_ ]?(me|it|this)|replace[-_ ]?me|placeholder|fixme|todo|x{4,}"
    r"|example|dummy)(?![a-z])"
    r"|^(secret|password|passw0rd|admin|test|default)\d*$", re.IGNORECASE)
# The first line fleet.sandbox.containers writes into the inventory it generates.
GENERATED_HEADER = re.compile(r"^# Generated by `fab sandbox\.up` for sandbox '(?P<name>[\w-]+)'")
KNOWN_GROUPS = ("all", "ungrouped", *REQUIRED_GROUPS)
VAR_FILE_SUFFIXES = (".yml", ".yaml", ".json")
BOOL_WORDS = {"true", "false", "yes", "no", "on", "off", "1", "0", "y", "n"}


class InventoryError(ValueError):
    """The inventory is unusable; `problems` lists every reason, each naming its culprit.

    `warnings` (likely typos) are part of the message too: a misspelt variable is often the
    cause of an error printed beside it.
    """

    def __init__(self, env: str, problems: list[str], warnings: list[str] | None = None) -> None:
        self.env = env
        self.problems = problems
        self.warnings = list(warnings or [])
        text = f"inventory '{env}' is not usable:\n" + "\n".join(f"  - {p}" for p in problems)
        if self.warnings:
            text += "\nwarnings:\n" + "\n".join(f"  - {w}" for w in self.warnings)
        super().__init__(text)


class VaultValue(str):
    """An inline `!vault` value: present and not blank, its clear text unknown here."""


@dataclass
class Inventory:
    env: str
    path: Path
    groups: dict[str, list[str]]
    hostvars: dict[str, dict[str, Any]]
    warnings: list[str] = field(default_factory=list)
    # host -> variable -> the file (and place in it) that set the value the host gets.
    origins: dict[str, dict[str, str]] = field(default_factory=dict)
    # group -> the inventory file that declares it.
    group_sources: dict[str, str] = field(default_factory=dict)
    # Whether this is the sandbox's own generated inventory (see sandbox_claim).
    sandbox: bool = False

    @property
    def hosts(self) -> list[str]:
        return sorted(self.hostvars)

    @property
    def is_sandbox(self) -> bool:
        return self.sandbox

    def hosts_of(self, *groups: str) -> list[str]:
        found: list[str] = []
        for group in groups:
            found += [h for h in self.groups.get(group, []) if h not in found]
        return found

    def where(self, host: str, name: str) -> str:
        """The file a host's variable comes from, for messages that say where to fix it."""
        return self.origins.get(host, {}).get(name, "")


def inventory_dir(env: str, root: Path = INVENTORY_ROOT) -> Path:
    """The directory of an environment: a name under inventory/, or a path to a directory."""
    candidate = Path(env)
    if candidate.is_dir() and (candidate.is_absolute() or "/" in env):
        return candidate.resolve()
    return root / env


def shown(path: Path) -> str:
    """A path as messages show it: relative to the kit when inside it."""
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


# --- loading -----------------------------------------------------------------------------


class _Loader(yaml.SafeLoader):
    """YAML as Ansible writes it, including inline `!vault` values."""


_Loader.add_constructor(
    "!vault", lambda loader, node: VaultValue(loader.construct_scalar(node)))
_Loader.add_constructor(
    "!unsafe", lambda loader, node: loader.construct_scalar(node))


def _read_yaml(path: Path, env: str) -> Any:
    text = path.read_text()
    if text.startswith("$ANSIBLE_VAULT;"):
        text = _decrypt(path, env)
    try:
        return yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as exc:
        raise InventoryError(env, [f"{shown(path)}: not valid YAML ({exc})"]) from None


def _decrypt(path: Path, env: str) -> str:
    if not (os.environ.get("ANSIBLE_VAULT_PASSWORD_FILE")
            or os.environ.get("ANSIBLE_VAULT_IDENTITY_LIST")):
        raise InventoryError(env, [
            f"{shown(path)} is vault-encrypted: set ANSIBLE_VAULT_PASSWORD_FILE so it can be "
            "checked"])
    tool = Path(sys.executable).with_name("ansible-vault")
    result = subprocess.run([str(tool if tool.exists() else "ansible-vault"), "view", str(path)],
                            capture_output=True, text=True)
    if result.returncode != 0:
        raise InventoryError(env, [
            f"{shown(path)}: ansible-vault could not decrypt it: {result.stderr.strip()}"])
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


def _vars_from_files(base: Path, name: str, env: str) -> tuple[dict[str, Any], dict[str, str]]:
    """The merged variables of group_vars/<name> (or host_vars/<name>) and where each is set."""
    merged: dict[str, Any] = {}
    origins: dict[str, str] = {}
    for path in _var_files(base, name):
        data = _read_yaml(path, env)
        if data is None:
            continue
        if not isinstance(data, dict):
            raise InventoryError(env, [f"{shown(path)}: must be a mapping of variables, "
                                       f"got {type(data).__name__}"])
        merged.update(data)
        origins.update(dict.fromkeys(data, shown(path)))
    return merged, origins


@dataclass
class _Group:
    name: str
    depth: int
    vars: dict[str, Any] = field(default_factory=dict)
    var_origins: dict[str, str] = field(default_factory=dict)
    hosts: dict[str, dict[str, Any]] = field(default_factory=dict)
    host_origins: dict[str, str] = field(default_factory=dict)
    children: list[str] = field(default_factory=list)
    source: str = ""


def _mapping(value: Any, what: str, env: str) -> dict:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise InventoryError(env, [f"{what} must be a mapping, got {type(value).__name__} "
                                   f"{value!r}"])
    return value


def _parse_groups(data: Mapping[str, Any], source: Path, env: str) -> dict[str, _Group]:
    groups: dict[str, _Group] = {}
    where = shown(source)

    def visit(name: str, body: Any, depth: int) -> None:
        group = groups.setdefault(name, _Group(name, depth, source=where))
        group.depth = max(group.depth, depth)
        body = _mapping(body, f"{where}: group '{name}'", env)
        group_vars = _mapping(body.get("vars"), f"{where}: vars of group '{name}'", env)
        group.vars.update(group_vars)
        group.var_origins.update(dict.fromkeys(group_vars, f"{where} (vars of group {name})"))
        hosts = _mapping(body.get("hosts"), f"{where}: hosts of group '{name}'", env)
        for host, host_vars in hosts.items():
            values = _mapping(host_vars, f"{where}: variables of host {host}", env)
            group.hosts.setdefault(str(host), {}).update(values)
            group.host_origins[str(host)] = f"{where} (host {host})"
        children = _mapping(body.get("children"), f"{where}: children of group '{name}'", env)
        for child, child_body in children.items():
            if child not in group.children:
                group.children.append(child)
            visit(child, child_body, depth + 1)

    top = groups.setdefault("all", _Group("all", 0, source=where))
    if "all" in data:
        visit("all", data["all"], 0)
    for name, body in data.items():
        if name == "all":
            continue
        visit(name, body, 1)
        if name not in top.children:
            top.children.append(name)
    return groups


def sandbox_claim(path: Path, hostvars: Mapping[str, Mapping[str, Any]],
                  root: Path = INVENTORY_ROOT) -> str | None:
    """Why `path` is not the sandbox's generated inventory, or None when it is.

    The sandbox's leniency (any generated secret, secrets written by pre-flight) belongs only
    to the inventory `fab sandbox.up` writes: the kit's own sandbox directory, its hosts.yml
    carrying the generator's header, every host marked `fleet_env: sandbox` and reached at its
    private container address. A copied or hand-written inventory fails at least one of these.
    """
    if path.resolve() != inventory_dir(SANDBOX_ENV, root).resolve():
        return f"{shown(path)} is not the sandbox's directory"
    hosts_file = path / "hosts.yml"
    first = hosts_file.read_text().split("\n", 1)[0] if hosts_file.is_file() else ""
    if not GENERATED_HEADER.match(first):
        return f"{shown(hosts_file)} was not generated by `fab sandbox.up`"
    for host, variables in sorted(hostvars.items()):
        if str(variables.get("fleet_env", "")) != SANDBOX_ENV:
            return f"host {host} is not marked fleet_env: sandbox"
        address = variables.get("fleet_private_address")
        try:
            private = ipaddress.ip_address(str(address)).is_private
        except ValueError:
            private = False
        if str(variables.get("ansible_host")) != str(address) or not private:
            return f"host {host} is not reached at its private sandbox address"
    return None


def load(env: str, root: Path = INVENTORY_ROOT) -> Inventory:
    """Read `inventory/<env>/`: hosts, group membership and each host's merged variables."""
    path = inventory_dir(env, root)
    is_sandbox_dir = path.resolve() == inventory_dir(SANDBOX_ENV, root).resolve()
    if not path.is_dir():
        raise InventoryError(env, [f"no inventory directory {shown(path)}"])
    sources = sorted(p for p in path.iterdir()
                     if p.is_file() and p.suffix in (".yml", ".yaml")
                     and not p.name.startswith("."))
    if not sources:
        if is_sandbox_dir:
            raise InventoryError(env, [f"the sandbox is not running ({shown(path / 'hosts.yml')} "
                                       "does not exist): start it with `fab sandbox.up`"])
        raise InventoryError(env, [f"{shown(path)} has no hosts.yml"])
    groups: dict[str, _Group] = {}
    for source in sources:
        data = _read_yaml(source, env) or {}
        if not isinstance(data, dict):
            raise InventoryError(env, [f"{shown(source)}: must be a YAML inventory mapping"])
        for name, group in _parse_groups(data, source, env).items():
            known = groups.setdefault(name, _Group(name, group.depth, source=group.source))
            known.depth = max(known.depth, group.depth)
            known.vars.update(group.vars)
            known.var_origins.update(group.var_origins)
            for host, host_vars in group.hosts.items():
                known.hosts.setdefault(host, {}).update(host_vars)
            known.host_origins.update(group.host_origins)
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
    group_vars: dict[str, dict[str, Any]] = {}
    group_origins: dict[str, dict[str, str]] = {}
    for name in groups:
        values, origins = _vars_from_files(path / "group_vars", name, env)
        group_vars[name] = {**groups[name].vars, **values}
        group_origins[name] = {**groups[name].var_origins, **origins}
    order = sorted(groups, key=lambda n: (groups[n].depth, n))
    hostvars: dict[str, dict[str, Any]] = {}
    host_origins: dict[str, dict[str, str]] = {}
    for host in membership["all"]:
        merged: dict[str, Any] = {}
        origin: dict[str, str] = {}
        for name in order:
            if host in membership[name]:
                merged.update(group_vars[name])
                origin.update(group_origins[name])
        for name in order:
            entry = groups[name].hosts.get(host, {})
            merged.update(entry)
            origin.update(dict.fromkeys(entry, groups[name].host_origins.get(host, "")))
        values, origins = _vars_from_files(path / "host_vars", host, env)
        merged.update(values)
        origin.update(origins)
        hostvars[host] = merged
        host_origins[host] = origin
    return Inventory(env=env, path=path,
                     groups={n: membership[n] for n in groups if n != "all"},
                     hostvars=hostvars, origins=host_origins,
                     group_sources={n: g.source for n, g in groups.items()},
                     sandbox=sandbox_claim(path, hostvars, root) is None)


# --- checks ------------------------------------------------------------------------------


def argument_specs(roles_dir: Path = ROLES_DIR) -> dict[str, dict[str, Any]]:
    """Every role variable's spec (type, choices, elements), from meta/argument_specs.yml."""
    specs: dict[str, dict[str, Any]] = {}
    for spec_file in sorted(roles_dir.glob("*/meta/argument_specs.yml")):
        data = yaml.safe_load(spec_file.read_text()) or {}
        for entry in (data.get("argument_specs") or {}).values():
            specs.update(entry.get("options") or {})
    return specs


def role_defaults(roles_dir: Path = ROLES_DIR) -> dict[str, Any]:
    """Every role's defaults: what a host gets for a variable its inventory does not set."""
    found: dict[str, Any] = {}
    for defaults in sorted(roles_dir.glob("*/defaults/main.yml")):
        found.update(yaml.safe_load(defaults.read_text()) or {})
    return found


def _is_templated(value: Any) -> bool:
    return isinstance(value, str) and ("{{" in value or "{%" in value)


def _whole(value: Any) -> int | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int):
        return value
    if isinstance(value, str) and re.fullmatch(r"-?\d+", value.strip()):
        return int(value)
    return None


def _bounds(name: str) -> tuple[int | None, int | None]:
    low, high = MINIMUMS.get(name), None
    for pattern, (range_low, range_high) in RANGES:
        if re.fullmatch(pattern, name):
            low = range_low if low is None else max(low, range_low or low)
            high = range_high
            break
    return low, high


def _type_problem(name: str, value: Any, spec: Mapping[str, Any]) -> str | None:
    kind = spec.get("type", "str")
    if isinstance(value, VaultValue) or _is_templated(value):
        return None
    if kind == "int":
        number = _whole(value)
        if number is None:
            return f"{name} must be a whole number, got {value!r}"
        low, high = _bounds(name)
        if low is not None and number < low and high is None:
            return f"{name} must be at least {low}, got {number}"
        if (low is not None and number < low) or (high is not None and number > high):
            return f"{name} must be between {low} and {high}, got {number}"
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
    if name in FORMATS:
        pattern, shape = FORMATS[name]
        if value is None or not re.fullmatch(pattern, str(value)):
            return f"{name} must be {shape}, got {value!r}"
    return None


def example_secrets(path: Path = VAULT_EXAMPLE) -> dict[str, str]:
    """The placeholder values of the example vault: never acceptable outside the sandbox."""
    if not path.is_file():
        return {}
    data = yaml.safe_load(path.read_text()) or {}
    return {k: str(v) for k, v in data.items() if v is not None}


class _Found:
    """Problems of hosts, merged when several hosts share one cause (one file, one message)."""

    def __init__(self, inv: Inventory) -> None:
        self.inv = inv
        self._hosts: dict[tuple[str, str], list[str]] = {}

    def add(self, host: str, message: str, name: str | None = None) -> None:
        origin = self.inv.where(host, name) if name else ""
        self._hosts.setdefault((message, origin), []).append(host)

    def lines(self) -> list[str]:
        out = []
        for (message, origin), hosts in self._hosts.items():
            label = "host" if len(hosts) == 1 else "hosts"
            where = f"set in {origin}; " if origin else ""
            out.append(f"{message} ({where}{label} {', '.join(hosts)})")
        return out


def _close(name: str, candidates: Iterable[str]) -> str:
    found = difflib.get_close_matches(name, list(candidates), n=1, cutoff=0.6)
    return f" (did you mean '{found[0]}'?)" if found else ""


def _check_groups(inv: Inventory) -> list[str]:
    problems = []
    hosts_file = shown(inv.path / "hosts.yml")
    unknown = sorted(g for g in inv.groups if g not in KNOWN_GROUPS)
    for group in unknown:
        problems.append(
            f"group '{group}' in {inv.group_sources.get(group, hosts_file)} is not a group of "
            f"the kit{_close(group, REQUIRED_GROUPS)}; its hosts "
            f"({', '.join(inv.groups[group]) or 'none'}) would get only part of the stack. "
            f"Groups: {', '.join(REQUIRED_GROUPS)}")
    for group in REQUIRED_GROUPS:
        if group not in inv.groups:
            problems.append(f"group '{group}' is missing from {hosts_file}"
                            f"{_close(group, unknown)}")
    for group in NON_EMPTY_GROUPS:
        if group in inv.groups and not inv.groups[group]:
            problems.append(f"group '{group}' has no hosts; it needs at least one "
                            f"({inv.group_sources.get(group, hosts_file)})")
    # An app without Celery leaves workers and beat empty; one without periodic tasks, beat.
    if "beat" in inv.groups and len(inv.groups["beat"]) > 1:
        beat = inv.groups["beat"]
        problems.append(
            f"group 'beat' must have at most one host (two beats run every periodic task "
            f"twice), it has {len(beat)}: {', '.join(beat)} "
            f"({inv.group_sources.get('beat', hosts_file)})")
    return problems


def _check_addresses(inv: Inventory, found: _Found) -> None:
    owners: dict[str, list[str]] = {}
    for host in inv.hosts:
        address = inv.hostvars[host].get("fleet_private_address")
        name = "fleet_private_address"
        if address is None or (isinstance(address, str) and not address.strip()):
            found.add(host, f"host {host}: fleet_private_address is not set (the private "
                            "address its services bind to; set it beside its ansible_host)")
            continue
        if _is_templated(address):
            continue
        if not isinstance(address, str):
            found.add(host, f"fleet_private_address must be an IP address written as a string, "
                            f"got the {type(address).__name__} {address!r}", name)
            continue
        try:
            canonical = str(ipaddress.ip_address(address.strip()))
        except ValueError:
            found.add(host, f"fleet_private_address {address!r} is not an IP address", name)
            continue
        owners.setdefault(canonical, []).append(host)
    for address, hosts in sorted(owners.items()):
        if len(hosts) > 1:
            where = "; ".join(f"{h}: {inv.where(h, 'fleet_private_address')}" for h in hosts)
            found.add(hosts[0], f"hosts {', '.join(hosts)} share fleet_private_address "
                                f"{address}: each host needs its own ({where})")


def _check_variables(inv: Inventory, specs: Mapping[str, Mapping[str, Any]],
                     found: _Found) -> None:
    for host in inv.hosts:
        for name, value in sorted(inv.hostvars[host].items()):
            if name in specs:
                problem = _type_problem(name, value, specs[name])
                if problem:
                    found.add(host, problem, name)


def _check_relations(inv: Inventory, defaults: Mapping[str, Any], found: _Found) -> None:
    def value(host: str, name: str) -> tuple[int | None, str]:
        if name in inv.hostvars[host]:
            return _whole(inv.hostvars[host][name]), inv.where(host, name)
        return _whole(defaults.get(name)), "the role default"

    for group, smaller, larger, why in MUST_BE_SMALLER:
        for host in inv.hosts_of(group):
            (low, low_at), (high, high_at) = value(host, smaller), value(host, larger)
            if low is not None and high is not None and low >= high:
                found.add(host, f"{smaller} ({low}, {low_at}) must be smaller than {larger} "
                                f"({high}, {high_at}): {why}")
    for group, one, other, why in MUST_DIFFER:
        for host in inv.hosts_of(group):
            (first, first_at), (second, second_at) = value(host, one), value(host, other)
            if first is not None and first == second:
                found.add(host, f"{one} ({first_at}) and {other} ({second_at}) are both "
                                f"{first}: {why}")
    redis_hosts = inv.hosts_of("redis")
    if not redis_hosts:
        return
    count, count_at = value(redis_hosts[0], "redis_databases")
    if count is None:
        return
    for host in inv.hosts:
        for name in REDIS_DB_INDEXES:
            index, _ = value(host, name)
            if name in inv.hostvars[host] and index is not None and index >= count:
                found.add(host, f"{name} is {index} but Redis on {redis_hosts[0]} has "
                                f"{count} databases (0-{count - 1}, redis_databases from "
                                f"{count_at})", name)


def _unknown_variables(inv: Inventory, specs: Mapping[str, Any]) -> list[str]:
    """Role-prefixed names no role knows: most likely typos (warnings, not errors)."""
    prefixes = tuple(f"{p.name}_" for p in ROLES_DIR.iterdir() if p.is_dir()) \
        if ROLES_DIR.is_dir() else ()
    where: dict[str, str] = {}
    for host in inv.hosts:
        for name in inv.hostvars[host]:
            where.setdefault(name, inv.where(host, name))
    warnings = []
    for name in sorted(where):
        if name.startswith(prefixes) and name not in specs and name not in SECRETS:
            close = difflib.get_close_matches(name, list(specs), n=1)
            hint = f" (did you mean {close[0]}?)" if close else ""
            at = f" (set in {where[name]})" if where[name] else ""
            warnings.append(f"{name}{at} is not a variable of any role{hint}")
    return warnings


def _pem_problem(certificate: str, key: str) -> str | None:
    """Why a PEM certificate and key are not a usable pair, or None."""
    from cryptography import x509
    from cryptography.hazmat.primitives import serialization

    try:
        cert = x509.load_pem_x509_certificate(certificate.encode())
    except ValueError:
        return "nginx_tls_certificate is not a PEM certificate (-----BEGIN CERTIFICATE-----)"
    try:
        private = serialization.load_pem_private_key(key.encode(), password=None)
    except (ValueError, TypeError):
        return ("nginx_tls_certificate_key is not an unencrypted PEM private key "
                "(-----BEGIN PRIVATE KEY-----)")
    spki = serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo
    if cert.public_key().public_bytes(*spki) != private.public_key().public_bytes(*spki):
        return "nginx_tls_certificate_key is not the key of nginx_tls_certificate"
    from datetime import UTC, datetime

    if cert.not_valid_after_utc < datetime.now(UTC):
        return f"nginx_tls_certificate expired on {cert.not_valid_after_utc:%Y-%m-%d}"
    return None


def _secret_problem(name: str, value: Any, examples: Mapping[str, str],
                    strict: bool) -> str | None:
    if value is None:
        return f"secret {name} is null (an empty YAML value); give it a value"
    if not isinstance(value, str):
        return (f"secret {name} must be a string, got a {type(value).__name__}: quote it in "
                "YAML (and use a long random value)")
    if isinstance(value, VaultValue) or _is_templated(value) or not strict:
        return None
    if not value.strip():
        return f"secret {name} is blank"
    if name in examples and value.strip() == examples[name].strip():
        return f"secret {name} still has the example value from vault.yml.example; set a real one"
    placeholder = PLACEHOLDER.search(value)
    if placeholder:
        return (f"secret {name} looks like a placeholder ({placeholder.group(0)!r}); "
                "set a real one")
    if name in TLS_SECRETS:
        return None
    if len(value) < MIN_SECRET_LENGTH:
        return (f"secret {name} is {len(value)} characters long, at least {MIN_SECRET_LENGTH} "
                "are needed (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    if len(set(value)) < MIN_SECRET_DISTINCT:
        return (f"secret {name} has only {len(set(value))} different characters; use a random "
                "value (python3 -c 'import secrets; print(secrets.token_urlsafe(32))')")
    return None


def _check_secrets(inv: Inventory, examples: Mapping[str, str], found: _Found) -> list[str]:
    problems = []
    vault_hint = "group_vars/all/vault.yml" if not inv.is_sandbox else \
        "group_vars/all/secrets.yml (generated by fleet.sandbox.secrets)"
    required = dict(SECRETS)
    lb_modes = {str(inv.hostvars[h].get("nginx_tls_mode", "provided"))
                for h in inv.hosts_of("loadbalancers")}
    if "provided" in lb_modes:
        for name in TLS_SECRETS:
            required[name] = ("loadbalancers",)
    strict = not inv.is_sandbox
    for name, groups in required.items():
        hosts = inv.hosts_of(*groups)
        missing = [h for h in hosts if name not in inv.hostvars[h]]
        if missing:
            problems.append(f"secret {name} is not set for {', '.join(missing)}; "
                            f"put it in {shown(inv.path / vault_hint.split(' ')[0])}")
            continue
        for host in hosts:
            problem = _secret_problem(name, inv.hostvars[host][name], examples, strict)
            if problem:
                found.add(host, problem, name)
    if strict and "provided" in lb_modes:
        for host in inv.hosts_of("loadbalancers"):
            certificate, key = (inv.hostvars[host].get(n) for n in TLS_SECRETS)
            plain = [v for v in (certificate, key)
                     if isinstance(v, str) and not isinstance(v, VaultValue)
                     and not _is_templated(v)]
            if len(plain) == 2 and not any(_secret_problem(n, inv.hostvars[host][n], examples,
                                                           strict) for n in TLS_SECRETS):
                problem = _pem_problem(certificate, key)
                if problem:
                    found.add(host, problem, TLS_SECRETS[0])
    return problems


def validate(inv: Inventory, specs: Mapping[str, Mapping[str, Any]] | None = None,
             examples: Mapping[str, str] | None = None) -> list[str]:
    """Every problem of the inventory; an empty list means it is usable."""
    specs = argument_specs() if specs is None else specs
    examples = example_secrets() if examples is None else examples
    found = _Found(inv)
    problems = _check_groups(inv)
    _check_addresses(inv, found)
    _check_variables(inv, specs, found)
    _check_relations(inv, role_defaults(), found)
    missing = _check_secrets(inv, examples, found)
    inv.warnings = _unknown_variables(inv, specs)
    return problems + found.lines() + missing + app_rules.problems(inv)


def check(env: str, root: Path = INVENTORY_ROOT) -> Inventory:
    """Load and validate an environment, raising InventoryError with every problem found."""
    inv = load(env, root)
    problems = validate(inv)
    if problems:
        raise InventoryError(env, problems, inv.warnings)
    return inv


def group_summary(inv: Inventory, groups: Iterable[str] = REQUIRED_GROUPS) -> list[tuple]:
    """(group, hosts) rows for a report."""
    return [(g, ", ".join(inv.groups.get(g, [])) or "-") for g in groups]
