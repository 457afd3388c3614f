"""The development stack's compose file and configs, as rendered (no Docker needed)."""

from __future__ import annotations

import hashlib
from pathlib import Path

import pytest
import yaml

from fleet.sandbox import devstack

SERVICES = {"db", "redis", "migrate", "web", "worker", "beat", "nginx"}
APP_SERVICES = ("migrate", "web", "worker", "beat")


@pytest.fixture()
def rendered(tmp_path: Path) -> devstack.Rendered:
    return devstack.render(dev_dir=tmp_path)


@pytest.fixture()
def compose(rendered: devstack.Rendered) -> dict:
    return yaml.safe_load(rendered.compose_file.read_text())


def _mounts(service: dict) -> dict[str, str]:
    """container path -> host path (named volumes by name)."""
    found = {}
    for spec in service.get("volumes", []):
        source, target = spec.split(":")[:2]
        found[target] = source
    return found


def test_every_service_is_there_built_from_one_local_image(compose, rendered):
    assert set(compose["services"]) == SERVICES
    for name, service in compose["services"].items():
        assert service["image"] == rendered.image_tag, name
        assert "build" not in service, name
    assert rendered.image_tag.startswith(f"{devstack.IMAGE_REPOSITORY}:")


def test_everything_compose_creates_carries_the_dev_label(compose):
    label = {devstack.DEV_LABEL: devstack.PROJECT}
    for name, service in compose["services"].items():
        assert service["labels"][devstack.DEV_LABEL] == devstack.PROJECT, name
    assert compose["networks"]["default"]["labels"] == label
    assert set(compose["volumes"]) == {"dbdata", "redisdata"}
    for volume in compose["volumes"].values():
        assert volume["labels"] == label


def test_only_nginx_is_published_on_loopback_clear_of_the_sandbox_ports(compose):
    published = {name: s["ports"] for name, s in compose["services"].items() if "ports" in s}
    assert published == {"nginx": [f"127.0.0.1:{devstack.HTTP_PORT}:80",
                                   f"127.0.0.1:{devstack.HTTPS_PORT}:443"]}
    assert {devstack.HTTP_PORT, devstack.HTTPS_PORT}.isdisjoint({8080, 8443})


def test_the_app_code_is_mounted_where_the_live_release_lives(compose, rendered):
    app_dir = str(devstack.APP_DIR.resolve())
    for name in APP_SERVICES:
        mounts = _mounts(compose["services"][name])
        assert mounts["/srv/fleetapp/releases/dev/src"] == app_dir, name
    static = _mounts(compose["services"]["nginx"])["/srv/fleetapp/static"]
    assert static == f"{app_dir}/fleetapp/static"
    assert "releases/dev/src" in (rendered.compose_file.parent / "build" / "Dockerfile").read_text()


def test_each_config_file_mounted_is_the_fleet_template_rendered(compose, rendered):
    v = rendered.variables
    expected = {
        ("web", v["app_env_file"]): "app/app.env.j2",
        ("web", v["app_gunicorn_config"]): "app/gunicorn.conf.py.j2",
        ("web", v["app_run_wrapper"]): "app/run.sh.j2",
        ("nginx", "/etc/nginx/nginx.conf"): "nginx/nginx.conf.j2",
        ("db", "/etc/mysql/mariadb.conf.d/60-flaskfleet.cnf"): "mariadb/my.cnf.j2",
        ("redis", "/etc/redis/redis.conf"): "redis/redis.conf.j2",
    }
    for (service, target), template in expected.items():
        source = Path(_mounts(compose["services"][service])[target])
        assert source.read_text() == devstack.render_template(template, v), template
    conf_d = Path(_mounts(compose["services"]["nginx"])["/etc/nginx/conf.d"])
    assert (conf_d / "fleetapp.conf").read_text() == devstack.render_template(
        "nginx/site.conf.j2", v)
    assert (conf_d / "fleetapp-upstream.conf").read_text() == devstack.render_template(
        "nginx/upstream.conf.j2", v)
    assert Path(_mounts(compose["services"]["web"])[v["app_run_wrapper"]]).stat().st_mode & 0o111


def test_dev_values_reach_the_rendered_configs(rendered):
    config = rendered.compose_file.parent / "config"
    upstream = (config / "nginx/conf.d/fleetapp-upstream.conf").read_text()
    assert "server web:8000 " in upstream
    site = (config / "nginx/conf.d/fleetapp.conf").read_text()
    assert f"https://$host:{devstack.HTTPS_PORT}$request_uri" in site
    assert "Strict-Transport-Security" not in site
    env = (config / "app/app.env").read_text()
    assert "FLEETAPP_ENV=development" in env
    assert "@db:3306/fleetapp" in env and "@redis:6379/1" in env
    redis_conf = (config / "redis/redis.conf").read_text()
    digest = hashlib.sha256(rendered.variables["redis_password"].encode()).hexdigest()
    assert f"#{digest}" in redis_conf
    assert "bind 0.0.0.0" in redis_conf


