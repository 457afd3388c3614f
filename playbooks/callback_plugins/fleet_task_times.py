"""Each task's wall time on each host, for the timing table fab prints (fleet/ansible.py).

fleet/ansible.py enables this callback and names a file in FLEET_TASK_TIMES; one JSON line per
task and host is appended to it when the host's result arrives. It prints nothing. Timing from
the callback's own start and result events is right under any strategy, where reading task
banners in the output is not (Mitogen's free strategy repeats them unreliably).
A line also names the files a template or copy task wrote on the host (`files`), for the record
of what a provision manages (fleet/ops/converged.py); files written on the control node by a
delegated task are not the host's.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: fleet_task_times
type: aggregate
short_description: Per-task, per-host wall times for fleet's timing table
description:
  - Appends one JSON line per task and host to the file named by FLEET_TASK_TIMES.
requirements:
  - FLEET_TASK_TIMES set in the environment (fleet/ansible.py sets it).
"""


WRITERS = {"template", "copy", "ansible.builtin.template", "ansible.builtin.copy"}


def _written(result) -> list[str]:
    """The destination files of a template or copy task that succeeded on its own host."""
    task = result._task
    if task.action not in WRITERS or task.delegate_to or result._result.get("failed"):
        return []
    items = result._result.get("results") or [result._result]
    return sorted({item["dest"] for item in items
                   if isinstance(item, dict) and isinstance(item.get("dest"), str)
                   and not item.get("failed") and not item.get("skipped")})


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "fleet_task_times"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        self._path = os.environ.get("FLEET_TASK_TIMES")
        self._started: dict[tuple[str, str], float] = {}

    def v2_runner_on_start(self, host, task) -> None:
        self._started[(host.get_name(), task._uuid)] = time.monotonic()

    def _finished(self, result) -> None:
        started = self._started.pop((result._host.get_name(), result._task._uuid), None)
        if started is None or not self._path:
            return
        line = {"task": result._task.get_name(), "host": result._host.get_name(),
                "seconds": round(time.monotonic() - started, 3)}
        files = _written(result)
        if files:
            line["files"] = files
        with open(self._path, "a", encoding="utf-8") as handle:
            handle.write(json.dumps(line) + "\n")

    def v2_runner_on_ok(self, result) -> None:
        self._finished(result)

    def v2_runner_on_failed(self, result, ignore_errors=False) -> None:
        self._finished(result)

    def v2_runner_on_skipped(self, result) -> None:
        self._finished(result)

    def v2_runner_on_unreachable(self, result) -> None:
        self._finished(result)
