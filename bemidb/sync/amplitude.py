"""`bemidb sync amplitude`: Amplitude's export API -> `<schema>.events`, incrementally.

Each run exports the hours after the last synced one, one request per UTC hour, streaming each zip to a temp
file; DuckDB reads the gzipped JSON-lines members and turns them into typed Arrow batches (no Python object
per event), and the writer appends them in ONE Iceberg snapshot per week of hours: a run every hour or day is
one commit, and a first run over years of history (thousands of requests) keeps each finished week even if
a later one fails.

Cursor: the table property `bemidb.amplitude.last-hour` (the last exported hour, e.g. 2025-01-01T05:00:00Z),
committed in the same snapshot as the data. So a run that fails commits neither data nor cursor and the next
run starts again at the same hour; an hour is never exported twice, hence no duplicates across runs. (Unlike
max(server_upload_time), the property also moves past hours that had no data, so gaps cannot stall the sync.)

Unknown event fields are kept: everything not mapped to a column lands in the `extra` JSON column.
"""

from __future__ import annotations

import datetime as dt
import json
import logging
import shutil
import tempfile
import zipfile
from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlencode

import pyarrow as pa

from bemidb.console import UserError, console
from bemidb.quoting import quote_ident, quote_literal
from bemidb.storage.catalog import PROP_SOURCE, open_catalog
from bemidb.sync.http import AuthError, HttpClient, HttpError, basic_auth
from bemidb.sync.progress import SyncProgress

log = logging.getLogger(__name__)

TABLE = "events"
SOURCE = "amplitude"
CURSOR_PROPERTY = "bemidb.amplitude.last-hour"
NO_DATA_MARKERS = (b"Raw data files were not found", b"404: Not Found")  # the bodies of Amplitude's empty 404
COMPLETE_AFTER = dt.timedelta(hours=2)  # Amplitude's export of an hour is complete ~2 h after the hour ends
HOUR = dt.timedelta(hours=1)
BATCH_ROWS = 50_000
HOURS_PER_COMMIT = 24 * 7
UTC = dt.UTC

# (column, JSON key in the export, kind). Order = the table's column order.
COLUMNS: list[tuple[str, str, str]] = [
    ("uuid", "uuid", "text"),
    ("event_id", "event_id", "int"),
    ("event_type", "event_type", "text"),
    ("event_time", "event_time", "ts"),
    ("server_upload_time", "server_upload_time", "ts"),
    ("server_received_time", "server_received_time", "ts"),
    ("client_event_time", "client_event_time", "ts"),
    ("client_upload_time", "client_upload_time", "ts"),
    ("processed_time", "processed_time", "ts"),
    ("user_creation_time", "user_creation_time", "ts"),
    ("user_id", "user_id", "text"),
    ("device_id", "device_id", "text"),
    ("amplitude_id", "amplitude_id", "bigint"),
    ("session_id", "session_id", "bigint"),
    ("app", "app", "int"),
    ("platform", "platform", "text"),
    ("os_name", "os_name", "text"),
    ("os_version", "os_version", "text"),
    ("device_brand", "device_brand", "text"),
    ("device_manufacturer", "device_manufacturer", "text"),
    ("device_model", "device_model", "text"),
    ("device_family", "device_family", "text"),
    ("device_type", "device_type", "text"),
    ("device_carrier", "device_carrier", "text"),
    ("country", "country", "text"),
    ("region", "region", "text"),
    ("city", "city", "text"),
    ("dma", "dma", "text"),
    ("language", "language", "text"),
    ("library", "library", "text"),
    ("ip_address", "ip_address", "text"),
    ("location_lat", "location_lat", "double"),
    ("location_lng", "location_lng", "double"),
    ("paying", "paying", "bool"),
    ("start_version", "start_version", "text"),
    ("version_name", "version_name", "text"),
    ("idfa", "idfa", "text"),
    ("adid", "adid", "text"),
    ("insert_id", "$insert_id", "text"),
    ("insert_key", "$insert_key", "text"),
    ("schema", "$schema", "text"),
    ("data_type", "data_type", "text"),
    ("sample_rate", "sample_rate", "double"),
    ("source_id", "source_id", "text"),
    ("partner_id", "partner_id", "text"),
    ("is_attribution_event", "is_attribution_event", "bool"),
    ("amplitude_attribution_ids", "amplitude_attribution_ids", "text"),  # a string, or an array as JSON text
    ("amplitude_event_type", "amplitude_event_type", "text"),
    ("event_properties", "event_properties", "json"),
    ("user_properties", "user_properties", "json"),
    ("global_user_properties", "global_user_properties", "json"),
    ("group_properties", "group_properties", "json"),
    ("groups", "groups", "json"),
    ("data", "data", "json"),
    ("plan", "plan", "json"),
]

