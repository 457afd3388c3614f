"""The deploy's install-and-migrate run (playbooks/release-prepare.yml), started as the pre-flight
begins: Ansible's start-up and its connections to every host overlap the artifact build, the
host checks and the lock, which took 2-5 s of the install phase when the run started after them.

The run's first play (release-plan.yml) connects, changes nothing, and waits for a plan file:
`go` writes the deploy's variables into it and hands the run its output from then on; `cancel`
(on every way out) writes the reason the deploy stopped first instead, and every host fails
that play, so nothing after it runs. Output before `go` is held, and dropped on a cancel: it
only says that the hosts were reached.
"""

from __future__ import annotations

import contextlib
import json
import tempfile
import threading
from collections.abc import Iterator
from pathlib import Path

from fleet import ansible
from fleet.inventory import Inventory

PLAYBOOK = Path(__file__).resolve().parents[2] / "playbooks" / "release-prepare.yml"


class PrepareRun:
    def __init__(self, inv: Inventory, extra_vars: dict) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="flaskfleet-plan-")
        self._plan = Path(self._tmp.name) / "plan.json"
        self._held: list[str] = []
        self._say: ansible.Say | None = None
        self._lock = threading.Lock()
        self._result: ansible.PlaybookResult | None = None
        self._error: BaseException | None = None
        variables = {**extra_vars, "deploy_plan_file": str(self._plan)}
        self._thread = threading.Thread(target=self._run, args=(inv, variables),
                                        name="prepare", daemon=True)
        self._thread.start()

    def _run(self, inv: Inventory, variables: dict) -> None:
        try:
            self._result = ansible.run_with_vars(PLAYBOOK, inv.path, variables, say=self._line)
        except BaseException as exc:  # noqa: BLE001 - raised again by result()
            self._error = exc

    def _line(self, line: str) -> None:
        with self._lock:
            if self._say is None:
                self._held.append(line)
            else:
                self._say(line)

    def _write(self, variables: dict) -> None:
        """The plan file, whole: the play waits for it to exist, then reads it."""
        partial = self._plan.with_name(self._plan.name + ".partial")
        partial.write_text(json.dumps(variables))
        partial.rename(self._plan)

    def go(self, variables: dict, say: ansible.Say) -> None:
        """Hand the run the deploy's variables; its output goes to `say` from here on."""
        with self._lock:
            self._say = say
            for line in self._held:
                say(line)
            self._held.clear()
        self._write(variables)

    def result(self) -> ansible.PlaybookResult:
        self._thread.join()
        if self._error is not None:
            raise self._error
        assert self._result is not None
        return self._result

    def cancel(self, reason: str) -> None:
        """End a run that did not get its plan, having changed nothing."""
        if not self._plan.exists():
            with self._lock:
                self._say = lambda _line: None
                self._held.clear()
            self._write({"deploy_plan_failed": reason})
        self._thread.join()
        self._tmp.cleanup()


@contextlib.contextmanager
def early(inv: Inventory, extra_vars: dict | None) -> Iterator[PrepareRun]:
    """A PrepareRun for this deploy, cancelled on the way out unless it got its plan."""
    run = PrepareRun(inv, extra_vars or {})
    try:
        yield run
    finally:
        run.cancel("the deploy stopped before its install (its output says why)")
