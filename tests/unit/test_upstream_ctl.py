"""templates/nginx/upstream-ctl.py.j2: the load balancer's upstream control script.

The script is rendered the way the nginx role renders it and loaded as a module without running
its main. Proven here, on the text of a rendered templates/nginx/upstream.conf.j2: `servers()`
lists every server with its port and drained flag; `rewrite()` drains (adds ` down`), enables
(removes it) and changes one server's port, touches no other server or line, keeps the
max_fails/fail_timeout options, refuses an unknown address with `Refused` naming the known
servers, and a drain then an enable gives back the original text. Draining a server gives
exactly what the template renders with that server in `nginx_upstream_drained`, so a
re-provision and the script agree. `main(["list"])` prints what `fleet.ops.status.parse_lb()` reads,
and the executable script, run by the real `fleet.ops.status.lb_command()` next to a local HTTP
server, yields up, drained and failing servers.
"""

from __future__ import annotations

import json
import os
import stat
import threading
import types
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest
from test_templates import render, resolve_defaults

from fleet.ops import status
from fleet.remote import LocalRunner

SERVERS = ["10.0.0.3", "10.0.0.4", "10.0.0.30"]


def upstream(servers=SERVERS, drained=(), port=8000, **extra) -> str:
    ctx = resolve_defaults({"nginx_upstream_servers": list(servers),
                            "nginx_upstream_drained": list(drained),
                            "nginx_upstream_port": port, **extra})
    return render("nginx/upstream.conf.j2", ctx)


def load_ctl(tmp_path=None) -> types.ModuleType:
    overrides = {"nginx_upstream_drained": []}
    if tmp_path is not None:
        overrides |= {"nginx_conf_dir": str(tmp_path / "conf.d"),
                      "nginx_upstream_state_file": str(tmp_path / "state" / "upstream.json")}
    source = render("nginx/upstream-ctl.py.j2", resolve_defaults(overrides))
    module = types.ModuleType("flaskfleet_upstream")
    exec(compile(source, "flaskfleet-upstream", "exec"), module.__dict__)  # main is not run
    module.source = source
    return module


@pytest.fixture(scope="module")
def ctl():
    return load_ctl()


def server_lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip().startswith("server ")]


# --- rendering ---------------------------------------------------------------------------


def test_rendered_script_has_the_role_settings(ctl):
    assert ctl.CONF == "/etc/nginx/conf.d/fleetapp-upstream.conf"
    assert ctl.STATE == "/var/lib/flaskfleet/upstream.json"
    assert "/usr/local/sbin/flaskfleet-upstream drain ADDRESS" in ctl.__doc__
    assert "timeout = 60\n" in ctl.source
    assert "{{" not in ctl.source and "{%" not in ctl.source


# --- servers -----------------------------------------------------------------------------


def test_servers_lists_every_server_with_port_and_drained_flag(ctl):
    text = upstream(drained=["10.0.0.4"])
    assert ctl.servers(text) == [("10.0.0.3", 8000, False), ("10.0.0.4", 8000, True),
                                 ("10.0.0.30", 8000, False)]


def test_servers_ignores_other_lines(ctl):
    assert ctl.servers("# server 1.2.3.4:80;\nkeepalive 32;\n") == []
    assert ctl.servers(upstream(servers=[])) == []


def test_servers_reads_hostnames_and_other_options(ctl):
    text = "upstream x {\n  server app1.internal:8001 weight=2 max_fails=1 down;\n}\n"
    assert ctl.servers(text) == [("app1.internal", 8001, True)]


# --- rewrite -----------------------------------------------------------------------------


def test_drain_marks_only_that_server_down(ctl):
    original = upstream()
    drained = ctl.rewrite(original, "10.0.0.3", down=True)
    assert server_lines(drained) == [
        "    server 10.0.0.3:8000 max_fails=3 fail_timeout=10s down;",
        "    server 10.0.0.4:8000 max_fails=3 fail_timeout=10s;",
        "    server 10.0.0.30:8000 max_fails=3 fail_timeout=10s;",
    ]
    # Everything but that one line is untouched.
    changed = [(a, b) for a, b in zip(original.splitlines(), drained.splitlines(), strict=True)
               if a != b]
    assert len(changed) == 1


