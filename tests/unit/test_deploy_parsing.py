"""fleet.ops.deploy: what a deploy reports.

`Outcome.summary()` and `Outcome.audit_entry()` (phases kept in order, JSON-safe) and
`fleet.audit.table()` on such entries, including after a round trip through the audit file.
What a deploy reads back from its playbooks is fleet/results.py's (tests/unit/test_results.py).
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest

from fleet import audit
from fleet.ops.deploy import Outcome, Phase
from fleet.remote import LocalRunner

RELEASE = "20260101T000000Z-abc1234"
MESSAGE = (f"host=app1: release {RELEASE} failed Check readiness: Status code was 503 and not "
           "[200]: HTTP Error 503: /readyz did not answer 200 (schema \"a1\" is older than "
           "\"b2\"; café). The host is back on 20251231T000000Z-0000000 and back in the load "
           "balancers; hosts not yet switched stay on their release.")


# --- Outcome -----------------------------------------------------------------------------


def outcome(ok=True, failure=None, action="deploy"):
    o = Outcome(action, "sandbox", RELEASE, who="alice@ops1",
                started="2026-01-01T00:00:00+00:00", ok=ok, failure=failure,
                before={"app1": "20251231T000000Z-0000000", "app2": None},
                backup="db1:/var/backups/mariadb/x.sql.gz", migration="before=a1 after=b2",
                pruned={"app1": ["20251201T000000Z-1111111"]})
    o.phases = [Phase("pre-flight", 3.04, True), Phase("lock", 0.2, True),
                Phase("install", 41.96, True), Phase("migrate", 5.5, True),
                Phase("switch", 12.25, ok)]
    return o


def table_rows(text):
    return [re.split(r" {2,}", line.strip()) for line in text.splitlines()[2:]]


def test_summary_of_a_deploy():
    o = outcome()
    text = o.summary()
    lines = text.splitlines()
    assert lines[0].split() == ["phase", "seconds", "result"]
    assert table_rows("\n".join(lines[:8])) == [
        ["pre-flight", "3.0", "ok"], ["lock", "0.2", "ok"], ["install", "42.0", "ok"],
        ["migrate", "5.5", "ok"], ["switch", "12.2", "ok"], ["total", "63.0", "ok"]]
    assert lines[8:] == ["database backup: db1:/var/backups/mariadb/x.sql.gz",
                         "migrations: before=a1 after=b2", f"deployed {RELEASE}"]
    assert o.total == pytest.approx(62.95)
    assert o.seconds("install") == pytest.approx(41.96)
    assert o.seconds("nothing") == 0


def test_summary_of_a_failed_deploy_names_the_failure():
    o = outcome(ok=False, failure=MESSAGE)
    o.backup = o.migration = None
    lines = o.summary().splitlines()
    assert table_rows("\n".join(lines[:8]))[-2:] == [["switch", "12.2", "FAILED"],
                                                     ["total", "63.0", "FAILED"]]
    assert lines[-1] == f"deploy of {RELEASE} FAILED: {MESSAGE}"
    assert not any(line.startswith(("database backup", "migrations")) for line in lines)


def test_summary_of_a_rollback():
    assert outcome(action="rollback").summary().splitlines()[-1] == f"rolled back to {RELEASE}"


def test_audit_entry_keeps_phases_in_order_and_is_json():
    o = outcome(ok=False, failure=MESSAGE)
    o.phases.append(Phase("install", 1.234, True))  # a name seen twice stays twice, in order
    entry = o.audit_entry()
    assert entry["phases"] == [["pre-flight", 3.04], ["lock", 0.2], ["install", 41.96],
                               ["migrate", 5.5], ["switch", 12.25], ["install", 1.23]]
    assert (entry["action"], entry["env"], entry["release"], entry["ok"]) == (
        "deploy", "sandbox", RELEASE, False)
    assert entry["failure"] == MESSAGE and entry["who"] == "alice@ops1"
    assert entry["before"] == {"app1": "20251231T000000Z-0000000", "app2": None}
    assert entry["pruned"] == {"app1": ["20251201T000000Z-1111111"]}
    assert datetime.fromisoformat(entry["finished"]).utcoffset().total_seconds() == 0
    assert json.loads(json.dumps(entry)) == entry
    # The outcome's own phases are left alone.
    assert all(isinstance(p, Phase) for p in o.phases)


# --- audit.table -------------------------------------------------------------------------


def test_audit_table_of_entries():
    ok = outcome().audit_entry()
    failed = outcome(ok=False, failure=MESSAGE, action="rollback").audit_entry()
    unknown = {"action": "node.add", "ok": False}
    text = audit.table([ok, failed, unknown])
    assert text.splitlines()[0].split() == ["started", "who", "action", "release", "outcome",
                                            "phases"]
    got = table_rows(text)
    timing = "pre-flight=3s lock=0s install=42s migrate=6s switch=12s"
    assert got[0] == ["2026-01-01T00:00:00+00:00", "alice@ops1", "deploy", RELEASE, "ok",
                      timing]
    assert got[1][:4] == ["2026-01-01T00:00:00+00:00", "alice@ops1", "rollback", RELEASE]
    assert got[1][4] == f"FAILED: {MESSAGE}"[:80]
    assert got[1][5] == timing
    assert got[2] == ["?", "?", "node.add", "?", "FAILED: ?", "-"]


def test_audit_table_after_a_round_trip_through_the_audit_file(tmp_path):
    path = str(tmp_path / "state" / "audit.jsonl")
    runner = LocalRunner()
    entries = [outcome().audit_entry(), outcome(ok=False, failure=MESSAGE).audit_entry()]
    for entry in entries:
        audit.record(runner, entry, path)
    back = audit.last(runner, 10, path)
    assert back == entries
    assert audit.table(back) == audit.table(entries)

