"""`make bench`: measure what the kit does and report it. Nothing here asserts a timing.

Each measurement runs several times where affordable and reports min/median/max. Besides the
timings there are request rates and latencies under fixed-rate load, and the requests that
failed during a deploy. Results go to bench/results.json, bench/results.md and (the timings as
a chart) bench/results.png; they are written after every group of measurements, so a group that
fails late keeps the figures of the groups before it.
"""

from __future__ import annotations

import asyncio
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

from fleet import artifact, inventory
from fleet.ops import deploy
from fleet.ops.status import live_ports
from fleet.proof import bench_chart, rehearse
from fleet.proof.load import LoadReport, Request, run_load
from fleet.remote import SSHRunner
from fleet.sandbox import image
from fleet.sandbox.containers import Sandbox
from fleet.sandbox.topology import default_topology

OUT_DIR = Path("bench")
ROLES_DIR = Path(__file__).resolve().parents[2] / "roles"
APP_DIR = Path(__file__).resolve().parents[2] / "app"
# Which roles a host's groups bring, besides common (as playbooks/site.yml applies them).
GROUP_ROLES = {
    "mariadb": {"db"},
    "redis": {"redis"},
    "supervisor": {"app", "workers", "beat"},
    "app": {"app", "workers", "beat"},
    "nginx": {"loadbalancers"},
}
BENCH_SANDBOX = "ffbench"
# One offered rate for both targets, so they compare by what they achieve and by their
# latencies. Reads only, so repeated runs leave the database as it was.
THROUGHPUT_RATE = 300
THROUGHPUT_SECONDS = 15
THROUGHPUT_MIX = [(Request("GET", "/api/papers"), 3), (Request("GET", "/version"), 1)]
THROUGHPUT_COLUMNS = ("offered (req/s)", "sent (req/s)", "answered ok (req/s)", "failed",
                      "dropped", "p50 (ms)", "p95 (ms)", "p99 (ms)", "max (ms)")
DEPLOY_LOAD_RATE = 20
SCALED_APPS = 4
CODE_DEPLOY = "fab deploy, code change (total)"
NOOP_PROVISION = "fab provision, no changes (no-op)"
NOOP_FULL_PROVISION = "fab provision --full, no changes (the playbook run)"
COLD_PROVISION = "fab provision, 5 fresh hosts (cold)"
APT_FLOOR = "plain parallel apt-get install, 5 fresh hosts (floor)"
ROLLBACK = "fab rollback"
SCALED_CODE_DEPLOY = f"fab deploy, code change, {SCALED_APPS} app hosts"


def _median(doc: dict, name: str) -> float | None:
    found = doc.get("results", {}).get(name)
    return found["median"] if found else None


def _ratio(doc: dict, top: str, bottom: str) -> float | None:
    a, b = _median(doc, top), _median(doc, bottom)
    return round(a / b, 2) if a is not None and b else None


def _failed_during_deploy(doc: dict) -> float | None:
    return doc["deploy_under_load"]["failed"] if "deploy_under_load" in doc else None


# What the kit aims for (set in the speed issue), each read from a results document: a name, how
# to read the figure, the most it may be, and its unit.
TARGETS: list[tuple[str, Callable[[dict], float | None], float, str]] = [
    ("code-change deploy, 2 app hosts", lambda d: _median(d, CODE_DEPLOY), 30, "s"),
    (f"deploy, {SCALED_APPS} app hosts vs 2", lambda d: _ratio(d, SCALED_CODE_DEPLOY, CODE_DEPLOY),
     1.2, "x"),
    ("rollback to the previous release", lambda d: _median(d, ROLLBACK), 5, "s"),
    ("no-op re-provision, 5 hosts", lambda d: _median(d, NOOP_PROVISION), 15, "s"),
    ("cold provision vs plain-apt floor", lambda d: _ratio(d, COLD_PROVISION, APT_FLOOR), 1.5,
     "x"),
    ("failed requests during a code-change deploy", _failed_during_deploy, 0, ""),
]


