"""Worker and beat hosts: Celery programs under supervisord; beat only on the beat host."""

testinfra_hosts = ["ansible://workers", "ansible://beat"]


def programs(host) -> str:
    with host.sudo():
        return host.run("supervisorctl status").stdout


def test_supervisor_running_and_enabled(host):
    service = host.service("supervisor")
    assert service.is_running and service.is_enabled


def test_worker_program_on_workers(host, fleet_inventory, app_name):
    name = host.backend.get_hostname()
    if name in fleet_inventory.groups["workers"]:
        assert f"{app_name}-worker:" in programs(host)


def test_beat_only_on_the_beat_host(host, fleet_inventory, app_name):
    name = host.backend.get_hostname()
    has_beat = f"{app_name}-beat " in programs(host) + " "
    assert has_beat == (name in fleet_inventory.groups["beat"])
