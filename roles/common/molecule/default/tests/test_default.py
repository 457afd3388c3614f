"""The common role: base packages, app user, release layout, SSH, sudo and upgrades."""

import os
import subprocess
import sys
from pathlib import Path

import paramiko
import pytest
import yaml
from fabric import Connection

testinfra_hosts = ["ansible://all"]


def test_base_packages(host):
    for name in ("python3-venv", "acl", "curl", "systemd-timesyncd"):
        assert host.package(name).is_installed, name


def test_app_user_is_unprivileged(host):
    user = host.user("fleetapp")
    assert user.group == "fleetapp"
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000


def test_release_layout(host):
    root = host.file("/srv/fleetapp")
    assert root.is_directory and root.user == "root"
    releases = host.file("/srv/fleetapp/releases")
    assert releases.user == "root" and releases.mode == 0o755
    shared = host.file("/srv/fleetapp/shared")
    assert shared.user == "root" and shared.group == "fleetapp" and shared.mode == 0o750
    for sub in ("beat", "uploads", "tmp"):
        d = host.file(f"/srv/fleetapp/shared/{sub}")
        assert d.is_directory and d.user == "fleetapp" and d.mode == 0o750


def test_apt_policy(host):
    policy = host.file("/etc/apt/apt.conf.d/60flaskfleet")
    assert policy.contains('Install-Recommends "false"')


# --- SSH, sudo and unattended upgrades: tried with real logins from the control machine ----

ROLE = Path(__file__).resolve().parents[3]
DEFAULTS = yaml.safe_load((ROLE / "defaults" / "main.yml").read_text())
SSH_NO_HOST_KEYS = ["-o", "StrictHostKeyChecking=no", "-o", "UserKnownHostsFile=/dev/null"]


@pytest.fixture(scope="module")
def key() -> str:
    return os.path.join(os.environ["MOLECULE_EPHEMERAL_DIRECTORY"], "login_ed25519")


@pytest.fixture(scope="module")
def address(host) -> str:
    return host.check_output("hostname -I").split()[0]


def sshd_effective(host, spec: str = "user=fleet,host=control,addr=127.0.0.1") -> dict[str, str]:
    with host.sudo():
        out = host.check_output("/usr/sbin/sshd -T -C %s", spec)
    return dict(line.split(" ", 1) for line in out.splitlines() if " " in line)


def test_sshd_effective_config_is_key_only(host):
    config = sshd_effective(host)
    assert config["passwordauthentication"] == "no"
    assert config["kbdinteractiveauthentication"] == "no"
    assert config["authenticationmethods"] == "publickey"
    assert config["permitrootlogin"] == "no"
    assert config["x11forwarding"] == "no"
    assert config["allowtcpforwarding"] == "no"
    assert config["allowagentforwarding"] == "no"
    assert config["ciphers"] == ",".join(DEFAULTS["common_ssh_ciphers"])
    assert config["kexalgorithms"] == ",".join(DEFAULTS["common_ssh_kex_algorithms"])
    assert config["macs"] == ",".join(DEFAULTS["common_ssh_macs"])
    # Root gets the same answer whatever the address it comes from.
    assert sshd_effective(host, "user=root,host=x,addr=10.9.9.9")["permitrootlogin"] == "no"


def test_fabric_paramiko_logs_in_with_the_key_and_becomes_root(address, key):
    with Connection(address, user="fleet", connect_timeout=10,
                    connect_kwargs={"key_filename": key, "look_for_keys": False,
                                    "allow_agent": False}) as conn:
        assert conn.run("sudo -n id -un", hide=True, in_stream=False).stdout.strip() == "root"
        transport = conn.client.get_transport()
        assert transport.remote_cipher in DEFAULTS["common_ssh_ciphers"]
        # An AEAD cipher carries its own MAC; otherwise the MAC must be one of ours.
        assert ("gcm" in transport.remote_cipher
                or transport.remote_mac in DEFAULTS["common_ssh_macs"])


def test_openssh_client_logs_in_with_the_key(address, key):
    result = subprocess.run(
        ["ssh", "-i", key, "-o", "BatchMode=yes", "-o", "IdentitiesOnly=yes", *SSH_NO_HOST_KEYS,
         "-v", f"fleet@{address}", "sudo", "-n", "id", "-un"],
        capture_output=True, text=True, timeout=30)
    assert result.returncode == 0, result.stderr[-2000:]
    assert result.stdout.strip() == "root"
    # OpenSSH's first choices: the post-quantum kex and chacha20.
    assert "kex: algorithm: sntrup761x25519-sha512@openssh.com" in result.stderr
    assert "cipher: chacha20-poly1305@openssh.com" in result.stderr


def test_ansible_connects_with_the_kit_settings(address, key, tmp_path):
    """The kit's ansible.cfg (Mitogen over SSH), become, and a file copy."""
    ansible = str(Path(sys.executable).parent / "ansible")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROLE.parents[1] / "ansible.cfg"),
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path)}
    base = [ansible, "all", "-i", f"{address},", "-u", "fleet", "--private-key", key,
            "-e", "ansible_ssh_common_args='-o StrictHostKeyChecking=no "
                  "-o UserKnownHostsFile=/dev/null'",
            # Mitogen (the kit's strategy) reads this instead of the SSH arguments above.
            "-e", "ansible_host_key_checking=false",
            "-e", "ansible_ssh_transfer_method=sftp"]
    become = subprocess.run([*base, "-b", "-m", "ansible.builtin.command", "-a", "id -un"],
                            capture_output=True, text=True, env=env, timeout=120)
    assert become.returncode == 0, become.stdout + become.stderr
    assert "root" in become.stdout
    copy = subprocess.run([*base, "-m", "ansible.builtin.copy", "-a",
                           "content=over-sftp dest=/tmp/molecule-sftp mode=0600"],
                          capture_output=True, text=True, env=env, timeout=120)
    assert copy.returncode == 0, copy.stdout + copy.stderr


