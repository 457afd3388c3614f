"""`fab init APP_DIR`: a new environment for an app, its contract variables guessed from its files.

The environment is made by `fab env.new`'s own copy of the documented example
(fleet/ops/environments.py); its `group_vars/all/app.yml` is then replaced by one that sets what
fleet/app_scan.py guessed, each value under a comment saying why, or that the files did not
settle it. Nothing is written when the app cannot be read or the environment exists.
"""

from __future__ import annotations

import os
import re
import textwrap
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml

from fleet import app_scan
from fleet.inventory import INVENTORY_ROOT, inventory_dir, shown
from fleet.ops import environments

APP_VARS = Path("group_vars") / "all" / "app.yml"
# The example's settings file also names the reference app's contract; read after app.yml (the
# files of a group_vars directory are merged in name order), it would undo every guess.
MAIN_VARS = Path("group_vars") / "all" / "main.yml"
TOP_LEVEL_KEY = re.compile(r"([A-Za-z_][A-Za-z0-9_]*)\s*:")
# The order app.yml lists the guesses in: the contract's, as docs/app-contract.md gives it.
ORDER = ("app_name", "app_source", "app_requirements", "app_wsgi", "app_migrate_command",
         "app_migrate_status_command", "app_migrate_once", "app_celery", "app_programs",
         "app_static_dir", "app_health_path", "app_ready_path", "app_version_path",
         "app_env_preset", "app_extra_env", "app_shared_paths")
HEADER = """\
---
# The app contract of {name}, as `fab init` guessed it from {source}.
# Each value has its reason above it; "{unsure}" marks what the files did
# not settle. Check them all, then try `fab deploy --env {env} --check`. Every variable of
# the app role, with its default, is in inventory/{example}/group_vars/all/app.yml and
# roles/app/meta/argument_specs.yml.
"""


class InitError(ValueError):
    """Nothing was written; the message says why."""


@dataclass
class Initialised:
    created: environments.Created
    scan: app_scan.Scan
    app_vars: Path

    def rows(self) -> list[tuple[str, str, str]]:
        """(variable, value, why) for the operator's table."""
        return [(g.name, _shown_value(g.value), g.why) for g in _ordered(self.scan)]

    def next_steps(self) -> list[str]:
        return [f"0. check every guess in {self.app_vars}", *self.created.next_steps()]


def _shown_value(value: Any) -> str:
    if value is None:
        return "(the role's default)"
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, str):
        return value or '""'
    return yaml.safe_dump(value, default_flow_style=True, width=1000).strip()


def _ordered(scan: app_scan.Scan) -> list[app_scan.Guess]:
    known = [scan.guesses[n] for n in ORDER if n in scan.guesses]
    return known + [g for n, g in scan.guesses.items() if n not in ORDER]


def target_dir(env: str, root: Path = INVENTORY_ROOT) -> Path:
    """Where the environment goes: a name under inventory/, or a path (with a '/')."""
    if "/" in env or env.startswith("."):
        return Path(env).expanduser().resolve()
    return inventory_dir(env, root)


def app_source(app_dir: Path, env_dir: Path) -> tuple[str, str]:
    """app_source as the inventory reads it: relative to the environment when they share a tree."""
    app_dir, env_dir = app_dir.resolve(), env_dir.resolve()
    common = Path(os.path.commonpath([app_dir, env_dir]))
    if common != Path(common.anchor):
        return (os.path.relpath(app_dir, env_dir),
                f"the app directory, relative to {shown(env_dir)} (how app_source is read)")
    return str(app_dir), "the app directory (absolute: it shares no tree with the environment)"


def _comment(text: str) -> str:
    return "\n".join(textwrap.wrap(text, width=98, initial_indent="# ",
                                   subsequent_indent="# ", break_on_hyphens=False))


class _Dumper(yaml.SafeDumper):
    """Sequences indented under their key, as yamllint (the kit's configuration) wants them."""

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        return super().increase_indent(flow, False)


def _dump(name: str, value: Any) -> str:
    return yaml.dump({name: value}, Dumper=_Dumper, default_flow_style=False, sort_keys=False,
                     width=1000, allow_unicode=True).rstrip("\n")


def render(scan: app_scan.Scan, env: str, source: str) -> str:
    """The text of app.yml: every guess under its reason, then what the operator must do."""
    name = scan.value("app_name")
    parts = [HEADER.format(name=name, source=source, env=env,
                           unsure=app_scan.UNSURE, example=environments.EXAMPLE_ENV)]
    for guess in _ordered(scan):
        block = [_comment(f"{guess.name}: {guess.why}.")]
        if guess.name == "app_env_preset":
            block += [_comment(notice) for notice in scan.notices]
        if guess.value is None:
            block.append(f"# {guess.name}: the role's default fits; set it only to change it.")
        elif guess.name == "app_extra_env":
            block.append(_extra_env(guess.value, scan.unmapped))
        else:
            block.append(_dump(guess.name, guess.value))
        parts.append("\n".join(block))
    if "app_extra_env" not in scan.guesses and scan.unmapped:
        parts.append(_comment("app_extra_env: the app reads these variables and no preset sets "
                              "them; give each a value (uncomment).") + "\n"
                     + _extra_env({}, scan.unmapped))
    return "\n\n".join(p.rstrip("\n") for p in parts) + "\n"


def _extra_env(values: dict[str, str], unmapped: list[str]) -> str:
    if not unmapped:
        return _dump("app_extra_env", values)
    lines = [_dump("app_extra_env", values)] if values else ["# app_extra_env:"]
    lines.append("  # Read by the app, set by no preset: fill these in.")
    lines += [f'  # {name}: ""' if values else f'#   {name}: ""' for name in unmapped]
    return "\n".join(lines)


def without_settings(text: str, names: set[str]) -> str:
    """`text` (a YAML file of top-level scalars) without the lines that set one of `names`."""
    kept = []
    for line in text.splitlines(keepends=True):
        match = TOP_LEVEL_KEY.match(line)
        if match and match[1] in names:
            continue
        if line.startswith("# The app ("):
            line = "# The app's contract is in app.yml beside this file (`fab init` wrote it).\n"
        kept.append(line)
    return "".join(kept)


def init(app_dir: Path, env: str | None = None, name: str | None = None,
         root: Path = INVENTORY_ROOT) -> Initialised:
    """Scan `app_dir`, create the environment (default: named after the app), write app.yml."""
    try:
        scan = app_scan.scan(app_dir, name)
    except app_scan.ScanError as exc:
        raise InitError(f"{exc}; nothing was written") from None
    env = env or scan.value("app_name")
    path = target_dir(env, root)
    if path.exists():
        raise InitError(f"environment {shown(path)} already exists; nothing was written "
                        "(give another --env, or edit its group_vars/all/app.yml)")
    source, why = app_source(scan.app_dir, path)
    scan.guesses = {"app_source": app_scan.Guess("app_source", source, why), **scan.guesses}
    text = render(scan, env, shown(scan.app_dir))
    try:
        created = environments.new(path.name, root=root, path=path)
    except environments.EnvError as exc:
        raise InitError(str(exc)) from None
    created.env = env  # the next steps name it as the operator did, a path included
    main = created.path / MAIN_VARS
    if main.is_file():
        main.write_text(without_settings(main.read_text(), set(yaml.safe_load(text))))
    target = created.path / APP_VARS
    target.write_text(text)
    return Initialised(created, scan, target)
