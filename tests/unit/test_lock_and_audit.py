"""The lock and the audit trail, exercised on a real filesystem through the local runner."""

from concurrent.futures import ThreadPoolExecutor

import pytest

from fleet import audit, lock
from fleet.remote import LocalRunner


@pytest.fixture
def lock_path(tmp_path):
    return str(tmp_path / "state" / "deploy.lock")


def test_acquire_records_the_holder_and_release_frees_it(lock_path):
    runner = LocalRunner()
    me = lock.Holder.me("deploy", "20260101T000000Z-abc")
    assert lock.acquire(runner, me, lock_path) == me
    assert lock.status(runner, lock_path) == me
    lock.release(runner, me, lock_path)
    assert lock.status(runner, lock_path) is None


def test_second_deploy_is_refused_and_names_the_holder(lock_path):
    runner = LocalRunner()
    first = lock.Holder("alice@ops1", "deploy", "R1", "2026-01-01T00:00:00+00:00", 1)
    lock.acquire(runner, first, lock_path)
    with pytest.raises(lock.LockHeld) as err:
        lock.acquire(runner, lock.Holder.me("deploy", "R2"), lock_path)
    assert err.value.holder == first
    assert "alice@ops1 (deploy of R1) since 2026-01-01T00:00:00+00:00" in str(err.value)


def test_racing_acquirers_have_exactly_one_winner(lock_path):
    runner = LocalRunner()

    def attempt(i):
        try:
            lock.acquire(runner, lock.Holder(f"op{i}", "deploy", f"R{i}", "now", i), lock_path)
            return True
        except lock.LockHeld:
            return False

    with ThreadPoolExecutor(max_workers=8) as pool:
        outcomes = list(pool.map(attempt, range(16)))
    assert outcomes.count(True) == 1


def test_release_of_a_lock_that_changed_hands_is_refused(lock_path):
    runner = LocalRunner()
    mine = lock.Holder("me", "deploy", "R1", "t", 1)
    lock.acquire(runner, mine, lock_path)
    lock.release(runner, None, lock_path)  # forced, as `fab lock.release --force` does
    theirs = lock.Holder("them", "rollback", "R0", "t2", 2)
    lock.acquire(runner, theirs, lock_path)
    with pytest.raises(lock.LockError, match="no longer ours"):
        lock.release(runner, mine, lock_path)
    assert lock.status(runner, lock_path) == theirs


def test_unreadable_lock_is_reported(tmp_path):
    path = tmp_path / "deploy.lock"
    path.write_text("not json")
    with pytest.raises(lock.LockError, match="unreadable"):
        lock.status(LocalRunner(), str(path))


def test_audit_keeps_entries_in_order_and_returns_the_last(tmp_path):
    runner, path = LocalRunner(), str(tmp_path / "audit" / "audit.jsonl")
    assert audit.last(runner, 5, path) == []
    for i in range(4):
        audit.record(runner, {"n": i, "note": "it's \"quoted\""}, path)
    assert [e["n"] for e in audit.last(runner, 2, path)] == [2, 3]
    assert audit.last(runner, 10, path)[0]["note"] == "it's \"quoted\""
