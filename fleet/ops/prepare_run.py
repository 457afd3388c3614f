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
from collections.abc import Iterator
from pathlib import Path

from fleet import ansible
from fleet.inventory import Inventory
from fleet.ops.background import Background, HeldOutput

PLAYBOOK = ansible.ROOT / "playbooks" / "release-prepare.yml"


class PrepareRun:
    def __init__(self, inv: Inventory, extra_vars: dict) -> None:
        self._tmp = tempfile.TemporaryDirectory(prefix="flaskfleet-plan-")
        self._plan = Path(self._tmp.name) / "plan.json"
        self._output = HeldOutput()
        variables = {**extra_vars, "deploy_plan_file": str(self._plan)}
        self._run = Background(lambda: ansible.run_with_vars(
            PLAYBOOK, inv.path, variables, say=self._output.line), "prepare")

    def _write(self, variables: dict) -> None:
        """The plan file, whole: the play waits for it to exist, then reads it."""
        partial = self._plan.with_name(self._plan.name + ".partial")
        partial.write_text(json.dumps(variables))
        partial.rename(self._plan)

    def go(self, variables: dict, say: ansible.Say) -> None:
        """Hand the run the deploy's variables; its output goes to `say` from here on."""
        self._output.release(say)
        self._write(variables)

    def result(self) -> ansible.PlaybookResult:
        result = self._run.result()
        assert result is not None
        return result

    def cancel(self, reason: str) -> None:
        """End a run that did not get its plan, having changed nothing."""
        if not self._plan.exists():
            self._output.drop()
            self._write({"deploy_plan_failed": reason})
        # An error of the run itself was the deploy's to report, if it got that far.
        with contextlib.suppress(Exception):
            self._run.result()
        self._tmp.cleanup()


@contextlib.contextmanager
def early(inv: Inventory, extra_vars: dict | None) -> Iterator[PrepareRun]:
    """A PrepareRun for this deploy, cancelled on the way out unless it got its plan."""
    run = PrepareRun(inv, extra_vars or {})
    try:
        yield run
    finally:
        run.cancel("the deploy stopped before its install (its output says why)")
