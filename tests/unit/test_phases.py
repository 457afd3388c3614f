"""fleet.phases: the total of a deploy's phases is wall-clock time, side-by-side phases once."""

import threading
import time

from fleet.phases import Clock, Phase, table, total


def test_phases_one_after_another_add_up():
    assert total([Phase("a", 2.0, True, 100.0), Phase("b", 3.0, True, 102.5)]) == 5.0


def test_phases_that_overlap_count_their_union_once():
    # workers 10-22, switch 11-19 (inside it), finish 22-23
    phases = [Phase("workers", 12.0, True, 10.0), Phase("switch", 8.0, True, 11.0),
              Phase("finish", 1.0, True, 22.0)]
    assert total(phases) == 13.0
    # partly overlapping: 0-4 and 3-6 is 6 seconds
    assert total([Phase("a", 4.0, True, 1000.0), Phase("b", 3.0, True, 1003.0)]) == 6.0


def test_phases_without_a_start_time_count_in_full():
    assert total([Phase("install", 4.0, True), Phase("switch", 6.0, True)]) == 10.0


def test_a_clock_times_phases_run_in_two_threads_as_wall_clock():
    phases: list[Phase] = []
    clock = Clock(phases, say=lambda line: None)

    def background():
        with clock.phase("workers", "in a thread"):
            time.sleep(0.3)

    thread = threading.Thread(target=background)
    thread.start()
    with clock.phase("switch", "meanwhile"):
        time.sleep(0.3)
    thread.join()
    assert sorted(p.name for p in phases) == ["switch", "workers"]
    assert sum(p.seconds for p in phases) > 0.55
    assert 0.29 < total(phases) < 0.5
    assert table(phases, ok=True).splitlines()[-1].split()[:2] == ["total", f"{total(phases):.1f}"]
