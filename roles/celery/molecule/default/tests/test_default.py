"""The celery role: worker and beat programs defined under supervisord, not started yet."""

testinfra_hosts = ["ansible://all"]


def supervisor_status(host):
    with host.sudo():
        return host.run("supervisorctl status").stdout


def test_programs_defined_but_not_started_without_release(host):
    status = supervisor_status(host)
    assert "fleetapp-worker:fleetapp-worker-0" in status
    assert "fleetapp-beat" in status
    assert "RUNNING" not in status


def test_worker_program(host):
    conf = host.file("/etc/supervisor/conf.d/fleetapp-worker.conf")
    assert conf.user == "root" and conf.mode == 0o644
    content = conf.content_string
    assert "user=fleetapp" in content
    assert "--app fleetapp.celery_app:celery worker" in content
    assert "stopwaitsecs=600" in content
    assert "stopasgroup=true" in content and "killasgroup=true" in content
    assert "autostart=false" in content


def test_beat_program_uses_shared_schedule(host):
    content = host.file("/etc/supervisor/conf.d/fleetapp-beat.conf").content_string
    assert "--schedule /srv/fleetapp/shared/beat/celerybeat-schedule" in content
    assert "user=fleetapp" in content
