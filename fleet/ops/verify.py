"""`fab verify`: the testinfra suite (tests/verify) against an environment's real inventory."""

from __future__ import annotations

import subprocess
import sys
from collections.abc import Sequence

from fleet import ansible, inventory

SUITE = ansible.ROOT / "tests" / "verify"


class VerifyError(RuntimeError):
    """The suite could not run or found a problem."""


def command(env: str, extra: Sequence[str] = ()) -> list[str]:
    path = inventory.inventory_dir(env)
    return [sys.executable, "-m", "pytest", str(SUITE), f"--ansible-inventory={path}",
            "-p", "no:cacheprovider", "-q", *extra]


def verify(env: str = inventory.SANDBOX_ENV, extra: Sequence[str] = ()) -> None:
    """Run the suite against every host of the environment; raise VerifyError if it fails."""
    path = inventory.inventory_dir(env)
    if not (path / "hosts.yml").is_file():
        raise VerifyError(f"no inventory at {path}/hosts.yml")
    env_vars = ansible.environment()
    env_vars["FLEET_ENV"] = env
    result = subprocess.run(command(env, extra), cwd=ansible.ROOT, env=env_vars)
    if result.returncode != 0:
        raise VerifyError(f"verify of {env} failed (pytest exit {result.returncode})")
