"""The common role: base packages, the app user and the release layout."""

testinfra_hosts = ["ansible://all"]


def test_base_packages(host):
    for name in ("python3-venv", "acl", "curl", "systemd-timesyncd"):
        assert host.package(name).is_installed, name


def test_app_user_is_unprivileged(host):
    user = host.user("fleetapp")
    assert user.group == "fleetapp"
    assert user.shell == "/usr/sbin/nologin"
    assert user.uid < 1000


def test_release_layout(host):
    root = host.file("/srv/fleetapp")
    assert root.is_directory and root.user == "root"
    releases = host.file("/srv/fleetapp/releases")
    assert releases.user == "root" and releases.mode == 0o755
    shared = host.file("/srv/fleetapp/shared")
    assert shared.user == "root" and shared.group == "fleetapp" and shared.mode == 0o750
    for sub in ("beat", "uploads", "tmp"):
        d = host.file(f"/srv/fleetapp/shared/{sub}")
        assert d.is_directory and d.user == "fleetapp" and d.mode == 0o750


def test_apt_policy(host):
    policy = host.file("/etc/apt/apt.conf.d/60flaskfleet")
    assert policy.contains('Install-Recommends "false"')
