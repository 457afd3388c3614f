"""fleet/hosts.py's kept_open: one connection per host for reads that follow one another.

Only the transport is local: `hosts.runner` hands out shells on this machine that count how
often one was opened and closed; the commands run for real.
"""

from __future__ import annotations

import threading
from pathlib import Path

import pytest

from fleet import hosts
from fleet.inventory import Inventory
from fleet.remote import LocalRunner


class CountedShell(LocalRunner):
    def __init__(self, name: str, log: list[str]) -> None:
        self.name = name
        self.log = log
        log.append(f"open {name}")

    def close(self) -> None:
        self.log.append(f"close {self.name}")


@pytest.fixture
def inv(monkeypatch, tmp_path):
    log: list[str] = []
    monkeypatch.setattr(hosts, "runner", lambda inv, host: CountedShell(host, log))
    inventory = Inventory(env="prod", path=Path(tmp_path), groups={"app": ["app1", "app2"]},
                          hostvars={"app1": {}, "app2": {}})
    return inventory, log


def test_without_it_every_call_connects_and_closes(inv):
    inventory, log = inv
    for _ in range(2):
        assert {h: r.stdout for h, r in hosts.run(inventory, ["app1", "app2"], "echo hi").items()} \
            == {"app1": "hi\n", "app2": "hi\n"}
    assert sorted(log) == sorted(["open app1", "close app1", "open app2", "close app2"] * 2)


def test_within_it_each_host_is_connected_to_once_and_closed_at_the_end(inv):
    inventory, log = inv
    with hosts.kept_open():
        first = hosts.run(inventory, ["app1", "app2"], "echo one")
        second = hosts.run(inventory, ["app2"], "echo two")
        assert sorted(log) == ["open app1", "open app2"]
    assert first["app1"].stdout == "one\n" and second["app2"].stdout == "two\n"
    assert sorted(log) == ["close app1", "close app2", "open app1", "open app2"]


def test_another_thread_connects_as_always(inv):
    inventory, log = inv
    with hosts.kept_open():
        hosts.run(inventory, ["app1"], "true")
        other = threading.Thread(target=lambda: hosts.run(inventory, ["app1"], "true"))
        other.start()
        other.join()
        assert log == ["open app1", "open app1", "close app1"]
    assert log[-1] == "close app1"


def test_the_connections_close_when_a_read_fails(inv):
    inventory, log = inv
    with pytest.raises(RuntimeError), hosts.kept_open():
        hosts.run(inventory, ["app1"], "true")
        raise RuntimeError("the pre-flight stopped")
    assert log == ["open app1", "close app1"]
