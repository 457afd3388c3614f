"""`make bench`: measure what the kit does and report it. Nothing here asserts a timing.

Each measurement runs several times where affordable and reports min/median/max. Results go to
bench/results.json and bench/results.md.
"""

from __future__ import annotations

import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from pathlib import Path

import yaml

from fleet import artifact, deploy, image
from fleet.remote import SSHRunner
from fleet.sandbox import Sandbox
from fleet.topology import default_topology

OUT_DIR = Path("bench")
ROLES_DIR = Path(__file__).resolve().parent.parent / "roles"
APP_DIR = Path(__file__).resolve().parent.parent / "app"
# Which roles a host's groups bring, besides common (as playbooks/site.yml applies them).
GROUP_ROLES = {
    "mariadb": {"db"},
    "redis": {"redis"},
    "supervisor": {"app", "workers", "beat"},
    "app": {"app", "workers", "beat"},
    "nginx": {"loadbalancers"},
}
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


def role_packages(role: str) -> list[str]:
    """The Debian packages a role installs by default, read from its defaults."""
    defaults = yaml.safe_load((ROLES_DIR / role / "defaults" / "main.yml").read_text()) or {}
    found: list[str] = []
    for name, value in defaults.items():
        if name.endswith("_packages") and isinstance(value, list):
            found += [v for v in value if "{{" not in str(v)]
        elif name.endswith("_package") and isinstance(value, str) and "{{" not in value:
            found.append(value)
    return found


def floor_packages(groups: tuple[str, ...]) -> list[str]:
    """What a plain apt-get would install on a host of these groups: the provisioning floor."""
    roles = ["common"]
    for role, members in GROUP_ROLES.items():
        if set(groups) & members:
            roles.append(role)
    return sorted({p for role in roles for p in role_packages(role)})


def _apt_floor(sandbox: Sandbox) -> None:
    """Every host installs its packages with one plain apt-get, all hosts in parallel."""
    def install(host) -> None:
        runner = SSHRunner(host.name, host.address, "fleet", str(sandbox.key_path))
        packages = " ".join(floor_packages(host.groups))
        res = runner.run("export DEBIAN_FRONTEND=noninteractive; apt-get update -qq && "
                         f"apt-get install -y -qq --no-install-recommends {packages}")
        runner.close()
        if not res.ok:
            raise RuntimeError(f"{host.name}: apt-get failed: {res.stderr[-500:]}")

    with ThreadPoolExecutor(max_workers=8) as pool:
        list(pool.map(install, sandbox.hosts()))


def _fab(*args: str) -> None:
    run = subprocess.run([str(Path(sys.executable).parent / "fab"), *args],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise RuntimeError(f"fab {' '.join(args)} failed:\n{run.stdout[-2000:]}{run.stderr}")


def measure_provision() -> dict[str, dict]:
    """Cold provision of the default sandbox vs the plain-apt floor, and a no-op re-run.

    Uses (and recreates) the default sandbox: provisioning is measured where operators run it.
    """
    sandbox = Sandbox(say=lambda _: None)
    specs = default_topology()

    def fresh() -> None:
        sandbox.down()
        sandbox.up(specs)

    fresh()
    floor = timed(lambda: _apt_floor(sandbox), 1)
    fresh()
    cold = timed(lambda: _fab("provision"), 1)
    noop = timed(lambda: _fab("provision"), 2)
    return {"plain parallel apt-get install, 5 fresh hosts (floor)": floor,
            "fab provision, 5 fresh hosts (cold)": cold,
            "fab provision, no changes (no-op)": noop}


def _code_change(base: Path, tag: str) -> Path:
    """A copy of the reference app whose /healthz answer differs: a real code change."""
    target = base / tag / "app"
    shutil.copytree(APP_DIR, target, ignore=shutil.ignore_patterns(
        ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".coverage", "htmlcov"))
    ops = target / "fleetapp" / "blueprints" / "ops.py"
    ops.write_text(ops.read_text().replace('{"status": "ok"}',
                                           f'{{"status": "ok", "bench": "{tag}"}}'))
    return target


def measure_releases(changes: int = 2) -> dict[str, dict]:
    """Artifact build cold and cached; on the provisioned sandbox a first deploy, code-change
    deploys (2 app hosts + worker + beat) with their phases, and a rollback."""
    quiet = lambda _line: None  # noqa: E731 - the deploy's own progress is not the report
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="flaskfleet-bench-") as tmp:
        cache = Path(tmp) / "cache"
        results["artifact build, cold"] = timed(
            lambda: artifact.build(APP_DIR, cache_dir=cache, say=quiet), 1)
        results["artifact build, cached"] = timed(
            lambda: artifact.build(APP_DIR, cache_dir=cache, say=quiet), 3)
        results["fab deploy, first release"] = timed(lambda: deploy.deploy(say=quiet), 1)
        outcomes = [deploy.deploy(app_dir=_code_change(Path(tmp), f"change{i}"), say=quiet)
                    for i in range(changes)]
    results["fab deploy, code change (total)"] = _summary([round(o.total, 1) for o in outcomes])
    for phase in [p.name for p in outcomes[0].phases]:
        results[f"  deploy phase: {phase}"] = _summary(
            [round(o.seconds(phase), 1) for o in outcomes])
    results["fab rollback"] = timed(lambda: deploy.rollback(say=quiet), 1)
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
    results.update(measure_provision())
    results.update(measure_releases())
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
