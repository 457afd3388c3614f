"""The celery role's restart script and its supervisord helper, run against a real supervisord.

templates/celery/restart-programs.sh.j2 is what deploys and rollbacks run on every worker host;
templates/supervisor/supervise.py.j2 stops and starts a group for it. Here both are rendered into a
temporary directory and run on this machine against a supervisord of their own (supervisor is
a pinned dependency), with plain commands as the programs: a restart gives every process a new
pid, a program that exits before its startsecs and a ready command that never succeeds are each
named on stderr, a failed start does not wait for the tries of its ready command, and a
ready_early command starts beside the stop.
"""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import jinja2
import pytest

from fleet.ansible_filters import ANSIBLE_FILTERS

TEMPLATES = Path(__file__).resolve().parents[2] / "templates"
BIN = Path(sys.executable).parent  # supervisord and supervisorctl of the pinned toolchain

pytestmark = pytest.mark.skipif(
    os.geteuid() != 0 or not shutil.which("runuser") or not shutil.which("setsid"),
    reason="the script runs ready commands with runuser, which needs root")

SUPERVISORD_CONF = """\
[unix_http_server]
file=%(here)s/supervisor.sock
[supervisord]
logfile=%(here)s/supervisord.log
pidfile=%(here)s/supervisord.pid
[rpcinterface:supervisor]
supervisor.rpcinterface_factory = supervisor.rpcinterface:make_main_rpcinterface
[supervisorctl]
serverurl=unix://%(here)s/supervisor.sock
[program:fleetapp-worker]
command=sleep 3600
process_name=%(program_name)s-%(process_num)d
numprocs=2
startsecs=1
stopsignal=TERM
[program:fleetapp-beat]
command=sleep 3600
startsecs=1
[program:fleetapp-broken]
command=sh -c "exit 3"
autostart=false
startsecs=1
startretries=0
[program:fleetapp-slowstop]
command=sh -c 'trap "sleep 1.5; exit 0" TERM; while :; do sleep 0.1; done'
startsecs=1
stopwaitsecs=10
[program:fleetapp-web]
command=PYTHON -m http.server WEBPORT --bind 127.0.0.1
autostart=false
startsecs=30
"""


@pytest.fixture(scope="module")
def supervisor(tmp_path_factory):
    home = tmp_path_factory.mktemp("supervisor")
    with socket.socket() as probe:  # a free port for the program that serves
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    (home / "web-port").write_text(str(port))
    (home / "supervisord.conf").write_text(
        SUPERVISORD_CONF.replace("PYTHON", sys.executable).replace("WEBPORT", str(port)))
    (home / "current").symlink_to(home)
    wrapper = home / "run"
    wrapper.write_text('#!/bin/sh\nexec "$@"\n')
    wrapper.chmod(0o755)
    subprocess.run([BIN / "supervisord", "-c", home / "supervisord.conf"], check=True)
    try:
        deadline = time.monotonic() + 20
        while "RUNNING" not in _ctl(home, "status", "fleetapp-beat") \
                or _ctl(home, "status", "fleetapp-worker:*").count("RUNNING") < 2:
            assert time.monotonic() < deadline, _ctl(home, "status")
            time.sleep(0.2)
        yield home
    finally:
        _ctl(home, "shutdown")


def _ctl(home: Path, *args: str) -> str:
    return subprocess.run([BIN / "supervisorctl", "-c", home / "supervisord.conf", *args],
                          capture_output=True, text=True).stdout


def _pids(home: Path) -> dict[str, str]:
    lines = _ctl(home, "status").splitlines()
    return {line.split()[0]: line.split("pid ")[1].split(",")[0]
            for line in lines if "pid " in line}


