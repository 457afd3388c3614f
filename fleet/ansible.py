"""Run Ansible from the kit: progress per task and host while it runs, a summary at the end.

ansible-playbook's own output is passed through line by line (task banners and one line per
host and task), the wall time of each task on each host is recorded by the kit's callback
(playbooks/callback_plugins/fleet_task_times.py), and the PLAY RECAP is parsed into per-host
counts so callers can tell a no-op run (changed=0 everywhere) from one that
changed something.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from fleet import results

ROOT = Path(__file__).resolve().parents[1]
ANSIBLE_CFG = ROOT / "ansible.cfg"

Say = Callable[[str], None]

RECAP_LINE = re.compile(r"^(?P<host>\S+)\s*:\s*(?P<counts>(?:\w+=\d+\s*)+)$")
TIMES_CALLBACK = "fleet_task_times"
ONE_LINE = re.compile(
    r"^(?P<host>\S+) \| (?P<status>[A-Z!]+)(?: \| rc=\d+)?(?: \|| =>|:)\s*(?P<rest>.*)$")


@dataclass(frozen=True)
class HostRecap:
    ok: int = 0
    changed: int = 0
    unreachable: int = 0
    failed: int = 0
    skipped: int = 0
    rescued: int = 0
    ignored: int = 0

    @property
    def healthy(self) -> bool:
        return self.unreachable == 0 and self.failed == 0


@dataclass
class PlaybookResult:
    returncode: int
    recap: dict[str, HostRecap]
    elapsed: float
    task_times: dict[str, float] = field(default_factory=dict)
    output: list[str] = field(default_factory=list)
    results: list[results.Result] = field(default_factory=list)  # fleet/results.py documents
    written: dict[str, set[str]] = field(default_factory=dict)  # host -> files template/copy wrote

    @property
    def ok(self) -> bool:
        return self.returncode == 0 and all(r.healthy for r in self.recap.values())

    @property
    def changed(self) -> dict[str, int]:
        return {host: r.changed for host, r in self.recap.items()}

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, r in self.recap.items() if not r.healthy)


def parse_recap(output: str) -> dict[str, HostRecap]:
    """Per-host counts of the last PLAY RECAP in ansible-playbook's output."""
    recap: dict[str, HostRecap] = {}
    lines = output.splitlines()
    starts = [i for i, line in enumerate(lines) if line.startswith("PLAY RECAP")]
    if not starts:
        return recap
    for line in lines[starts[-1] + 1:]:
        match = RECAP_LINE.match(line.strip())
        if not match:
            if line.strip():
                continue
            break
        counts = dict(pair.split("=") for pair in match["counts"].split())
        known = {k: int(v) for k, v in counts.items() if k in HostRecap.__dataclass_fields__}
        recap[match["host"]] = HostRecap(**known)
    return recap


def tool(name: str) -> str:
    """An Ansible executable from the kit's venv (beside this Python), else from PATH."""
    beside = Path(sys.executable).with_name(name)
    if beside.exists():
        return str(beside)
    found = shutil.which(name)
    if not found:
        raise FileNotFoundError(f"{name} not found: run `make venv`")
    return found


def environment() -> dict[str, str]:
    env = dict(os.environ)
    env.setdefault("ANSIBLE_CONFIG", str(ANSIBLE_CFG))
    env["ANSIBLE_FORCE_COLOR"] = "0"
    env["ANSIBLE_NOCOLOR"] = "1"
    env["PYTHONUNBUFFERED"] = "1"
    # The venv first on PATH: ansible-playbook runs helpers (ansible-config, ...) from PATH.
    env["PATH"] = f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"
    return env


def written_files(lines: Sequence[str]) -> dict[str, set[str]]:
    """Host -> the files its template and copy tasks wrote, from the callback's JSON lines."""
    found: dict[str, set[str]] = {}
    for line in lines:
        if line.strip():
            entry = json.loads(line)
            found.setdefault(entry["host"], set()).update(entry.get("files", ()))
    return {host: files for host, files in found.items() if files}


def task_times(lines: Sequence[str]) -> dict[str, float]:
    """Task name -> seconds, from the callback's JSON lines: a task's time is its slowest
    host's (a task run twice on a host, a handler say, counts both runs)."""
    spent: dict[tuple[str, str], float] = {}
    for line in lines:
        if not line.strip():
            continue
        entry = json.loads(line)
        key = (entry["task"], entry["host"])
        spent[key] = spent.get(key, 0.0) + float(entry["seconds"])
    times: dict[str, float] = {}
    for (task, _host), seconds in spent.items():
        times[task] = max(times.get(task, 0.0), seconds)
    return times