# kind -> (Arrow type, Postgres type shown by the server, DuckDB expression over the parsed value {v}).
# The JSON is parsed once per event by json_transform: every field as VARCHAR (numbers and booleans as their
# JSON text, arrays/objects in a text field as JSON text), the object fields as JSON; then cast here.
KINDS = {
    "text": (pa.string(), "text", "{v}"),
    "int": (pa.int32(), "integer", "TRY_CAST({v} AS INTEGER)"),
    "bigint": (pa.int64(), "bigint", "TRY_CAST({v} AS BIGINT)"),
    "double": (pa.float64(), "double precision", "TRY_CAST({v} AS DOUBLE)"),
    # JSON true/false and Amplitude's string "true"/"false" both cast
    "bool": (pa.bool_(), "boolean", "TRY_CAST({v} AS BOOLEAN)"),
    # 'YYYY-MM-DD HH:MM:SS.ffffff' (UTC) or ISO with T/Z/offset; "" is NULL
    "ts": (pa.timestamp("us", tz="UTC"), "timestamp with time zone", "TRY_CAST(NULLIF({v}, '') AS TIMESTAMPTZ)"),
    # objects kept as JSON text (a JSON null is already SQL NULL)
    "json": (pa.string(), "jsonb", "CAST({v} AS VARCHAR)"),
}


def arrow_schema() -> pa.Schema:
    fields = [pa.field(name, KINDS[kind][0], metadata={b"pg_type": KINDS[kind][1].encode()})
              for name, _key, kind in COLUMNS]
    fields.append(pa.field("extra", pa.string(), metadata={b"pg_type": b"jsonb"}))
    return pa.schema(fields)


def events_sql() -> str:
    """One SELECT turning the JSON-lines files in $files into the table's columns, deduplicated by uuid."""
    structure = json.dumps({key: "JSON" if kind == "json" else "VARCHAR" for _name, key, kind in COLUMNS})
    selects = [KINDS[kind][2].format(v="e." + quote_ident(key)) + " AS " + quote_ident(name) for name, key, kind in COLUMNS]
    keys = "[" + ", ".join(quote_literal(key) for _name, key, _kind in COLUMNS) + "]"
    patch = quote_literal(json.dumps({key: None for _name, key, _kind in COLUMNS}))
    # Most events carry only known keys: a cheap key check first; for the others an RFC 7386 merge patch with
    # null values removes the mapped keys, and what is left are the unknown fields.
    extra = (f"CASE WHEN len(list_filter(json_keys(json), lambda k: NOT contains({keys}, k))) = 0 THEN NULL "
             f"ELSE CAST(json_merge_patch(json, {patch}) AS VARCHAR) END AS extra")
    return (f"WITH parsed AS (SELECT json, json_transform(json, {quote_literal(structure)}) AS e "
            "FROM read_json_objects($files, format='newline_delimited')) "
            f"SELECT {', '.join(selects)}, {extra} FROM parsed "
            # Amplitude can list an event twice in one export; keep one copy (by uuid, else by $insert_id)
            "QUALIFY (uuid IS NULL AND insert_id IS NULL) "
            "OR row_number() OVER (PARTITION BY coalesce(uuid, 'insert:' || insert_id)) = 1")


# ---------------------------------------------------------------------------------------------------------
# Hours


def floor_hour(moment: dt.datetime) -> dt.datetime:
    return moment.astimezone(UTC).replace(minute=0, second=0, microsecond=0)


def last_complete_hour(now: dt.datetime) -> dt.datetime:
    """The newest hour whose window ended at least COMPLETE_AFTER ago."""
    return floor_hour(now - COMPLETE_AFTER) - HOUR


def hour_param(hour: dt.datetime) -> str:
    return hour.strftime("%Y%m%dT%H")


def format_cursor(hour: dt.datetime) -> str:
    return hour.strftime("%Y-%m-%dT%H:00:00Z")


def parse_cursor(value: str) -> dt.datetime:
    return floor_hour(dt.datetime.fromisoformat(value.replace("Z", "+00:00")))


