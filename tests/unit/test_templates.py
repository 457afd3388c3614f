"""Every template in templates/ renders with sample variables, and what it renders is valid.

The sample variables are the roles' own defaults, resolved the way Ansible would for one
all-in-one host, so a template and the defaults it relies on cannot drift apart. Templates are
plain Jinja2; the few Ansible filters they use come from fleet/ansible_filters.py.
"""

from __future__ import annotations

import configparser
import hashlib
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import jinja2
import pytest
import yaml

from fleet.ansible_filters import ANSIBLE_FILTERS, settle

ROOT = Path(__file__).resolve().parents[2]
TEMPLATES = ROOT / "templates"
ROLES = ROOT / "roles"
ADDRESS = "10.0.0.5"

TRICKY = "it's a $HOME \"quoted\" value; with spaces & `ticks`"
SAMPLE_SECRETS = {
    "app_secret_key": TRICKY,
    "mariadb_app_password": "app/pw:with@chars",
    "mariadb_migration_password": "migrate-pw",
    "redis_password": "redis-pw",
}


def _configure(env: jinja2.Environment) -> jinja2.Environment:
    env.filters.update(ANSIBLE_FILTERS)
    return env


def resolve_defaults(overrides: dict[str, Any]) -> dict[str, Any]:
    """Every role default, templated against one host that is in every group."""
    hostvars_self: dict[str, Any] = {"fleet_private_address": ADDRESS}
    context: dict[str, Any] = {
        "inventory_hostname": "aio1",
        "fleet_private_address": ADDRESS,
        "groups": {g: ["aio1"] for g in
                   ("loadbalancers", "app", "workers", "beat", "db", "redis")},
        "hostvars": {"aio1": hostvars_self},
        "ansible_facts": {"memtotal_mb": 4096, "processor_vcpus": 2,
                          "virtualization_role": "host", "virtualization_type": ""},
        "role_path": str(ROLES / "app"),
        **SAMPLE_SECRETS,
    }
    for defaults in sorted(ROLES.glob("*/defaults/main.yml")):
        context.update(yaml.safe_load(defaults.read_text()))
    context.update(overrides)
    return settle(context)


def render(template: str, context: dict[str, Any]) -> str:
    # The template module's settings: trim_blocks on, trailing newline kept.
    env = _configure(jinja2.Environment(
        loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
        trim_blocks=True, keep_trailing_newline=True))
    return env.get_template(template).render(context)


@pytest.fixture()
def context(tmp_path) -> dict[str, Any]:
    return resolve_defaults({
        "app_env_file": str(tmp_path / "app.env"),
        "app_current_dir": str(tmp_path / "current"),
        "app_celery_autostart": False,
        "app_program": {"name": "fleetapp-web", "port": 8000, "autostart": False,
                        "log": "gunicorn.log"},
        "nginx_upstream_drained": [],
        "celery_autostart": True,
        "celery_program": {"name": "worker", "group": "workers", "command": "rq worker"},
        "celery_host_programs": [
            {"name": "worker", "group": "workers", "command": "rq worker",
             "ready": "rq info --only-workers"},
            {"name": "beat", "group": "beat", "command": "celery beat"}],
        "nginx_tls_mode": "self_signed",
    })


ALL_TEMPLATES = sorted(p.relative_to(TEMPLATES).as_posix() for p in TEMPLATES.rglob("*.j2"))


def test_templates_exist():
    assert len(ALL_TEMPLATES) >= 15


@pytest.mark.parametrize("template", ALL_TEMPLATES)
def test_every_template_renders(template, context):
    text = render(template, context)
    assert text.strip()
    assert "{{" not in text and "{%" not in text


def test_every_template_is_used_by_a_role():
    tasks = "\n".join(p.read_text() for p in ROLES.glob("*/tasks/*.yml"))
    for template in ALL_TEMPLATES:
        directory, name = template.split("/", 1)
        used = f"templates/{template}" in tasks or (
            f"templates/{directory}/{{{{ item }}}}.j2" in tasks
            and name.removesuffix(".j2") in tasks)
        assert used, f"templates/{template} is not rendered by any role"


# --- nginx -------------------------------------------------------------------------------


