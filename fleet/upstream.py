"""The load balancers' upstream as `flaskfleet-upstream list` prints it (templates/nginx/).

The one reader of the script's output on the Python side (`fab node.*`, `fab status` and the
deploy's crash-loop check): every line "ADDRESS PORT up|down" is a server; anything else (a
shell error, the probe lines `fab status` appends) is not. PORT is the host's live gunicorn
slot: a deploy moves it between app_gunicorn_port and app_gunicorn_handover_port. Plays read
`list --json` instead (roles/nginx/tasks/upstream_ctl.yml).
"""

from __future__ import annotations

STATES = ("up", "down")


def _servers(output: str) -> list[tuple[str, int, str]]:
    found = []
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2] in STATES:
            found.append((parts[0], int(parts[1]), parts[2]))
    return found


def parse(output: str) -> dict[str, str]:
    """`list` output -> address: up | down."""
    return {address: state for address, _, state in _servers(output)}


def ports(output: str) -> dict[str, int]:
    """`list` output -> address: the port the load balancer sends its requests to."""
    return {address: port for address, port, _ in _servers(output)}
