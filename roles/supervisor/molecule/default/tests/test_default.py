"""The supervisor role: one supervisord under systemd, socket for root and the app group."""

testinfra_hosts = ["ansible://all"]


def test_supervisor_running_and_enabled(host):
    service = host.service("supervisor")
    assert service.is_running
    assert service.is_enabled


def test_socket_restricted_to_root_and_app_group(host):
    sock = host.file("/run/supervisor.sock")
    assert sock.is_socket
    assert sock.user == "root"
    assert sock.group == "fleetapp"
    assert sock.mode == 0o770


def test_app_group_can_use_supervisorctl(host):
    with host.sudo("fleetapp"):
        result = host.run("supervisorctl -c /etc/supervisor/supervisord.conf pid")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip().isdigit()


def test_validator_rejects_a_bad_program(host):
    with host.sudo():
        host.run("printf '[program:bad]\\ncommand=/bin/true\\nautostart=maybe\\n' > /tmp/bad.conf")
        result = host.run("/usr/local/sbin/flaskfleet-supervisor-check /tmp/bad.conf "
                          "/etc/supervisor/conf.d/bad.conf")
    assert result.rc != 0
