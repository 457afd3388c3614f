"""Debian packages the control machine itself needs (the engine, nginx for `nginx -t`, …)."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from collections.abc import Iterable

from fleet import cli

# What the test suite uses on the control machine: debootstrap for the host image when no
# registry answers, nginx, openssl and nftables (`nft -c`, which loads nothing) to validate
# rendered configs, redis-server for the app's tests.
CONTROL_PACKAGES = ("debootstrap", "nftables", "nginx-light", "openssl", "redis-server")
# The development stack (`fab dev.up`): Debian's docker compose.
DEV_PACKAGES = ("docker-compose",)
# The integration suite on top of the engine: the dev stack's test and the headless browser test.
INTEGRATION_PACKAGES = (*DEV_PACKAGES, "chromium", "chromium-driver")
PACKAGE_SETS = {"control": CONTROL_PACKAGES, "dev": DEV_PACKAGES,
                "integration": INTEGRATION_PACKAGES}


class AptError(RuntimeError):
    """Packages are missing and we may not install them."""


def missing(packages: Iterable[str]) -> list[str]:
    packages = tuple(packages)
    if shutil.which("dpkg-query") is None:
        raise AptError(f"not a Debian machine: install {' '.join(packages)} yourself")
    return [p for p in packages if subprocess.run(
        ["dpkg-query", "-W", "-f=${Status}", p], capture_output=True, text=True
    ).stdout.strip() != "install ok installed"]


def ensure_packages(packages: Iterable[str]) -> list[str]:
    """Install what is missing (as root on Debian); returns what was installed."""
    todo = missing(packages)
    if not todo:
        return []
    if os.geteuid() != 0:
        raise AptError(f"missing Debian packages: {' '.join(todo)}. "
                       f"Run: sudo apt-get install -y {' '.join(todo)}")
    print(f"apt: installing {' '.join(todo)}", flush=True)
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    subprocess.run(["apt-get", "update", "-qq"], check=True, env=env)
    subprocess.run(["apt-get", "install", "-y", "-qq", "--no-install-recommends", *todo],
                   check=True, env=env)
    return todo


def _requested(args: list[str]) -> list[str]:
    # `python -m fleet.apt integration` installs a named set; other arguments are packages.
    if len(args) == 1 and args[0] in PACKAGE_SETS:
        return list(PACKAGE_SETS[args[0]])
    return args or list(CONTROL_PACKAGES)


def main() -> int:
    def install() -> None:
        ensure_packages(_requested(sys.argv[1:]))

    return cli.run("apt", install, AptError)


if __name__ == "__main__":
    sys.exit(main())
