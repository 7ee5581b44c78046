"""The SaaS sources' HTTP client against a real local server: retries, Retry-After, auth errors, streaming."""

from __future__ import annotations

import email.utils
import time

import pytest

from bemidb.sync.http import AuthError, HttpClient, HttpError
from tests.support.fake_apis import LocalHTTPServer
from tests.support.ports import free_port


class Scripted(LocalHTTPServer):
    """Answers each request with the next scripted (status, headers, body, cut) entry; the last one repeats."""

    def __init__(self, script):
        super().__init__()
        self.script = list(script)
        self.hits = 0

    def handle(self, handler):
        with self.lock:
            status, headers, body, cut = self.script[min(self.hits, len(self.script) - 1)]
            self.hits += 1
        if cut:  # promise the whole body, send part of it, hang up
            handler.send_response(status)
            handler.send_header("Content-Length", str(len(body)))
            handler.end_headers()
            handler.wfile.write(body[: len(body) // 3])
            handler.wfile.flush()
            handler.close_connection = True
            return
        self.reply(handler, status, body, "application/octet-stream", headers)


def client(**kwargs):
    waits: list[float] = []
    return HttpClient(timeout=10, backoff=0.01, sleep=waits.append, **kwargs), waits


def test_download_streams_and_a_cut_body_is_retried_from_scratch(tmp_path):
    body = bytes(range(256)) * 12_000  # ~3 MB
    with Scripted([(200, {}, body, True), (503, {}, b"busy", False), (200, {}, body, False)]) as server:
        http, waits = client()
        with open(tmp_path / "out.bin", "wb") as sink:
            response = http.download(server.base + "/x", sink)
        assert response.status == 200 and server.hits == 3 and len(waits) == 2
    assert (tmp_path / "out.bin").read_bytes() == body  # nothing of the broken attempt left in the file


def test_retry_after_seconds_and_http_date_are_honoured():
    later = email.utils.formatdate(time.time() + 30, usegmt=True)
    with Scripted([(429, {"Retry-After": "7"}, b"", False), (429, {"Retry-After": later}, b"", False),
                   (200, {}, b'{"ok": true}', False)]) as server:
        http, waits = client()
        assert http.request("POST", server.base + "/q", json_body={"a": 1}).json() == {"ok": True}
    assert waits[0] == 7
    assert 25 <= waits[1] <= 31


def test_auth_failure_is_not_retried_and_says_so():
    with Scripted([(401, {}, b"Invalid API key", False)]) as server:
        http, waits = client()
        with pytest.raises(AuthError, match="HTTP 401 .* credentials rejected: Invalid API key"):
            http.request("GET", server.base + "/x?token=secret")
        assert server.hits == 1 and waits == []


def test_client_errors_fail_at_once_and_server_errors_give_up_after_the_retries():
    with Scripted([(400, {}, b"too big", False)]) as server:
        http, _ = client()
        with pytest.raises(HttpError, match="HTTP 400 .*too big") as info:
            http.request("GET", server.base + "/x")
        assert info.value.status == 400 and server.hits == 1
    with Scripted([(500, {}, b"boom", False)]) as server:
        http, waits = client(retries=2)
        with pytest.raises(HttpError, match="failed after 3 attempts: HTTP 500 boom"):
            http.request("GET", server.base + "/x")
        assert server.hits == 3 and len(waits) == 2


def test_accepted_status_is_returned_and_refused_connection_is_retried():
    with Scripted([(404, {}, b"Raw data files were not found.", False)]) as server:
        http, _ = client()
        response = http.request("GET", server.base + "/x", accept={404})
        assert response.status == 404 and response.body == b"Raw data files were not found."
    http, waits = client(retries=1)
    with pytest.raises(HttpError, match="failed after 2 attempts: cannot connect"):
        http.request("GET", f"http://127.0.0.1:{free_port()}/x")
    assert len(waits) == 1