def timed(fn: Callable[[], object], repeat: int) -> dict:
    samples = []
    for _ in range(repeat):
        started = time.monotonic()
        fn()
        samples.append(round(time.monotonic() - started, 2))
    return {"min": min(samples), "median": round(statistics.median(samples), 2),
            "max": max(samples), "samples": samples}


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
    roles = ["firewall", "common"]
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
    """Cold provision of the default sandbox vs the plain-apt floor, and a no-op re-run: as an
    operator gets it (each host checked against its record, fleet/ops/converged.py) and with
    --full (the whole playbook, changing nothing).

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
    noop = timed(lambda: _fab("provision"), 3)
    full = timed(lambda: _fab("provision", "--full"), 2)
    return {APT_FLOOR: floor, COLD_PROVISION: cold, NOOP_PROVISION: noop,
            NOOP_FULL_PROVISION: full}


def _code_change(base: Path, tag: str) -> Path:
    """A copy of the reference app whose /healthz answer differs: a real code change."""
    target = base / tag / "app"
    shutil.copytree(APP_DIR, target, ignore=shutil.ignore_patterns(
        ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".coverage", "htmlcov"))
    ops = target / "fleetapp" / "blueprints" / "ops.py"
    ops.write_text(ops.read_text().replace('{"status": "ok"}',
                                           f'{{"status": "ok", "bench": "{tag}"}}'))
    return target


def measure_releases(changes: int = 3) -> dict[str, dict]:
    """Artifact build cold and cached; on the provisioned sandbox a first deploy, code-change
    deploys (2 app hosts + worker + beat) with their phases, and rollbacks."""
    quiet = lambda _line: None  # noqa: E731 - the deploy's own progress is not the report
    results: dict[str, dict] = {}
    with tempfile.TemporaryDirectory(prefix="flaskfleet-bench-") as tmp:
        cache = Path(tmp) / "cache"
        results["artifact build, cold"] = timed(
            lambda: artifact.build(APP_DIR, cache_dir=cache, say=quiet), 1)
        results["artifact build, cached"] = timed(
            lambda: artifact.build(APP_DIR, cache_dir=cache, say=quiet), 3)
        results["fab deploy, first release"] = timed(lambda: deploy.deploy(say=quiet), 1)
        # A tag of its own per run: each change is a new build, never one cached by a past run.
        stamp = int(time.time())
        outcomes = [deploy.deploy(app_dir=_code_change(Path(tmp), f"change{i}-{stamp}"),
                                  say=quiet)
                    for i in range(changes)]
    results[CODE_DEPLOY] = _summary([round(o.total, 1) for o in outcomes])
    for phase in [p.name for p in outcomes[0].phases]:
        results[f"  deploy phase: {phase}"] = _summary(
            [round(o.seconds(phase), 1) for o in outcomes])
    # Each rollback returns to the release the one before left: all three find it warm.
    results[ROLLBACK] = timed(lambda: deploy.rollback(say=quiet), 3)
    return results


def _throughput(load: LoadReport) -> dict:
    served = load.sent - load.failed
    return {"url": load.base_url, "offered_rate": load.target_rate,
            "achieved_rate": round(load.achieved_rate, 1),
            "served_rate": round(served / load.elapsed, 1) if load.elapsed else 0.0,
            "sent": load.sent, "failed": load.failed, "dropped": load.dropped,
            "p50_ms": load.p50_ms, "p95_ms": load.p95_ms, "p99_ms": load.p99_ms,
            "max_ms": load.max_ms}


def measure_throughput(rate: float = THROUGHPUT_RATE,
                       seconds: float = THROUGHPUT_SECONDS) -> dict[str, dict]:
    """The same fixed-rate load through the load balancer and straight at the first app host's
    gunicorn (whose private address the control node reaches), on the deployed sandbox."""
    inv = inventory.load(inventory.SANDBOX_ENV)
    _, sandbox_hosts = rehearse.load_target(inv)
    balancer, app = inv.hosts_of("loadbalancers")[0], inv.hosts_of("app")[0]
    address = inv.hostvars[app]["fleet_private_address"]
    port = live_ports(inv)[app]  # the slot the load balancer uses
    targets = {f"through the load balancer (nginx on {balancer})": rehearse.SANDBOX_URL,
               f"one gunicorn, direct ({app})": f"http://{address}:{port}"}
    results = {}
    for name, url in targets.items():
        load = asyncio.run(run_load(url, rate, seconds, mix=THROUGHPUT_MIX,
                                    allowed_hosts=sandbox_hosts))
        results[name] = _throughput(load)
    return results


def measure_deploy_under_load(rate: float = DEPLOY_LOAD_RATE) -> dict:
    """A code-change deploy (a fresh build) while `rate` requests a second go through the load
    balancer: how many were sent and how many failed, in total and per phase."""
    result = rehearse.rehearse(rate=rate, say=lambda _line: None)
    return {"rate": rate, "app_hosts": len(inventory.load(inventory.SANDBOX_ENV).hosts_of("app")),
            "release": result.release, "deploy_ok": result.failure is None,
            "failure": result.failure, "sent": result.load.sent, "failed": result.load.failed,
            "dropped": result.load.dropped,
            "by_phase": [row._asdict() for row in result.rows()]}


def measure_scaled_deploy(apps: int = SCALED_APPS, changes: int = 3) -> dict[str, dict]:
    """The default sandbox recreated with more app hosts: cold provision, first deploy and
    code-change deploys (as many as the two-app figure has), to set beside the two-app
    figures."""
    quiet = lambda _line: None  # noqa: E731 - the deploy's own progress is not the report
    sandbox = Sandbox(say=quiet)
    specs = default_topology(apps=apps)
    sandbox.down()
    sandbox.up(specs)
    results = {f"fab provision, {len(specs)} fresh hosts (cold), {apps} app hosts":
               timed(lambda: _fab("provision"), 1)}
    results[f"fab deploy, first release, {apps} app hosts"] = timed(
        lambda: deploy.deploy(say=quiet), 1)
    stamp = int(time.time())
    with tempfile.TemporaryDirectory(prefix="flaskfleet-bench-") as tmp:
        outcomes = [deploy.deploy(app_dir=_code_change(Path(tmp), f"change{i}-{apps}apps-{stamp}"),
                                  say=quiet) for i in range(changes)]
    # Phase time, like "fab deploy, code change (total)" above, so the two compare.
    results[f"fab deploy, code change, {apps} app hosts"] = _summary(
        [round(o.total, 1) for o in outcomes])
    return results


def _summary(samples: list[float]) -> dict:
    return {"min": min(samples), "median": round(statistics.median(samples), 2),
            "max": max(samples), "samples": samples}


def markdown(results: dict[str, dict]) -> str:
    lines = ["| measurement | min (s) | median (s) | max (s) | runs |", "|---|---|---|---|---|"]
    for name, r in results.items():
        lines.append(f"| {name} | {r['min']} | {r['median']} | {r['max']} | {len(r['samples'])} |")
    return "\n".join(lines) + "\n"


def throughput_markdown(throughput: dict[str, dict]) -> str:
    lines = ["| target | " + " | ".join(THROUGHPUT_COLUMNS) + " |",
             "|---" * (len(THROUGHPUT_COLUMNS) + 1) + "|"]
    for name, r in throughput.items():
        cells = [r["offered_rate"], r["achieved_rate"], r["served_rate"], r["failed"],
                 r["dropped"], r["p50_ms"], r["p95_ms"], r["p99_ms"], r["max_ms"]]
        lines.append(f"| {name} | " + " | ".join("-" if c is None else f"{c:g}" for c in cells)
                     + " |")
    return "\n".join(lines) + "\n"


def _shown(value: float | None, unit: str) -> str:
    return "-" if value is None else f"{value:g}{' ' + unit if unit else ''}"


def targets_markdown(doc: dict, previous: dict | None = None) -> str:
    """Each target beside this run's figure (and the previous run's, when there is one)."""
    head = ["figure", "goal", "now", "met"] + (["before"] if previous else [])
    lines = ["| " + " | ".join(head) + " |", "|---" * len(head) + "|"]
    for name, read, most, unit in TARGETS:
        now = read(doc)
        met = "-" if now is None else ("yes" if now <= most else "no")
        row = [name, f"<= {_shown(most, unit)}", _shown(now, unit), met]
        if previous:
            row.append(_shown(read(previous), unit))
        lines.append("| " + " | ".join(row) + " |")
    return "\n".join(lines) + "\n"


def comparison_markdown(doc: dict, previous: dict) -> str:
    """Every timing measured by both runs: the previous median, this one, and the change."""
    lines = [f"Against the previous run ({previous.get('measured_at', 'unknown')}):", "",
             "| measurement | before (s) | now (s) | change |", "|---|---|---|---|"]
    for name, result in doc["results"].items():
        before = previous.get("results", {}).get(name)
        if not before:
            continue
        change = (f"{(result['median'] - before['median']) / before['median'] * 100:+.0f} %"
                  if before["median"] else "-")
        lines.append(f"| {name} | {before['median']} | {result['median']} | {change} |")
    return "\n".join(lines) + "\n"


def document_markdown(doc: dict, previous: dict | None = None) -> str:
    """results.md: the targets, the timings (beside the previous run's), then whatever else this
    run measured."""
    parts = ["Targets:\n\n" + targets_markdown(doc, previous), markdown(doc["results"])]
    if previous and previous.get("results"):
        parts.append(comparison_markdown(doc, previous))
    if "throughput" in doc:
        parts.append(f"Fixed-rate load, {THROUGHPUT_SECONDS} s per target; latencies of answered "
                     "requests:\n\n" + throughput_markdown(doc["throughput"]))
    if "deploy_under_load" in doc:
        d = doc["deploy_under_load"]
        outcome = "the deploy succeeded" if d["deploy_ok"] else f"the deploy FAILED: {d['failure']}"
        parts.append(f"Failed requests during a code-change deploy ({d['rate']:g} req/s through "
                     f"the load balancer, {d['app_hosts']} app hosts): {d['failed']} of "
                     f"{d['sent']} sent, {d['dropped']} dropped; {outcome}.\n")
    if "stopped_at" in doc:
        parts.append(f"Incomplete run: it stopped in \"{doc['stopped_at']}\"; the measurements "
                     "after it are missing.\n")
    return "\n".join(parts)


def previous_results() -> dict | None:
    """The last run's results.json, read before this run writes its own."""
    try:
        return json.loads((OUT_DIR / "results.json").read_text())
    except (FileNotFoundError, json.JSONDecodeError):
        return None


def write_results(doc: dict, previous: dict | None = None) -> None:
    OUT_DIR.mkdir(exist_ok=True)
    (OUT_DIR / "results.json").write_text(json.dumps(doc, indent=2) + "\n")
    (OUT_DIR / "results.md").write_text(document_markdown(doc, previous))
    if doc["results"]:
        bench_chart.write_chart(doc["results"], OUT_DIR / "results.png",
                                title=f"make bench, {doc['measured_at']}")


def main() -> int:
    previous = previous_results()
    doc: dict = {"measured_at": datetime.now(UTC).isoformat(timespec="seconds"),
                 "machine": {"cpus": os.cpu_count(), "python": platform.python_version()},
                 "results": {}}
    timings = doc["results"]
    # In this order: the later groups use the provisioned, then deployed, default sandbox.
    groups = [
        ("sandbox up and down", lambda: timings.update(measure_sandbox())),
        ("provision", lambda: timings.update(measure_provision())),
        ("build, deploy, rollback", lambda: timings.update(measure_releases())),
        ("throughput", lambda: doc.update(throughput=measure_throughput())),
        ("deploy under load", lambda: doc.update(deploy_under_load=measure_deploy_under_load())),
        (f"{SCALED_APPS} app hosts", lambda: timings.update(measure_scaled_deploy())),
    ]
    for name, measure in groups:
        print(f"bench: {name}", flush=True)
        try:
            measure()
        except BaseException:
            doc["stopped_at"] = name
            raise
        finally:
            write_results(doc, previous)
    print(document_markdown(doc, previous))
    print(f"bench: wrote {OUT_DIR / 'results.json'}, {OUT_DIR / 'results.md'} and "
          f"{OUT_DIR / 'results.png'}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
