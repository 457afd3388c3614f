"""fleet.ops.crashloop: what the deploy's pre-flight makes of supervisord's states and log.

The inputs are what `crashloop.command()` prints on a host: real supervisorctl status columns and
real supervisord log lines (as supervisord 4 writes them on Debian 12).
"""

from __future__ import annotations

from fleet.ops import crashloop
from fleet.remote import LocalRunner


def output(states: dict[str, str], log: list[str], now: str = "2026-11-21 12:10:00") -> str:
    lines = [f"now={now}"] + [f"state:{name}={state}" for name, state in states.items()]
    return "\n".join(lines + log) + "\n"


def exit_line(when: str, program: str, why: str = "exit status 1; not expected") -> str:
    return f"{when},512 WARN exited: {program} ({why})"


HEALTHY = {"fleetapp-web": "RUNNING", "fleetapp-web-handover": "STOPPED"}


def test_a_healthy_host_has_no_findings():
    assert crashloop.findings("app1", output(HEALTHY, []), "fleetapp-",
                              ignore=("fleetapp-web-handover",)) == []


def test_repeated_unexpected_exits_within_the_window_are_a_crash_loop():
    log = [exit_line(f"2026-11-21 12:0{m}:{s}", "fleetapp-web")
           for m, s in (("8", "30"), ("9", "00"), ("9", "40"))]
    found = crashloop.findings("app1", output(HEALTHY, log), "fleetapp-")
    assert [str(f) for f in found] == [
        "app1: fleetapp-web exited unexpectedly 3 times in the last 120s (crash loop)"]


def test_old_exits_and_expected_ones_do_not_count():
    log = [exit_line("2026-11-21 11:50:00", "fleetapp-web"),
           exit_line("2026-11-21 11:51:00", "fleetapp-web"),
           exit_line("2026-11-21 12:09:00", "fleetapp-web"),
           exit_line("2026-11-21 12:09:10", "fleetapp-web", "terminated by SIGTERM; expected"),
           exit_line("2026-11-21 12:09:20", "fleetapp-web", "exit status 0; expected")]
    assert crashloop.findings("app1", output(HEALTHY, log), "fleetapp-") == []


def test_backoff_and_fatal_states_are_reported_but_not_other_apps_programs():
    states = {"fleetapp-web": "BACKOFF", "fleetapp-worker:fleetapp-worker-0": "FATAL",
              "someone-else": "FATAL", "fleetapp-web-handover": "STOPPED"}
    found = crashloop.findings("app1", output(states, []), "fleetapp-")
    assert [str(f) for f in found] == ["app1: fleetapp-web is BACKOFF",
                                       "app1: fleetapp-worker:fleetapp-worker-0 is FATAL"]


def test_ignored_programs_are_left_out():
    log = [exit_line(f"2026-11-21 12:09:{s}", "fleetapp-web-handover") for s in (10, 20, 30)]
    states = {"fleetapp-web-handover": "FATAL"}
    assert crashloop.findings("app1", output(states, log), "fleetapp-",
                              ignore=("fleetapp-web-handover",)) == []


def test_command_runs_and_its_output_parses_without_supervisor(tmp_path):
    """On a machine without supervisord the command still succeeds and says nothing is wrong."""
    log = tmp_path / "supervisord.log"
    log.write_text("\n".join(exit_line("2999-01-01 00:00:00", "fleetapp-web") for _ in range(3)))
    result = LocalRunner().run(crashloop.command(str(log), str(tmp_path / "no-helper")))
    assert result.ok
    assert result.stdout.startswith("now=")
    # Exits "in the future" of the host clock are within the window: counted.
    assert [f.program for f in crashloop.findings("me", result.stdout, "fleetapp-")] == [
        "fleetapp-web"]
