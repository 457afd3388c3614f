"""The development stack: the whole app on one machine under docker compose.

nginx, gunicorn (with --reload), MariaDB, Redis, a Celery worker and beat, each in its own
container of one locally built image, with the app's code mounted for live edits. Every config
file a service reads is rendered from the same templates/ the fleet uses, with the roles' own
defaults and a short list of development values (DEV_VALUES), into `.dev/` (git-ignored). Only
what the fleet gets from Ansible modules rather than templates (the database accounts) is
written here, from the same role variables.

No registry is needed: the image is built FROM the sandbox host image (fleet/sandbox/image.py) with
Debian's packages, and the app's Python dependencies come from a wheelhouse built on this
machine, as a release's do. Everything `up` creates carries the label DEV_LABEL, and `down`
removes by that label.
"""

from __future__ import annotations

import hashlib
import json
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import jinja2
import yaml

from fleet import apt
from fleet.ansible_filters import ANSIBLE_FILTERS, settle, sha_hash
from fleet.sandbox import image

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
ROLES = ROOT / "roles"
APP_DIR = ROOT / "app"
DEV_DIR = ROOT / ".dev"
# Not flaskfleet-*: the sandbox's containers go by that prefix and this stack is no part of it.
PROJECT = "fleetdev"
DEV_LABEL = "org.flaskfleet.dev"
IMAGE_REPOSITORY = "flaskfleet-dev"
# Loopback only, and clear of the sandbox's 8080/8443.
HTTP_PORT = 8180
HTTPS_PORT = 8543
# The roles whose defaults the dev configs are rendered with.
DEV_ROLES = ("app", "celery", "mariadb", "nginx", "redis")
# Where the app's code appears in the containers: the fleet's release layout, one release "dev".
RELEASE_ID = "dev"
UP_TIMEOUT_S = 300

# What differs from a fleet host. Everything else is the roles' defaults.
DEV_VALUES: dict[str, Any] = {
    # Containers reach each other by service name on the compose network.
    "app_db_host": "db",
    "app_redis_host": "redis",
    "app_gunicorn_bind_address": "0.0.0.0",
    "mariadb_bind_address": "0.0.0.0",
    "redis_bind_address": "0.0.0.0",
    "nginx_upstream_servers": ["web"],
    "nginx_upstream_drained": [],
    # gunicorn's port is never published; the compose network is the only way to it.
    "app_gunicorn_forwarded_allow_ips": ["*"],
    # A laptop, not a server: small pools, few processes.
    "app_gunicorn_workers": 2,
    "celery_worker_concurrency": 1,
    "mariadb_innodb_buffer_pool_size_mb": 128,
    "mariadb_innodb_log_file_size_mb": 64,
    "redis_maxmemory_mb": 64,
    "nginx_worker_connections": 512,
    # The published HTTPS port, for the HTTP -> HTTPS redirect; no HSTS for a local name.
    "nginx_redirect_https_port": HTTPS_PORT,
    "nginx_hsts_max_age": 0,
    "nginx_static_root": "/srv/fleetapp/static",
    "app_extra_env": {"FLEETAPP_ENV": "development"},
    "app_program": {"name": "fleetapp-web", "port": 8000, "autostart": True,
                    "log": "gunicorn.log"},
    "celery_autostart": True,
}
# nginx writes these; in the image they point at the container's stdout/stderr (`dev.logs`).
NGINX_LOG_FILES = {"access.log": "/dev/stdout", "error.log": "/dev/stderr",
                   "fleetapp.access.log": "/dev/stdout", "fleetapp.error.log": "/dev/stderr"}

