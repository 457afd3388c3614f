"""fleet.ops.background: the deploy's calls beside its own steps and their held output."""

from __future__ import annotations

import threading

import pytest

from fleet.ops.background import Background, HeldOutput


def test_a_background_call_returns_what_it_returned_once_done():
    gate = threading.Event()
    call = Background(lambda: gate.wait(5) and "value", "test")
    assert not call.done
    gate.set()
    assert call.result() == "value" and call.done


def test_a_background_call_raises_what_it_raised():
    def work() -> None:
        raise ValueError("no plan")

    with pytest.raises(ValueError, match="no plan"):
        Background(work, "test").result()


def test_held_output_comes_out_in_order_on_release_then_straight_through():
    output, seen = HeldOutput(), []
    output.line("one")
    output.line("two")
    assert seen == []
    output.release(seen.append)
    output.line("three")
    assert seen == ["one", "two", "three"]


def test_dropped_output_is_gone_and_stays_gone():
    output, seen = HeldOutput(), []
    output.line("held")
    output.drop()
    output.line("later")
    assert seen == []
