"""Ports for the servers the tests start, and waiting for a condition.

`free_port` hands out ports below the kernel's ephemeral range (net.ipv4.ip_local_port_range,
32768-60999 by default), so an outgoing connection never takes one between the moment it is
chosen and the moment a server binds it. Each pytest-xdist worker draws from a slice of its own
and a process never hands the same port out twice: parallel workers cannot race for a port, and
a port reserved for a server that is down (the SMTP sink during an outage) stays reserved.
Another test run on the same machine starts in its slice at an offset of its own and skips
every port that is taken.
"""

from __future__ import annotations

import os
import socket
import threading
import time

FIRST, SLICE, SLICES = 20000, 1000, 12  # 20000-31999: below the ephemeral range
_given: set[int] = set()
_lock = threading.Lock()


def _slice() -> range:
    worker = os.environ.get("PYTEST_XDIST_WORKER", "")  # "gw0", "gw1", ... under xdist
    index = int(worker[2:]) + 1 if worker[2:].isdigit() else 0
    start = FIRST + (index % SLICES) * SLICE
    return range(start, start + SLICE)


def _bindable(port: int) -> bool:
    with socket.socket() as s:
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A port on 127.0.0.1 nobody listens on, never handed out before by this process."""
    ports = _slice()
    offset = (os.getpid() * 7919) % len(ports)  # another run on this machine starts elsewhere
    with _lock:
        for i in range(len(ports)):
            port = ports[(offset + i) % len(ports)]
            if port not in _given and _bindable(port):
                _given.add(port)
                return port
    raise RuntimeError(f"no free port left in {ports.start}-{ports.stop - 1}")


def port_open(port: int, host: str = "127.0.0.1") -> bool:
    """Whether something accepts connections on the port."""
    with socket.socket() as s:
        s.settimeout(0.5)
        return s.connect_ex((host, port)) == 0


def wait_until(predicate, timeout: float, interval: float = 0.1, what: str = "condition"):
    """Polls `predicate` until it returns a true value (returned) or `timeout` seconds pass."""
    deadline = time.monotonic() + timeout
    while True:
        value = predicate()
        if value:
            return value
        if time.monotonic() >= deadline:
            raise TimeoutError(f"{what} not reached within {timeout:.0f}s")
        time.sleep(interval)
