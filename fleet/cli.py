"""The `python -m fleet.X` entry points the Makefile calls before the venv exists (stdlib only)."""

from __future__ import annotations

import sys
from collections.abc import Callable


def run(prefix: str, action: Callable[[], str | None], refusal: type[Exception]) -> int:
    """Run `action` and print what it says; a `refusal` is one `prefix: why` line, exit 1."""
    try:
        said = action()
    except refusal as exc:
        print(f"{prefix}: {exc}", file=sys.stderr)
        return 1
    if said:
        print(said, flush=True)
    return 0
