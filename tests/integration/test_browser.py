"""The page in a real browser (issue 15): Debian's headless Chromium through the load balancer.

Runs after test_deploy on the deployed sandbox: the demo data is seeded with `fab seed` (twice:
it must be idempotent), then one scripted session loads the page with no console error,
registers, logs out and in, searches, stars a paper and sees the star after a reload. Last, the
release id in the page header changes when a new build is deployed while the page is open.
"""

from __future__ import annotations

import json
import shutil
import time
import uuid

import pytest
from browser_session import chromium, load_page, user_session
from fleet_helpers import LB_URL, ROOT, fab, get

from fleet.ops import apprun, deploy

APP = ROOT / "app"
SESSION_BUDGET_S = 120  # the whole scripted session, browser start included


def _live_release() -> str:
    status, body = get("/version")
    assert status == 200, body
    return json.loads(body)["release"]


@pytest.fixture(scope="module")
def deployed(provisioned):
    """A live release on the sandbox (test_deploy leaves one; alone, this module deploys)."""
    try:
        live = get("/version")[0] == 200
    except OSError:  # nothing listening behind the load balancer's port yet
        live = False
    if not live:
        result = fab("deploy")
        assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-2000:]
    return provisioned


@pytest.fixture(scope="module")
def seeded(deployed):
    """`fab seed` as `make demo` runs it: the app's seed-demo on one app host."""
    first = fab("seed")
    assert first.returncode == 0, first.stdout[-2000:] + first.stderr[-2000:]
    return first


def test_seed_prints_a_login_that_works_and_can_run_again(seeded):
    assert "login: admin@example.org / " in seeded.stdout
    login = apprun.remembered_login("sandbox")
    assert login is not None and login.url == LB_URL + "/"
    again = fab("seed")
    assert again.returncode == 0, again.stdout[-2000:] + again.stderr[-2000:]
    assert "0 papers added" in again.stdout
    apprun.check_login(login)  # raises if the printed password does not log in
    opened = fab("open")
    assert opened.returncode == 0, opened.stderr
    assert f"open: {LB_URL}/" in opened.stdout
    assert f"login: {login.email} / {login.password}" in opened.stdout
    status, body = get("/api/papers?per_page=1")
    assert status == 200 and json.loads(body)["total"] >= 40, body


def test_scripted_session_through_the_load_balancer(seeded):
    started = time.monotonic()
    with chromium(LB_URL, insecure_tls=True) as session:
        seen = user_session(session)
    elapsed = time.monotonic() - started
    steps = ", ".join(f"{name} {seconds:.1f}s" for name, seconds in session.steps)
    print(f"browser session {elapsed:.1f}s: {steps}")
    assert seen["release"] == _live_release()
    assert seen["titles"] and all("consensus" in t.lower() for t in seen["titles"])
    assert elapsed < SESSION_BUDGET_S, steps


def test_release_in_the_header_changes_after_a_deploy(seeded, tmp_path):
    # A new build needs new content: the artifact of an unchanged tree is reused, id and all.
    variant = tmp_path / "app"
    shutil.copytree(APP, variant, ignore=shutil.ignore_patterns(
        ".venv", "__pycache__", "*.egg-info", ".pytest_cache", ".coverage", "htmlcov"))
    web = variant / "fleetapp" / "blueprints" / "web.py"
    web.write_text(web.read_text() + f"# build {uuid.uuid4().hex} (tests/integration/"
                                      "test_browser.py)\n")
    with chromium(LB_URL, insecure_tls=True) as session:
        before = load_page(session)
        assert before == _live_release()
        outcome = deploy.deploy(app_dir=variant)
        assert outcome.ok, outcome.failure
        assert outcome.release != before
        session.driver.refresh()
        after = load_page(session)
        assert after == outcome.release == _live_release(), (before, after, outcome.release)
        assert session.console_errors() == []