def first_hour(table, start_date: str) -> dt.datetime:
    """The hour to export next: after the stored cursor, else after max(server_upload_time), else start date."""
    if table is not None:
        stored = table.properties.get(CURSOR_PROPERTY)
        if stored:
            return parse_cursor(stored) + HOUR
        latest = _max_upload_time(table)  # a table written before the cursor existed
        if latest is not None:
            return floor_hour(latest) + HOUR
    return dt.datetime.fromisoformat(start_date).replace(tzinfo=UTC)


def _max_upload_time(table) -> dt.datetime | None:
    import pyarrow.compute as pc

    column = table.scan(selected_fields=("server_upload_time",)).to_arrow().column("server_upload_time")
    latest = pc.max(column).as_py() if len(column) else None
    return latest.replace(tzinfo=latest.tzinfo or UTC) if latest else None


# ---------------------------------------------------------------------------------------------------------
# Export


class ExportFormatError(Exception):
    """An export file that is not what Amplitude documents (not JSON lines)."""


class Exporter:
    """Fetches hour windows and yields their events as Arrow batches of the events schema."""

    def __init__(self, api_url: str, api_key: str, secret_key: str, workdir: Path, client: HttpClient | None = None):
        self.api_url = api_url
        self.client = client or HttpClient(timeout=300, headers=basic_auth(api_key, secret_key))
        self.workdir = workdir
        self.schema = arrow_schema()
        self.sql = events_sql()
        self.hours_with_data = 0
        self.hours_empty = 0
        self._con = None

    def _duckdb(self):
        if self._con is None:
            import duckdb

            self._con = duckdb.connect(config={"threads": 2, "memory_limit": "512MB",
                                               "temp_directory": str(self.workdir / "duckdb-spill"),
                                               "preserve_insertion_order": "false"})
            self._con.execute("SET TimeZone = 'UTC'")
        return self._con

    def close(self) -> None:
        if self._con is not None:
            self._con.close()
            self._con = None

    def batches(self, hours: list[dt.datetime]) -> Iterator[pa.RecordBatch]:
        for hour in hours:
            folder = self.workdir / hour_param(hour)
            folder.mkdir()
            try:
                files = self.fetch_hour(hour, folder)
                if files:
                    self.hours_with_data += 1
                    yield from self._read(hour, files)
                else:
                    self.hours_empty += 1
            finally:
                shutil.rmtree(folder, ignore_errors=True)

    def _read(self, hour: dt.datetime, files: list[Path]) -> Iterator[pa.RecordBatch]:
        import duckdb

        try:
            reader = self._duckdb().sql(self.sql, params={"files": [str(f) for f in files]}) \
                .to_arrow_reader(BATCH_ROWS)
            for batch in reader:
                yield pa.RecordBatch.from_arrays(batch.columns, schema=self.schema)
        except duckdb.Error as exc:  # e.g. a line that is not JSON
            detail = str(exc).splitlines()[0].replace(str(self.workdir), "")
            raise ExportFormatError(f"the export of hour {format_cursor(hour)} cannot be read: {detail}") from None

    def fetch_hour(self, hour: dt.datetime, folder: Path) -> list[Path]:
        """Download one hour's zip (streamed to disk) and unpack its members; [] when Amplitude has no data."""
        url = f"{self.api_url}?{urlencode({'start': hour_param(hour), 'end': hour_param(hour)})}"
        archive = folder / "export.zip"
        with open(archive, "wb") as sink:
            response = self.client.download(url, sink, accept={404})
        if response.status == 404:
            # Amplitude's "no data in this range". Any other 404 (a wrong --api-url) must not pass for an empty
            # hour, or the cursor would move past hours that do have data.
            if any(marker in response.body for marker in NO_DATA_MARKERS):
                return []
            raise HttpError(f"HTTP 404 from {self.api_url} that is not Amplitude's \"no data\" answer "
                            f"(check --api-url / SOURCE_AMPLITUDE_API_URL): {response.body[:200]!r}", 404)
        if response.status != 200:
            raise HttpError(f"unexpected HTTP {response.status}", response.status)
        try:
            return _unpack(archive, folder)
        except zipfile.BadZipFile as exc:
            raise HttpError(f"the export for {hour_param(hour)} is not a valid zip archive ({exc})") from None
        finally:
            archive.unlink(missing_ok=True)


