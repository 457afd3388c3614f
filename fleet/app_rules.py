"""What the app asks of the fleet, checked before anything changes (part of the inventory check).

Two rules the roles would only find out on a host, too late:
- `app_programs` (roles/celery): each entry a mapping with a name, a command and a group
  (workers or beat) that has hosts, optional whole-number numprocs, stopwaitsecs and startsecs,
  an optional ready command (and ready_early, true or false, beside it), names unique. Only a
  list the inventory sets is checked; the role's default is the kit's own.
- SQLite: a `sqlite:` URL in the env file (`app_env`, `app_extra_env`) is a file on one host.
  A fleet that runs the app on more than one host would give each host its own database, so it
  is refused; a single all-in-one host (every app, workers and beat group on one host) may.
"""

from __future__ import annotations

import re
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:  # fleet.inventory runs these rules: no import cycle at run time
    from fleet.inventory import Inventory

PROGRAM_NAME = re.compile(r"[a-z][a-z0-9-]*")
PROGRAM_GROUPS = ("workers", "beat")
PROGRAM_NUMBERS = {"numprocs": 1, "stopwaitsecs": 1, "startsecs": 0}
PROGRAM_FIELDS = {"name", "command", "group", "ready", "ready_early", *PROGRAM_NUMBERS}
RUNS_THE_APP = ("app", "workers", "beat")


def _inventory_value(inv: Inventory, name: str) -> tuple[str | None, Any]:
    """(host, value) of the first host whose inventory sets `name`, else (None, None)."""
    for host, hostvars in inv.hostvars.items():
        if name in hostvars:
            return host, hostvars[name]
    return None, None


def _program_problems(inv: Inventory, programs: Any) -> list[str]:
    if isinstance(programs, str):
        return []  # a template (e.g. the role default's shape): the roles' assertions check it
    if not isinstance(programs, list):
        return [f"app_programs must be a list of programs, not {type(programs).__name__}"]
    problems, names = [], []
    for index, entry in enumerate(programs):
        label = f"app_programs[{index}]"
        if not isinstance(entry, dict):
            problems.append(f"{label} must be a mapping with name, command and group")
            continue
        name = entry.get("name")
        if isinstance(name, str) and PROGRAM_NAME.fullmatch(name):
            label = f"app_programs entry {name!r}"
            names.append(name)
        else:
            problems.append(f"{label}: name {name!r} must be lowercase letters, digits and "
                            "dashes, starting with a letter")
        unknown = sorted(set(entry) - PROGRAM_FIELDS)
        if unknown:
            problems.append(f"{label}: unknown field(s) {', '.join(unknown)} (known: "
                            f"{', '.join(sorted(PROGRAM_FIELDS))})")
        command = entry.get("command")
        if not isinstance(command, str) or not command.strip():
            problems.append(f"{label}: command must be the program's command line")
        ready = entry.get("ready")
        if ready is not None and (not isinstance(ready, str) or not ready.strip()):
            problems.append(f"{label}: ready must be a shell command that succeeds once the "
                            "program works (or be left out)")
        early = entry.get("ready_early", False)
        if not isinstance(early, bool):
            problems.append(f"{label}: ready_early must be true or false, not {early!r}")
        elif early and ready is None:
            problems.append(f"{label}: ready_early needs a ready command to start early")
        group = entry.get("group")
        if group not in PROGRAM_GROUPS:
            problems.append(f"{label}: group {group!r} must be workers (every workers host) or "
                            "beat (the single beat host)")
        elif not inv.hosts_of(group):
            problems.append(f"{label} runs on the {group} group, which has no host: add one, "
                            "or drop the entry")
        for field, least in PROGRAM_NUMBERS.items():
            value = entry.get(field, least)
            if isinstance(value, str) and value.strip().isdigit():
                value = int(value)
            if not isinstance(value, int) or isinstance(value, bool) or value < least:
                problems.append(f"{label}: {field} must be a whole number of at least {least}, "
                                f"not {value!r}")
    twice = sorted({n for n in names if names.count(n) > 1})
    if twice:
        problems.append(f"app_programs names {', '.join(twice)} more than once: each program "
                        "needs its own name")
    return problems


def _sqlite_problems(inv: Inventory) -> list[str]:
    hosts = sorted(set(inv.hosts_of(*RUNS_THE_APP)))
    if len(hosts) <= 1:
        return []
    problems = []
    for variable in ("app_env", "app_extra_env"):
        host, env = _inventory_value(inv, variable)
        if not isinstance(env, dict):
            continue
        for key, value in env.items():
            if isinstance(value, str) and value.strip().lower().startswith("sqlite:"):
                problems.append(
                    f"{variable} {key} is a SQLite URL ({value.strip()[:60]}): a SQLite database "
                    f"is a file on one host, and this fleet runs the app on {len(hosts)} hosts "
                    f"({', '.join(hosts)}), each of which would get its own. Set {key} to the "
                    "fleet's database (e.g. \"{{ app_database_url }}\"), or deploy to a single "
                    f"all-in-one host (set in {inv.where(host, variable)})")
    return problems


def problems(inv: Inventory) -> list[str]:
    """Every problem of the app's demands on this fleet; empty when it can run here."""
    _, programs = _inventory_value(inv, "app_programs")
    found = _program_problems(inv, programs) if programs is not None else []
    return found + _sqlite_problems(inv)
