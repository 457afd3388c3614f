"""What the release plays report back to fleet: small JSON documents, one schema, one reader.

fleet/ansible.py `run_with_vars` gives every run a fresh local directory as the extra variable
`fleet_results_dir`. A task that has something to report writes one document there with
`ansible.builtin.copy` delegated to localhost, named `<kind>-<inventory_hostname>.json`; roles
run without fleet (molecule, provision) skip the write. These documents, not the wording of a
task's message, are the API between the roles and fleet. The schema (a field is a string unless
said otherwise):

- `failure` {host, reason}: why the host stopped the play; `reason` is the human message the
  failing task also prints (roles/app release_install and release_switch).
- `backup` {host, path}: a database dump just taken, its path on that host (roles/mariadb
  backup_now).
- `migration` {host, before, after}: the schema revisions around the migrations (roles/app
  release_migrate).
- `drill` {host, dump, scratch, queries, rows, seconds, failure}: a restore drill (roles/mariadb
  verify_now): the dump loaded into the scratch database; `queries` a list of [query, answer]
  string pairs, the answer being the first row (tab-separated), `(no rows)` or `ERROR ...`;
  `rows` an object of table name to row count (integer); `seconds` an object of step (inspect,
  restore, queries, count, drop) to seconds (number), in the order the steps ran; `failure` why
  the drill failed, empty when it passed.

A document that is not JSON, not an object, of an unknown kind or without a field of the
schema raises ResultError naming the file, the kind and the field.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, TypeVar


class ResultError(ValueError):
    """A result document does not match the schema; the message names file, kind and field."""


@dataclass(frozen=True)
class Failure:
    """`failure`: why a host stopped the play (the text the operator is told)."""

    host: str
    reason: str


@dataclass(frozen=True)
class Backup:
    """`backup`: the dump a backup just wrote, on the db host."""

    host: str
    path: str


@dataclass(frozen=True)
class Migration:
    """`migration`: the schema revisions before and after the migrate step."""

    host: str
    before: str
    after: str


@dataclass(frozen=True)
class Drill:
    """`drill`: what a restore drill found in the scratch copy of a dump, and how long it took."""

    host: str
    dump: str
    scratch: str
    queries: tuple[tuple[str, str], ...]  # query, first row (or ERROR ...)
    rows: dict[str, int]
    seconds: dict[str, float]
    failure: str  # empty: the drill passed


Result = Failure | Backup | Migration | Drill
R = TypeVar("R", Backup, Migration, Drill)
SCHEMA: dict[str, type[Result]] = {"failure": Failure, "backup": Backup, "migration": Migration,
                                   "drill": Drill}


def _number(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _pairs(value: Any) -> tuple[tuple[str, str], ...] | None:
    if not isinstance(value, list) or not all(
            isinstance(p, list) and len(p) == 2 and all(isinstance(s, str) for s in p)
            for p in value):
        return None
    return tuple((query, answer) for query, answer in value)


def _mapping(value: Any, valid: Callable[[Any], bool]) -> dict | None:
    if not isinstance(value, dict) or not all(valid(v) for v in value.values()):
        return None
    return dict(value)


# The fields that are not strings: what they must be (as the error says it) and their reader,
# which gives None for a value of the wrong shape.
SHAPES: dict[tuple[str, str], tuple[str, Callable[[Any], Any]]] = {
    ("drill", "queries"): ("a list of [query, answer] string pairs", _pairs),
    ("drill", "rows"): ("an object of table names to row counts (integers)",
                        lambda v: _mapping(v, lambda n: isinstance(n, int)
                                           and not isinstance(n, bool))),
    ("drill", "seconds"): ("an object of step names to seconds (numbers)",
                           lambda v: _mapping(v, _number)),
}


def _field(path: Path, kind: str, name: str, value: Any) -> Any:
    """The value of one field, checked against its shape (a string unless SHAPES says else)."""
    shape = SHAPES.get((kind, name))
    if shape is None:
        if not isinstance(value, str):
            raise ResultError(f"{path}: {kind} result field '{name}' must be a string, "
                              f"got {type(value).__name__}")
        return value
    wanted, reader = shape
    read_value = reader(value)
    if read_value is None:
        raise ResultError(f"{path}: {kind} result field '{name}' must be {wanted}, "
                          f"got {json.dumps(value)[:200]}")
    return read_value


def parse(path: Path) -> Result:
    """One document, checked against the schema of the kind its file name starts with."""
    kind = path.name.split("-", 1)[0]
    if kind not in SCHEMA or not path.name.endswith(".json") or "-" not in path.name:
        raise ResultError(f"{path}: not a result file (<kind>-<host>.json with kind one of "
                          f"{', '.join(SCHEMA)})")
    try:
        document = json.loads(path.read_text())
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise ResultError(f"{path}: {kind} result is not valid JSON: {exc}") from None
    if not isinstance(document, dict):
        raise ResultError(f"{path}: {kind} result must be a JSON object, "
                          f"got {type(document).__name__}")
    cls = SCHEMA[kind]
    values = {}
    for spec in fields(cls):
        if spec.name not in document:
            raise ResultError(f"{path}: {kind} result has no field '{spec.name}'")
        values[spec.name] = _field(path, kind, spec.name, document[spec.name])
    return cls(**values)


def read(results_dir: Path) -> list[Result]:
    """Every document in the directory, in the order they were written."""
    paths = sorted(results_dir.glob("*.json"), key=lambda p: (p.stat().st_mtime_ns, p.name))
    return [parse(path) for path in paths]


def first_failure(found: list[Result]) -> str | None:
    """The reason of the first host that stopped the play, if one said why."""
    return next((r.reason for r in found if isinstance(r, Failure)), None)


def every_failure(found: list[Result]) -> str | None:
    """The reasons of every host that stopped the play, by host name (hosts that failed side by
    side, such as a batch of app hosts), if any said why."""
    failed = sorted((r for r in found if isinstance(r, Failure)), key=lambda r: r.host)
    return " ".join(r.reason for r in failed) or None


def last(found: list[Result], kind: type[R]) -> R | None:
    """The last result of `kind` (Backup, Migration, Drill) the play wrote, if any."""
    of_kind = [r for r in found if isinstance(r, kind)]
    return of_kind[-1] if of_kind else None
