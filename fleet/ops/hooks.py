"""Local hooks around a deploy: executables in `inventory/<env>/hooks/` run on the control node.

`pre-build` and `pre-deploy` run before the deploy lock is taken: a failing one stops the
deploy and nothing on any host has changed. `post-deploy` and `post-rollback` run after the
work, still under the lock, so their result goes into the same audit record; a failing one
does not undo the deploy (it is done), it is reported and makes `fab` exit non-zero.

Hooks get what they need in FLEET_* environment variables (see `variables`). A `--check`
deploy runs none of them: a dry run must not post to a chat or start a smoke test.
"""

from __future__ import annotations

import os
import subprocess
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PRE = ("pre-build", "pre-deploy")
POST = ("post-deploy", "post-rollback")
HOOKS = PRE + POST
# A hook that hangs must not hold the deploy lock for ever; ten minutes covers a smoke test.
TIMEOUT = 600.0
# Files a hooks directory may hold besides hooks: notes and disabled examples.
IGNORED_SUFFIXES = (".md", ".txt", ".sample", ".disabled")
OUTPUT_TAIL = 20


class HookError(RuntimeError):
    """A hook is misplaced, not executable or failed; the message names the file."""


@dataclass
class HookResult:
    hook: str
    path: str
    ok: bool
    exit: int | None
    seconds: float
    message: str  # why it failed ("" when it passed), with the last line of its output

    def record(self) -> dict:
        """The audit record's entry for this hook."""
        entry = asdict(self)
        entry["seconds"] = round(self.seconds, 2)
        return entry


def directory(inventory_dir: Path) -> Path:
    return inventory_dir / "hooks"


def _shown(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(ROOT))
    except ValueError:
        return str(path)


def check(hooks_dir: Path) -> list[str]:
    """What is wrong with the hooks directory (empty when every hook in it can run)."""
    if not hooks_dir.exists():
        return []
    if not hooks_dir.is_dir():
        return [f"{_shown(hooks_dir)} must be a directory of hook executables"]
    problems = []
    for path in sorted(hooks_dir.iterdir()):
        name = path.name
        if name.startswith(".") or name.lower().startswith("readme") \
                or name.endswith(IGNORED_SUFFIXES):
            continue
        if name not in HOOKS:
            # A misspelt hook would otherwise never run, silently.
            problems.append(f"{_shown(path)} is not a hook name; hooks are "
                            f"{', '.join(HOOKS)} (rename it, or add .disabled to keep it)")
        elif not path.is_file():
            problems.append(f"{_shown(path)} is not a regular file")
        elif not os.access(path, os.X_OK):
            problems.append(f"{_shown(path)} is not executable: `chmod +x {_shown(path)}` "
                            "(or remove it)")
    return problems


def variables(hook: str, env: str, action: str, release: str, previous: str | None,
              operator: str, inventory_dir: Path, outcome: str | None = None,
              failure: str | None = None, source: Path | None = None,
              ref: str | None = None) -> dict[str, str]:
    """The FLEET_* variables a hook is given; empty strings for what is not known (yet)."""
    found = {
        "FLEET_HOOK": hook, "FLEET_ENV": env, "FLEET_ACTION": action,
        "FLEET_RELEASE": release, "FLEET_PREVIOUS": previous or "",
        "FLEET_OPERATOR": operator, "FLEET_INVENTORY": str(inventory_dir.resolve()),
        "FLEET_REF": ref or "",
    }
    if hook in POST:
        found["FLEET_OUTCOME"] = outcome or "failed"
        found["FLEET_FAILURE"] = failure or ""
    if source is not None:
        found["FLEET_SOURCE"] = str(source.resolve())
    return found


def run(hooks_dir: Path, hook: str, env_vars: dict[str, str],
        say: Callable[[str], None] = print, timeout: float = TIMEOUT) -> HookResult | None:
    """Run one hook if the directory has it (None if not); its output is echoed as it ends."""
    if hook not in HOOKS:
        raise ValueError(f"unknown hook {hook!r}")
    path = hooks_dir / hook
    if not path.exists():
        return None
    problems = [p for p in check(hooks_dir) if p.startswith(_shown(path) + " ")]
    if problems:
        raise HookError("; ".join(problems))
    shown = _shown(path)
    say(f"hook {hook}: running {shown}")
    started = time.monotonic()
    exit_code: int | None
    try:
        # The kit's root as working directory, so a hook can call `.venv/bin/fab status`.
        done = subprocess.run([str(path.resolve())], cwd=ROOT, env={**os.environ, **env_vars},
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                              errors="replace", timeout=timeout, check=False)
        output, exit_code = done.stdout, done.returncode
        why = "" if exit_code == 0 else f"exited with status {exit_code}"
    except subprocess.TimeoutExpired as exc:
        raw = exc.stdout or ""
        output = raw.decode(errors="replace") if isinstance(raw, bytes) else raw
        exit_code, why = None, f"did not finish within {timeout:.0f}s and was stopped"
    except OSError as exc:  # e.g. no shebang line: the kernel cannot execute it
        output, exit_code, why = "", None, f"could not be started: {exc.strerror or exc}"
    seconds = time.monotonic() - started
    lines = [line for line in output.splitlines() if line.strip()]
    for line in lines[-OUTPUT_TAIL:] if len(lines) > OUTPUT_TAIL else lines:
        say(f"  [{hook}] {line}")
    message = ""
    if why:
        last = f": {lines[-1][:200]}" if lines else ""
        message = f"the {hook} hook {shown} {why}{last}"
    say(f"hook {hook}: {'ok' if not why else 'FAILED'} in {seconds:.1f}s")
    return HookResult(hook, shown, not why, exit_code, seconds, message)
