"""Edit an environment's inventory files in place, keeping their comments and layout.

`fab node.add` and `fab node.remove` change which hosts are in which group. They edit the YAML
the operator wrote (round-trip, so comments, order and quoting survive) instead of printing lines
to paste: the inventory stays the one source of truth and the next `fab provision` sees the
change. Every edit is written to a temporary file and renamed over the original.
"""

from __future__ import annotations

import io
import os
from pathlib import Path
from typing import Any

from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap


class InventoryFileError(ValueError):
    """The inventory cannot be edited as asked; the file was not changed."""


def _yaml() -> YAML:
    rt = YAML()  # round-trip: keeps comments, key order and quoting
    rt.preserve_quotes = True
    rt.indent(mapping=2, sequence=4, offset=2)
    rt.width = 4096
    return rt


def _sources(env_dir: Path) -> list[Path]:
    return sorted(p for p in env_dir.iterdir()
                  if p.is_file() and p.suffix in (".yml", ".yaml") and not p.name.startswith("."))


def _load(path: Path) -> Any:
    return _yaml().load(path.read_text()) or CommentedMap()


def _save(path: Path, data: Any) -> None:
    rt = _yaml()
    rt.explicit_start = path.read_text().lstrip().startswith("---")
    buffer = io.StringIO()
    rt.dump(data, buffer)
    partial = path.with_name(f".{path.name}.partial")
    partial.write_text(buffer.getvalue())
    os.replace(partial, path)


def _groups(data: Any) -> dict[str, CommentedMap]:
    """Every group mapping in the file by name (all, and its children at any depth)."""
    found: dict[str, CommentedMap] = {}

    def visit(name: str, body: Any) -> None:
        if not isinstance(body, dict):
            return
        found[name] = body
        for child, child_body in (body.get("children") or {}).items():
            visit(child, child_body)

    for name, body in (data or {}).items():
        visit(name, body)
    return found


def add_host(env_dir: Path, group: str, host: str, variables: dict[str, Any]) -> Path:
    """Add `host` (with `variables`) to `group` in the file that defines the group's hosts.

    A host already in the group is left as it is. Returns the file that was (or would have been)
    changed.
    """
    sources = _sources(env_dir)
    if not sources:
        raise InventoryFileError(f"{env_dir} has no inventory file")
    target = None
    for path in sources:
        groups = _groups(_load(path))
        if group in groups:
            target = path
            break
    if target is None:
        raise InventoryFileError(
            f"no inventory file in {env_dir} defines the group {group!r}; add it under "
            "all.children first")
    data = _load(target)
    body = _groups(data)[group]
    if body.get("hosts") is None:
        body["hosts"] = CommentedMap()
    if host in body["hosts"]:
        return target
    entry = CommentedMap()
    for name, value in variables.items():
        entry[name] = value
    body["hosts"][host] = entry
    _save(target, data)
    return target


def remove_host(env_dir: Path, host: str) -> list[Path]:
    """Remove `host` from every group of every inventory file. Returns the files changed."""
    changed = []
    for path in _sources(env_dir):
        data = _load(path)
        touched = False
        for body in _groups(data).values():
            members = body.get("hosts")
            if isinstance(members, dict) and host in members:
                del members[host]
                if not members:
                    body["hosts"] = CommentedMap()
                touched = True
        if touched:
            _save(path, data)
            changed.append(path)
    return changed
