"""Free TCP ports for the servers the tests start (Airflow, Kafka, Thrift, PostgreSQL).

A port the kernel picks (``bind(0)``) comes from its ephemeral range, which every outgoing
connection and every Spark JVM's own listeners (driver RPC, block manager) draw from too: under
pytest-xdist another worker's JVM can take the port between the pick and the server's bind
(seen: Airflow's API server failing with ``address already in use`` on a Spark port). So the
tests pick below the ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``, usually from
32768), each xdist worker in its own slice, and check the port is free.
"""

from __future__ import annotations

import os
import random
import socket
from pathlib import Path

#: the ports the tests pick from: [LOW, first ephemeral port), split between xdist workers
LOW = 20000
SLICES = 8


def _first_ephemeral_port() -> int:
    try:
        return int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        return 32768


def _is_free(port: int) -> bool:
    with socket.socket() as sock:
        try:
            sock.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port() -> int:
    """A TCP port on 127.0.0.1 nothing listens on, outside the kernel's ephemeral range, in this
    xdist worker's slice (``gw0`` the first).

    Raises:
        RuntimeError: every port of the slice is taken.
    """
    high = max(_first_ephemeral_port(), LOW + SLICES * 100)
    size = (high - LOW) // SLICES
    worker = os.environ.get("PYTEST_XDIST_WORKER", "gw0").removeprefix("gw")
    first = LOW + (int(worker) % SLICES if worker.isdigit() else 0) * size
    candidates = list(range(first, first + size))
    random.shuffle(candidates)
    for port in candidates:
        if _is_free(port):
            return port
    raise RuntimeError(f"no free port in {first}..{first + size - 1}")
