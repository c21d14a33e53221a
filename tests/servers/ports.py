"""Free TCP ports on the loopback interface."""

from __future__ import annotations

import random
import socket

#: Below Linux's ephemeral range (32768-60999): the kernel never gives these to outgoing
#: connections, so a port chosen here cannot be taken by one of the tests' own clients
#: between the choice and the server's bind (a port 0 bind picks from that very range).
_RANGE = (20000, 32767)
_given: set[int] = set()


def free_port() -> int:
    """Return a TCP port on 127.0.0.1 that nothing listens on right now, never the same
    twice in a process.

    There is a small window before the caller binds it, which is acceptable for tests (a
    clash shows up as a clear startup failure, not a hang).
    """
    for _ in range(200):
        port = random.randint(*_RANGE)
        if port in _given:
            continue
        with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        _given.add(port)
        return port
    raise RuntimeError(f"no free port on 127.0.0.1 between {_RANGE[0]} and {_RANGE[1]}")


def port_answers(port: int, host: str = "127.0.0.1", timeout: float = 0.2) -> bool:
    """True when something accepts TCP connections on host:port."""
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False