def _self_signed(directory: Path) -> tuple[Path, Path]:
    cert, key = directory / "site.crt", directory / "site.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2",
                    "-subj", "/CN=localhost", "-keyout", str(key), "-out", str(cert)],
                   check=True, capture_output=True)
    return cert, key


def test_rendered_nginx_config_passes_nginx_t(tmp_path):
    """nginx.conf + upstream + site, rendered into a private prefix, pass `nginx -t`."""
    # `make unit` installs both (make sysdeps); missing tools are a broken setup, not a skip.
    assert shutil.which("openssl"), "openssl is not installed: run `make sysdeps`"
    assert shutil.which("nginx") or Path("/usr/sbin/nginx").exists(), \
        "nginx is not installed: run `make sysdeps`"
    for sub in ("conf.d", "log", "tmp", "static", "maintenance"):
        (tmp_path / sub).mkdir()
    cert, key = _self_signed(tmp_path)
    ctx = resolve_defaults({
        "nginx_conf_dir": str(tmp_path / "conf.d"),
        "nginx_log_dir": str(tmp_path / "log"),
        "nginx_temp_dir": str(tmp_path / "tmp"),
        "nginx_static_root": str(tmp_path / "static"),
        "nginx_maintenance_dir": str(tmp_path / "maintenance"),
        "nginx_tls_certificate_path": str(cert),
        "nginx_tls_key_path": str(key),
        "nginx_upstream_servers": ["10.0.0.3", "10.0.0.4"],
        "nginx_upstream_drained": ["10.0.0.4"],
    })
    main = tmp_path / "nginx.conf"
    # Dynamic modules load relative to the prefix; this machine's set is no business of ours.
    main.write_text(render("nginx/nginx.conf.j2", ctx).replace(
        "include /etc/nginx/modules-enabled/*.conf;", ""))
    upstream = render("nginx/upstream.conf.j2", ctx)
    (tmp_path / "conf.d" / "fleetapp-upstream.conf").write_text(upstream)
    (tmp_path / "conf.d" / "fleetapp.conf").write_text(render("nginx/site.conf.j2", ctx))
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    result = subprocess.run([nginx, "-t", "-p", str(tmp_path), "-c", str(main),
                             "-e", str(tmp_path / "log" / "error.log")],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    assert "server 10.0.0.3:8000 max_fails=3 fail_timeout=10s;" in upstream
    assert "server 10.0.0.4:8000 max_fails=3 fail_timeout=10s down;" in upstream


def test_site_behaviour(context):
    site = render("nginx/site.conf.j2", context)
    assert "return 301 https://$host$request_uri;" in site
    assert "listen 443 ssl http2 default_server;" in site
    assert "proxy_set_header X-Forwarded-Proto $scheme;" in site
    # Retries only for idempotent requests: nginx's default unless non_idempotent is listed.
    assert "proxy_next_upstream error timeout http_502 http_503 http_504;" in site
    assert "non_idempotent;" not in site
    assert 'add_header Cache-Control "public, max-age=31536000, immutable" always;' in site
    assert "Strict-Transport-Security" in site
    assert "if (-f /var/www/fleetapp-maintenance/maintenance.on)" in site


def test_site_redirect_keeps_a_published_port(context):
    site = render("nginx/site.conf.j2", {**context, "nginx_redirect_https_port": 8443})
    assert "return 301 https://$host:8443$request_uri;" in site


def test_no_hsts_when_disabled(context):
    assert "Strict-Transport-Security" not in render(
        "nginx/site.conf.j2", {**context, "nginx_hsts_max_age": 0})


# --- app ---------------------------------------------------------------------------------


def _sourced_env(env_file: Path) -> dict[str, str]:
    out = subprocess.run(["sh", "-c", 'set -a; . "$1"; env -0', "sh", str(env_file)],
                         capture_output=True, check=True, env={"PATH": os.environ["PATH"]})
    pairs = (item.split("=", 1) for item in out.stdout.decode().split("\0") if "=" in item)
    return dict(pairs)


def test_env_file_round_trips_through_sh(context, tmp_path):
    env_file = Path(context["app_env_file"])
    env_file.write_text(render("app/app.env.j2", context))
    values = _sourced_env(env_file)
    assert values["FLEETAPP_SECRET_KEY"] == TRICKY
    assert values["FLEETAPP_ENV"] == "production"
    assert values["FLEETAPP_DATABASE_URL"] == (
        f"mysql+pymysql://fleetapp:app/pw%3Awith%40chars@{ADDRESS}:3306/fleetapp?charset=utf8mb4")
    assert values["FLEETAPP_MIGRATION_DATABASE_URL"].startswith("mysql+pymysql://fleetapp_migrate:")
    cache, broker, results = (values[n] for n in (
        "FLEETAPP_CACHE_REDIS_URL", "FLEETAPP_BROKER_URL", "FLEETAPP_RESULT_BACKEND"))
    assert [u.rsplit("/", 1)[1] for u in (cache, broker, results)] == ["0", "1", "2"]


def test_env_file_follows_the_inventory_mapping(context):
    ctx = {**context, "app_env": {"OTHER_APP_DSN": "x"}, "app_extra_env": {"EXTRA": "1"}}
    text = render("app/app.env.j2", ctx)
    assert "FLEETAPP" not in text
    assert "OTHER_APP_DSN=x" in text and "EXTRA=1" in text


@pytest.mark.parametrize(("preset", "names"), [
    ("common", {"SECRET_KEY", "DATABASE_URL", "REDIS_URL", "CELERY_BROKER_URL",
                "CELERY_RESULT_BACKEND"}),
    ("flask", {"FLASK_SECRET_KEY", "FLASK_SQLALCHEMY_DATABASE_URI", "FLASK_DATABASE_URL",
               "FLASK_REDIS_URL", "FLASK_CELERY_BROKER_URL", "FLASK_CELERY_RESULT_BACKEND"}),
])
def test_an_env_preset_maps_the_kit_values_to_the_apps_names(tmp_path, preset, names):
    ctx = resolve_defaults({"app_env_preset": preset, "app_env_file": str(tmp_path / "app.env")})
    Path(ctx["app_env_file"]).write_text(render("app/app.env.j2", ctx))
    values = _sourced_env(Path(ctx["app_env_file"]))
    assert names <= set(values) and not any(n.startswith("FLEETAPP_") for n in values)
    secret = next(n for n in names if n.endswith("SECRET_KEY"))
    assert values[secret] == TRICKY
    database = next(n for n in names if n.endswith(("DATABASE_URL", "DATABASE_URI")))
    assert values[database].startswith("mysql+pymysql://fleetapp:")
    assert set(ctx["app_migrate_env"]) <= names
    assert all(v.startswith("mysql+pymysql://fleetapp_migrate:")
               for v in ctx["app_migrate_env"].values())


def test_the_migration_run_gets_the_migration_url_under_the_apps_name(tmp_path):
    release = tmp_path / "releases" / "20260101T000000Z-abc1234"
    (release / "venv" / "bin").mkdir(parents=True)
    ctx = resolve_defaults({"app_env_preset": "common", "app_env_file": str(tmp_path / "app.env"),
                            "app_migrate_env_file": str(tmp_path / "migrate.env"),
                            "app_current_dir": str(tmp_path / "current")})
    Path(ctx["app_current_dir"]).symlink_to(release)
    Path(ctx["app_env_file"]).write_text(render("app/app.env.j2", ctx))
    Path(ctx["app_migrate_env_file"]).write_text(render(
        "app/app.env.j2", {**ctx, "app_env_file_values": ctx["app_migrate_env"]}))
    wrapper = tmp_path / "run"
    wrapper.write_text(render("app/run.sh.j2", ctx))

    def database_user(**env: str) -> str:
        url = subprocess.run(["sh", str(wrapper), "sh", "-c", 'echo "$DATABASE_URL"'],
                             capture_output=True, text=True, check=True,
                             env={"PATH": os.environ["PATH"], **env}).stdout.strip()
        return url.split("//", 1)[1].split(":", 1)[0]

    assert database_user() == "fleetapp"
    assert database_user(FLEET_MIGRATING="1") == "fleetapp_migrate"


def test_gunicorn_config_is_python_with_the_env(context, tmp_path):
    env_file = Path(context["app_env_file"])
    env_file.write_text(render("app/app.env.j2", context))
    config = render("app/gunicorn.conf.py.j2", context)
    namespace: dict[str, Any] = {}
    exec(compile(config, "gunicorn.conf.py", "exec"), namespace)  # our own template, rendered above
    assert namespace["bind"] == [f"{ADDRESS}:8000"]
    assert namespace["workers"] == 5  # 2 cores * 2 + 1
    assert namespace["graceful_timeout"] == 30
    assert namespace["max_requests_jitter"] == 100
    assert f"FLEETAPP_SECRET_KEY={TRICKY}" in namespace["raw_env"]


def _program(text: str) -> configparser.SectionProxy:
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",))
    parser.read_string(text)
    (section,) = [s for s in parser.sections() if s.startswith("program:")]
    return parser[section]


def test_gunicorn_program_stops_gracefully(context):
    program = _program(render("app/gunicorn.supervisor.conf.j2", context))
    assert int(program["stopwaitsecs"]) > context["app_gunicorn_graceful_timeout"]
    assert program["stopasgroup"] == "true" and program["killasgroup"] == "true"
    assert program["autostart"] == "false"
    assert program["user"] == "fleetapp"


def _app_program(context, entry):
    return _program(render("celery/program.supervisor.conf.j2",
                           {**context, "celery_program": entry, "celery_autostart": False}))


def test_celery_programs(context):
    worker_entry, beat_entry = context["app_programs"]
    worker = _app_program(context, worker_entry)
    assert "--hostname fleetapp-worker-%(process_num)d@%%h" in worker["command"]
    assert int(worker["stopwaitsecs"]) >= 60
    assert worker["process_name"] == "%(program_name)s-%(process_num)d"
    beat = _app_program(context, beat_entry)
    assert "--schedule /srv/fleetapp/shared/beat/celerybeat-schedule" in beat["command"]
    assert beat["user"] == "fleetapp"
    assert "process_name" not in beat and beat["stdout_logfile"].endswith("%(program_name)s.log")


def test_an_app_without_celery_has_no_programs_by_default():
    assert resolve_defaults({"app_celery": ""})["app_programs"] == []


def test_any_program_is_rendered_from_its_entry(context):
    rq = _app_program(context, {"name": "rq-worker", "group": "workers",
                                "command": "rq worker high", "numprocs": 3, "stopwaitsecs": 90,
                                "startsecs": 2})
    assert rq["command"] == "/usr/local/bin/fleetapp-run rq worker high"
    assert (rq["numprocs"], rq["stopwaitsecs"], rq["startsecs"]) == ("3", "90", "2")
    assert rq["stdout_logfile"].endswith("%(program_name)s-%(process_num)d.log")
    plain = _app_program(context, {"name": "mailer", "group": "beat",
                                   "command": "python -m mailer"})
    assert (plain["stopwaitsecs"], plain["startsecs"], plain["user"]) == ("60", "10", "fleetapp")


def test_run_wrapper_enters_the_live_release(context, tmp_path):
    release = tmp_path / "releases" / "20260101T000000Z-abc1234"
    (release / "venv" / "bin").mkdir(parents=True)
    Path(context["app_current_dir"]).symlink_to(release)
    Path(context["app_env_file"]).write_text(render("app/app.env.j2", context))
    wrapper = tmp_path / "run"
    wrapper.write_text(render("app/run.sh.j2", context))
    out = subprocess.run(["sh", str(wrapper), "sh", "-c",
                          'echo "$FLEETAPP_RELEASE_ID|$PWD|${PATH%%:*}|$FLEETAPP_SECRET_KEY"'],
                         capture_output=True, text=True, check=True).stdout.strip()
    assert out == f"{release.name}|{release}|{release}/venv/bin|{TRICKY}"


@pytest.mark.parametrize("layout", ["wheel", "plain tree"])
def test_run_wrapper_puts_the_releases_own_code_first(context, tmp_path, layout):
    # The dependencies' venv is shared (a link); the app is the release's site/: its wheel
    # installed there (console scripts in site/bin), or a link to src/ for a plain tree.
    release = tmp_path / "releases" / "20260101T000000Z-abc1234"
    deps = tmp_path / "venvs" / "0123456789abcdef"
    (deps / "bin").mkdir(parents=True)
    (release / "src" / "bin").mkdir(parents=True)
    (release / "venv").symlink_to(deps)
    if layout == "wheel":
        (release / "site" / "bin").mkdir(parents=True)
    else:
        (release / "site").symlink_to("src")
    Path(context["app_current_dir"]).symlink_to(release)
    Path(context["app_env_file"]).write_text(render("app/app.env.j2", context))
    wrapper = tmp_path / "run"
    wrapper.write_text(render("app/run.sh.j2", context))
    out = subprocess.run(["sh", str(wrapper), "sh", "-c", 'echo "$PYTHONPATH|$PATH"'],
                         capture_output=True, text=True, check=True,
                         env={"PATH": "/usr/bin:/bin", "PYTHONPATH": "/extra"}).stdout.strip()
    pythonpath, path = out.split("|")
    assert pythonpath == f"{release}/site:/extra"
    # A plain tree's own directories (src/bin here) never land on PATH.
    first = f"{release}/site/bin:{release}/venv/bin" if layout == "wheel" else f"{release}/venv/bin"
    assert path == f"{first}:/usr/bin:/bin"


# --- data services -----------------------------------------------------------------------


def test_redis_config(context):
    text = render("redis/redis.conf.j2", context)
    assert f"bind {ADDRESS}\n" in text
    assert "redis-pw" not in text
    assert f"#{hashlib.sha256(b'redis-pw').hexdigest()}" in text
    assert "appendonly yes" in text
    assert "maxmemory-policy volatile-lru" in text
    assert "maxmemory 1024mb" in text  # 25% of 4096 MiB


def test_mariadb_config(context):
    parser = configparser.RawConfigParser(allow_no_value=True)
    parser.read_string(render("mariadb/my.cnf.j2", context))
    assert parser["mysqld"]["bind-address"] == ADDRESS
    assert parser["mysqld"]["innodb_buffer_pool_size"] == "1638M"  # 40% of 4096 MiB
    assert "skip-name-resolve" in parser["mysqld"]


@pytest.mark.parametrize(("template", "shell"), [
    ("mariadb/backup.sh.j2", "bash"), ("app/run.sh.j2", "sh"), ("nginx/nginx-check.sh.j2", "sh"),
])
def test_scripts_parse(template, shell, context, tmp_path):
    script = tmp_path / "script"
    script.write_text(render(template, context))
    result = subprocess.run([shell, "-n", str(script)], capture_output=True, text=True)
    assert result.returncode == 0, result.stderr


def test_backup_script_dumps_consistently_with_retention(context):
    text = render("mariadb/backup.sh.j2", context)
    assert "mysqldump --single-transaction" in text
    assert "keep=7" in text
    assert "set -euo pipefail" in text


def test_supervisor_check_is_python(context):
    compile(render("supervisor/supervisor-check.py.j2", context), "check", "exec")


def test_supervisord_socket_restricted(context):
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",))
    parser.read_string(render("supervisor/supervisord.conf.j2", context))
    assert parser["unix_http_server"]["chmod"] == "0770"
    assert parser["unix_http_server"]["chown"] == "root:fleetapp"


def test_redis_config_during_a_rotation_accepts_both_passwords(context):
    """fab secrets.rollout: the old password stays accepted until clients moved; the kit's
    admin user (host-made password) may change passwords at run time."""
    plain = render("redis/redis.conf.j2", context)
    assert "flaskfleet-admin" not in plain  # no admin password read yet (a dry run)
    context.update(redis_password_previous="old-redis-pw", redis_admin_password="admin-pw")
    text = render("redis/redis.conf.j2", context)
    new, old = (hashlib.sha256(p).hexdigest() for p in (b"redis-pw", b"old-redis-pw"))
    default_user = next(line for line in text.splitlines() if line.startswith("user default "))
    assert default_user == f"user default on #{new} #{old} ~* &* +@all -@admin -flushall"
    admin = hashlib.sha256(b"admin-pw").hexdigest()
    assert f"user flaskfleet-admin on #{admin} ~* &* +@all\n" in text
    assert "old-redis-pw" not in text and "admin-pw" not in text
