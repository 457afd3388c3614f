"""From an app host: the app user reaches its data but cannot create users or drop the db."""

import pytest

testinfra_hosts = ["ansible://app"]


@pytest.fixture()
def as_app_user(host, hostvars, fleet_inventory, app_name):
    db_host = fleet_inventory.hostvars[fleet_inventory.groups["db"][0]]
    address = db_host["fleet_private_address"]
    user = hostvars.get("mariadb_app_user", app_name)
    database = hostvars.get("mariadb_database", app_name)
    password = hostvars["mariadb_app_password"]

    def run(statement: str):
        return host.run("MYSQL_PWD=%s mysql --protocol=TCP -h %s -u %s -N -e %s %s",
                        password, address, user, statement, database)
    return run


def test_app_user_can_use_its_data(as_app_user):
    result = as_app_user("SELECT 1")
    assert result.rc == 0, result.stderr
    assert result.stdout.strip() == "1"


def test_app_user_cannot_create_users(as_app_user):
    result = as_app_user("CREATE USER 'intruder'@'%' IDENTIFIED BY 'x'")
    assert result.rc != 0
    assert "denied" in result.stderr.lower()


def test_app_user_cannot_drop_the_database(as_app_user, app_name, hostvars):
    database = hostvars.get("mariadb_database", app_name)
    result = as_app_user(f"DROP DATABASE `{database}`")
    assert result.rc != 0
    assert "denied" in result.stderr.lower()