def test_drain_is_what_the_template_renders_for_a_drained_server(ctl):
    assert ctl.rewrite(upstream(), "10.0.0.4", down=True) == upstream(drained=["10.0.0.4"])


def test_drain_of_a_drained_server_changes_nothing(ctl):
    text = upstream(drained=["10.0.0.4"])
    assert ctl.rewrite(text, "10.0.0.4", down=True) == text


def test_enable_removes_down(ctl):
    enabled = ctl.rewrite(upstream(drained=["10.0.0.4", "10.0.0.30"]), "10.0.0.4", down=False)
    assert enabled == upstream(drained=["10.0.0.30"])
    assert ("10.0.0.4", 8000, False) in ctl.servers(enabled)


def test_drain_then_enable_round_trips(ctl):
    original = upstream(drained=["10.0.0.30"])
    for address in SERVERS:
        assert ctl.rewrite(ctl.rewrite(original, address, down=True), address,
                           down=False) == upstream(
            drained=[a for a in ["10.0.0.30"] if a != address])
    assert ctl.rewrite(ctl.rewrite(upstream(), "10.0.0.3", down=True), "10.0.0.3",
                       down=False) == upstream()


def test_port_changes_only_that_servers_port(ctl):
    moved = ctl.rewrite(upstream(drained=["10.0.0.4"]), "10.0.0.3", port=8001)
    assert server_lines(moved) == [
        "    server 10.0.0.3:8001 max_fails=3 fail_timeout=10s;",
        "    server 10.0.0.4:8000 max_fails=3 fail_timeout=10s down;",
        "    server 10.0.0.30:8000 max_fails=3 fail_timeout=10s;",
    ]
    assert ctl.rewrite(moved, "10.0.0.3", port=8000) == upstream(drained=["10.0.0.4"])


def test_port_keeps_a_drained_server_drained(ctl):
    moved = ctl.rewrite(upstream(drained=["10.0.0.4"]), "10.0.0.4", port=8001)
    assert ("10.0.0.4", 8001, True) in ctl.servers(moved)


def test_options_are_preserved(ctl):
    text = upstream(nginx_upstream_max_fails=7, nginx_upstream_fail_timeout=25)
    for line in server_lines(ctl.rewrite(ctl.rewrite(text, "10.0.0.3", down=True),
                                         "10.0.0.3", port=9000)):
        assert " max_fails=7 fail_timeout=25s" in line
    other = "    server app1.internal:8000 weight=2 max_fails=1 fail_timeout=5s backup;\n"
    assert ctl.rewrite(other, "app1.internal", down=True) == (
        "    server app1.internal:8000 weight=2 max_fails=1 fail_timeout=5s backup down;\n")


def test_address_must_match_exactly(ctl):
    # 10.0.0.3 is a prefix of 10.0.0.30: only the exact server changes.
    drained = ctl.rewrite(upstream(), "10.0.0.3", down=True)
    assert [s for s in ctl.servers(drained) if s[2]] == [("10.0.0.3", 8000, True)]


def test_unknown_address_is_refused_naming_the_servers(ctl):
    with pytest.raises(ctl.Refused) as err:
        ctl.rewrite(upstream(), "10.0.0.9", down=True)
    assert str(err.value) == ("10.0.0.9 is not a server of this upstream "
                              "(servers: 10.0.0.3, 10.0.0.4, 10.0.0.30)")
    with pytest.raises(ctl.Refused, match=r"\(servers: none\)"):
        ctl.rewrite(upstream(servers=[]), "10.0.0.3", down=True)


# --- list, and what fab status makes of it ------------------------------------------------


def write_conf(tmp_path, text):
    (tmp_path / "conf.d").mkdir(exist_ok=True)
    (tmp_path / "conf.d" / "fleetapp-upstream.conf").write_text(text)


def test_main_list_prints_what_status_parses(tmp_path, capsys):
    ctl = load_ctl(tmp_path)
    write_conf(tmp_path, upstream(drained=["10.0.0.4"]))
    assert ctl.main(["list"]) == 0
    out = capsys.readouterr().out
    assert out == "10.0.0.3 8000 up\n10.0.0.4 8000 down\n10.0.0.30 8000 up\n"
    assert status.parse_lb(out) == {"10.0.0.3": "failing (no probe)", "10.0.0.4": "drained",
                                    "10.0.0.30": "failing (no probe)"}


