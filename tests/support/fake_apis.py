"""Local stand-ins for the Amplitude export API and the Attio REST API: real HTTP servers in a thread.

They reproduce what bemidb relies on (see bemidb-reference.md sections 10 and 11): Amplitude's zip of gzipped
JSON-lines per hour with Basic auth and 404 for empty hours; Attio's paged record queries with Bearer auth and
429 + Retry-After. Knobs inject failures (a 500 once, a 500 forever, a 429) and every request is recorded.
"""

from __future__ import annotations

import base64
import datetime as dt
import gzip
import io
import json
import threading
import zipfile
from collections import defaultdict
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import parse_qs, urlparse

UTC = dt.UTC


class LocalHTTPServer:
    """A ThreadingHTTPServer on a free loopback port, serving `self.handle(handler)` in a daemon thread."""

    def __init__(self):
        owner = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - http.server naming
                owner._dispatch(self)

            def do_POST(self):  # noqa: N802
                owner._dispatch(self)

            def log_message(self, *args):  # keep pytest output clean
                pass

        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __enter__(self):
        self.thread.start()
        return self

    def __exit__(self, *exc):
        self.httpd.shutdown()
        self.httpd.server_close()

    def _dispatch(self, handler: BaseHTTPRequestHandler) -> None:
        try:
            self.handle(handler)
        except BrokenPipeError:
            pass

    def handle(self, handler: BaseHTTPRequestHandler) -> None:
        raise NotImplementedError

    @staticmethod
    def reply(handler, status: int, body: bytes, content_type: str = "application/json", headers=None):
        handler.send_response(status)
        handler.send_header("Content-Type", content_type)
        handler.send_header("Content-Length", str(len(body)))
        for name, value in (headers or {}).items():
            handler.send_header(name, value)
        handler.end_headers()
        handler.wfile.write(body)


# ---------------------------------------------------------------------------------------------------------
# Amplitude


def hour_key(moment: dt.datetime) -> str:
    """Amplitude's hour format: YYYYMMDDTHH (UTC)."""
    return moment.astimezone(UTC).strftime("%Y%m%dT%H")


def parse_hour(key: str) -> dt.datetime:
    return dt.datetime.strptime(key, "%Y%m%dT%H").replace(tzinfo=UTC)


def amplitude_time(moment: dt.datetime) -> str:
    """How Amplitude writes timestamps: 'YYYY-MM-DD HH:MM:SS.ffffff' in UTC."""
    return moment.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S.%f")


