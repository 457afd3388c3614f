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


def test_every_dump_has_a_checksum_that_verifies(host):
    with host.sudo():
        dump = host.check_output("/usr/local/sbin/flaskfleet-db-backup")
        name = dump.rsplit("/", 1)[-1]
        checksum = host.file(f"{dump}.sha256")
        assert checksum.exists and checksum.mode == 0o600 and checksum.user == "root"
        assert checksum.content_string.split() == [host.check_output(
            "sha256sum %s | cut -d' ' -f1", dump), name]
        assert host.run("cd /var/backups/mariadb && sha256sum --check --status %s.sha256",
                        name).rc == 0
        # A damaged dump no longer matches.
        host.run("cp %s /tmp/damaged.sql.gz && cp %s.sha256 /tmp/ && cd /tmp && "
                 "sed 's/%s/damaged.sql.gz/' %s.sha256 > damaged.sql.gz.sha256 && "
                 "printf x >> damaged.sql.gz", dump, dump, name, name)
        assert host.run("cd /tmp && sha256sum --check --status damaged.sql.gz.sha256").rc != 0


def test_retention_keeps_the_newest_by_count_and_age(host):
    """converge.yml keeps 3 dumps, none older than 2 days but the newest."""
    listing = "ls -1 /var/backups/mariadb/fleetapp-*.sql.gz"
    with host.sudo():
        for _ in range(4):
            host.check_output("sleep 1.1; /usr/local/sbin/flaskfleet-db-backup")
        dumps = host.check_output(listing).split()
        assert len(dumps) == 3
        assert len(host.check_output(f"{listing}.sha256").split()) == 3
        # Two dumps left, the older one aged past the limit: within the count, gone by age.
        oldest, middle, newest = sorted(dumps)
        host.check_output("rm -f %s %s.sha256 && touch -d '3 days ago' %s", oldest, oldest,
                          middle)
        fresh = host.check_output("sleep 1.1; /usr/local/sbin/flaskfleet-db-backup")
        assert sorted(host.check_output(listing).split()) == [newest, fresh]
        assert not host.file(f"{middle}.sha256").exists
        # A checksum whose dump was deleted by hand is cleaned up too.
        host.check_output("rm -f %s", newest)
        host.check_output("sleep 1.1; /usr/local/sbin/flaskfleet-db-backup")
        assert not host.file(f"{newest}.sha256").exists
