"""Helpers shared by the verify modules."""


def listening(host, port: int) -> list[str]:
    """Addresses a TCP port listens on (as testinfra socket specs)."""
    with host.sudo():
        sockets = host.socket.get_listening_sockets()
    return sorted(s for s in sockets if s.startswith("tcp") and s.endswith(f":{port}"))