def _unpack(archive: Path, folder: Path) -> list[Path]:
    """Copy each member out of the zip, named so DuckDB sees which ones are gzip (by their magic bytes)."""
    files = []
    with zipfile.ZipFile(archive) as zf:
        for number, member in enumerate(m for m in zf.infolist() if not m.is_dir()):
            with zf.open(member) as source:
                gzipped = source.read(2) == b"\x1f\x8b"
            target = folder / f"{number:05d}.json{'.gz' if gzipped else ''}"
            with zf.open(member) as source, open(target, "wb") as out:
                shutil.copyfileobj(source, out, 1 << 20)
            if target.stat().st_size:
                files.append(target)
    return files


# ---------------------------------------------------------------------------------------------------------
# Command


def run(cfg, args) -> int:
    if not (cfg.source_amplitude_api_key and cfg.source_amplitude_secret_key):
        raise UserError("SOURCE_AMPLITUDE_API_KEY and SOURCE_AMPLITUDE_SECRET_KEY (--api-key, --secret-key) "
                        "are required", exit_code=2)
    from pyiceberg.exceptions import NoSuchTableError

    from bemidb.storage.writer import write_table

    schema_name = cfg.destination_schema or SOURCE
    identifier = (schema_name, TABLE)
    catalog = open_catalog(cfg)
    try:
        table = catalog.load_table(identifier)
    except NoSuchTableError:
        table = None
    if table is not None and table.properties.get(PROP_SOURCE, SOURCE) != SOURCE:
        raise UserError(f"{schema_name}.{TABLE} exists and was not written by `sync amplitude`; "
                        "choose another --schema")
    start = first_hour(table, cfg.source_amplitude_start_date)
    end = last_complete_hour(dt.datetime.now(UTC))
    name = f"{schema_name}.{TABLE}"
    if start > end:
        console.print(f"{name}: up to date (the next hour, {format_cursor(start)}, is complete after "
                      f"{format_cursor(start + HOUR + COMPLETE_AFTER)})", soft_wrap=True)
        return 0
    hours = []
    hour = start
    while hour <= end:
        hours.append(hour)
        hour += HOUR

    with SyncProgress("sync amplitude") as progress, \
            tempfile.TemporaryDirectory(prefix="bemidb-amplitude-") as workdir:
        progress.note(f"{name}: exporting {len(hours)} hour(s), {format_cursor(start)} .. {format_cursor(end)}")
        progress.table_started(name)
        exporter = Exporter(cfg.source_amplitude_api_url, cfg.source_amplitude_api_key,
                            cfg.source_amplitude_secret_key, Path(workdir))
        done_rows = done_bytes = 0
        committed_through = None  # the last hour committed by this run
        failure = None
        try:
            for first in range(0, len(hours), HOURS_PER_COMMIT):
                chunk = hours[first:first + HOURS_PER_COMMIT]
                result = write_table(
                    catalog, identifier, exporter.schema, exporter.batches(chunk), mode="append",
                    properties={PROP_SOURCE: SOURCE, CURSOR_PROPERTY: format_cursor(chunk[-1])},
                    on_progress=lambda rows, size, r=done_rows, b=done_bytes: progress.advance(name, r + rows,
                                                                                               b + size))
                done_rows, done_bytes = done_rows + result.rows, done_bytes + result.bytes
                committed_through = chunk[-1]
        except AuthError as exc:
            failure = f"Amplitude rejected the API key / secret key ({exc})"
        except HttpError as exc:
            failure = f"Amplitude export failed: {exc}"
        except ExportFormatError as exc:
            failure = str(exc)
        finally:
            exporter.close()
        if failure:
            if committed_through is None and failure.startswith("Amplitude rejected"):
                kept = "nothing was changed"
            elif committed_through is None:
                kept = f"nothing was committed, the next run starts again at {format_cursor(start)}"
            else:
                kept = (f"synced through {format_cursor(committed_through)} ({done_rows:,} events committed), "
                        f"the next run starts at {format_cursor(committed_through + HOUR)}")
            progress.table_done(name, done_rows, done_bytes, error=kept)
            raise UserError(f"{failure}; {kept}")
        progress.table_done(name, done_rows, done_bytes)
        progress.note(f"{name}: {exporter.hours_with_data} hour(s) with data, {exporter.hours_empty} empty; "
                      f"synced through {format_cursor(end)}")
    return 0
