"""Make sure a Docker engine answers, starting one on a bare Debian machine when we may.

The build machines have the docker client but no daemon and no systemd, so "start Docker" means
installing docker.io and launching dockerd in the background ourselves. On any other machine we
only say what to run: changing someone's workstation behind their back is not ours to do.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import NamedTuple

import docker
from docker.errors import DockerException

from fleet import apt, cli

ENGINE_PACKAGES = ("docker.io", "debootstrap")
DOCKERD_LOG = Path(".cache/dockerd.log")
START_TIMEOUT_S = 90


class EngineError(RuntimeError):
    """The engine is not reachable and we may not (or could not) start it."""


class Machine(NamedTuple):
    """What decides how we may get an engine running."""

    is_root: bool
    is_debian: bool
    has_systemd: bool
    has_dockerd: bool

    @classmethod
    def probe(cls) -> Machine:
        return cls(
            is_root=os.geteuid() == 0,
            is_debian=Path("/etc/debian_version").exists(),
            has_systemd=Path("/run/systemd/system").is_dir(),
            has_dockerd=shutil.which("dockerd") is not None,
        )


def engine_answers() -> bool:
    try:
        client = docker.from_env(timeout=5)
        try:
            return bool(client.ping())
        finally:
            client.close()
    except DockerException:
        return False


def plan(machine: Machine) -> str:
    """Decide what to do about a missing engine: 'start' or a message for the user."""
    if machine.is_root and machine.is_debian and not machine.has_systemd:
        return "start"
    if machine.has_systemd and machine.has_dockerd:
        return "Docker is installed but not running. Run: sudo systemctl start docker"
    if machine.is_debian:
        return "No Docker engine answers. Run as root: sudo make engine"
    return (
        "No Docker engine answers. Install and start Docker Engine "
        "(https://docs.docker.com/engine/install/), then re-run this command."
    )


def _start_dockerd() -> None:
    DOCKERD_LOG.parent.mkdir(parents=True, exist_ok=True)
    print(f"engine: starting dockerd in the background (log: {DOCKERD_LOG})", flush=True)
    with DOCKERD_LOG.open("ab") as log:
        # A new session so the daemon outlives make and the shell that started it.
        subprocess.Popen(["dockerd"], stdout=log, stderr=log, stdin=subprocess.DEVNULL,
                         start_new_session=True)
    deadline = time.monotonic() + START_TIMEOUT_S
    while time.monotonic() < deadline:
        if engine_answers():
            return
        time.sleep(1)
    raise EngineError(f"dockerd did not answer within {START_TIMEOUT_S}s; see {DOCKERD_LOG}")


def ensure_engine(machine: Machine | None = None) -> str:
    """Return a one-line description of the engine, starting it when allowed."""
    if engine_answers():
        return "engine: Docker engine is running"
    decision = plan(machine or Machine.probe())
    if decision != "start":
        raise EngineError(decision)
    apt.ensure_packages(ENGINE_PACKAGES)
    _start_dockerd()
    return "engine: Docker engine started"


def main() -> int:
    return cli.run("engine", ensure_engine, EngineError)


if __name__ == "__main__":
    sys.exit(main())
