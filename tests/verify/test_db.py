"""Database hosts: MariaDB secured, on the private address only, backed up."""

from verify_helpers import listening

testinfra_hosts = ["ansible://db"]


def sql(host, statement: str) -> str:
    with host.sudo():
        return host.check_output("mysql -N -e %s", statement)


def test_mariadb_running_and_enabled(host):
    service = host.service("mariadb")
    assert service.is_running and service.is_enabled


def test_listens_on_private_address_only(host, private_address):
    assert listening(host, 3306) == [f"tcp://{private_address}:3306"]


def test_no_anonymous_users_or_test_database(host):
    assert sql(host, "SELECT COUNT(*) FROM mysql.global_priv WHERE User = ''") == "0"
    assert "test" not in sql(host, "SHOW DATABASES").split()


def test_root_only_through_the_local_socket(host):
    assert sql(host, "SELECT Host FROM mysql.global_priv WHERE User = 'root'") == "localhost"


def test_app_users_restricted_to_app_hosts(host, fleet_inventory):
    allowed = {fleet_inventory.hostvars[h]["fleet_private_address"]
               for h in fleet_inventory.hosts_of("app", "workers", "beat")}
    hosts = set(sql(host, "SELECT DISTINCT Host FROM mysql.global_priv "
                          "WHERE User NOT IN ('root', 'mysql', 'mariadb.sys')").split())
    assert hosts == allowed


def test_backups_scheduled(host):
    assert host.service("flaskfleet-db-backup.timer").is_enabled
    with host.sudo():
        assert host.file("/var/backups/mariadb").mode == 0o700
