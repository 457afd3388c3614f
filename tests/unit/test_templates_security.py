"""The SSH, sudo and unattended-upgrades templates of the common role, rendered and checked.

The algorithm lists are checked against both clients the kit connects with: OpenSSH (Ansible;
this machine's `ssh` is the same OpenSSH release as Debian 12's server) and paramiko (Fabric).
sshd itself validates the whole file on the host (`sshd -T` is the template's validate:); the
molecule scenario of roles/common logs in with both clients after hardening.
"""

from __future__ import annotations

import configparser
import shutil
import subprocess
from pathlib import Path
from typing import Any

import paramiko
import pytest

from tests.unit.test_templates import render, resolve_defaults


@pytest.fixture()
def context() -> dict[str, Any]:
    return resolve_defaults({"ansible_user": "deploy"})


def directives(text: str) -> dict[str, str]:
    """sshd semantics: keywords are case-insensitive and the first value obtained wins."""
    found: dict[str, str] = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        keyword, _, value = line.partition(" ")
        found.setdefault(keyword.lower(), value.strip())
    return found


def test_sshd_config_is_key_only_without_root(context):
    config = directives(render("common/sshd_config.j2", context))
    assert config["passwordauthentication"] == "no"
    assert config["kbdinteractiveauthentication"] == "no"
    assert config["authenticationmethods"] == "publickey"
    assert config["permitrootlogin"] == "no"
    assert config["permitemptypasswords"] == "no"
    assert config["disableforwarding"] == "yes"
    assert config["x11forwarding"] == "no"
    assert config["subsystem"] == "sftp /usr/lib/openssh/sftp-server"
    # No drop-in directory: an image's or cloud-init's file cannot re-enable passwords.
    assert "include" not in config
    assert "allowusers" not in config


def test_sshd_config_follows_the_variables(context):
    text = render("common/sshd_config.j2", {
        **context, "common_ssh_allow_users": ["deploy", "ops"], "common_ssh_port": 2222,
        "common_ssh_permit_root_login": "prohibit-password", "common_ssh_sftp_enabled": False,
        "common_ssh_host_key_types": ["ed25519"]})
    config = directives(text)
    assert config["allowusers"] == "deploy ops"
    assert config["port"] == "2222"
    assert config["permitrootlogin"] == "prohibit-password"
    assert "subsystem" not in config
    assert [line for line in text.splitlines() if line.startswith("HostKey ")] == [
        "HostKey /etc/ssh/ssh_host_ed25519_key"]


def _openssh_supports(query: str) -> set[str]:
    assert shutil.which("ssh"), "the OpenSSH client is missing (Ansible needs it too)"
    out = subprocess.run(["ssh", "-Q", query], capture_output=True, text=True, check=True)
    return set(out.stdout.split())


# (variable, `ssh -Q` query, paramiko's preference list): what each client would pick first.
ALGORITHMS = [
    ("common_ssh_ciphers", "cipher", paramiko.Transport._preferred_ciphers),
    ("common_ssh_kex_algorithms", "kex", paramiko.Transport._preferred_kex),
    ("common_ssh_macs", "mac", paramiko.Transport._preferred_macs),
]


@pytest.mark.parametrize(("variable", "query", "paramiko_prefers"), ALGORITHMS)
def test_algorithms_known_to_openssh_and_shared_with_paramiko(
        context, variable, query, paramiko_prefers):
    config = directives(render("common/sshd_config.j2", context))
    keyword = {"common_ssh_ciphers": "ciphers", "common_ssh_kex_algorithms": "kexalgorithms",
               "common_ssh_macs": "macs"}[variable]
    offered = config[keyword].split(",")
    assert offered == context[variable]
    unknown = set(offered) - _openssh_supports(query)
    assert not unknown, f"{variable}: OpenSSH 9.2 does not know {sorted(unknown)}"
    # The client's order decides: paramiko takes its first choice that the server offers.
    assert [a for a in paramiko_prefers if a in offered], \
        f"{variable}: paramiko {paramiko.__version__} shares nothing with {offered}"
    weak = [a for a in offered if "sha1" in a or "cbc" in a or "md5" in a or "nistp" in a]
    assert not weak, f"{variable}: weak algorithms {weak}"