class FakeAmplitude(LocalHTTPServer):
    """GET /api/2/export?start=YYYYMMDDTHH&end=YYYYMMDDTHH with Basic auth."""

    def __init__(self, api_key: str = "amp-key", secret_key: str = "amp-secret"):
        super().__init__()
        self.api_key, self.secret_key = api_key, secret_key
        self.events: dict[str, list[dict]] = defaultdict(list)  # hour key -> events uploaded in that hour
        self.fail_once: dict[str, int] = {}  # hour key -> status returned once, then the data
        self.fail_always: dict[str, int] = {}  # hour key -> status returned every time
        self.requests: list[tuple[str, str]] = []  # (start, end) of every authorised request
        self.garbage: dict[str, bytes] = {}  # hour key -> a line appended to that hour's first file
        self._zips: dict[tuple[str, ...], bytes] = {}  # built once per hour range (benchmarks repeat them)

    @property
    def url(self) -> str:
        return self.base + "/api/2/export"

    def clear(self) -> None:
        with self.lock:
            self.events.clear()
            self.garbage.clear()
            self._zips.clear()

    def corrupt(self, hour: str, line: bytes) -> None:
        """Append a line that is not an event to that hour's first file."""
        with self.lock:
            self.garbage[hour] = line
            self._zips.clear()

    def add(self, events: list[dict]) -> None:
        """File events under the hour of their server_upload_time, as Amplitude's export does."""
        with self.lock:
            for event in events:
                moment = dt.datetime.fromisoformat(event["server_upload_time"]).replace(tzinfo=UTC)
                self.events[hour_key(moment)].append(event)
            self._zips.clear()

    def handle(self, handler) -> None:
        parsed = urlparse(handler.path)
        if parsed.path != "/api/2/export":  # what a wrong URL gets from a web server
            return self.reply(handler, 404, b"<html><body>Not Found</body></html>", "text/html")
        expected = base64.b64encode(f"{self.api_key}:{self.secret_key}".encode()).decode()
        if handler.headers.get("Authorization") != f"Basic {expected}":
            return self.reply(handler, 401, b"Invalid API key", "text/plain")
        query = parse_qs(parsed.query)
        try:
            start, end = parse_hour(query["start"][0]), parse_hour(query["end"][0])
        except (KeyError, ValueError):
            return self.reply(handler, 400, b"Invalid start or end", "text/plain")
        hours = []
        moment = start
        while moment <= end:  # end is inclusive
            hours.append(hour_key(moment))
            moment += dt.timedelta(hours=1)
        with self.lock:
            self.requests.append((query["start"][0], query["end"][0]))
            for hour in hours:
                if hour in self.fail_always:
                    return self.reply(handler, self.fail_always[hour], b"Internal Server Error", "text/plain")
                if hour in self.fail_once:
                    return self.reply(handler, self.fail_once.pop(hour), b"Service Unavailable", "text/plain")
            per_hour = [(hour, list(self.events.get(hour, []))) for hour in hours]
            if not any(events for _, events in per_hour):
                return self.reply(handler, 404, b"Raw data files were not found.", "text/plain")
            if tuple(hours) not in self._zips:
                self._zips[tuple(hours)] = self._zip(per_hour, self.garbage)
            body = self._zips[tuple(hours)]
        self.reply(handler, 200, body, "application/zip")

    @staticmethod
    def _zip(per_hour: list[tuple[str, list[dict]]], garbage: dict[str, bytes] | None = None) -> bytes:
        """One zip; per hour the events split over two gzip members, as Amplitude shards them."""
        buffer = io.BytesIO()
        with zipfile.ZipFile(buffer, "w", zipfile.ZIP_STORED) as archive:
            for hour, events in per_hour:
                day, hh = f"{hour[:4]}-{hour[4:6]}-{hour[6:8]}", int(hour[9:])
                half = (len(events) + 1) // 2
                for shard, part in enumerate((events[:half], events[half:])):
                    if part:
                        lines = "".join(json.dumps(e) + "\n" for e in part).encode()
                        if shard == 0 and garbage and hour in garbage:
                            lines += garbage[hour] + b"\n"
                        archive.writestr(f"187520/187520_{day}_{hh}#{shard}.json.gz", gzip.compress(lines))
        return buffer.getvalue()


def amplitude_event(n: int, uploaded: dt.datetime, **overrides) -> dict:
    """A realistic export event (the documented fields, their JSON types, Amplitude's quirks)."""
    event = {
        "$insert_id": f"ins-{n}",
        "$insert_key": f"key-{n}",
        "$schema": 12,
        "adid": None,
        "amplitude_attribution_ids": None,
        "amplitude_event_type": None,
        "amplitude_id": 900000000000 + n,
        "app": 187520,
        "city": "Berlin",
        "client_event_time": amplitude_time(uploaded - dt.timedelta(seconds=5)),
        "client_upload_time": amplitude_time(uploaded - dt.timedelta(seconds=1)),
        "country": "Germany",
        "data": {"path": "/2/httpapi", "group_ids": {}},
        "data_type": "event",
        "device_brand": None,
        "device_carrier": None,
        "device_family": "Mac",
        "device_id": f"device-{n % 7}",
        "device_manufacturer": None,
        "device_model": "Mac",
        "device_type": "Mac",
        "dma": None,
        "event_id": n,
        "event_properties": {"page": f"/p/{n}", "n": n, "tags": ["a", "b"]},
        "event_time": amplitude_time(uploaded - dt.timedelta(seconds=5)),
        "event_type": "page_view" if n % 2 else "signup",
        "global_user_properties": {},
        "group_properties": {},
        "groups": {},
        "idfa": None,
        "ip_address": "203.0.113.7",
        "is_attribution_event": False,
        "language": "English",
        "library": "http/2.0",
        "location_lat": 52.52,
        "location_lng": 13.405,
        "os_name": "Chrome",
        "os_version": "120",
        "partner_id": None,
        "paying": None,
        "plan": {},
        "platform": "Web",
        "processed_time": amplitude_time(uploaded + dt.timedelta(seconds=2)),
        "region": "Berlin",
        "sample_rate": None,
        "server_received_time": amplitude_time(uploaded),
        "server_upload_time": amplitude_time(uploaded),
        "session_id": 1735689600000 + n,
        "source_id": None,
        "start_version": None,
        "user_creation_time": amplitude_time(uploaded - dt.timedelta(days=30)),
        "user_id": f"user-{n % 5}",
        "user_properties": {"plan": "pro"},
        "uuid": f"00000000-0000-4000-8000-{n:012d}",
        "version_name": None,
    }
    event.update(overrides)
    return event


