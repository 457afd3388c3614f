"""The audit trail: a JSON line per locked operation (fleet/ops/operation.py), on the lock host."""

from __future__ import annotations

import json
import shlex

from fleet.lock import STATE_DIR, Holder, release
from fleet.remote import Runner
from fleet.report import table as table_of

AUDIT_FILE = f"{STATE_DIR}/audit.jsonl"


def record(runner: Runner, entry: dict, path: str = AUDIT_FILE) -> None:
    line = json.dumps(entry, sort_keys=True)
    directory = path.rsplit("/", 1)[0]
    res = runner.run(f"mkdir -p {shlex.quote(directory)} && "
                     f"printf '%s\\n' {shlex.quote(line)} >> {shlex.quote(path)}")
    if not res.ok:
        raise RuntimeError(f"could not write the audit record on {runner.name}: {res.stderr}")


def close(runner: Runner, holder: Holder, entry: dict) -> None:
    """End a locked action: write its audit record, then release the lock even if that failed."""
    try:
        record(runner, entry)
    finally:
        release(runner, holder)


def last(runner: Runner, count: int = 10, path: str = AUDIT_FILE) -> list[dict]:
    res = runner.run(f"tail -n {int(count)} {shlex.quote(path)} 2>/dev/null || true")
    return [json.loads(line) for line in res.stdout.splitlines() if line.strip()]


def table(entries: list[dict]) -> str:
    """The records as a table, oldest first: when, who, action, release, outcome, timings."""
    rows = []
    for entry in entries:
        phases = entry.get("phases") or []
        timing = " ".join(f"{name}={seconds:.0f}s" for name, seconds in phases)
        outcome = "ok" if entry.get("ok") else f"FAILED: {entry.get('failure') or '?'}"
        red = [h.get("hook", "?") for h in entry.get("hooks") or [] if not h.get("ok")]
        if red:  # a post hook that failed after a good deploy (fleet/ops/hooks.py)
            outcome += f" ({', '.join(red)} hook failed)"
        rows.append((entry.get("started", "?"), entry.get("who", "?"), entry.get("action", "?"),
                     entry.get("release", "?"), outcome[:80], timing))
    return table_of(("started", "who", "action", "release", "outcome", "phases"), rows)