def test_sudoers_grants_only_the_admin_users(context):
    text = render("common/sudoers.j2", context)
    rules = [line for line in text.splitlines() if line and not line.startswith("#")]
    assert rules == ["deploy ALL=(ALL:ALL) NOPASSWD: ALL"]
    many = render("common/sudoers.j2", {**context, "common_sudo_nopasswd_users": ["a", "b"]})
    assert [line.split()[0] for line in many.splitlines() if "NOPASSWD" in line] == ["a", "b"]


def _apt_dump(path: Path) -> str:
    # -c adds the file to this machine's apt configuration, as the task's validate: does.
    out = subprocess.run(["apt-config", "-c", str(path), "dump"], capture_output=True,
                         text=True, check=True)
    return out.stdout


def test_unattended_upgrades_replace_the_origin_list(context, tmp_path):
    # Debian's 50unattended-upgrades comes first on a host: ours must replace its list.
    debian = ('Unattended-Upgrade::Origins-Pattern '
              '{ "origin=Debian,codename=${distro_codename}"; };\n')
    combined = tmp_path / "apt.conf"
    combined.write_text(debian + render("common/unattended-upgrades.j2", context))
    origins = [line for line in _apt_dump(combined).splitlines()
               if line.startswith("Unattended-Upgrade::Origins-Pattern:: ")]
    assert origins == [
        'Unattended-Upgrade::Origins-Pattern:: "origin=Debian,codename=${distro_codename}'
        '-security,label=Debian-Security";']
    assert 'Unattended-Upgrade::Automatic-Reboot "false";' in _apt_dump(combined)


@pytest.mark.parametrize(("enabled", "value"), [(True, "1"), (False, "0")])
def test_periodic_runs_follow_the_opt_out(context, tmp_path, enabled, value):
    path = tmp_path / "20auto-upgrades"
    path.write_text(render("common/auto-upgrades.j2",
                           {**context, "common_unattended_upgrades_enabled": enabled}))
    dump = _apt_dump(path)
    assert f'APT::Periodic::Unattended-Upgrade "{value}";' in dump
    assert f'APT::Periodic::Update-Package-Lists "{value}";' in dump


def test_supervisord_sandbox_has_only_known_options(context, tmp_path):
    """systemd itself reads the drop-in beside a stand-in unit: a misspelt option is reported."""
    assert shutil.which("systemd-analyze"), "systemd-analyze is missing"
    (tmp_path / "supervisor.service").write_text(
        "[Unit]\nDescription=stand-in\n[Service]\nExecStart=/bin/true\n")
    drop_in = tmp_path / "supervisor.service.d"
    drop_in.mkdir()
    text = render("supervisor/hardening.conf.j2", context)
    (drop_in / "flaskfleet-hardening.conf").write_text(text)
    result = subprocess.run(
        ["systemd-analyze", "verify", str(tmp_path / "supervisor.service")],
        capture_output=True, text=True, env={"SYSTEMD_UNIT_PATH": f"{tmp_path}:",
                                             "PATH": "/usr/bin:/bin"})
    assert result.returncode == 0 and not result.stderr.strip(), result.stderr
    options = dict(line.split("=", 1) for line in text.splitlines() if "=" in line)
    assert options["NoNewPrivileges"] == "yes"
    assert options["ProtectSystem"] == "full"
    assert options["UMask"] == "0027"
    assert "CAP_SYS_ADMIN" not in options["CapabilityBoundingSet"]
    assert set(options["CapabilityBoundingSet"].split()) == {
        "CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_KILL", "CAP_SETGID", "CAP_SETUID"}


@pytest.mark.parametrize("template", [
    "app/gunicorn.supervisor.conf.j2", "celery/program.supervisor.conf.j2"])
def test_programs_run_unprivileged_with_a_private_umask(context, template):
    ctx = {**context, "app_program": {"name": "fleetapp-web", "port": 8000, "autostart": False,
                                      "log": "gunicorn.log"}, "celery_autostart": False,
           "celery_program": {"name": "worker", "group": "workers", "command": "rq worker"}}
    parser = configparser.RawConfigParser(inline_comment_prefixes=(";",))
    parser.read_string(render(template, ctx))
    (section,) = [s for s in parser.sections() if s.startswith("program:")]
    assert parser[section]["user"] == "fleetapp"
    assert parser[section]["umask"] == "027"
