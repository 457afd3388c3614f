"""App hosts: supervisord, the gunicorn program, gunicorn bound to the private address."""

from verify_helpers import listening

testinfra_hosts = ["ansible://app"]


def test_supervisor_running_and_enabled(host):
    service = host.service("supervisor")
    assert service.is_running and service.is_enabled


def test_gunicorn_program_present(host, app_name):
    with host.sudo():
        status = host.check_output("supervisorctl status %s-web || true", app_name)
    assert f"{app_name}-web" in status
    assert "no such process" not in status.lower()


def test_gunicorn_binds_private_address_only(host, app_name, private_address):
    with host.sudo():
        config = host.file(f"/srv/{app_name}/shared/gunicorn.conf.py").content_string
    assert f'bind = ["{private_address}:8000"]' in config
    # Not started before the first deploy; once it is, only on the private address: both slots
    # (the one the load balancers use and the one a deploy starts next, 8001).
    for port in (8000, 8001):
        assert set(listening(host, port)) <= {f"tcp://{private_address}:{port}"}


def test_env_file_private(host, app_name):
    with host.sudo():
        env = host.file(f"/srv/{app_name}/shared/app.env")
        assert env.mode == 0o640 and env.user == "root" and env.group == app_name