# ---------------------------------------------------------------------------------------------------------
# Attio


class FakeAttio(LocalHTTPServer):
    """POST /v2/objects/{object}/records/query with Bearer auth and {"limit", "offset"} paging."""

    def __init__(self, token: str = "attio-token"):
        super().__init__()
        self.token = token
        self.records: dict[str, list[dict]] = {"companies": [], "people": [], "deals": []}
        self.rate_limit_once: set[tuple[str, int]] = set()  # (object, offset) answered 429 once
        self.fail_always: dict[str, int] = {}  # object -> status returned every time
        self.requests: list[tuple[str, int, int]] = []  # (object, limit, offset) of authorised queries
        self.rate_limited: list[tuple[str, int]] = []
        self.ignore_offset = False  # a broken server that answers the first page forever

    @property
    def url(self) -> str:
        return self.base + "/v2"

    def handle(self, handler) -> None:
        parts = urlparse(handler.path).path.strip("/").split("/")
        if handler.command != "POST" or len(parts) != 5 or parts[:2] != ["v2", "objects"] or \
                parts[3:] != ["records", "query"]:
            return self.reply(handler, 404, _attio_error(404, "not_found", "Route not found"))
        if handler.headers.get("Authorization") != f"Bearer {self.token}":
            return self.reply(handler, 401, _attio_error(401, "unauthorized", "Invalid access token"))
        obj = parts[2]
        length = int(handler.headers.get("Content-Length") or 0)
        try:
            body = json.loads(handler.rfile.read(length) or b"{}")
            limit, offset = int(body.get("limit", 500)), int(body.get("offset", 0))
        except (ValueError, TypeError):
            return self.reply(handler, 400, _attio_error(400, "validation_type", "Bad body"))
        with self.lock:
            if obj not in self.records:
                return self.reply(handler, 404, _attio_error(404, "not_found", f"Object {obj!r} not found"))
            if obj in self.fail_always:
                status = self.fail_always[obj]
                return self.reply(handler, status, _attio_error(status, "internal", "Internal error"))
            if (obj, offset) in self.rate_limit_once:
                self.rate_limit_once.discard((obj, offset))
                self.rate_limited.append((obj, offset))
                return self.reply(handler, 429, _attio_error(429, "rate_limit_exceeded", "Slow down"),
                                  headers={"Retry-After": "1"})
            self.requests.append((obj, limit, offset))
            start = 0 if self.ignore_offset else offset
            page = self.records[obj][start:start + limit]
        self.reply(handler, 200, json.dumps({"data": page}).encode())


def _attio_error(status: int, code: str, message: str) -> bytes:
    return json.dumps({"status_code": status, "type": "invalid_request_error", "code": code,
                       "message": message}).encode()


WORKSPACE = "14beef7a-99f7-4534-a87e-70b564330a4c"
MEMBER = "50cf242c-7fa3-4cad-87d0-75b1af71c57b"


def attio_value(attribute_type: str, active_until: str | None = None, **payload) -> dict:
    """One value entry: the common envelope plus the type-specific payload."""
    return {"active_from": "2023-01-01T15:00:00.000000000Z", "active_until": active_until,
            "created_by_actor": {"type": "workspace-member", "id": MEMBER}, "attribute_type": attribute_type,
            **payload}


def attio_record(object_id: str, record_id: str, created_at: str, values: dict) -> dict:
    values = {"record_id": [attio_value("text", value=record_id)],
              "created_at": [attio_value("timestamp", value=created_at)], **values}
    return {"id": {"workspace_id": WORKSPACE, "object_id": object_id, "record_id": record_id},
            "created_at": created_at, "web_url": f"https://app.attio.com/x/{record_id}", "values": values}


def company_id(n: int) -> str:
    return f"c0000000-0000-4000-8000-{n:012d}"


def person_id(n: int) -> str:
    return f"e0000000-0000-4000-8000-{n:012d}"


def deal_id(n: int) -> str:
    return f"d0000000-0000-4000-8000-{n:012d}"