def test_main_refuses_an_unknown_address_and_changes_nothing(tmp_path):
    ctl = load_ctl(tmp_path)
    text = upstream()
    write_conf(tmp_path, text)
    with pytest.raises(ctl.Refused):
        ctl.main(["drain", "10.0.0.9"])
    assert (tmp_path / "conf.d" / "fleetapp-upstream.conf").read_text() == text
    assert not (tmp_path / "state" / "upstream.json").exists()


def test_main_forget_drops_only_that_address_from_the_drained_list(tmp_path, capsys):
    ctl = load_ctl(tmp_path)
    text = upstream()
    write_conf(tmp_path, text)
    state = tmp_path / "state" / "upstream.json"
    state.parent.mkdir()
    state.write_text('{"down": ["10.0.0.3", "10.0.0.9"]}')
    assert ctl.main(["forget", "10.0.0.9"]) == 0  # a removed host: no longer in the upstream
    assert json.loads(state.read_text()) == {"down": ["10.0.0.3"]}
    assert (tmp_path / "conf.d" / "fleetapp-upstream.conf").read_text() == text
    assert "forget 10.0.0.9: done" in capsys.readouterr().out


def test_main_without_a_command_prints_usage(tmp_path, capsys):
    assert load_ctl(tmp_path).main([]) == 2
    assert "Usage:" in capsys.readouterr().err


class _Health(BaseHTTPRequestHandler):
    def do_GET(self):  # noqa: N802 - the http.server API
        self.send_response(200 if self.path == "/healthz" else 404)
        self.send_header("Content-Length", "0")
        self.end_headers()

    def log_message(self, *args):
        pass


def test_status_lb_command_runs_the_real_script(tmp_path):
    """lb_command() + the executable script + real probes: up, drained and failing."""
    server = ThreadingHTTPServer(("127.0.0.1", 0), _Health)
    threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True).start()
    try:
        port = server.server_address[1]
        ctl = load_ctl(tmp_path)
        # 127.0.0.1 answers; 127.0.0.2 is drained; nothing listens on 127.0.0.3.
        write_conf(tmp_path, upstream(servers=["127.0.0.1", "127.0.0.2", "127.0.0.3"],
                                      drained=["127.0.0.2"], port=port))
        script = tmp_path / "flaskfleet upstream"
        script.write_text(ctl.source)
        script.chmod(script.stat().st_mode | stat.S_IXUSR)
        assert os.access(script, os.X_OK)
        command = status.lb_command(str(script), "/healthz",
                                    {a: port for a in ("127.0.0.1", "127.0.0.2", "127.0.0.3")})
        result = LocalRunner().run(command, timeout=60)
    finally:
        server.shutdown()
        server.server_close()
    assert result.ok, result.stderr
    assert result.stderr == ""
    assert status.parse_lb(result.stdout) == {"127.0.0.1": "up", "127.0.0.2": "drained",
                                              "127.0.0.3": "failing (down)"}


def test_main_port_moves_several_hosts_in_one_change(tmp_path, monkeypatch, capsys):
    ctl = load_ctl(tmp_path)
    write_conf(tmp_path, upstream(drained=["10.0.0.4"]))
    applied = []
    monkeypatch.setattr(ctl, "apply", lambda text, timeout: (applied.append(text), (0.1, 0))[1])
    assert ctl.main(["port", "10.0.0.3", "8001", "10.0.0.30", "8001"]) == 0
    [text] = applied  # one nginx reload for both
    assert ctl.servers(text) == [("10.0.0.3", 8001, False), ("10.0.0.4", 8000, True),
                                 ("10.0.0.30", 8001, False)]
    state = json.loads((tmp_path / "state" / "upstream.json").read_text())
    assert state["ports"] == {"10.0.0.3": 8001, "10.0.0.30": 8001}
    assert "port 10.0.0.3 10.0.0.30: done" in capsys.readouterr().out
    with pytest.raises(ctl.Refused, match="pairs"):
        ctl.main(["port", "10.0.0.3", "8001", "10.0.0.4"])
    assert len(applied) == 1
