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


def _doc(**medians) -> dict:
    return {"measured_at": "2026-12-05T08:00:00+00:00",
            "results": {name: bench._summary([value]) for name, value in medians.items()}}


def test_targets_show_each_figure_against_its_target_and_the_previous_run():
    now = _doc(**{bench.CODE_DEPLOY: 28.0, bench.SCALED_CODE_DEPLOY: 42.0,
                  bench.ROLLBACK: 19.0})
    now["deploy_under_load"] = {"failed": 0}
    before = _doc(**{bench.CODE_DEPLOY: 69.0, bench.ROLLBACK: 39.0})
    rows = {line.split(" | ")[0].lstrip("| "): line
            for line in bench.targets_markdown(now, before).splitlines()[2:]}
    assert rows["code-change deploy, 2 app hosts"].endswith("| <= 30 s | 28 s | yes | 69 s |")
    assert rows["deploy, 4 app hosts vs 2"].endswith("| <= 1.2 x | 1.5 x | no | - |")
    assert rows["rollback to the previous release"].endswith("| <= 5 s | 19 s | no | 39 s |")
    assert rows["no-op re-provision, 5 hosts"].endswith("| <= 15 s | - | - | - |")
    assert rows["failed requests during a code-change deploy"].endswith("| <= 0 | 0 | yes | - |")


def test_comparison_lists_what_both_runs_measured_with_the_change():
    now = _doc(**{bench.CODE_DEPLOY: 34.5, bench.ROLLBACK: 19.0})
    before = _doc(**{bench.CODE_DEPLOY: 69.0})
    lines = bench.comparison_markdown(now, before).splitlines()
    assert f"| {bench.CODE_DEPLOY} | 69.0 | 34.5 | -50 % |" in lines
    assert not any(bench.ROLLBACK in line for line in lines)
    # The report holds both, and no comparison without a previous run.
    assert "Against the previous run" in bench.document_markdown(now, before)
    assert "Against the previous run" not in bench.document_markdown(now)