def _script(home: Path, programs: list[dict], ready_timeout: int = 20) -> Path:
    """The restart script for `programs`, with its helper, rendered into `home`."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(TEMPLATES),
                             keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
    env.filters.update(ANSIBLE_FILTERS)
    context = {
        "celery_app_name": "fleetapp", "celery_user": "root", "celery_app_root": str(home),
        "celery_run_wrapper": str(home / "run"), "celery_ready_timeout": ready_timeout,
        "celery_restart_poll": 0.25, "celery_host_programs": programs,
        "celery_restart_script": str(home / "restart"),
        "celery_supervise_script": str(home / "supervise"),
        "supervisor_ctl_script": str(home / "supervise"),
        "supervisor_socket": str(home / "supervisor.sock"),
    }
    for template, target in (("celery/restart-programs.sh.j2", "restart"),
                             ("supervisor/supervise.py.j2", "supervise")):
        (home / target).write_text(env.get_template(template).render(context))
        (home / target).chmod(0o755)
    return home / "restart"


def _run(home: Path, script: Path) -> subprocess.CompletedProcess:
    # supervisorctl finds this supervisord's config in the working directory.
    return subprocess.run([script], cwd=home, capture_output=True, text=True, timeout=120,
                          env={**os.environ, "PATH": f"{BIN}:{os.environ['PATH']}"})


def _running_pid(home: Path, name: str) -> str:
    """The pid of a process once it is RUNNING (a ready command may answer while it starts)."""
    deadline = time.monotonic() + 20
    while name not in _pids(home):
        assert time.monotonic() < deadline, _ctl(home, "status")
        time.sleep(0.2)
    return _pids(home)[name]


def test_every_process_restarts_and_each_program_says_where_it_runs(supervisor):
    before = _pids(supervisor)
    script = _script(supervisor, [
        # A ready command that answers before the start is confirmed: STARTING is fine then.
        {"name": "worker", "ready": "true"},
        {"name": "beat"}])
    result = _run(supervisor, script)
    assert result.returncode == 0, result.stderr
    assert f"worker: running on {supervisor}" in result.stdout, result.stdout
    assert f"beat: running on {supervisor}" in result.stdout, result.stdout
    after = _pids(supervisor)
    names = {"fleetapp-worker:fleetapp-worker-0", "fleetapp-worker:fleetapp-worker-1",
             "fleetapp-beat"}
    assert names <= set(after), after
    assert all(after[n] != before[n] for n in names), (before, after)


def test_a_program_that_exits_is_named_and_its_ready_tries_stop(supervisor):
    script = _script(supervisor, [
        {"name": "broken", "ready": "sleep 31.5"},
        {"name": "beat"}])
    started = time.monotonic()
    result = _run(supervisor, script)
    assert result.returncode == 1, result.stdout
    assert "broken: did not stay up for its startsecs" in result.stderr, result.stderr
    assert "fleetapp-broken" in result.stderr.split("startsecs", 1)[1], result.stderr
    assert "beat: running on" in result.stdout, result.stdout
    assert time.monotonic() - started < 15  # the failed start ends it, not the ready tries


@pytest.mark.parametrize(("early", "first"), [(True, "before"), (False, "after")])
def test_a_ready_early_command_starts_beside_the_stop_and_is_told_its_end(supervisor, early,
                                                                          first):
    """ready_early: the ready command starts while the program still stops (1.5 s here) and
    finds FLEET_STOPPED once the stop is over; without it, the command starts after the stop."""
    seen = supervisor / f"ready-{first}.log"
    ready = (f'if test -e "$FLEET_STOPPED"; then echo after; else echo before; fi >> {seen}; '
             f'until test -e "$FLEET_STOPPED"; do sleep 0.05; done; echo asked >> {seen}')
    before = _running_pid(supervisor, "fleetapp-slowstop")
    script = _script(supervisor, [{"name": "slowstop", "ready": ready, "ready_early": early}])
    result = _run(supervisor, script)
    assert result.returncode == 0, result.stderr
    assert seen.read_text().split() == [first, "asked"]
    assert _running_pid(supervisor, "fleetapp-slowstop") != before


def test_a_ready_command_that_never_succeeds_is_named(supervisor):
    script = _script(supervisor, [{"name": "worker", "ready": "echo not yet; false"}],
                     ready_timeout=2)
    result = _run(supervisor, script)
    assert result.returncode == 1, result.stdout
    assert "worker: its ready command did not succeed within 2s: not yet" in result.stderr, \
        result.stderr


def test_the_helper_refuses_a_group_that_does_not_exist(supervisor):
    _script(supervisor, [])
    result = subprocess.run([supervisor / "supervise", "stop", "fleetapp-nothing"],
                            capture_output=True, text=True, timeout=30)
    assert result.returncode == 1
    assert "no such group: fleetapp-nothing" in result.stderr, result.stderr


def test_a_start_given_a_url_is_done_once_the_program_answers(supervisor):
    """The switch of a gunicorn slot: the program serves long before its startsecs (30 s)."""
    _script(supervisor, [])
    url = f"http://127.0.0.1:{(supervisor / 'web-port').read_text()}/"
    started = time.monotonic()
    result = subprocess.run([supervisor / "supervise", "restart", "fleetapp-web", url],
                            capture_output=True, text=True, timeout=60)
    assert result.returncode == 0, result.stderr
    assert time.monotonic() - started < 20
    assert "STARTING" in _ctl(supervisor, "status", "fleetapp-web")  # served, startsecs not over
    _ctl(supervisor, "stop", "fleetapp-web")


def test_a_start_given_a_url_still_fails_on_a_program_that_exits(supervisor):
    _script(supervisor, [])
    result = subprocess.run([supervisor / "supervise", "start", "fleetapp-broken",
                             "http://127.0.0.1:9/"], capture_output=True, text=True, timeout=60)
    assert result.returncode == 1
    assert "fleetapp-broken:fleetapp-broken: " in result.stderr, result.stderr


def _supervise(home: Path, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run([home / "supervise", *args], capture_output=True, text=True,
                          timeout=60)


def test_the_helper_reads_states_and_pids_as_supervisorctl_does(supervisor):
    _script(supervisor, [])
    states = _supervise(supervisor, "status")
    assert states.returncode == 0, states.stderr
    expected = [" ".join(line.split()[:2]) for line in _ctl(supervisor, "status").splitlines()]
    assert sorted(states.stdout.splitlines()) == sorted(expected)
    assert "fleetapp-worker:fleetapp-worker-0 RUNNING" in states.stdout
    beat = _supervise(supervisor, "pid", "fleetapp-beat")
    assert beat.stdout.strip() == _ctl(supervisor, "pid", "fleetapp-beat").strip() != "0"
    assert _supervise(supervisor, "pid", "fleetapp-broken").stdout.strip() == "0"
    missing = _supervise(supervisor, "pid", "fleetapp-nothing")
    assert missing.returncode == 1 and "no such group" in missing.stderr


def test_the_helper_applies_one_groups_program_file(supervisor):
    _script(supervisor, [])
    conf = supervisor / "supervisord.conf"
    original = conf.read_text()
    before = _pids(supervisor)
    try:
        conf.write_text(original + "[program:fleetapp-extra]\ncommand=sleep 3600\nstartsecs=0\n")
        assert _supervise(supervisor, "update", "fleetapp-extra").returncode == 0
        added = _pids(supervisor)
        assert "fleetapp-extra" in added
        # Only the group named is applied: the others keep their processes.
        assert {n: added[n] for n in before} == before
        conf.write_text(original + "[program:fleetapp-extra]\ncommand=sleep 3601\nstartsecs=0\n")
        assert _supervise(supervisor, "update", "fleetapp-extra").returncode == 0
        changed = _pids(supervisor)
        assert changed["fleetapp-extra"] != added["fleetapp-extra"]
        unchanged = _supervise(supervisor, "update", "fleetapp-extra")
        assert unchanged.returncode == 0 and _pids(supervisor) == changed
    finally:
        conf.write_text(original)
        _supervise(supervisor, "update", "fleetapp-extra")
    assert "fleetapp-extra" not in _ctl(supervisor, "status")


def test_the_helper_names_its_usage(supervisor):
    _script(supervisor, [])
    for args in ((), ("status", "extra"), ("pid",), ("stop", "a", "b"), ("frobnicate", "x")):
        refused = _supervise(supervisor, *args)
        assert refused.returncode != 0 and "usage:" in refused.stderr, args
