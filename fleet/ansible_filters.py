"""The few Ansible filters the templates under templates/ use, with Ansible's behaviour.

Everything else in those templates is plain Jinja2, so the dev stack
(fleet/sandbox/devstack.py) and the template tests render the fleet's own files with these
and nothing more.
"""

from __future__ import annotations

import hashlib
import re
import shlex
from typing import Any


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
