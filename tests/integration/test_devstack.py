"""The development stack for real (issue 15): one `fab dev.up`, the app through dev nginx, and
`fab dev.down` leaving no container, network or volume with the dev label.

Independent of the sandbox: its own compose project, names and loopback ports (8180/8543).
Time-boxed: a cold start (image build included) gets DEV_UP_BUDGET_S.
"""

from __future__ import annotations

import json
import time

import pytest
from browser_session import chromium, user_session
from fleet_helpers import fab, get

from fleet.sandbox import devstack

DEV_URL = f"https://127.0.0.1:{devstack.HTTPS_PORT}"
DEV_UP_BUDGET_S = 900


@pytest.fixture(scope="module")
def dev_up():
    fab("dev.down", timeout=120)  # a stack left over by an interrupted run
    started = time.monotonic()
    result = fab("dev.up", timeout=DEV_UP_BUDGET_S)
    elapsed = time.monotonic() - started
    print(f"fab dev.up: {elapsed:.1f}s")
    assert result.returncode == 0, result.stdout[-3000:] + result.stderr[-3000:]
    yield result
    fab("dev.down", timeout=120)


def test_page_and_api_answer_through_dev_nginx(dev_up):
    status, body = get("/", base=DEV_URL)
    assert status == 200
    assert b'<span id="release-id">dev</span>' in body
    status, body = get("/readyz", base=DEV_URL)
    assert status == 200, body
    assert json.loads(body)["status"] == "ready"  # database, redis, worker and beat all answer
    status, body = get("/api/papers", base=DEV_URL)
    assert status == 200 and "items" in json.loads(body), body
    status, _ = get("/static/manifest.json", base=DEV_URL)
    assert status == 200  # static files straight from the mounted app by nginx


def test_http_redirects_to_the_published_https_port(dev_up):
    import urllib.request

    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    opener = urllib.request.build_opener(NoRedirect)
    try:
        opener.open(f"http://127.0.0.1:{devstack.HTTP_PORT}/api/papers", timeout=10)
        raise AssertionError("no redirect")
    except urllib.error.HTTPError as exc:
        assert exc.code == 301
        assert exc.headers["Location"] == f"{DEV_URL}/api/papers"


def test_seed_runs_the_apps_command_and_the_papers_show(dev_up):
    for _ in range(2):  # idempotent: the second run adds nothing and does not fail
        result = fab("dev.seed", "--password", "dev-demo-password", timeout=120)
        assert result.returncode == 0, result.stdout + result.stderr
    assert "0 papers added" in result.stdout
    status, body = get("/api/papers?per_page=1", base=DEV_URL)
    assert status == 200 and json.loads(body)["total"] >= 40, body


def test_the_page_works_in_a_browser_through_dev_nginx(dev_up):
    # After the seed above: the same scripted session the sandbox's browser test runs.
    with chromium(DEV_URL, insecure_tls=True) as session:
        seen = user_session(session)
    assert seen["release"] == "dev"


def test_logs_show_one_service(dev_up):
    result = fab("dev.logs", "--service", "web", "--lines", "20", timeout=60)
    assert result.returncode == 0, result.stderr
    assert "web_1" in result.stdout and "GET /" in result.stdout
    refused = fab("dev.logs", "--service", "nope", timeout=60)
    assert refused.returncode != 0 and "unknown service 'nope'" in refused.stderr


def test_down_leaves_nothing_labelled(dev_up):
    result = fab("dev.down", timeout=120)
    assert result.returncode == 0, result.stderr
    assert "removed container fleetdev_web_1" in result.stdout
    assert "removed volume fleetdev_dbdata" in result.stdout
    assert devstack.leftovers() == {"containers": [], "networks": [], "volumes": []}
