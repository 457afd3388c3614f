"""fleet.settings: the control node reads a kit variable from the inventory, else the role default.

Proven here, on inventories written to disk and read back with fleet.inventory.load: a role
default is what a silent inventory gets, templated defaults are rendered (through each other
and through `| default(...)`), an inventory value wins over the default and reaches the
defaults built on it, an inventory's own template is rendered too; a host-bound value, a name
no role defines and a reference to nothing are each refused with a message naming the
variable. Against the real roles: the nginx role's static lists dir, overridden in the
inventory, is the one static pruning reads and hands to the pruning play.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from fleet import inventory
from fleet.ops import releases
from fleet.remote import LocalRunner
from fleet.settings import SettingError, role_defaults, setting, setting_bool, setting_list

DEFAULTS = {
    "demo_name": "shop",
    "demo_root": "/srv/{{ demo_name }}",
    "demo_static": "{{ demo_root }}/static",
    "demo_port": 8000,
    "demo_title": "{{ demo_label | default('Closed') }}",
    "demo_bind": "{{ fleet_private_address }}",
    "demo_peer": "{{ hostvars[groups['db'][0]]['ansible_host'] }}",
    "demo_broken": "{{ demo_nothing }}/x",
}


def _env(tmp_path: Path, group_vars: dict | None = None) -> inventory.Inventory:
    env = tmp_path / "env"
    env.mkdir(parents=True)
    hosts = {"all": {"children": {group: {"hosts": {f"{group}1": {"ansible_host": "10.0.0.9"}}}
                                  for group in ("loadbalancers", "db")}}}
    (env / "hosts.yml").write_text(yaml.safe_dump(hosts))
    if group_vars:
        (env / "group_vars").mkdir()
        (env / "group_vars" / "all.yml").write_text(yaml.safe_dump(group_vars))
    return inventory.load(str(env))


@pytest.fixture()
def roles(tmp_path) -> Path:
    defaults = tmp_path / "roles" / "demo" / "defaults"
    defaults.mkdir(parents=True)
    (defaults / "main.yml").write_text(yaml.safe_dump(DEFAULTS))
    return tmp_path / "roles"


def test_a_silent_inventory_gets_the_role_default(tmp_path, roles):
    inv = _env(tmp_path)
    assert setting(inv, "demo_port", roles) == "8000"
    assert setting(inv, "demo_static", roles) == "/srv/shop/static"
    assert setting(inv, "demo_title", roles) == "Closed"


def test_an_inventory_value_wins_and_reaches_the_defaults_built_on_it(tmp_path, roles):
    inv = _env(tmp_path, {"demo_name": "books", "demo_label": "Back soon", "demo_port": 9000})
    assert setting(inv, "demo_static", roles) == "/srv/books/static"
    assert setting(inv, "demo_title", roles) == "Back soon"
    assert setting(inv, "demo_port", roles) == "9000"


def test_an_inventory_template_is_rendered(tmp_path, roles):
    inv = _env(tmp_path, {"demo_root": "/opt/{{ demo_name }}-{{ demo_port }}"})
    assert setting(inv, "demo_static", roles) == "/opt/shop-8000/static"


@pytest.mark.parametrize(("name", "bound"), [("demo_bind", "fleet_private_address"),
                                             ("demo_peer", "groups")])
def test_a_host_bound_value_is_refused(tmp_path, roles, name, bound):
    with pytest.raises(SettingError) as caught:
        setting(_env(tmp_path), name, roles)
    assert name in str(caught.value) and bound in str(caught.value)
    assert "depends on the host" in str(caught.value)


def test_a_host_bound_value_the_inventory_sets_plainly_is_fine(tmp_path, roles):
    assert setting(_env(tmp_path, {"demo_bind": "10.1.2.3"}), "demo_bind", roles) == "10.1.2.3"


def test_an_unknown_name_is_refused(tmp_path, roles):
    with pytest.raises(SettingError, match="demo_typo is not a kit variable"):
        setting(_env(tmp_path), "demo_typo", roles)


def test_a_reference_to_nothing_is_refused(tmp_path, roles):
    with pytest.raises(SettingError) as caught:
        setting(_env(tmp_path), "demo_broken", roles)
    assert "demo_broken" in str(caught.value) and "demo_nothing" in str(caught.value)


def test_the_real_roles_answer_every_name_the_control_node_asks_for(tmp_path):
    inv = _env(tmp_path)
    raw = role_defaults()
    for name in ("nginx_upstream_ctl", "app_release_marker", "nginx_static_lists_dir",
                 "mariadb_backup_script", "app_ready_path", "nginx_maintenance_title"):
        assert setting(inv, name) == str(raw[name]), name
    assert setting(inv, "nginx_static_root") == f"/srv/{raw['app_name']}/static"
    assert setting(_env(tmp_path / "b", {"app_name": "shop"}), "nginx_maintenance_flag") == \
        "/var/www/shop-maintenance/maintenance.on"


def test_static_pruning_honours_an_overridden_lists_dir(tmp_path, monkeypatch):
    """The plan is read (for real, on local directories) where the inventory moved the lists."""
    static, lists = tmp_path / "static", tmp_path / "elsewhere" / "lists"
    for name in ("app.111.css", "app.222.css", "manifest.json"):
        (static / name).parent.mkdir(parents=True, exist_ok=True)
        (static / name).write_text(name)
    lists.mkdir(parents=True)
    (lists / "R1.json").write_text(json.dumps({"app.css": "app.111.css"}))
    (lists / "R2.json").write_text(json.dumps({"app.css": "app.222.css"}))
    default_dir = Path(role_defaults()["nginx_static_lists_dir"])
    assert default_dir != lists
    inv = _env(tmp_path, {"nginx_static_root": str(static), "nginx_static_lists_dir": str(lists)})

    def locally(inv, names, work):  # the load balancer is this machine's directories
        return {name: work(LocalRunner()) for name in names}

    monkeypatch.setattr(releases.hosts, "each", locally)
    assert releases.static_plans(inv, {"R2"}) == {"loadbalancers1": (
        ["app.111.css"], [str(static / "app.111.css"), str(lists / "R1.json")])}


def test_a_list_setting_keeps_its_elements(tmp_path):
    assert setting_list(_env(tmp_path), "app_extra_requirements") == [
        str(spec) for spec in role_defaults()["app_extra_requirements"]]
    inv = _env(tmp_path / "b", {"app_extra_requirements": ["gunicorn==27.0.1"]})
    assert setting_list(inv, "app_extra_requirements") == ["gunicorn==27.0.1"]
    with pytest.raises(SettingError, match="app_name must be a list"):
        setting_list(inv, "app_name")


@pytest.mark.parametrize(("value", "expected"), [(None, False), (True, True), ("yes", True),
                                                 ("False", False), (0, False)])
def test_a_bool_setting_reads_as_ansible_does(tmp_path, value, expected):
    inv = _env(tmp_path, {} if value is None else {"app_allow_unpinned": value})
    assert setting_bool(inv, "app_allow_unpinned") is expected


def test_a_bool_setting_that_is_neither_is_refused_naming_it(tmp_path):
    inv = _env(tmp_path, {"app_allow_unpinned": "maybe"})
    with pytest.raises(SettingError, match="app_allow_unpinned must be true or false"):
        setting_bool(inv, "app_allow_unpinned")
