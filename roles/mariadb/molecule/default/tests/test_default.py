"""The mariadb role: secured server on the private address, app and migration users, backups."""

import pytest

testinfra_hosts = ["ansible://all"]

APP_PASSWORD = "molecule-app-password"
MIGRATION_PASSWORD = "molecule-migration-password"


@pytest.fixture()
def address(host):
    return host.ansible("setup", "gather_subset=!all,network")["ansible_facts"][
        "ansible_default_ipv4"]["address"]


def sql_as(host, address, user, password, statement):
    return host.run(
        "mysql --protocol=TCP -h %s -u %s -p%s fleetapp -N -e %s",
        address, user, password, statement)


def root_sql(host, statement):
    with host.sudo():
        return host.check_output("mysql -N -e %s", statement)


def test_mariadb_running_and_enabled(host):
    service = host.service("mariadb")
    assert service.is_running
    assert service.is_enabled


def test_listens_on_private_address_only(host, address):
    with host.sudo():
        sockets = host.socket.get_listening_sockets()
    mysql = [s for s in sockets if s.endswith(":3306")]
    assert mysql == [f"tcp://{address}:3306"]


def test_no_anonymous_users_no_test_db_root_by_socket(host):
    assert root_sql(host, "SELECT COUNT(*) FROM mysql.global_priv WHERE User = ''") == "0"
    assert "test" not in root_sql(host, "SHOW DATABASES").split()
    assert root_sql(host, "SELECT Host FROM mysql.global_priv WHERE User = 'root'") == "localhost"


def test_app_user_has_data_privileges_only(host, address):
    assert sql_as(host, address, "fleetapp", APP_PASSWORD, "SELECT 1").stdout.strip() == "1"
    assert sql_as(host, address, "fleetapp", APP_PASSWORD, "CREATE USER x@'%'").rc != 0
    assert sql_as(host, address, "fleetapp", APP_PASSWORD, "DROP DATABASE fleetapp").rc != 0
    assert sql_as(host, address, "fleetapp", APP_PASSWORD, "CREATE TABLE t (id INT)").rc != 0


def test_migration_user_can_change_schema(host, address):
    result = sql_as(host, address, "fleetapp_migrate", MIGRATION_PASSWORD,
                    "CREATE TABLE molecule_t (id INT); DROP TABLE molecule_t")
    assert result.rc == 0, result.stderr
    assert sql_as(host, address, "fleetapp_migrate", MIGRATION_PASSWORD,
                  "CREATE USER x@'%'").rc != 0


def test_buffer_pool_sized_from_memory(host):
    config = host.file("/etc/mysql/mariadb.conf.d/60-flaskfleet.cnf")
    assert config.contains("innodb_buffer_pool_size")
    assert int(root_sql(host, "SELECT @@innodb_buffer_pool_size")) > 128 * 1024 * 1024


def test_backup_timer_and_script(host):
    assert host.service("flaskfleet-db-backup.timer").is_enabled
    with host.sudo():
        dump = host.check_output("/usr/local/sbin/flaskfleet-db-backup")
        assert host.file(dump).exists
        assert host.file("/var/backups/mariadb").mode == 0o700
        assert host.run("zcat %s | grep -q 'CREATE DATABASE'", dump).rc == 0
