"""Helpers the integration tests share: run fab, run commands on sandbox hosts, read /version."""

from __future__ import annotations

import json
import ssl
import subprocess
import sys
import urllib.request
from pathlib import Path

from fleet import ansible, hosts
from fleet.inventory import Inventory

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


def versions(inv: Inventory, port: int = 8000) -> dict[str, str]:
    """What every app host serves, asked directly on its private address: host -> release."""
    found = {}
    for host in inv.hosts_of("app"):
        address = inv.hostvars[host]["fleet_private_address"]
        status, body = get("/version", base=f"http://{address}:{port}")
        found[host] = json.loads(body)["release"] if status == 200 else f"HTTP {status}"
    return found


def live_releases(inv: Inventory, group_hosts: list[str]) -> dict[str, str]:
    """host -> the release current points at."""
    return {h: on(inv, h, "basename $(readlink /srv/fleetapp/current)") for h in group_hosts}
