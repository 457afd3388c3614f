"""`make bench`: measure what the kit does and report it. Nothing here asserts a timing.

Each measurement runs several times where affordable and reports min/median/max. Results go to
bench/results.json and bench/results.md.
"""

from __future__ import annotations

import json
import os
import platform
import statistics
import time
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path

from fleet import image
from fleet.sandbox import Sandbox
from fleet.topology import default_topology

OUT_DIR = Path("bench")
BENCH_SANDBOX = "ffbench"


def timed(fn: Callable[[], object], repeat: int) -> dict:
    samples = []
    for _ in range(repeat):
        started = time.monotonic()
        fn()
        samples.append(round(time.monotonic() - started, 2))
    return {"min": min(samples), "median": statistics.median(samples), "max": max(samples),
            "samples": samples}


def measure_sandbox(repeat: int = 3) -> dict[str, dict]:
    sandbox = Sandbox(name=BENCH_SANDBOX, say=lambda _: None)
    specs = default_topology()
    results = {"image lookup (cached)": timed(lambda: image.ensure_image(say=lambda _: None),
                                              repeat)}
    ups, downs = [], []
    try:
        for _ in range(repeat):
            ups.append(timed(lambda: sandbox.up(specs, None, None), 1)["samples"][0])
            downs.append(timed(sandbox.down, 1)["samples"][0])
    finally:
        sandbox.down()
    results["sandbox.up, 5 hosts, image cached"] = _summary(ups)
    results["sandbox.down, 5 hosts"] = _summary(downs)
    return results


def _summary(samples: list[float]) -> dict:
    return {"min": min(samples), "median": statistics.median(samples), "max": max(samples),
            "samples": samples}


def markdown(results: dict[str, dict]) -> str:
    lines = ["| measurement | min (s) | median (s) | max (s) | runs |", "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['min']} | {r['median']} | {r['max']} | {len(r['samples'])} |")
    return "\n".join(lines) + "\n"


def main() -> int:
    results = measure_sandbox()
    OUT_DIR.mkdir(exist_ok=True)
    doc = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
           "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
           "results": results}
    (OUT_DIR / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (OUT_DIR / "results.md").write_text(markdown(results))
    print(markdown(results))
    print(f"bench: wrote {OUT_DIR / 'results.json'} and {OUT_DIR / 'results.md'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
