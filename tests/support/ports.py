"""Free loopback ports, below 55000 and with port+10000 free too (SeaweedFS opens gRPC there)."""

from __future__ import annotations

import random
import socket


def is_free(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
        except OSError:
            return False
    return True


def free_port(with_grpc: bool = False) -> int:
    for _ in range(500):
        port = random.randint(20000, 44000)
        if is_free(port) and (not with_grpc or is_free(port + 10000)):
            return port
    raise RuntimeError("no free port found")
