"""Apps that are not ours (tests/examples/) deploy with inventory variables only.

For each example app: `fab init` writes its environment, pointed at the shared sandbox's hosts
and secrets; the first deploy serves its page through the load balancer and its programs do
their work; a second deploy under load fails no request; a rollback returns to the first
release. The environments keep the sandbox's app name (its user, directories and load balancer
site exist already) and give each example a database of its own, which `fab provision --limit
db` creates; the env file, the gunicorn settings and the programs go out with the deploy.

Runs last: it leaves the sandbox serving an example app instead of the reference app.
"""

from __future__ import annotations

import re
import shutil
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
import yaml
from fleet_helpers import _INSECURE, LB_URL, ROOT, fab, get, live_releases, on

from fleet import inventory
from fleet.inventory import Inventory
from fleet.ops import deploy
from fleet.proof.load import BackgroundLoad, Request

EXAMPLES = ROOT / "tests" / "examples"
SANDBOX_VARS = ROOT / "inventory" / "sandbox" / "group_vars" / "all"
# What fab init must have guessed for each app (the rest is covered by the unit tests).
GUESSED = {
    "notes": {"app_wsgi": "app:app", "app_env_preset": "common", "app_celery": ""},
    "hello": {"app_wsgi": "hello:create_app()", "app_env_preset": "flask",
              "app_ready_path": "/", "app_programs": []},
    "tasks": {"app_wsgi": "taskboard:create_app()", "app_requirements": "pyproject.toml",
              "app_celery": "taskboard.celery_app:celery"},
}
PAGE_TITLE = {"notes": "<h1>Notes", "hello": "<h1>Hello!", "tasks": "<h1>Taskboard"}


def _post_form(path: str, fields: dict[str, str]) -> int:
    data = urllib.parse.urlencode(fields).encode()
    request = urllib.request.Request(LB_URL + path, data=data, method="POST")
    try:
        with urllib.request.urlopen(request, timeout=10, context=_INSECURE) as response:
            return response.status
    except urllib.error.HTTPError as exc:
        return exc.code


def _page() -> str:
    status, body = get("/")
    assert status == 200, body[:500]
    return body.decode()


def _visits(page: str) -> int:
    return int(re.search(r"visited <strong>(\d+)</strong>", page).group(1))


def _eventually(check, seconds: float = 60) -> str:
    """Poll the page until `check(page)` holds; the last page for the assertion message."""
    deadline = time.monotonic() + seconds
    page = _page()
    while not check(page) and time.monotonic() < deadline:
        time.sleep(1)
        page = _page()
    return page


def _changed_copy(name: str, where: Path, marker: str) -> Path:
    """The example with `marker` added to its page's heading: a new release of it."""
    copy = where / name
    shutil.copytree(EXAMPLES / name, copy, ignore=shutil.ignore_patterns("__pycache__"))
    [template] = list(copy.rglob("index.html"))
    template.write_text(template.read_text().replace("</h1>", f" {marker}</h1>", 1))
    return copy


@pytest.fixture(scope="module", params=sorted(GUESSED))
def example(request, provisioned, tmp_path_factory) -> dict:
    """An example app's environment written by `fab init` and its first deploy."""
    name = request.param
    env = tmp_path_factory.mktemp(f"example-{name}") / "env"
    started = time.monotonic()
    init = fab("init", str(EXAMPLES / name), "--env", str(env), "--name", "fleetapp")
    assert init.returncode == 0, init.stdout + init.stderr
    # The sandbox's hosts and secrets instead of the example's placeholders.
    shutil.copy(ROOT / "inventory" / "sandbox" / "hosts.yml", env / "hosts.yml")
    group_vars = env / "group_vars" / "all"
    for path in group_vars.iterdir():
        if path.name != "app.yml":
            path.unlink()
    for path in SANDBOX_VARS.glob("*.yml"):
        shutil.copy(path, group_vars / path.name)
    (group_vars / "zz-example.yml").write_text(yaml.safe_dump({"mariadb_database": name}))
    database = fab("provision", "--env", str(env), "--limit", "db")
    assert database.returncode == 0, database.stdout[-3000:]
    inv = inventory.load(str(env))
    first = deploy.deploy(env=str(env))
    assert first.ok, first.failure
    return {"name": name, "env": env, "inv": inv, "init": init.stdout, "first": first,
            "seconds": time.monotonic() - started}


def test_init_guessed_the_contract(example):
    app_vars = yaml.safe_load((example["env"] / "group_vars" / "all" / "app.yml").read_text())
    for variable, value in GUESSED[example["name"]].items():
        assert app_vars[variable] == value, (variable, example["init"])
    assert f"wrote {example['env']}" in example["init"] or "app.yml" in example["init"]


