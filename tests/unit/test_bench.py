from fleet.proof import bench


def test_floor_packages_follow_the_groups_like_site_yml():
    lb = bench.floor_packages(("loadbalancers",))
    db = bench.floor_packages(("db", "redis"))
    assert "nginx" in lb and "mariadb-server" not in lb and "supervisor" not in lb
    assert {"mariadb-server", "redis-server"} <= set(db) and "nginx" not in db
    assert "supervisor" in bench.floor_packages(("workers", "beat"))
    # Every host gets the common role's packages.
    assert set(bench.role_packages("common")) <= set(lb) & set(db)


def test_markdown_table_lists_each_measurement():
    text = bench.markdown({"x": bench._summary([3.0, 1.0, 2.0])})
    assert text.splitlines()[-1] == "| x | 1.0 | 2.0 | 3.0 | 3 |"
