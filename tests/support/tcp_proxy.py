"""A small TCP proxy in front of a server (SeaweedFS's S3 port): counts HTTP requests and the bytes the server
sent back, and can misbehave on purpose (slow responses, responses cut off after some bytes).

    proxy = TcpProxy("127.0.0.1", s3.s3_port).start()   # then point the client at proxy.endpoint
    proxy.reset(); ...; proxy.requests, proxy.bytes_down
    proxy.delay_s = 0.2           # every chunk from the server waits this long
    proxy.cut_after = 100_000     # responses are cut (connection closed) after this many bytes per connection
    proxy.cuts_left = 2           # ... only on the next 2 connections
    proxy.break_after_up = 5 << 20  # once clients sent this many bytes, every connection breaks (S3 gone)
"""

from __future__ import annotations

import re
import socket
import threading

from tests.support.ports import free_port

_REQUEST = re.compile(rb"(?:^|\r\n)(?:GET|HEAD|PUT|POST|DELETE) /")


class TcpProxy:
    def __init__(self, host: str, port: int):
        self.upstream = (host, port)
        self.port = free_port()
        self.requests = 0
        self.bytes_down = 0
        self.bytes_up = 0
        self.break_after_up: int | None = None
        self.broken = False  # set once break_after_up is passed: connections are closed on sight
        self.delay_s = 0.0
        self.cut_after: int | None = None  # bytes per connection after which the response is cut off
        self.cuts_left: int | None = None  # cut this many connections, then pass everything (None: no end)
        self.cuts = 0  # connections cut so far
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._closed = False

    @property
    def endpoint(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> TcpProxy:
        self._listener = socket.create_server(("127.0.0.1", self.port))
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def reset(self) -> None:
        with self._lock:
            self.requests = self.bytes_down = self.bytes_up = 0

    def stop(self) -> None:
        self._closed = True
        if self._listener is not None:
            self._listener.close()

    def _accept(self) -> None:
        while not self._closed:
            try:
                client, _ = self._listener.accept()
            except OSError:
                return
            if self.broken:
                client.close()
                continue
            try:
                server = socket.create_connection(self.upstream, timeout=5)
            except OSError:
                client.close()
                continue
            server.settimeout(None)
            threading.Thread(target=self._pump_up, args=(client, server), daemon=True).start()
            threading.Thread(target=self._pump_down, args=(server, client), daemon=True).start()

    def _pump_up(self, client: socket.socket, server: socket.socket) -> None:
        try:
            while data := client.recv(65536):
                with self._lock:
                    self.requests += len(_REQUEST.findall(data))
                    self.bytes_up += len(data)
                    if self.break_after_up is not None and self.bytes_up > self.break_after_up:
                        self.broken = True
                if self.broken:
                    break
                server.sendall(data)
        except OSError:
            pass
        finally:
            _close(client, server)

    def _pump_down(self, server: socket.socket, client: socket.socket) -> None:
        sent = 0
        try:
            while data := server.recv(65536):
                if self.broken:
                    break
                if self.delay_s:
                    threading.Event().wait(self.delay_s)
                cut = self.cut_after
                if cut is not None and sent + len(data) > cut and self._take_cut():
                    client.sendall(data[:max(0, cut - sent)])
                    break
                client.sendall(data)
                sent += len(data)
                with self._lock:
                    self.bytes_down += len(data)
        except OSError:
            pass
        finally:
            _close(client, server)

    def _take_cut(self) -> bool:
        with self._lock:
            if self.cuts_left is not None:
                if self.cuts_left <= 0:
                    return False
                self.cuts_left -= 1
            self.cuts += 1
            return True


def _close(*sockets: socket.socket) -> None:
    for sock in sockets:
        try:
            sock.shutdown(socket.SHUT_RDWR)
        except OSError:
            pass
        sock.close()
