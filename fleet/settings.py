"""The one way the control node reads a kit variable: the inventory, else the role's default.

The roles own every default (`roles/*/defaults/main.yml`); Python keeps no copy of its own. A
value is the inventory's (the first host that sets it, as the commands that need one value per
fleet always did) or the role default, and a templated value is rendered the way Ansible would,
against the same two sources. A value that depends on the host it lands on (facts, `groups`,
`hostvars`, `inventory_hostname`) has no single fleet-wide answer: asking for one is an error
naming the variable, as is asking for a name no role defines.
"""

from __future__ import annotations

import functools
import re
from pathlib import Path
from typing import Any

import jinja2
import jinja2.meta

from fleet import inventory
from fleet.ansible_filters import settle
from fleet.inventory import ROLES_DIR, Inventory

# Names whose value differs from host to host: a setting built on one has no fleet-wide value.
HOST_BOUND = re.compile(r"inventory_hostname|hostvars|groups|group_names|ansible_\w+"
                        r"|fleet_private_address")


class SettingError(Exception):
    """A kit variable the control node cannot resolve; the message names it and says why."""


# The roles' defaults, read once per run (each lookup copies what it renders).
role_defaults = functools.cache(inventory.role_defaults)


def _raw(inv: Inventory, name: str, defaults: dict[str, Any]) -> tuple[bool, Any]:
    for hostvars in inv.hostvars.values():
        if name in hostvars:
            return True, hostvars[name]
    return name in defaults, defaults.get(name)


def _references(value: Any) -> set[str]:
    """The variable names a (possibly nested) templated value refers to."""
    if isinstance(value, str) and ("{{" in value or "{%" in value):
        return set(jinja2.meta.find_undeclared_variables(jinja2.Environment().parse(value)))
    if isinstance(value, list):
        return set().union(*(_references(v) for v in value))
    if isinstance(value, dict):
        return set().union(*(_references(v) for v in value.values()))
    return set()


def _context(inv: Inventory, name: str, defaults: dict[str, Any]) -> dict[str, Any]:
    """`name` and everything its value refers to, transitively; host-bound names refused."""
    context: dict[str, Any] = {}
    pending = [name]
    while pending:
        current = pending.pop()
        if current in context:
            continue
        known, value = _raw(inv, current, defaults)
        if not known:
            continue  # an optional name under `| default(...)`; strict rendering catches the rest
        context[current] = value
        refs = sorted(_references(value))
        bound = [ref for ref in refs if HOST_BOUND.fullmatch(ref)]
        if bound:
            raise SettingError(
                f"{name} depends on the host ({current} uses {', '.join(bound)}), so it has no "
                "single value for the fleet; set it in the inventory as a plain value")
        pending.extend(refs)
    return context


def _value(inv: Inventory, name: str, roles_dir: Path) -> Any:
    """The fleet-wide value of `name`, rendered, in its own type."""
    defaults = role_defaults(roles_dir)
    known, _ = _raw(inv, name, defaults)
    if not known:
        raise SettingError(f"{name} is not a kit variable: no role under {roles_dir} defines "
                           "it and the inventory does not set it")
    context = _context(inv, name, defaults)
    try:
        return settle(context, strict=True)[name]
    except jinja2.UndefinedError as exc:
        raise SettingError(f"{name} cannot be resolved: {exc.message}") from None


def setting(inv: Inventory, name: str, roles_dir: Path = ROLES_DIR) -> str:
    """The fleet-wide value of the kit variable `name`, as text (what commands and paths need)."""
    return str(_value(inv, name, roles_dir))


def setting_list(inv: Inventory, name: str, roles_dir: Path = ROLES_DIR) -> list[str]:
    """The fleet-wide value of the list variable `name`, each element as text."""
    value = _value(inv, name, roles_dir)
    if not isinstance(value, list):
        raise SettingError(f"{name} must be a list, not {value!r}")
    return [str(item) for item in value]


def setting_bool(inv: Inventory, name: str, roles_dir: Path = ROLES_DIR) -> bool:
    """The fleet-wide value of the boolean variable `name`, read as Ansible's `bool` filter
    reads its usual spellings; anything else is an error naming the variable."""
    value = _value(inv, name, roles_dir)
    if isinstance(value, bool):
        return value
    text = str(value).strip().lower()
    if text not in ("1", "true", "yes", "on", "y", "0", "false", "no", "off", "n"):
        raise SettingError(f"{name} must be true or false, not {value!r}")
    return text in ("1", "true", "yes", "on", "y")
