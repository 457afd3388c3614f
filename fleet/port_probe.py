"""Probe TCP targets from inside a host: `python3 port_probe.py TIMEOUT HOST:PORT...`.

Prints one JSON object, target -> open (connected), closed (a TCP reset: the firewall let it
through, nothing listens) or filtered (refused by the firewall with ICMP, or no answer within
TIMEOUT seconds). Connects run side by side, so a whole row costs about one timeout at most.
Standard library only: it is sent to hosts where the kit is not installed (`python3 -c`).
"""

import json
import socket
import sys
import threading


def verdict(target: str, timeout: float) -> str:
    address, port = target.rsplit(":", 1)
    sock = socket.socket(socket.AF_INET6 if ":" in address else socket.AF_INET)
    sock.settimeout(timeout)
    try:
        sock.connect((address.strip("[]"), int(port)))
        return "open"
    except ConnectionRefusedError:
        return "closed"
    except OSError:
        return "filtered"
    finally:
        sock.close()


def main(args: list[str]) -> None:
    timeout, targets = float(args[0]), args[1:]
    found: dict[str, str] = {}

    def probe(target: str) -> None:
        found[target] = verdict(target, timeout)

    threads = [threading.Thread(target=probe, args=(t,)) for t in targets]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    print(json.dumps(found))


if __name__ == "__main__":
    main(sys.argv[1:])
