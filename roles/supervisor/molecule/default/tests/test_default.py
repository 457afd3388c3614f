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


def _supervisord_status(host) -> dict[str, str]:
    pid = host.check_output("systemctl show -P MainPID supervisor")
    with host.sudo():
        status = host.file(f"/proc/{pid}/status").content_string
    return dict(line.split(":\t", 1) for line in status.splitlines() if ":\t" in line)


def test_supervisord_runs_sandboxed(host):
    """The systemd drop-in is in force on the running process, not only written."""
    status = _supervisord_status(host)
    assert status["NoNewPrivs"].strip() == "1"
    # CHOWN, DAC_OVERRIDE, FOWNER, KILL, SETGID, SETUID: bits 0, 1, 3, 5, 6, 7.
    assert int(status["CapBnd"], 16) == 0b11101011
    pid = host.check_output("systemctl show -P MainPID supervisor")
    with host.sudo():
        mounts = host.file(f"/proc/{pid}/mountinfo").content_string.splitlines()
    etc = [m.split() for m in mounts if m.split()[4] == "/etc"]
    assert etc and "ro" in etc[-1][5].split(","), "ProtectSystem=full: /etc is read-only"
    home = [m.split() for m in mounts if m.split()[4] == "/home"]
    assert home, "ProtectHome: /home is replaced"
    assert host.check_output("systemctl show -P UMask supervisor") == "0027"


def test_a_program_runs_unprivileged_inside_the_sandbox(host):
    """A program as the app role writes them (user, umask) starts under the sandbox."""
    probe = "/srv/fleetapp/shared/tmp/sandbox-probe"
    program = ("[program:sandbox-probe]\n"
               f"command=/usr/bin/python3 -c \"import time; open('{probe}', 'w').write('x'); "
               "time.sleep(600)\"\nuser=fleetapp\numask=027\nstartsecs=1\n")
    conf = "/etc/supervisor/conf.d/sandbox-probe.conf"
    with host.sudo():
        host.check_output("printf '%%s' %s > %s && supervisorctl update", program, conf)
        try:
            host.check_output("for i in $(seq 30); do test -f %s && exit 0; sleep 0.5; done; "
                              "exit 1", probe)
            created = host.file(probe)
            assert (created.user, created.mode) == ("fleetapp", 0o640)
            pid = host.check_output("supervisorctl pid sandbox-probe")
            status = host.file(f"/proc/{pid}/status").content_string
            assert "NoNewPrivs:\t1" in status
            assert "CapEff:\t0000000000000000" in status
        finally:
            host.run("rm -f %s %s && supervisorctl update", conf, probe)
