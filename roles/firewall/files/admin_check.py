"""Which of the admin networks admits the control node's SSH, as this host sees it.

Usage: admin_check.py ADDRESS [NETWORK ...]. ADDRESS empty: the client address of this SSH
session (SSH_CLIENT). Prints one JSON object: address, source, admitted_by (the first network
that contains the address, or null) and invalid (entries that are not networks). Changes
nothing; the role decides what to refuse.
"""

import ipaddress
import json
import os
import sys


def main(argv: list[str]) -> int:
    address, networks = (argv[0] if argv else ""), argv[1:]
    source = "firewall_control_address"
    if not address:
        address = (os.environ.get("SSH_CLIENT") or "").split(" ")[0]
        source = "SSH_CLIENT"
    invalid, parsed = [], []
    for entry in networks:
        try:
            parsed.append((entry, ipaddress.ip_network(entry, strict=False)))
        except ValueError as exc:
            invalid.append(f"{entry!r} is not a network ({exc})")
    admitted_by = None
    if address:
        try:
            client = ipaddress.ip_address(address)
        except ValueError:
            invalid.append(f"the control address {address!r} ({source}) is not an address")
        else:
            # An IPv4 client seen through an IPv6 socket arrives as ::ffff:a.b.c.d.
            if client.version == 6 and client.ipv4_mapped:
                client = client.ipv4_mapped
            admitted_by = next((e for e, n in parsed
                                if n.version == client.version and client in n), None)
    print(json.dumps({"address": address, "source": source if address else "none",
                      "admitted_by": admitted_by, "invalid": invalid}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
