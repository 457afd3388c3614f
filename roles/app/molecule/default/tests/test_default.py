"""The app role: env file, run wrapper, gunicorn config and its (not yet started) program."""

import pytest

testinfra_hosts = ["ansible://all"]


@pytest.fixture()
def address(host):
    return host.ansible("setup", "gather_subset=!all,network")["ansible_facts"][
        "ansible_default_ipv4"]["address"]


def test_env_file_is_private_and_complete(host):
    with host.sudo():
        env = host.file("/srv/fleetapp/shared/app.env")
        assert env.user == "root" and env.group == "fleetapp" and env.mode == 0o640
        content = env.content_string
    assert "FLEETAPP_ENV='production'" in content or "FLEETAPP_ENV=production" in content
    assert "FLEETAPP_SECRET_KEY=molecule-secret-key" in content
    for name in ("FLEETAPP_DATABASE_URL", "FLEETAPP_MIGRATION_DATABASE_URL",
                 "FLEETAPP_CACHE_REDIS_URL", "FLEETAPP_BROKER_URL", "FLEETAPP_RESULT_BACKEND"):
        assert f"{name}=" in content
    assert ":6379/0" in content and ":6379/1" in content and ":6379/2" in content


def test_gunicorn_config_binds_private_address(host, address):
    with host.sudo():
        config = host.file("/srv/fleetapp/shared/gunicorn.conf.py").content_string
    assert f'bind = ["{address}:8000"]' in config
    assert "graceful_timeout = 30" in config
    assert "max_requests_jitter = 100" in config


def test_program_defined_but_not_started(host):
    conf = host.file("/etc/supervisor/conf.d/fleetapp-web.conf").content_string
    assert "autostart=false" in conf
    assert "stopwaitsecs=45" in conf
    assert "stopasgroup=true" in conf and "killasgroup=true" in conf
    with host.sudo():
        status = host.run("supervisorctl status fleetapp-web").stdout
    assert "STOPPED" in status


def test_run_wrapper_loads_env_for_the_live_release(host):
    with host.sudo():
        host.run("mkdir -p /srv/fleetapp/releases/r1/venv/bin")
        host.run("ln -sfn releases/r1 /srv/fleetapp/current")
        try:
            with host.sudo("fleetapp"):
                out = host.check_output(
                    "/usr/local/bin/fleetapp-run sh -c "
                    "'echo $FLEETAPP_ENV $FLEETAPP_RELEASE_ID $PWD'")
        finally:
            host.run("rm -rf /srv/fleetapp/current /srv/fleetapp/releases/r1")
    assert out == "production r1 /srv/fleetapp/releases/r1"