DOCKERFILE = """\
# Rendered by fleet/sandbox/devstack.py. One image for every dev service: the sandbox host image
# plus the Debian packages the roles install, and the app's pinned dependencies from a local
# wheelhouse.
ARG BASE
FROM ${{BASE}}
ENV DEBIAN_FRONTEND=noninteractive PYTHONDONTWRITEBYTECODE=1 PYTHONUNBUFFERED=1
# Packages must not start their services while the image is built.
RUN printf '#!/bin/sh\\nexit 101\\n' > /usr/sbin/policy-rc.d && chmod 0755 /usr/sbin/policy-rc.d \\
    && apt-get update -qq \\
    && apt-get install -y -qq --no-install-recommends {packages} \\
    && apt-get clean && rm -rf /var/lib/apt/lists/* \\
    && rm -f /etc/nginx/sites-enabled/default
RUN {log_links}
RUN useradd --system --home-dir {app_root} --shell /usr/sbin/nologin {app_user} \\
    && install -d -o root -g root -m 0755 {app_root} {app_root}/releases {release_dir} \\
    && install -d -o {app_user} -g {app_user} -m 0750 {app_shared} {beat_dir} {app_log_dir} \\
    && ln -s {release_dir} {app_current}
COPY requirements.txt /tmp/requirements.txt
COPY wheels /tmp/wheels
# The app itself is not installed: a .pth file puts the mounted source on the path instead.
RUN python3 -m venv {release_dir}/venv \\
    && {release_dir}/venv/bin/pip install --quiet --no-index --find-links /tmp/wheels \\
        -r /tmp/requirements.txt \\
    && echo {release_dir}/src > "$({release_dir}/venv/bin/python -c \\
        'import sysconfig; print(sysconfig.get_paths()["purelib"])')/fleetapp-dev-src.pth" \\
    && rm -rf /tmp/wheels /tmp/requirements.txt
STOPSIGNAL SIGTERM
CMD ["sleep", "infinity"]
"""


class DevStackError(RuntimeError):
    """The dev stack could not be rendered, built, started or removed."""


# --- Rendering ---------------------------------------------------------------------------

def dev_variables(secret_values: dict[str, str]) -> dict[str, Any]:
    """The defaults of DEV_ROLES resolved for one dev host, DEV_VALUES and the secrets on top."""
    host = {"fleet_private_address": "0.0.0.0"}
    context: dict[str, Any] = {
        "inventory_hostname": "dev",
        "fleet_private_address": "0.0.0.0",
        "groups": {g: ["dev"] for g in ("loadbalancers", "app", "workers", "beat", "db",
                                        "redis")},
        "hostvars": {"dev": host},
        "ansible_facts": {"memtotal_mb": 1024, "processor_vcpus": 1},
    }
    for role in DEV_ROLES:
        context.update(yaml.safe_load((ROLES / role / "defaults" / "main.yml").read_text()))
    context.update(DEV_VALUES)
    context.update(secret_values)
    context.update(task_facts(context))
    return settle(context)


def task_facts(v: dict[str, Any]) -> dict[str, Any]:
    """What the roles' tasks work out on a host before rendering (set_fact), for dev.

    The Redis password's digests (one: dev never rotates), and no run-time admin user of Redis
    (nothing in dev changes passwords while it runs).
    """
    return {"redis_password_hashes": [sha_hash(v["redis_password"], "sha256")],
            "redis_admin_password": ""}


def render_template(name: str, variables: dict[str, Any]) -> str:
    """One file of templates/, rendered as Ansible's template module would (trim_blocks)."""
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)),
                             undefined=jinja2.StrictUndefined, trim_blocks=True,
                             keep_trailing_newline=True)
    env.filters.update(ANSIBLE_FILTERS)
    try:
        return env.get_template(name).render(variables)
    except jinja2.TemplateError as exc:
        raise DevStackError(f"templates/{name}: cannot render for the dev stack: {exc}") from exc


def program_command(supervisor_conf: str) -> list[str]:
    """The `command=` of a rendered supervisord program, as argv for compose.

    The dev containers run the fleet's program commands directly; the supervisord expansions in
    them become what supervisord would make of them for process 0.
    """
    for line in supervisor_conf.splitlines():
        if line.startswith("command="):
            command = line.removeprefix("command=").replace("%(process_num)d", "0")
            return shlex.split(command.replace("%%", "%"))
    raise DevStackError("rendered supervisor program has no command= line")