def run_playbook(playbook: Path, inventory: Path, limit: str | None = None,
                 check: bool = False, extra_args: Sequence[str] = (),
                 say: Say = print) -> PlaybookResult:
    """Run a playbook, echoing its progress; return the exit code, recap and timings."""
    command = [tool("ansible-playbook"), "-i", str(inventory), str(playbook)]
    if limit:
        command += ["--limit", limit]
    if check:
        command += ["--check", "--diff"]
    command += list(extra_args)
    captured: list[str] = []
    started = time.monotonic()
    with tempfile.NamedTemporaryFile("r", prefix="flaskfleet-times-", suffix=".jsonl") as times:
        env = environment()
        env["FLEET_TASK_TIMES"] = times.name
        enabled = [c for c in env.get("ANSIBLE_CALLBACKS_ENABLED", "").split(",") if c.strip()]
        env["ANSIBLE_CALLBACKS_ENABLED"] = ",".join([*enabled, TIMES_CALLBACK])
        with subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True, bufsize=1) as process:
            assert process.stdout is not None
            for raw in process.stdout:
                line = raw.rstrip("\n")
                captured.append(line)
                if line.strip():
                    say(line)
            returncode = process.wait()
        lines = times.read().splitlines()
    return PlaybookResult(returncode=returncode, recap=parse_recap("\n".join(captured)),
                          elapsed=time.monotonic() - started, task_times=task_times(lines),
                          output=captured, written=written_files(lines))



def run_with_vars(playbook: Path, inventory: Path, variables: dict,
                  limit: str | None = None, say: Say = print) -> PlaybookResult:
    """run_playbook with extra variables passed as a JSON file (no quoting, any type).

    The run gets a fresh `fleet_results_dir`; what the plays wrote there (fleet/results.py) is
    read back into the result's `results`.
    """
    with tempfile.TemporaryDirectory(prefix="flaskfleet-results-") as results_dir, \
            tempfile.NamedTemporaryFile("w", suffix=".json", prefix="flaskfleet-") as handle:
        json.dump({**variables, "fleet_results_dir": results_dir}, handle)
        handle.flush()
        result = run_playbook(playbook, inventory, limit=limit,
                              extra_args=["-e", f"@{handle.name}"], say=say)
        result.results = results.read(Path(results_dir))
        return result


def timing_summary(result: PlaybookResult, top: int = 10) -> list[str]:
    """The slowest tasks and the total, as report lines."""
    lines = [f"{'task':<70} {'seconds':>8}"]
    slowest = sorted(result.task_times.items(), key=lambda kv: kv[1], reverse=True)[:top]
    lines += [f"{name[:70]:<70} {seconds:8.1f}" for name, seconds in slowest]
    lines.append(f"{'total':<70} {result.elapsed:8.1f}")
    return lines


def parse_ping(output: str) -> dict[str, str | None]:
    """Host -> None when `ansible -m ping -o` reached it, else the reason it did not."""
    status: dict[str, str | None] = {}
    for line in output.splitlines():
        match = ONE_LINE.match(line.strip())
        if not match:
            continue
        ok = match["status"] == "SUCCESS"
        reason = match["rest"]
        found = re.search(r'"msg":\s*"((?:[^"\\]|\\.)*)"', reason)
        status[match["host"]] = None if ok else (found.group(1) if found else reason)[:300]
    return status


def ping(inventory: Path, limit: str | None = None, timeout: int = 15) -> dict[str, str | None]:
    """Reach every (limited) host over SSH with its real connection settings."""
    command = [tool("ansible"), "all", "-i", str(inventory), "-m", "ansible.builtin.ping",
               "-o", "-T", str(timeout)]
    if limit:
        command += ["--limit", limit]
    result = subprocess.run(command, cwd=ROOT, env=environment(), capture_output=True,
                            text=True)
    return parse_ping(result.stdout + "\n" + result.stderr)


def list_hosts(inventory: Path, limit: str | None = None) -> list[str]:
    """The hosts a run would target (Ansible resolves the limit pattern)."""
    command = [tool("ansible"), "all", "-i", str(inventory), "--list-hosts"]
    if limit:
        command += ["--limit", limit]
    result = subprocess.run(command, cwd=ROOT, env=environment(), capture_output=True,
                            text=True)
    if result.returncode != 0:
        return []
    return [line.strip() for line in result.stdout.splitlines()[1:] if line.strip()]
