"""The redis role: private address only, authentication required, append-only persistence."""

import hashlib

import pytest

testinfra_hosts = ["ansible://all"]

PASSWORD = "molecule-redis-password"


@pytest.fixture()
def address(host):
    return host.ansible("setup", "gather_subset=!all,network")["ansible_facts"][
        "ansible_default_ipv4"]["address"]


def test_redis_running_and_enabled(host):
    service = host.service("redis-server")
    assert service.is_running
    assert service.is_enabled


def test_listens_on_private_address_only(host, address):
    with host.sudo():
        sockets = host.socket.get_listening_sockets()
    assert [s for s in sockets if s.endswith(":6379")] == [f"tcp://{address}:6379"]


def test_refuses_unauthenticated_clients(host, address):
    out = host.run("redis-cli -h %s ping", address).stdout
    assert "NOAUTH" in out


def test_authenticated_client_but_no_admin_commands(host, address):
    cli = f"redis-cli --no-auth-warning -a {PASSWORD} -h {address}"
    assert host.check_output(f"{cli} ping") == "PONG"
    assert "NOPERM" in host.run(f"{cli} config get maxmemory").stdout
    assert "NOPERM" in host.run(f"{cli} flushall").stdout


def test_append_only_and_eviction_policy(host, address):
    cli = f"redis-cli --no-auth-warning -a {PASSWORD} -h {address}"
    assert "aof_enabled:1" in host.check_output(f"{cli} info persistence")
    memory = host.check_output(f"{cli} info memory")
    assert "maxmemory_policy:volatile-lru" in memory
    assert "maxmemory:0\r" not in memory


def test_config_keeps_no_plaintext_password(host):
    with host.sudo():
        config = host.file("/etc/redis/redis.conf")
        assert not config.contains(PASSWORD)
        assert config.mode == 0o640


def test_admin_password_stays_root_only_and_the_app_user_cannot_change_acls(host, address):
    """The kit's admin user changes passwords at run time (fab secrets.rollout); the app's
    default user may not."""
    with host.sudo():
        secret = host.file("/etc/redis/flaskfleet-admin.secret")
        assert secret.mode == 0o600 and secret.user == "root" and secret.group == "root"
        admin_password = secret.content_string.strip()
        assert len(admin_password) >= 32
        assert not host.file("/etc/redis/redis.conf").contains(admin_password)
    cli = f"redis-cli --no-auth-warning -h {address}"
    app = host.run(f"{cli} -a {PASSWORD} acl setuser default nopass")
    assert "NOPERM" in app.stdout
    admin = host.check_output(f"REDISCLI_AUTH={admin_password} {cli} --user flaskfleet-admin "
                              "--json acl getuser default")
    assert hashlib.sha256(PASSWORD.encode()).hexdigest() in admin