def test_programs_run_the_fleets_commands_and_gunicorn_reloads(compose, rendered):
    v = rendered.variables
    web = compose["services"]["web"]["command"]
    assert web == [*devstack.program_command(
        devstack.render_template("app/gunicorn.supervisor.conf.j2", v)), "--reload"]
    assert web[:2] == [v["app_run_wrapper"], "gunicorn"]
    worker = compose["services"]["worker"]["command"]
    assert worker[1:4] == ["celery", "--app", v["app_celery"]] and "worker" in worker
    assert "fleetapp-worker-0@%h" in worker
    assert "beat" in compose["services"]["beat"]["command"]
    for name in APP_SERVICES:
        assert compose["services"][name]["user"] == v["app_user"]


def test_migrations_run_once_before_the_programs_start(compose, rendered):
    services = compose["services"]
    migrate = services["migrate"]
    assert migrate["command"][-1] == f"cd src && {rendered.variables['app_migrate_command']}"
    assert "restart" not in migrate
    assert migrate["depends_on"] == {"db": {"condition": "service_healthy"},
                                     "redis": {"condition": "service_healthy"}}
    for name in ("web", "worker", "beat"):
        assert services[name]["depends_on"] == {
            "migrate": {"condition": "service_completed_successfully"}}, name
    assert services["nginx"]["depends_on"] == {"web": {"condition": "service_healthy"}}
    for name in ("db", "redis", "web"):
        assert services[name]["healthcheck"]["test"], name


def test_database_accounts_follow_the_mariadb_roles_variables(rendered):
    v = rendered.variables
    sql = (rendered.compose_file.parent / "config/mariadb/init.sql").read_text()
    assert f"GRANT {', '.join(v['mariadb_app_privileges'])} ON `fleetapp`.* TO 'fleetapp'@'%'" \
        in sql
    assert "TO 'fleetapp_migrate'@'%'" in sql
    assert v["mariadb_app_password"] in sql


def test_secrets_are_made_once_and_kept(tmp_path):
    first = devstack.render(dev_dir=tmp_path).variables["redis_password"]
    assert devstack.render(dev_dir=tmp_path).variables["redis_password"] == first
    assert (tmp_path / "secrets.json").stat().st_mode & 0o777 == 0o600
    assert len(first) >= 24


def test_the_image_installs_the_roles_packages_from_the_host_image(rendered):
    recipe = (rendered.compose_file.parent / "build" / "Dockerfile").read_text()
    assert "FROM ${BASE}" in recipe
    for package in (*rendered.variables["nginx_packages"], "mariadb-server", "redis-server",
                    "python3-venv"):
        assert f" {package}" in recipe, package
    assert "--no-index" in recipe


def test_a_template_that_cannot_render_is_named(tmp_path, monkeypatch):
    (tmp_path / "nginx").mkdir()
    (tmp_path / "nginx" / "broken.j2").write_text("{{ no_such_variable }}")
    monkeypatch.setattr(devstack, "TEMPLATES", tmp_path)
    with pytest.raises(devstack.DevStackError, match="templates/nginx/broken.j2"):
        devstack.render_template("nginx/broken.j2", {})


def test_program_command_needs_a_command_line():
    with pytest.raises(devstack.DevStackError, match="command="):
        devstack.program_command("[program:x]\nuser=x\n")


def test_logs_refuses_an_unknown_service(tmp_path):
    with pytest.raises(devstack.DevStackError, match="unknown service 'wbe'; one of: nginx"):
        devstack.logs("wbe", dev_dir=tmp_path)


def test_a_changed_config_changes_only_its_services_label(tmp_path, compose):
    before = {n: s["labels"][devstack.CONFIG_LABEL] for n, s in compose["services"].items()}
    config = (tmp_path / "config").resolve()
    (config / "redis" / "redis.conf").write_text("# changed\n")
    devstack.stamp_configs(compose, config)
    after = {n: s["labels"][devstack.CONFIG_LABEL] for n, s in compose["services"].items()}
    assert {n for n in before if before[n] != after[n]} == {"redis"}
    assert after["web"] == after["worker"] == after["beat"]  # the same files mounted
