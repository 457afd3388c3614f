"""Run shell commands on a host: over SSH for real hosts, locally for the control node.

Both runners take one shell command and return a Result; callers quote with shlex. Commands run
as root on hosts (the kit's state files live in root-owned directories).
"""

from __future__ import annotations

import shlex
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

from fabric import Connection


@dataclass(frozen=True)
class Result:
    ok: bool
    stdout: str
    stderr: str


class Runner(Protocol):
    name: str

    def run(self, command: str, timeout: float | None = None) -> Result: ...


class SSHRunner:
    """A host reached as its inventory says (address, admin user, key), commands under sudo."""

    def __init__(self, name: str, address: str, user: str, key_file: str | None = None,
                 port: int = 22) -> None:
        self.name = name
        kwargs = {"look_for_keys": key_file is None, "allow_agent": key_file is None}
        if key_file:
            kwargs["key_filename"] = str(Path(key_file).expanduser())
        self._conn = Connection(address, user=user, port=port, connect_timeout=10,
                                connect_kwargs=kwargs)

    def run(self, command: str, timeout: float | None = None) -> Result:
        try:
            res = self._conn.run(f"sudo -n sh -c {shlex.quote(command)}", hide=True, warn=True,
                                 in_stream=False, timeout=timeout)
        except Exception as exc:  # connection problems become a failed result with a reason
            return Result(False, "", f"{self.name}: {exc}")
        return Result(res.ok, res.stdout, res.stderr)

    def get(self, remote: str, local: Path) -> None:
        """Copy a file from the host (readable by the admin user) to the control node."""
        self._conn.get(remote, str(local))

    def close(self) -> None:
        self._conn.close()


class LocalRunner:
    """The control node itself (and the unit tests' stand-in host directory)."""

    name = "localhost"

    def run(self, command: str, timeout: float | None = None) -> Result:
        res = subprocess.run(["sh", "-c", command], capture_output=True, text=True,
                             timeout=timeout)
        return Result(res.returncode == 0, res.stdout, res.stderr)
