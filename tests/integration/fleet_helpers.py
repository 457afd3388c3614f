"""Helpers the integration tests share: run fab, run commands on sandbox hosts, read /version."""

from __future__ import annotations

import http.cookiejar
import json
import secrets
import ssl
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from fleet import ansible, hosts
from fleet.inventory import Inventory
from fleet.ops.status import live_ports

ROOT = Path(__file__).resolve().parents[2]
FAB = str(Path(sys.executable).with_name("fab"))
LB_URL = "https://127.0.0.1:8443"
_INSECURE = ssl.create_default_context()
_INSECURE.check_hostname = False
_INSECURE.verify_mode = ssl.CERT_NONE  # the sandbox's certificate is self-signed


def fab(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess:
    """Run a fab task of the kit as an operator would; output captured."""
    return subprocess.run([FAB, *args], cwd=ROOT, capture_output=True, text=True,
                          env=ansible.environment(), timeout=timeout)


def on(inv: Inventory, host: str, command: str) -> str:
    """Run a shell command as root on a sandbox host; its stdout, or an AssertionError."""
    result = hosts.run(inv, [host], command)[host]
    assert result.ok, f"{host}: {command}: {result.stderr}"
    return result.stdout.strip()


def get(path: str, base: str = LB_URL, timeout: float = 10) -> tuple[int, bytes]:
    request = urllib.request.Request(base + path)
    try:
        with urllib.request.urlopen(request, timeout=timeout, context=_INSECURE) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def versions(inv: Inventory) -> dict[str, str]:
    """What every app host serves, asked directly on its private address and the port of its
    live gunicorn slot (the one the load balancer uses): host -> release."""
    found = {}
    for host, port in live_ports(inv).items():
        address = inv.hostvars[host]["fleet_private_address"]
        status_code, body = get("/version", base=f"http://{address}:{port}")
        found[host] = (json.loads(body)["release"] if status_code == 200
                       else f"HTTP {status_code}")
    return found


def live_releases(inv: Inventory, group_hosts: list[str]) -> dict[str, str]:
    """host -> the release current points at."""
    return {h: on(inv, h, "basename $(readlink /srv/fleetapp/current)") for h in group_hosts}


class ApiClient:
    """A logged-in client of the reference app's API through the load balancer (cookie session,
    JSON bodies, as the app's own front end talks to it)."""

    def __init__(self, email: str, password: str) -> None:
        self.opener = urllib.request.build_opener(
            urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()),
            urllib.request.HTTPSHandler(context=_INSECURE))
        status, body = self.send("POST", "/api/auth/login", {"email": email,
                                                             "password": password})
        assert status == 200, body

    def send(self, method: str, path: str, body: dict | None = None) -> tuple[int, dict]:
        data = None if body is None else json.dumps(body).encode()
        request = urllib.request.Request(LB_URL + path, data=data, method=method,
                                         headers={"Content-Type": "application/json"})
        try:
            with self.opener.open(request, timeout=30) as response:
                return response.status, json.loads(response.read() or b"{}")
        except urllib.error.HTTPError as exc:
            return exc.code, json.loads(exc.read() or b"{}")

    def import_batches(self, count: int, tag: str, size: int = 3) -> list[int]:
        """Queue `count` import jobs of `size` papers each (DOIs 10.5555/<tag>-<job>-<n>)."""
        jobs = []
        for number in range(count):
            papers = [{"title": f"Import {tag} {number}-{i}", "published_on": "2026-11-21",
                       "doi": f"10.5555/{tag}-{number}-{i}"} for i in range(size)]
            status, body = self.send("POST", "/api/papers/import", {"papers": papers})
            assert status == 202, body
            jobs.append(body["job"]["id"])
        return jobs

    def wait_jobs(self, jobs: list[int], seconds: float = 180) -> dict[int, str]:
        """Poll until every job is done or failed (or time is up): job -> status."""
        states: dict[int, str] = {}
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            for job in jobs:
                if states.get(job) in ("done", "failed"):
                    continue
                status, body = self.send("GET", f"/api/jobs/{job}")
                if status == 200:
                    states[job] = body["job"]["status"]
            if all(states.get(job) in ("done", "failed") for job in jobs):
                break
            time.sleep(1)
        return states


def api_admin(inv: Inventory) -> ApiClient:
    """An admin of the deployed app (created with the app's own `seed-demo`), logged in."""
    # seed-demo never changes an existing admin's password: a new admin for every client.
    email, password = f"admin-{secrets.token_hex(4)}@example.org", secrets.token_urlsafe(12)
    on(inv, inv.hosts_of("app")[0],
       f"cd /tmp && sudo -u fleetapp FLEETAPP_SEED_ADMIN_PASSWORD={password} "
       f"/usr/local/bin/fleetapp-run flask --app fleetapp.wsgi seed-demo --admin-email {email}")
    return ApiClient(email, password)


def papers_with_prefix(inv: Inventory, prefix: str) -> int:
    """Rows in the papers table whose DOI starts with 10.5555/<prefix>."""
    return int(on(inv, inv.hosts_of("db")[0], "mysql -N -e \"SELECT COUNT(*) FROM "
                  f"fleetapp.papers WHERE doi LIKE '10.5555/{prefix}%'\""))