def _database_sql(v: dict[str, Any]) -> str:
    """The accounts the mariadb role makes with Ansible modules, as an idempotent init file."""
    database = v["mariadb_database"]

    def account(user: str, password: str, privileges: list[str]) -> list[str]:
        quoted = password.replace("\\", "\\\\").replace("'", "\\'")
        return [f"CREATE USER IF NOT EXISTS '{user}'@'%' IDENTIFIED BY '{quoted}';",
                f"ALTER USER '{user}'@'%' IDENTIFIED BY '{quoted}';",
                f"GRANT {', '.join(privileges)} ON `{database}`.* TO '{user}'@'%';"]

    lines = [f"CREATE DATABASE IF NOT EXISTS `{database}` CHARACTER SET "
             f"{v['mariadb_character_set']} COLLATE {v['mariadb_collation']};"]
    lines += account(v["mariadb_app_user"], v["mariadb_app_password"],
                     list(v["mariadb_app_privileges"]))
    lines += account(v["mariadb_migration_user"], v["mariadb_migration_password"],
                     list(v["mariadb_migration_privileges"]))
    return "\n".join(["-- Rendered by fleet/sandbox/devstack.py from the mariadb role's variables.",
                      *lines, "FLUSH PRIVILEGES;", ""])


def load_secrets(dev_dir: Path = DEV_DIR) -> dict[str, str]:
    """Random dev secrets, made once per checkout and kept so the data volume keeps working."""
    path = dev_dir / "secrets.json"
    if path.is_file():
        return json.loads(path.read_text())
    values = {name: secrets.token_urlsafe(24) for name in
              ("app_secret_key", "mariadb_app_password", "mariadb_migration_password",
               "redis_password")}
    dev_dir.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(values, indent=2) + "\n")
    path.chmod(0o600)
    return values


@dataclass(frozen=True)
class Rendered:
    """What `render` wrote: the compose file, and the image recipe's tag."""

    compose_file: Path
    image_tag: str
    variables: dict[str, Any]


def _write(path: Path, text: str, mode: int = 0o644) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    path.chmod(mode)


def dockerfile(v: dict[str, Any]) -> str:
    """The image recipe: the Debian packages the roles install, the fleet's app layout."""
    packages = sorted({*v["nginx_packages"], *v["mariadb_packages"], v["redis_package"],
                       *v["app_packages"], "python3-venv"})
    release_dir = f"{v['app_releases_dir']}/{RELEASE_ID}"
    links = " && ".join(f"ln -sf {target} {v['nginx_log_dir']}/{name}"
                        for name, target in sorted(NGINX_LOG_FILES.items()))
    return DOCKERFILE.format(
        packages=" ".join(packages), log_links=f"install -d {v['nginx_log_dir']} && {links}",
        app_root=v["app_root"], app_user=v["app_user"], release_dir=release_dir,
        app_shared=v["app_shared_dir"], beat_dir=str(Path(v["app_beat_schedule_file"]).parent),
        app_log_dir=v["app_log_dir"], app_current=v["app_current_dir"])


def render(dev_dir: Path = DEV_DIR, app_dir: Path = APP_DIR,
           base_image: str = image.CURRENT_TAG) -> Rendered:
    """Render every config, the image recipe and the compose file into `dev_dir`."""
    v = dev_variables(load_secrets(dev_dir))
    config = dev_dir / "config"
    files = {
        "app/app.env": render_template("app/app.env.j2", v),
        "app/gunicorn.conf.py": render_template("app/gunicorn.conf.py.j2", v),
        "app/run.sh": render_template("app/run.sh.j2", v),
        "nginx/nginx.conf": render_template("nginx/nginx.conf.j2", v),
        "nginx/conf.d/fleetapp-upstream.conf": render_template("nginx/upstream.conf.j2", v),
        "nginx/conf.d/fleetapp.conf": render_template("nginx/site.conf.j2", v),
        "nginx/maintenance/maintenance.html": render_template("nginx/maintenance.html.j2", v),
        "mariadb/60-flaskfleet.cnf": render_template("mariadb/my.cnf.j2", v),
        "mariadb/init.sql": _database_sql(v),
        "redis/redis.conf": render_template("redis/redis.conf.j2", v),
    }
    for name, text in files.items():
        _write(config / name, text, 0o755 if name.endswith(".sh") else 0o644)
    _write_tls(config / "nginx" / "tls", v)

    build = dev_dir / "build"
    _write(build / "Dockerfile", dockerfile(v))
    shutil.copy2(app_dir / "requirements.txt", build / "requirements.txt")
    tag = f"{IMAGE_REPOSITORY}:{_recipe_hash(build, base_image)}"

    web = program_command(render_template("app/gunicorn.supervisor.conf.j2", v))
    programs = {entry["name"]: program_command(render_template(
        "celery/program.supervisor.conf.j2", {**v, "celery_program": entry}))
        for entry in v["app_programs"]}
    compose = compose_spec(v, tag, config.resolve(), app_dir.resolve(),
                           {"web": [*web, "--reload"], "worker": programs["worker"],
                            "beat": programs["beat"]})
    stamp_configs(compose, config.resolve())
    compose_file = dev_dir / "compose.yml"
    _write(compose_file, "# Rendered by fleet/sandbox/devstack.py (`fab dev.up`); do not edit.\n"
           + yaml.dump(compose, Dumper=_PlainDumper, sort_keys=False, width=100))
    return Rendered(compose_file, tag, v)