def attio_company(n: int) -> dict:
    """Every value shape a company carries; record 0 also has a historic value and empty attributes."""
    values = {
        "name": [attio_value("text", value=f"Company {n}")],
        "description": [] if n % 3 == 0 else [attio_value("text", value=f"We make thing {n}")],
        "domains": [attio_value("domain", domain=f"c{n}.example", root_domain=f"c{n}.example")] +
                   ([attio_value("domain", domain=f"www.c{n}.example", root_domain=f"c{n}.example")]
                    if n % 2 == 0 else []),
        "categories": [attio_value("select", option={"id": {"option_id": "o1"}, "title": "SaaS",
                                                     "is_archived": False}),
                       attio_value("select", option={"id": {"option_id": "o2"}, "title": "B2B",
                                                     "is_archived": False})],
        "estimated_arr_usd": [attio_value("select", option={"id": {"option_id": "o3"}, "title": "$1M-$10M",
                                                            "is_archived": False})],
        "primary_location": [attio_value("location", line_1=f"{n} Main St", line_2=None, line_3=None,
                                         line_4=None, locality="Springfield", region="IL", postcode="62701",
                                         country_code="US", latitude="39.78", longitude="-89.65")],
        "twitter_follower_count": [attio_value("number", value=1000 + n)],
        "funding_raised_usd": [attio_value("currency", currency_value=2500000.5 + n, currency_code="USD")],
        "foundation_date": [attio_value("date", value=f"20{10 + n % 10}-05-0{1 + n % 9}")],
        "last_interaction": [attio_value("interaction", interaction_type="email",
                                         interacted_at="2024-03-05T10:11:12.123456789Z",
                                         owner_actor={"type": "workspace-member", "id": MEMBER})],
        "team": [attio_value("record-reference", target_object="people", target_record_id=person_id(n)),
                 attio_value("record-reference", target_object="people", target_record_id=person_id(n + 1))],
        "created_by": [attio_value("actor-reference", referenced_actor_type="workspace-member",
                                   referenced_actor_id=MEMBER)],
        # custom attributes: no code knows these names
        "custom_score": [attio_value("rating", value=n % 6)],
        "is_customer": [attio_value("checkbox", value=n % 2 == 0)],
        "renewal_at": [attio_value("timestamp", value="2025-06-30T23:59:59.999999999Z")],
    }
    if n == 0:  # a value that is no longer active must not appear
        values["name"].insert(0, attio_value("text", active_until="2023-01-02T00:00:00.000000000Z",
                                             value="Old Name"))
    return attio_record("companies-object", company_id(n), f"2023-01-01T12:00:{n % 60:02d}.000000000Z", values)


def attio_person(n: int) -> dict:
    values = {
        "name": [attio_value("personal-name", first_name="Ada", last_name=f"Lovelace{n}",
                             full_name=f"Ada Lovelace{n}")],
        "email_addresses": [attio_value("email-address", original_email_address=f"Ada{n}@Example.com",
                                        email_address=f"ada{n}@example.com", email_domain="example.com",
                                        email_root_domain="example.com", email_local_specifier=f"ada{n}")],
        "phone_numbers": [attio_value("phone-number", original_phone_number="+1 (555) 010-0000",
                                      country_code="US", phone_number=f"+1555010{n:04d}")],
        "company": [attio_value("record-reference", target_object="companies", target_record_id=company_id(n))],
        "job_title": [attio_value("text", value="Engineer")],
        "created_by": [attio_value("actor-reference", referenced_actor_type="system", referenced_actor_id=None)],
    }
    return attio_record("people-object", person_id(n), "2023-02-01T08:00:00.000000000Z", values)


def attio_deal(n: int) -> dict:
    values = {
        "name": [attio_value("text", value=f"Deal {n}")],
        "stage": [attio_value("status", status={"id": {"status_id": "s1"}, "title": "In Progress",
                                                "is_archived": False, "target_time_in_status": None,
                                                "celebration_enabled": False})],
        "owner": [attio_value("actor-reference", referenced_actor_type="workspace-member",
                              referenced_actor_id=MEMBER)],
        "value": [attio_value("currency", currency_value=n * 100.25, currency_code="EUR")],
        "associated_people": [attio_value("record-reference", target_object="people",
                                          target_record_id=person_id(n))],
        "associated_company": [attio_value("record-reference", target_object="companies",
                                           target_record_id=company_id(n))],
    }
    return attio_record("deals-object", deal_id(n), "2023-03-01T09:30:00.500000000Z", values)
