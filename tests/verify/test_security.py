"""Every host: SSH refuses passwords and root, passwordless sudo only for the admin user, and
every file holding a secret has its owner and mode.

The login attempts go from the control machine to each host's SSH address, as Ansible and
Fabric connect: a password attempt is answered by sshd's own list of allowed methods
(`publickey` only), and a root attempt with the kit's key is refused.
"""

from __future__ import annotations

from typing import NamedTuple

import paramiko
import pytest

testinfra_hosts = ["ansible://all"]


class Secret(NamedTuple):
    path: str
    owner: str
    group: str
    mode: int


def secret_files(groups: set[str], hostvars: dict, app_name: str) -> list[Secret]:
    """Files holding a secret on a host of these groups: the one table of owners and modes.

    Paths follow the role defaults (and the inventory where it overrides them).
    """
    app_group = hostvars.get("app_group", hostvars.get("app_user", app_name))
    shared = f"/srv/{app_name}/shared"
    files = [Secret("/etc/sudoers.d/flaskfleet", "root", "root", 0o440)]
    if groups & {"app", "workers", "beat"}:
        # The env file holds the secret key and the database and Redis passwords.
        files.append(Secret(f"{shared}/app.env", "root", app_group, 0o640))
    if "app" in groups:
        files.append(Secret(f"{shared}/gunicorn.conf.py", "root", app_group, 0o640))
    if "redis" in groups:
        files.append(Secret("/etc/redis/redis.conf", "redis", "redis", 0o640))
        # The kit's Redis admin password (run-time password rotation), made on the host.
        files.append(Secret(hostvars.get("redis_admin_password_file",
                                         "/etc/redis/flaskfleet-admin.secret"),
                            "root", "root", 0o600))
    if "db" in groups:
        files.append(Secret(hostvars.get("mariadb_backup_dir", "/var/backups/mariadb"),
                            "root", "root", 0o700))
    if "loadbalancers" in groups and hostvars.get("nginx_tls_mode", "provided") != "external":
        key = hostvars.get("nginx_tls_key_path", f"/etc/nginx/tls/{app_name}.key")
        files.append(Secret(key, "root", "root", 0o600))
    return files


@pytest.fixture()
def groups(host, fleet_inventory) -> set[str]:
    name = host.backend.get_hostname()
    return {g for g, members in fleet_inventory.groups.items() if name in members}


@pytest.fixture()
def admin_user(hostvars) -> str:
    return hostvars.get("ansible_user", "fleet")


@pytest.fixture()
def ssh_address(host, hostvars) -> tuple[str, int]:
    return (hostvars.get("ansible_host", host.backend.get_hostname()),
            int(hostvars.get("ansible_port", 22)))


def sshd_effective(host, user: str) -> dict[str, str]:
    """sshd's configuration as it applies to a login of `user` (Match blocks included)."""
    with host.sudo():
        out = host.check_output("/usr/sbin/sshd -T -C user=%s,host=verify,addr=192.0.2.1", user)
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def test_sshd_allows_keys_only(host, admin_user):
    config = sshd_effective(host, admin_user)
    assert config["passwordauthentication"] == "no"
    assert config["kbdinteractiveauthentication"] == "no"
    assert config["authenticationmethods"] == "publickey"
    assert config["permitemptypasswords"] == "no"


def test_sshd_refuses_root(host):
    assert sshd_effective(host, "root")["permitrootlogin"] == "no"


def _client() -> paramiko.SSHClient:
    client = paramiko.SSHClient()
    # The host keys are not what is tested here (the sandbox makes new ones per host).
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    return client


def test_password_login_refused(ssh_address, admin_user):
    address, port = ssh_address
    client = _client()
    try:
        with pytest.raises(paramiko.BadAuthenticationType) as refused:
            client.connect(address, port=port, username=admin_user, password="not-a-key",
                           look_for_keys=False, allow_agent=False, timeout=10,
                           banner_timeout=10, auth_timeout=10)
    finally:
        client.close()
    # sshd's answer to a password: the methods it accepts, and a password is not one.
    assert refused.value.allowed_types == ["publickey"]


def test_root_login_refused(ssh_address, hostvars):
    address, port = ssh_address
    key = hostvars.get("ansible_ssh_private_key_file")
    client = _client()
    try:
        with pytest.raises(paramiko.AuthenticationException):
            client.connect(address, port=port, username="root", key_filename=key,
                           look_for_keys=key is None, allow_agent=key is None, timeout=10,
                           banner_timeout=10, auth_timeout=10)
    finally:
        client.close()


def test_passwordless_sudo_only_for_the_admin_user(host, hostvars, admin_user):
    allowed = hostvars.get("common_sudo_nopasswd_users", [admin_user])
    with host.sudo():
        files = host.check_output(
            "grep -rlE '^[^#]*NOPASSWD' /etc/sudoers /etc/sudoers.d || true").split()
        rules = host.check_output("grep -hE '^[^#]*NOPASSWD' %s", "/etc/sudoers.d/flaskfleet")
    assert files == ["/etc/sudoers.d/flaskfleet"]
    assert sorted(line.split()[0] for line in rules.splitlines()) == sorted(allowed)


def test_app_user_has_no_sudo(host, app_name):
    with host.sudo():
        listed = host.run("sudo -l -U %s", app_name)
    assert "is not allowed to run sudo" in listed.stdout


def test_secret_files_owner_and_mode(host, groups, hostvars, app_name):
    wrong = []
    with host.sudo():
        for secret in secret_files(groups, hostvars, app_name):
            found = host.file(secret.path)
            if not found.exists:
                wrong.append(f"{secret.path}: missing")
                continue
            actual = (found.user, found.group, found.mode)
            if actual != (secret.owner, secret.group, secret.mode):
                wrong.append(f"{secret.path}: {found.user}:{found.group} {found.mode:04o}, "
                             f"expected {secret.owner}:{secret.group} {secret.mode:04o}")
    assert not wrong, "\n".join(wrong)


def test_host_keys_and_dumps_are_root_only(host, groups):
    """Beyond the table: the SSH host keys, and every MariaDB dump (not only its directory)."""
    with host.sudo():
        keys = host.check_output(
            "find /etc/ssh -maxdepth 1 -name 'ssh_host_*_key' ! -perm 0600 -printf '%p %m\\n'")
        assert not keys.strip(), keys
        if "db" in groups:
            dumps = host.check_output(
                "find /var/backups/mariadb -type f ! -perm 0600 -printf '%p %m\\n'")
            assert not dumps.strip(), dumps


def test_programs_run_unprivileged_in_the_sandbox(host, groups, app_name):
    """supervisord runs under its systemd sandbox; every running program as the app user with
    no capabilities and no way to gain privileges."""
    if not groups & {"app", "workers", "beat"}:
        # Nothing to sandbox: programs (and supervisord) only run on app, workers, beat hosts.
        assert not host.package("supervisor").is_installed
        return
    with host.sudo():
        main = host.check_output("systemctl show -P MainPID supervisor")
        status = host.file(f"/proc/{main}/status").content_string
        assert "NoNewPrivs:\t1" in status
        pids = host.check_output("supervisorctl pid all || true").split()
        for pid in (p for p in pids if p.isdigit() and p != "0"):
            program = host.file(f"/proc/{pid}/status").content_string
            assert "NoNewPrivs:\t1" in program and "CapEff:\t0000000000000000" in program, pid
            assert host.check_output("stat -c %%U /proc/%s", pid) == app_name, pid