CONFIG_LABEL = "org.flaskfleet.dev.config"


def stamp_configs(compose: dict[str, Any], config: Path) -> None:
    """Label each service with a hash of the rendered configs it mounts.

    compose recreates a container only when its service definition changes, not when a file it
    mounts does; with the hash in a label, a changed template reaches its service on `dev.up`.
    """
    for service in compose["services"].values():
        digest = hashlib.sha256()
        for spec in service.get("volumes", []):
            source = Path(spec.split(":")[0])
            if not source.is_relative_to(config):
                continue
            files = sorted(source.rglob("*")) if source.is_dir() else [source]
            for path in (f for f in files if f.is_file()):
                digest.update(path.relative_to(config).as_posix().encode() + b"\0")
                digest.update(path.read_bytes() + b"\0")
        service["labels"] = {**service["labels"], CONFIG_LABEL: digest.hexdigest()[:16]}


class _PlainDumper(yaml.SafeDumper):
    """Writes shared values out in full: a file people read, not &id001 anchors."""

    def ignore_aliases(self, data: Any) -> bool:
        return True


def _write_tls(directory: Path, v: dict[str, Any]) -> None:
    """A self-signed certificate for the dev site, made once (the sandbox's lb makes its own)."""
    cert = directory / Path(v["nginx_tls_certificate_path"]).name
    key = directory / Path(v["nginx_tls_key_path"]).name
    if cert.is_file() and key.is_file():
        return
    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    private = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "localhost")])
    now = datetime.now(UTC)
    certificate = (
        x509.CertificateBuilder().subject_name(name).issuer_name(name)
        .public_key(private.public_key()).serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(minutes=5)).not_valid_after(now + timedelta(days=825))
        .add_extension(x509.SubjectAlternativeName([x509.DNSName("localhost")]), critical=False)
        .sign(private, hashes.SHA256()))
    _write(cert, certificate.public_bytes(serialization.Encoding.PEM).decode())
    # Read by nginx's master process, which runs as root in its container.
    _write(key, private.private_bytes(serialization.Encoding.PEM,
                                      serialization.PrivateFormat.PKCS8,
                                      serialization.NoEncryption()).decode(), 0o600)


def _recipe_hash(build: Path, base_image: str) -> str:
    digest = hashlib.sha256(base_image.encode())
    for name in ("Dockerfile", "requirements.txt"):
        digest.update((build / name).read_bytes())
    return digest.hexdigest()[:12]


