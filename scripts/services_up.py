"""Exit 0 if PostgreSQL and Redis answer on their local ports, 1 otherwise.

`make test` uses it to decide whether to run the suite a second time with
`SIMLAB_STACK=services`. Only TCP connects (1 s timeout each): no client libraries.
Usage: python scripts/services_up.py [HOST:PORT ...]  (default: the two local services)
"""

from __future__ import annotations

import socket
import sys

DEFAULT_SERVICES = {"PostgreSQL": ("127.0.0.1", 5432), "Redis": ("127.0.0.1", 6379)}


def answers(host: str, port: int, timeout: float = 1.0) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def main(argv: list[str]) -> int:
    services = DEFAULT_SERVICES
    if argv:
        services = {}
        for item in argv:
            host, _, port = item.rpartition(":")
            services[item] = (host or "127.0.0.1", int(port))
    ok = True
    for name, (host, port) in services.items():
        up = answers(host, port)
        ok = ok and up
        print(f"{name} on {host}:{port}: {'answers' if up else 'no answer'}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