def test_first_deploy_serves_the_page_through_the_load_balancer(example):
    inv: Inventory = example["inv"]
    print(f"{example['name']}: init, database and first deploy in {example['seconds']:.0f}s")
    assert PAGE_TITLE[example["name"]] in _page()
    release = example["first"].release
    hosts = inv.hosts_of("app", "workers", "beat")
    assert set(live_releases(inv, hosts).values()) == {release}
    # Published static files: every example links a plain (unhashed) stylesheet.
    [css] = re.findall(r'href="(/static/[^"]+\.css)"', _page())
    status, _ = get(css)
    assert status == 200, css


def test_its_programs_do_their_work(example):
    name = example["name"]
    tag = f"t{int(time.time())}"
    if name == "notes":  # an RQ job fills in the word count
        assert _post_form("/notes", {"body": f"{tag} three words"}) in (200, 302)
        page = _eventually(lambda p: f"{tag} three words" in p and "(3 words)" in p)
        assert "(3 words)" in page, page[:2000]
    elif name == "tasks":  # a Celery task finishes the job; beat writes its heartbeat
        assert _post_form("/jobs", {"title": tag}) in (200, 302)
        page = _eventually(lambda p: re.search(rf"{tag}</td><td>done", p) is not None)
        assert re.search(rf"{tag}</td><td>done", page), page[:2000]
        # Beat's first heartbeat comes one interval (10 s) after it started, which may be
        # after the job is done: wait for it, then it stays one row.
        db = example["inv"].hosts_of("db")[0]
        count = "mysql -N -e 'SELECT COUNT(*) FROM tasks.heartbeats'"
        deadline = time.monotonic() + 30
        while (beats := on(example["inv"], db, count)) == "0" and time.monotonic() < deadline:
            time.sleep(1)
        assert beats == "1"
    else:  # hello has no programs: its page counts visits in the database
        first, second = (_visits(_page()) for _ in range(2))
        assert second > first > 0
        db = example["inv"].hosts_of("db")[0]
        query = "SELECT value FROM hello.counters WHERE name = 'visits'"
        stored = on(example["inv"], db, f'mysql -N -e "{query}"')
        assert int(stored) >= second


def test_second_deploy_under_load_fails_no_request(example, tmp_path):
    inv: Inventory = example["inv"]
    changed = _changed_copy(example["name"], tmp_path, "v2")
    lbs = [inv.hostvars[h]["fleet_private_address"] for h in inv.hosts_of("loadbalancers")]
    load = BackgroundLoad(LB_URL, rate=20, seconds=600, allowed_hosts=["127.0.0.1", *lbs],
                          mix=[(Request("GET", "/"), 1)]).start()
    try:
        second = deploy.deploy(env=str(example["env"]), app_dir=changed)
    finally:
        report = load.stop()
    assert second.ok, second.failure
    print(f"{example['name']}: second deploy under load: {report.summary()}")
    assert report.sent > 100 and report.failed == 0, report.summary()
    assert "v2</h1>" in _page()
    example["second"] = second


def test_rollback_returns_to_the_first_release(example):
    inv: Inventory = example["inv"]
    assert "second" in example, "the second deploy did not run"
    rolled = deploy.rollback(env=str(example["env"]))
    assert rolled.ok, rolled.failure
    assert rolled.release == example["first"].release
    assert "v2</h1>" not in _page() and PAGE_TITLE[example["name"]] in _page()
    hosts = inv.hosts_of("app", "workers", "beat")
    assert set(live_releases(inv, hosts).values()) == {example["first"].release}


def test_a_worker_command_that_exits_stops_before_any_app_host_switches(example, tmp_path):
    # Last of its module on purpose: the failed program's exits stay in the crash-loop window of
    # the next deploy's pre-flight for a while. One app is enough: tasks, the last one.
    if example["name"] != "tasks":
        pytest.skip("one app is enough for this refusal: tasks, the last one deployed")
    inv: Inventory = example["inv"]
    hosts = inv.hosts_of("app", "workers", "beat")
    before = live_releases(inv, hosts)
    broken = example["env"] / "group_vars" / "all" / "zz-broken.yml"
    broken.write_text(yaml.safe_dump({"app_programs": [
        {"name": "worker", "group": "workers", "numprocs": 1,
         "command": "celery --app taskboard.no_such_module worker"}]}))
    try:
        with pytest.raises(deploy.DeployError) as failure:
            deploy.deploy(env=str(example["env"]), app_dir=_changed_copy("tasks", tmp_path, "v3"))
    finally:
        broken.unlink()
    message = str(failure.value)
    assert "app_programs" in message and "worker" in message, message
    assert "no app host was switched" in message, message
    assert live_releases(inv, hosts) == before
    # The programs run again as they did, from the files they ran with (beat's included).
    for host in inv.hosts_of("workers"):
        status = on(inv, host, "supervisorctl status 'fleetapp-worker:*' || true")
        assert "RUNNING" in status, (host, status)
        conf = on(inv, host, "cat /etc/supervisor/conf.d/fleetapp-worker.conf")
        assert "no_such_module" not in conf
    for host in inv.hosts_of("beat"):
        assert "RUNNING" in on(inv, host, "supervisorctl status fleetapp-beat || true")
    assert "v3</h1>" not in _page()