def compose_spec(v: dict[str, Any], tag: str, config: Path, app_dir: Path,
                 commands: dict[str, list[str]]) -> dict[str, Any]:
    """The compose file as data: six services, one image, everything labelled."""
    labels = {DEV_LABEL: PROJECT}
    release_dir = f"{v['app_releases_dir']}/{RELEASE_ID}"
    app_mounts = [
        f"{app_dir}:{release_dir}/src:ro",
        f"{config}/app/app.env:{v['app_env_file']}:ro",
        f"{config}/app/gunicorn.conf.py:{v['app_gunicorn_config']}:ro",
        f"{config}/app/run.sh:{v['app_run_wrapper']}:ro",
    ]
    migrated = {"condition": "service_completed_successfully"}
    healthy = {"condition": "service_healthy"}

    def app_service(command: list[str], depends: dict[str, Any]) -> dict[str, Any]:
        return {"image": tag, "user": v["app_user"], "command": command,
                "volumes": app_mounts, "labels": labels, "depends_on": depends,
                "restart": "unless-stopped"}

    redis_ping = (f"redis-cli --no-auth-warning -a {shlex.quote(v['redis_password'])} "
                  f"-p {v['redis_port']} ping | grep -q PONG")
    web_probe = (f"import urllib.request; urllib.request.urlopen('http://127.0.0.1:"
                 f"{v['app_gunicorn_port']}{v['app_health_path']}', timeout=3)")
    check = {"interval": "2s", "timeout": "5s", "retries": 60}
    migrate_command = [v["app_run_wrapper"], "sh", "-c", f"cd src && {v['app_migrate_command']}"]
    services: dict[str, Any] = {
        "db": {
            "image": tag, "labels": labels,
            "command": ["sh", "-c", "install -d -o mysql -g mysql /run/mysqld && exec mariadbd "
                        "--user=mysql --init-file=/etc/mysql/flaskfleet-dev-init.sql"],
            "volumes": [f"{config}/mariadb/60-flaskfleet.cnf:/etc/mysql/mariadb.conf.d/"
                        "60-flaskfleet.cnf:ro",
                        f"{config}/mariadb/init.sql:/etc/mysql/flaskfleet-dev-init.sql:ro",
                        "dbdata:/var/lib/mysql"],
            "healthcheck": {"test": ["CMD", "mariadb-admin", "--protocol=socket",
                                     f"--socket={v['mariadb_socket']}", "ping"], **check},
        },
        "redis": {
            "image": tag, "labels": labels,
            # The fleet's file logs to /var/log/redis; here the log goes to the container's.
            "command": ["sh", "-c", "install -d -o redis -g redis /run/redis && exec runuser "
                        "-u redis -- redis-server /etc/redis/redis.conf --logfile ''"],
            "volumes": [f"{config}/redis/redis.conf:/etc/redis/redis.conf:ro",
                        "redisdata:/var/lib/redis"],
            "healthcheck": {"test": ["CMD-SHELL", redis_ping], **check},
        },
        "migrate": {"image": tag, "user": v["app_user"], "command": migrate_command,
                    "volumes": app_mounts, "labels": labels,
                    "depends_on": {"db": healthy, "redis": healthy}},
        "web": {**app_service(commands["web"], {"migrate": migrated}),
                "healthcheck": {"test": ["CMD", f"{release_dir}/venv/bin/python", "-c",
                                         web_probe], **check}},
        "worker": app_service(commands["worker"], {"migrate": migrated}),
        "beat": app_service(commands["beat"], {"migrate": migrated}),
        "nginx": {
            "image": tag, "labels": labels,
            "command": ["nginx", "-g", "daemon off;"],
            "ports": [f"127.0.0.1:{HTTP_PORT}:{v['nginx_http_port']}",
                      f"127.0.0.1:{HTTPS_PORT}:{v['nginx_https_port']}"],
            "volumes": [f"{config}/nginx/nginx.conf:/etc/nginx/nginx.conf:ro",
                        f"{config}/nginx/conf.d:{v['nginx_conf_dir']}:ro",
                        f"{config}/nginx/tls:{v['nginx_tls_dir']}:ro",
                        f"{config}/nginx/maintenance:{v['nginx_maintenance_dir']}:ro",
                        f"{app_dir}/{v['app_static_dir']}:{v['nginx_static_root']}:ro"],
            "depends_on": {"web": healthy},
            "restart": "unless-stopped",
        },
    }
    return {
        "services": services,
        "networks": {"default": {"labels": labels}},
        "volumes": {"dbdata": {"labels": labels}, "redisdata": {"labels": labels}},
    }


# --- Running -----------------------------------------------------------------------------

def compose_command() -> list[str]:
    """docker-compose (Debian's 1.29) or the `docker compose` plugin, whichever is here.

    As root on Debian a missing one is installed (package docker-compose), as `make engine`
    installs the engine; elsewhere the error says what to install.
    """
    if shutil.which("docker-compose"):
        return ["docker-compose"]
    plugin = subprocess.run(["docker", "compose", "version"], capture_output=True, text=True)
    if plugin.returncode == 0:
        return ["docker", "compose"]
    try:
        apt.ensure_packages(apt.DEV_PACKAGES)
    except apt.AptError as exc:
        raise DevStackError(f"no docker compose on this machine: {exc}") from None
    if not shutil.which("docker-compose"):
        raise DevStackError("docker-compose is still missing after installing it")
    return ["docker-compose"]


