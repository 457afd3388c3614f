"""fleet/upstream.py: the one Python reader of `flaskfleet-upstream list`.

Fed the real output of the rendered control script (templates/nginx/upstream-ctl.py.j2, loaded
without running its main, on a rendered upstream.conf): `parse()` gives every server's state,
the human `list` and `list --json` (what plays read) name the same servers and states, and lines
that are not servers (a shell error, `fab status` probes, a short or odd line) are skipped.
"""

from __future__ import annotations

import json

from test_upstream_ctl import load_ctl, upstream, write_conf

from fleet import upstream as upstream_list


def listed(tmp_path, capsys, *args: str, **conf) -> str:
    ctl = load_ctl(tmp_path)
    write_conf(tmp_path, upstream(**conf))
    assert ctl.main(["list", *args]) == 0
    return capsys.readouterr().out


def test_parse_reads_every_server_of_the_real_list(tmp_path, capsys):
    out = listed(tmp_path, capsys, drained=["10.0.0.4"])
    assert upstream_list.parse(out) == {"10.0.0.3": "up", "10.0.0.4": "down",
                                        "10.0.0.30": "up"}


def test_json_list_names_the_same_servers_and_states(tmp_path, capsys):
    text = listed(tmp_path, capsys, drained=["10.0.0.30"], port=8001)
    rows = json.loads(listed(tmp_path, capsys, "--json", drained=["10.0.0.30"], port=8001))
    assert rows == [{"address": "10.0.0.3", "port": 8001, "state": "up"},
                    {"address": "10.0.0.4", "port": 8001, "state": "up"},
                    {"address": "10.0.0.30", "port": 8001, "state": "down"}]
    assert {r["address"]: r["state"] for r in rows} == upstream_list.parse(text)


def test_human_list_is_unchanged_by_the_json_form(tmp_path, capsys):
    assert listed(tmp_path, capsys, drained=["10.0.0.4"]) == (
        "10.0.0.3 8000 up\n10.0.0.4 8000 down\n10.0.0.30 8000 up\n")


def test_empty_upstream_lists_nothing(tmp_path, capsys):
    assert json.loads(listed(tmp_path, capsys, "--json", servers=[])) == []
    assert upstream_list.parse(listed(tmp_path, capsys, servers=[])) == {}


def test_parse_skips_lines_that_are_not_servers():
    output = ("sh: 1: /usr/local/sbin/flaskfleet-upstream: not found\n"
              "probe:10.0.0.3=200\n"
              "10.0.0.5 8000\n"
              "10.0.0.6 eighty up\n"
              "10.0.0.7 8000 drained\n"
              "10.0.0.8 8000 down\n")
    assert upstream_list.parse(output) == {"10.0.0.8": "down"}
