import pytest

from fleet.sandbox.engine import Machine, plan


def test_root_on_debian_without_systemd_may_start_the_engine():
    assert plan(Machine(is_root=True, is_debian=True, has_systemd=False,
                        has_dockerd=False)) == "start"


@pytest.mark.parametrize(("machine", "command"), [
    (Machine(is_root=False, is_debian=True, has_systemd=True, has_dockerd=True),
     "sudo systemctl start docker"),
    (Machine(is_root=False, is_debian=True, has_systemd=False, has_dockerd=False),
     "sudo make engine"),
    (Machine(is_root=True, is_debian=True, has_systemd=True, has_dockerd=True),
     "sudo systemctl start docker"),
    (Machine(is_root=False, is_debian=False, has_systemd=True, has_dockerd=False),
     "docs.docker.com/engine/install"),
])
def test_otherwise_we_only_say_what_to_run(machine, command):
    decision = plan(machine)
    assert decision != "start"
    assert command in decision
