"""The kit's nginx config, rendered from the role's templates and served by a real local nginx.

Tests start it in a private prefix on loopback ports (root workers so it reads pytest's private
tmp; its own pid file; no modules). `start()` returns the running site; `stop()` ends it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

from test_templates import _self_signed, render, resolve_defaults


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@dataclass
class Site:
    port: int  # https
    dir: Path  # the prefix: conf.d, log, tmp, static, maintenance
    ctx: dict
    process: subprocess.Popen

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(10)


def start(tmp: Path, upstream_port: int, settings: dict,
          pages: dict[str, str] | None = None) -> Site:
    """Render nginx.conf, the upstream and the site into `tmp` (plus `pages`: file name ->
    template under templates/nginx/) and run nginx until its https port answers."""
    assert shutil.which("nginx") or Path("/usr/sbin/nginx").exists(), \
        "nginx is not installed: run `make sysdeps`"
    for sub in ("conf.d", "log", "tmp", "static", "maintenance"):
        (tmp / sub).mkdir()
    cert, key = _self_signed(tmp)
    https = free_port()
    ctx = resolve_defaults({
        "nginx_conf_dir": str(tmp / "conf.d"), "nginx_log_dir": str(tmp / "log"),
        "nginx_temp_dir": str(tmp / "tmp"), "nginx_static_root": str(tmp / "static"),
        "nginx_maintenance_dir": str(tmp / "maintenance"),
        "nginx_tls_certificate_path": str(cert), "nginx_tls_key_path": str(key),
        "nginx_upstream_servers": ["127.0.0.1"], "nginx_upstream_drained": [],
        "nginx_upstream_port": upstream_port, "nginx_http_port": free_port(),
        "nginx_https_port": https, **settings,
    })
    main = render("nginx/nginx.conf.j2", ctx).replace("user www-data;", "user root;").replace(
        "pid /run/nginx.pid;", f"pid {tmp}/nginx.pid;").replace(
        "include /etc/nginx/modules-enabled/*.conf;", "")
    (tmp / "nginx.conf").write_text(main)
    (tmp / "conf.d" / "up.conf").write_text(render("nginx/upstream.conf.j2", ctx))
    (tmp / "conf.d" / "site.conf").write_text(render("nginx/site.conf.j2", ctx))
    for name, template in (pages or {}).items():
        (tmp / "maintenance" / name).write_text(render(template, ctx))
    process = subprocess.Popen([shutil.which("nginx") or "/usr/sbin/nginx", "-p", str(tmp),
                                "-c", str(tmp / "nginx.conf"), "-e", str(tmp / "log" / "error.log"),
                                "-g", "daemon off;"], stderr=subprocess.PIPE, text=True)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            socket.create_connection(("127.0.0.1", https), timeout=0.5).close()
            break
        except OSError:
            assert process.poll() is None, process.stderr.read()
            time.sleep(0.1)
    return Site(https, tmp, ctx, process)
