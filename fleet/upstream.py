"""The load balancers' upstream as `flaskfleet-upstream list` prints it (templates/nginx/).

The one reader of the script's output on the Python side (`fab node.*` and `fab status`): every
line "ADDRESS PORT up|down" is a server; anything else (a shell error, the probe lines
`fab status` appends) is not. Plays read `list --json` instead (roles/nginx/tasks/upstream_ctl.yml).
"""

from __future__ import annotations

STATES = ("up", "down")


def parse(output: str) -> dict[str, str]:
    """`list` output -> address: up | down."""
    found = {}
    for line in output.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2] in STATES:
            found[parts[0]] = parts[2]
    return found
