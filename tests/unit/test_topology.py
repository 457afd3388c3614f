import pytest

from fleet.sandbox.topology import (
    GROUPS,
    HostSpec,
    TopologyError,
    check_unique,
    default_topology,
    inventory,
)


def test_default_topology_matches_the_design():
    hosts = {h.name: h.groups for h in default_topology()}
    assert hosts == {
        "lb1": ("loadbalancers",),
        "app1": ("app",),
        "app2": ("app",),
        "worker1": ("workers", "beat"),
        "db1": ("db", "redis"),
    }


def test_counts_scale_apps_and_workers_but_keep_one_beat():
    hosts = default_topology(apps="3", workers=2)
    names = [h.name for h in hosts]
    assert names == ["lb1", "app1", "app2", "app3", "worker1", "worker2", "db1"]
    assert [h.name for h in hosts if "beat" in h.groups] == ["worker1"]


@pytest.mark.parametrize(("apps", "workers", "message"), [
    (0, 1, "--apps must be between 1 and 8, got 0"),
    (9, 1, "--apps must be between 1 and 8, got 9"),
    ("two", 1, "--apps must be a whole number, got 'two'"),
    (2, "-1", "--workers must be between 1 and 8, got -1"),
    (2, "1.5", "--workers must be a whole number, got '1.5'"),
])
def test_bad_counts_name_the_option(apps, workers, message):
    with pytest.raises(TopologyError) as err:
        default_topology(apps, workers)
    assert str(err.value) == message


@pytest.mark.parametrize("name", ["App1", "1app", "app_1", "a" * 32, ""])
def test_host_names_must_be_dns_labels(name):
    with pytest.raises(TopologyError, match="invalid"):
        HostSpec(name, ("app",))


def test_unknown_group_is_named():
    with pytest.raises(TopologyError, match="unknown group.*webservers"):
        HostSpec("web1", ("webservers",))


def test_duplicate_hosts_are_refused():
    with pytest.raises(TopologyError, match="app1 appears twice"):
        check_unique([HostSpec("app1", ("app",)), HostSpec("app1", ("workers",))])


def test_inventory_has_every_group_and_private_addresses():
    doc = inventory(
        addresses={"lb1": "10.0.0.2", "app1": "10.0.0.3", "db1": "10.0.0.4"},
        groups={"lb1": ("loadbalancers",), "app1": ("app", "workers", "beat"),
                "db1": ("db", "redis")},
        private_key="/keys/id",
    )
    children = doc["all"]["children"]
    assert list(children) == list(GROUPS)
    assert children["beat"]["hosts"] == {
        "app1": {"ansible_host": "10.0.0.3", "fleet_private_address": "10.0.0.3"}}
    assert set(children["redis"]["hosts"]) == {"db1"}
    assert doc["all"]["vars"]["ansible_ssh_private_key_file"] == "/keys/id"
    assert doc["all"]["vars"]["fleet_env"] == "sandbox"


def test_inventory_admits_the_control_address_through_the_firewall():
    doc = inventory(addresses={"solo1": "10.0.0.3"}, groups={"solo1": ("app",)},
                    private_key="/keys/id", control_address="10.0.0.1")
    variables = doc["all"]["vars"]
    assert variables["firewall_admin_networks"] == ["10.0.0.1/32"]
    assert variables["firewall_control_networks"] == ["10.0.0.1/32"]
    # Without a known gateway nothing is assumed: the firewall role then refuses to run.
    bare = inventory(addresses={"solo1": "10.0.0.3"}, groups={"solo1": ("app",)},
                     private_key="/keys/id")
    assert "firewall_admin_networks" not in bare["all"]["vars"]
