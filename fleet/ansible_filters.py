"""The few Ansible filters the templates under templates/ use, with Ansible's behaviour.

Everything else in those templates is plain Jinja2, so the dev stack
(fleet/sandbox/devstack.py) and the template tests render the fleet's own files with these
and nothing more; `settle` resolves role defaults that refer to each other.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from typing import Any

import jinja2
from jinja2.nativetypes import NativeEnvironment


def _bool(value: Any) -> bool:
    return str(value).strip().lower() in ("1", "true", "yes", "on", "y")


def sha_hash(value: Any, algorithm: str = "sha1") -> str:
    """Ansible's `hash` filter: the hex digest of the value's text."""
    return hashlib.new(algorithm, str(value).encode()).hexdigest()


def _combine(*mappings: dict) -> dict:
    merged: dict = {}
    for mapping in mappings:
        merged.update(mapping)
    return merged


def _extract(item: Any, container: Any, key: Any = None) -> Any:
    value = container[item]
    return value[key] if key is not None else value


def _regex_replace(value: str, pattern: str, replacement: str = "") -> str:
    return re.sub(pattern, replacement, value)


ANSIBLE_FILTERS = {"bool": _bool, "combine": _combine, "extract": _extract, "hash": sha_hash,
                   "quote": lambda v: shlex.quote(str(v)), "regex_replace": _regex_replace}


def _render(env: NativeEnvironment, value: Any, context: dict[str, Any]) -> Any:
    if isinstance(value, str) and "{{" in value:
        return env.from_string(value).render(context)
    if isinstance(value, list):
        return [_render(env, v, context) for v in value]
    if isinstance(value, dict):
        return {k: _render(env, v, context) for k, v in value.items()}
    return value


def settle(context: dict[str, Any], passes: int = 12, strict: bool = False) -> dict[str, Any]:
    """Render the templated values of `context` against it, in place, until nothing changes.

    Defaults refer to each other; a few passes settle them as Ansible's lazy templating would.
    Native types are kept (a templated list stays a list). `strict` makes a name that is not in
    the context (and has no `| default(...)`) raise jinja2.UndefinedError instead of rendering
    as empty.
    """
    native = NativeEnvironment(
        undefined=jinja2.StrictUndefined if strict else jinja2.ChainableUndefined)
    native.filters.update(ANSIBLE_FILTERS)
    for _ in range(passes):
        changed = False
        for name, value in list(context.items()):
            rendered = _render(native, value, context)
            if rendered != value:
                context[name] = rendered
                changed = True
        if not changed:
            break
    return context
