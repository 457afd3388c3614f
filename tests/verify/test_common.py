"""Every host: base packages, the unprivileged app user and the release layout."""

testinfra_hosts = ["ansible://all"]


def test_app_user_is_unprivileged(host, app_name):
    user = host.user(app_name)
    assert user.exists
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000


def test_release_layout(host, app_name):
    root = f"/srv/{app_name}"
    assert host.file(f"{root}/releases").user == "root"
    shared = host.file(f"{root}/shared")
    assert shared.is_directory and shared.mode == 0o750 and shared.group == app_name


def test_python_venv_available(host):
    assert host.package("python3-venv").is_installed