def test_password_login_refused(address):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    # The password is right (prepare set it): only sshd's policy refuses it.
    with pytest.raises(paramiko.BadAuthenticationType) as refused:
        client.connect(address, username="fleet", password="molecule-password",
                       look_for_keys=False, allow_agent=False, timeout=10)
    assert refused.value.allowed_types == ["publickey"]
    client.close()
    result = subprocess.run(
        ["ssh", "-o", "BatchMode=yes", "-o", "PubkeyAuthentication=no",
         "-o", "PreferredAuthentications=password,keyboard-interactive", *SSH_NO_HOST_KEYS,
         f"fleet@{address}", "true"], capture_output=True, text=True, timeout=30)
    assert result.returncode == 255
    assert "Permission denied (publickey)" in result.stderr


def test_root_login_refused_even_with_its_key(address, key):
    client = paramiko.SSHClient()
    client.set_missing_host_key_policy(paramiko.AutoAddPolicy())
    with pytest.raises(paramiko.AuthenticationException):
        client.connect(address, username="root", key_filename=key, look_for_keys=False,
                       allow_agent=False, timeout=10)
    client.close()


def test_passwordless_sudo_only_for_the_admin_user(host):
    rule = host.file("/etc/sudoers.d/flaskfleet")
    assert rule.user == "root" and rule.mode == 0o440
    assert "fleet ALL=(ALL:ALL) NOPASSWD: ALL" in rule.content_string
    with host.sudo():
        granting = host.check_output(
            "grep -rlE '^[^#]*NOPASSWD' /etc/sudoers /etc/sudoers.d || true").split()
    # The image's own /etc/sudoers.d/fleet is gone: the kit's file is the only one.
    assert granting == ["/etc/sudoers.d/flaskfleet"]
    assert not host.file("/etc/sudoers.d/fleet").exists
    with host.sudo():
        listed = host.run("sudo -l -U fleetapp")
    assert "not allowed to run sudo" in listed.stdout


def test_unattended_security_upgrades(host):
    assert host.package("unattended-upgrades").is_installed
    dump = host.check_output("apt-config dump APT::Periodic")
    assert 'APT::Periodic::Unattended-Upgrade "1";' in dump
    assert 'APT::Periodic::Update-Package-Lists "1";' in dump
    for timer in ("apt-daily.timer", "apt-daily-upgrade.timer"):
        assert host.service(timer).is_enabled, timer
    # Provisioning armed the timers but ran no upgrade (no one held the dpkg lock meanwhile).
    assert host.check_output(
        "systemctl show -P ActiveEnterTimestampMonotonic apt-daily-upgrade.service") == "0"
    # unattended-upgrades' own reading of the configuration (what a run would install from),
    # without a dry run that would download every pending update.
    with host.sudo():
        origins = host.check_output(
            "python3 -c %s",
            "from importlib.machinery import SourceFileLoader; import apt_pkg; "
            "apt_pkg.init_config(); "
            "uu = SourceFileLoader('uu', '/usr/bin/unattended-upgrade').load_module(); "
            "print('\\n'.join(uu.get_allowed_origins()))")
    assert origins.splitlines() == [
        "origin=Debian,codename=bookworm-security,label=Debian-Security"]


@pytest.mark.parametrize(("extra", "named"), [
    ('{"common_ssh_allow_users": ["someone-else"]}', "common_ssh_allow_users"),
    ('{"common_sudo_nopasswd_users": ["someone-else"]}', "common_sudo_nopasswd_users"),
])
def test_a_run_that_would_lock_out_its_login_user_is_refused(host, address, key, tmp_path,
                                                             extra, named):
    """Over real SSH as the admin user: the role stops at its first task, naming the variable."""
    before = host.check_output("sha256sum /etc/ssh/sshd_config /etc/sudoers.d/flaskfleet")
    playbook = tmp_path / "site.yml"
    playbook.write_text("- hosts: all\n  become: true\n  roles: [common]\n")
    env = {**os.environ, "ANSIBLE_CONFIG": str(ROLE.parents[1] / "ansible.cfg"),
           "ANSIBLE_ROLES_PATH": str(ROLE.parent), "ANSIBLE_CACHE_PLUGIN": "memory",
           "ANSIBLE_SSH_CONTROL_PATH_DIR": str(tmp_path)}
    run = subprocess.run(
        [str(Path(sys.executable).parent / "ansible-playbook"), "-i", f"{address},",
         "-u", "fleet", "--private-key", key, "-e", "ansible_ssh_common_args='-o "
         "StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null'",
         "-e", "ansible_host_key_checking=false", "-e", extra,
         str(playbook)], capture_output=True, text=True, env=env, timeout=300)
    assert run.returncode != 0
    assert named in run.stdout and "Nothing was changed" in run.stdout, run.stdout[-3000:]
    assert "changed=0" in run.stdout
    assert host.check_output(
        "sha256sum /etc/ssh/sshd_config /etc/sudoers.d/flaskfleet") == before
