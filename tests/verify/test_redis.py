"""Redis hosts: private address only, authentication required, append-only persistence."""

from verify_helpers import listening

testinfra_hosts = ["ansible://redis"]


def test_redis_running_and_enabled(host):
    service = host.service("redis-server")
    assert service.is_running and service.is_enabled


def test_listens_on_private_address_only(host, private_address):
    assert listening(host, 6379) == [f"tcp://{private_address}:6379"]


def test_refuses_unauthenticated_clients(host, private_address):
    assert "NOAUTH" in host.run("redis-cli -h %s ping", private_address).stdout


def test_authenticated_client_and_persistence(host, private_address, hostvars):
    cli = "REDISCLI_AUTH=%s redis-cli -h %s "
    password = hostvars["redis_password"]
    assert host.check_output(cli + "ping", password, private_address) == "PONG"
    persistence = host.check_output(cli + "info persistence", password, private_address)
    assert "aof_enabled:1" in persistence
    memory = host.check_output(cli + "info memory", password, private_address)
    assert "maxmemory_policy:volatile-lru" in memory
