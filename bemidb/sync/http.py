"""A small HTTP client for the SaaS sources, on urllib (no extra dependency).

What the sources need and urllib lacks: retries with exponential backoff on 429/5xx and dropped connections
(honouring Retry-After), one clear error for bad credentials, and streaming a large body to a file.
"""

from __future__ import annotations

import base64
import email.utils
import http.client
import json
import logging
import random
import shutil
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import IO, Any

log = logging.getLogger(__name__)

RETRY_STATUSES = {429, 500, 502, 503, 504}
CHUNK = 1 << 20  # 1 MiB: big enough for throughput, small enough never to matter for memory


class HttpError(Exception):
    """A request failed for good (after retries, or a status that retrying cannot fix)."""

    def __init__(self, message: str, status: int | None = None, body: str = ""):
        super().__init__(message)
        self.status = status
        self.body = body


class AuthError(HttpError):
    """401/403: the credentials are wrong or lack access. Never retried."""


@dataclass
class Response:
    status: int
    headers: dict[str, str]
    body: bytes = b""

    def json(self) -> Any:
        try:
            return json.loads(self.body)
        except ValueError as exc:
            raise HttpError(f"response is not JSON ({exc}): {_snippet(self.body)}", self.status) from None


def basic_auth(user: str, password: str) -> dict[str, str]:
    token = base64.b64encode(f"{user}:{password}".encode()).decode()
    return {"Authorization": f"Basic {token}"}


def bearer_auth(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


@dataclass
class HttpClient:
    timeout: float = 60.0  # seconds per socket operation (connect, each read), not for the whole body
    retries: int = 5  # extra attempts after the first one
    backoff: float = 1.0  # first wait; doubles each attempt, with jitter
    max_wait: float = 120.0  # cap on any single wait, Retry-After included
    headers: dict[str, str] = field(default_factory=dict)
    sleep: Callable[[float], None] = time.sleep
    _opener: urllib.request.OpenerDirector = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self._opener = urllib.request.build_opener()

    def request(self, method: str, url: str, *, json_body: Any = None, headers: dict[str, str] | None = None,
                accept: frozenset[int] | set[int] = frozenset()) -> Response:
        """Send a request and read the whole (small) body. Statuses in `accept` are returned, not raised."""
        return self._with_retries(method, url, json_body, headers, accept, sink=None)

    def download(self, url: str, sink: IO[bytes], *, headers: dict[str, str] | None = None,
                 accept: frozenset[int] | set[int] = frozenset()) -> Response:
        """GET `url`, streaming a 2xx body into the binary file `sink` in chunks (never all in memory).

        The sink is rewound and truncated before each attempt, so a retry never leaves half a body behind.
        Bodies of accepted non-2xx statuses (e.g. a 404 meaning "no data") go into Response.body instead.
        """
        return self._with_retries("GET", url, None, headers, accept, sink=sink)

    # ---------------------------------------------------------------------------------------------------

    def _with_retries(self, method, url, json_body, headers, accept, sink) -> Response:
        data = None if json_body is None else json.dumps(json_body).encode()
        all_headers = {"User-Agent": "bemidb", **self.headers, **(headers or {})}
        if data is not None:
            all_headers["Content-Type"] = "application/json"
        attempt = 0
        while True:
            request = urllib.request.Request(url, data=data, headers=all_headers, method=method)
            try:
                return self._send(request, sink, accept)
            except _Retryable as exc:
                if attempt >= self.retries:
                    raise HttpError(f"{method} {_redact(url)} failed after {attempt + 1} attempts: {exc.reason}",
                                    exc.status, exc.body) from None
                wait = self._wait(attempt, exc.retry_after)
                log.warning("%s %s: %s; retrying in %.1fs (attempt %d of %d)", method, _redact(url), exc.reason,
                            wait, attempt + 2, self.retries + 1)
                self.sleep(wait)
                attempt += 1

    def _send(self, request: urllib.request.Request, sink: IO[bytes] | None, accept) -> Response:
        try:
            with self._opener.open(request, timeout=self.timeout) as raw:
                headers = dict(raw.headers.items())
                if sink is None:
                    return Response(raw.status, headers, raw.read())
                sink.seek(0)
                sink.truncate()
                shutil.copyfileobj(raw, sink, CHUNK)
                sink.flush()
                # http.client returns a short body silently when the peer hangs up early: check the length.
                expected = headers.get("Content-Length")
                if expected and expected.isdigit() and sink.tell() != int(expected):
                    raise _Retryable(f"body cut short ({sink.tell()} of {expected} bytes)")
                return Response(raw.status, headers)
        except urllib.error.HTTPError as exc:
            body = _read_error_body(exc)
            status = exc.code
            if status in accept:
                return Response(status, dict(exc.headers.items()), body)
            text = _snippet(body)
            if status in (401, 403):
                raise AuthError(f"HTTP {status} from {_redact(request.full_url)}: credentials rejected"
                                f"{': ' + text if text else ''}", status, text) from None
            if status in RETRY_STATUSES:
                raise _Retryable(f"HTTP {status} {text}".strip(), status, text,
                                 _retry_after(exc.headers.get("Retry-After"))) from None
            raise HttpError(f"HTTP {status} from {_redact(request.full_url)}: {text or exc.reason}",
                            status, text) from None
        except urllib.error.URLError as exc:  # refused, DNS, TLS: often transient
            raise _Retryable(f"cannot connect: {exc.reason}") from None
        except (TimeoutError, OSError, http.client.HTTPException) as exc:  # timeout, reset, body cut short
            raise _Retryable(f"connection failed: {exc!r}") from None

    def _wait(self, attempt: int, retry_after: float | None) -> float:
        if retry_after is not None:
            return min(max(retry_after, 0.0), self.max_wait)
        base = self.backoff * (2 ** attempt)
        return min(base * (0.75 + random.random() / 2), self.max_wait)  # jitter: clients don't stampede


class _Retryable(Exception):
    def __init__(self, reason: str, status: int | None = None, body: str = "", retry_after: float | None = None):
        super().__init__(reason)
        self.reason = reason
        self.status = status
        self.body = body
        self.retry_after = retry_after


def _retry_after(value: str | None) -> float | None:
    """Retry-After is either seconds or an HTTP date (RFC 9110 10.2.3)."""
    if not value:
        return None
    value = value.strip()
    try:
        return float(value)
    except ValueError:
        pass
    try:
        when = email.utils.parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    return when.timestamp() - time.time()


def _read_error_body(exc: urllib.error.HTTPError) -> bytes:
    try:
        return exc.read(64 * 1024) or b""  # error bodies are short; never read a huge one
    except Exception:  # noqa: BLE001 - the body is only for the message
        return b""


def _snippet(body: bytes, limit: int = 300) -> str:
    text = body.decode("utf-8", "replace").strip().replace("\n", " ")
    return text if len(text) <= limit else text[:limit] + "..."


def _redact(url: str) -> str:
    """URLs in messages without their query string (it may carry tokens in some APIs)."""
    return url.split("?", 1)[0]