def _compose(compose_file: Path, *args: str, check: bool = True,
             capture: bool = False) -> subprocess.CompletedProcess:
    argv = [*compose_command(), "--project-name", PROJECT, "--file", str(compose_file), *args]
    run = subprocess.run(argv, capture_output=capture, text=True)
    if check and run.returncode != 0:
        detail = (run.stderr or "")[-3000:] if capture else ""
        raise DevStackError(f"`{' '.join(argv[:2])} {' '.join(args)}` failed "
                            f"(exit {run.returncode}){': ' + detail if detail else ''}")
    return run


def build_wheelhouse(app_dir: Path, build: Path, say=print) -> None:
    """The app's pinned dependencies as wheels, rebuilt only when requirements.txt changes."""
    wheels = build / "wheels"
    stamp = wheels / ".requirements.sha256"
    wanted = hashlib.sha256((app_dir / "requirements.txt").read_bytes()).hexdigest()
    if stamp.is_file() and stamp.read_text() == wanted:
        return
    shutil.rmtree(wheels, ignore_errors=True)
    wheels.mkdir(parents=True)
    say("dev: building the wheelhouse of app/requirements.txt")
    run = subprocess.run([sys.executable, "-m", "pip", "wheel", "--quiet",
                          "--disable-pip-version-check", "--wheel-dir", str(wheels),
                          "-r", str(app_dir / "requirements.txt")],
                         capture_output=True, text=True)
    if run.returncode != 0:
        raise DevStackError(f"pip wheel -r app/requirements.txt failed:\n{run.stderr[-3000:]}")
    stamp.write_text(wanted)


def ensure_image(rendered: Rendered, dev_dir: Path = DEV_DIR, app_dir: Path = APP_DIR,
                 say=print) -> str:
    """Build the dev image unless the image of this recipe exists."""
    import docker
    from docker.errors import BuildError, ImageNotFound

    client = docker.from_env()
    try:
        client.images.get(rendered.image_tag)
        say(f"dev: image {rendered.image_tag} is cached")
        return rendered.image_tag
    except ImageNotFound:
        pass
    try:
        client.images.get(image.CURRENT_TAG)
    except ImageNotFound:
        raise DevStackError(f"{image.CURRENT_TAG} is missing: run `make image` first") from None
    build = dev_dir / "build"
    build_wheelhouse(app_dir, build, say)
    started = time.monotonic()
    say(f"dev: building {rendered.image_tag} FROM {image.CURRENT_TAG} (Debian packages)")
    try:
        client.images.build(path=str(build), tag=rendered.image_tag, rm=True, forcerm=True,
                            buildargs={"BASE": image.CURRENT_TAG},
                            labels={DEV_LABEL: PROJECT})
    except BuildError as exc:
        tail = "".join(str(chunk.get("stream", "")) for chunk in exc.build_log)[-3000:]
        raise DevStackError(f"building {rendered.image_tag} failed: {exc.msg}\n{tail}") from exc
    say(f"dev: built {rendered.image_tag} in {time.monotonic() - started:.0f}s")
    return rendered.image_tag


def up(dev_dir: Path = DEV_DIR, app_dir: Path = APP_DIR, say=print) -> str:
    """Render, build if needed, start every service and wait until the page answers."""
    started = time.monotonic()
    rendered = render(dev_dir, app_dir)
    ensure_image(rendered, dev_dir, app_dir, say)
    say("dev: starting db, redis, migrate, web, worker, beat, nginx")
    _compose(rendered.compose_file, "up", "--detach", "--remove-orphans")
    url = f"https://127.0.0.1:{HTTPS_PORT}/"
    wait_ready(url, rendered.compose_file)
    say(f"dev: up in {time.monotonic() - started:.1f}s; {url} (self-signed; "
        f"http://127.0.0.1:{HTTP_PORT}/ redirects there)")
    return url


def wait_ready(url: str, compose_file: Path, timeout: float = UP_TIMEOUT_S) -> None:
    """Until nginx answers the page with 200 and /readyz is green (worker and beat included)."""
    import ssl
    import urllib.error
    import urllib.request

    context = ssl.create_default_context()
    context.check_hostname = False
    context.verify_mode = ssl.CERT_NONE
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        try:
            for path in ("", "readyz"):
                with urllib.request.urlopen(url + path, timeout=5, context=context) as response:
                    response.read()
            return
        except (urllib.error.URLError, OSError) as exc:
            last = str(exc)
        time.sleep(1)
    states = _compose(compose_file, "ps", check=False, capture=True).stdout
    raise DevStackError(f"{url} did not become ready within {timeout:.0f}s (last: {last})\n"
                        f"{states}\nsee `fab dev.logs`")


def down(keep_data: bool = False, dev_dir: Path = DEV_DIR) -> list[str]:
    """Remove the containers, network and (unless keep_data) volumes; returns what went."""
    before = leftovers()
    compose_file = dev_dir / "compose.yml"
    if compose_file.is_file() and any(before.values()):
        args = ["down", "--remove-orphans", "--timeout", "20"]
        if not keep_data:
            args.append("--volumes")
        _compose(compose_file, *args, capture=True)
    # By label too: also what a lost or changed compose file no longer names.
    _remove_labelled(keep_data)
    after = leftovers()
    return [f"{kind[:-1]} {name}" for kind, names in before.items() for name in names
            if name not in after[kind]]


def _remove_labelled(keep_data: bool) -> None:
    import docker

    client = docker.from_env()
    selector = {"label": f"{DEV_LABEL}={PROJECT}"}
    for container in client.containers.list(all=True, filters=selector):
        container.remove(force=True)
    for network in client.networks.list(filters=selector):
        network.remove()
    if not keep_data:
        for volume in client.volumes.list(filters=selector):
            volume.remove(force=True)


def remove_images() -> list[str]:
    """Remove every dev image built here (for `make clean`; `dev.down` keeps them as a cache)."""
    import docker

    client = docker.from_env()
    removed = []
    for found in client.images.list(name=IMAGE_REPOSITORY):
        for tag in found.tags:
            client.images.remove(tag, force=True)
            removed.append(tag)
    return removed


def leftovers() -> dict[str, list[str]]:
    """Every container, network and volume carrying the dev label (empty after `down`)."""
    import docker

    client = docker.from_env()
    selector = {"label": f"{DEV_LABEL}={PROJECT}"}
    return {"containers": [c.name for c in client.containers.list(all=True, filters=selector)],
            "networks": [n.name for n in client.networks.list(filters=selector)],
            "volumes": [v.name for v in client.volumes.list(filters=selector)]}


SERVICES = ("nginx", "web", "worker", "beat", "migrate", "db", "redis")
DEV_ADMIN_EMAIL = "admin@example.org"


def seed(password: str, email: str = DEV_ADMIN_EMAIL, dev_dir: Path = DEV_DIR) -> str:
    """The app's own `seed-demo`, run in the web container as the fleet would run it."""
    compose_file = dev_dir / "compose.yml"
    if not compose_file.is_file():
        raise DevStackError("the dev stack was never started here (run `fab dev.up`)")
    if len(password) < 8:
        raise DevStackError("--password must be at least 8 characters")
    v = dev_variables(load_secrets(dev_dir))
    run = _compose(compose_file, "exec", "-T", "-e", f"FLEETAPP_SEED_ADMIN_PASSWORD={password}",
                   "web", v["app_run_wrapper"], "flask", "--app", v["app_wsgi"], "seed-demo",
                   "--admin-email", email, capture=True)
    return run.stdout.strip()


def logs(service: str | None = None, lines: int = 100, follow: bool = False,
         dev_dir: Path = DEV_DIR) -> None:
    """Print (or follow) the last lines of one service's log, or of all of them."""
    if service is not None and service not in SERVICES:
        raise DevStackError(f"unknown service {service!r}; one of: {', '.join(SERVICES)}")
    compose_file = dev_dir / "compose.yml"
    if not compose_file.is_file():
        raise DevStackError("the dev stack was never started here (run `fab dev.up`)")
    args = ["logs", "--tail", str(lines)] + (["--follow"] if follow else [])
    if not sys.stdout.isatty():
        args.append("--no-color")
    _compose(compose_file, *args, *([service] if service else []))


def main() -> int:
    if sys.argv[1:] == ["render"]:
        print(render().compose_file)
        return 0
    print("usage: python -m fleet.sandbox.devstack render", file=sys.stderr)
    return 2


if __name__ == "__main__":
    raise SystemExit(main())
