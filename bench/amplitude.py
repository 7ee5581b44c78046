"""`bemidb sync amplitude` throughput and memory, vs a per-event Python loop over the same export.

    python -m bench amplitude [--quick]       (or python -m bench.amplitude)

One run serves N realistic events (3 hours, each hour a zip of gzipped JSON lines) from the local fake export
API, then measures:
  sync     - `bemidb sync amplitude` as a real process, minus the same process's fixed cost (startup, imports,
             catalog), measured by an immediate second run that has nothing to export;
  python   - the reference: a straightforward syncer's core, json.loads per line + pa.Table.from_pylist into the
             same 56-column schema (typed timestamps, JSON text), over the same gzip members, in this process;
and prints events/s, the ratio python/sync, and the sync's peak RSS next to the export's uncompressed size
(the zip is streamed to disk, so memory must not grow with the export). Correctness: every event lands once.
Timings never fail the run.
"""

from __future__ import annotations

import datetime as dt
import gzip
import io
import json
import os
import subprocess
import sys
import tempfile
import time
import zipfile
from pathlib import Path

import pyarrow as pa

from bemidb import config
from bemidb.storage.catalog import open_catalog
from bemidb.sync.amplitude import COLUMNS, arrow_schema, last_complete_hour
from tests.support.fake_apis import FakeAmplitude, amplitude_event

REPO = Path(__file__).resolve().parent.parent
HOURS = 3


def _run_sync(url: str, data_dir: str, start: str) -> tuple[float, int, str]:
    """Wall seconds, peak RSS (kB) and stderr of one `bemidb sync amplitude` process."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("BEMIDB_", "AWS_", "SOURCE_"))}
    env.update({"PYTHONPATH": str(REPO), "BEMIDB_DATA_DIR": data_dir, "SOURCE_AMPLITUDE_API_KEY": "amp-key",
                "SOURCE_AMPLITUDE_SECRET_KEY": "amp-secret"})
    started = time.perf_counter()
    with tempfile.TemporaryFile() as errors:
        process = subprocess.Popen([sys.executable, "-m", "bemidb", "sync", "amplitude", "--api-url", url,
                                    "--start-date", start], env=env, stderr=errors, cwd=REPO)
        peak_kb = 0
        while process.poll() is None:  # VmHWM is the process's own high-water mark: the last reading is the peak
            peak_kb = max(peak_kb, _high_water_kb(process.pid))
            time.sleep(0.05)
        seconds = time.perf_counter() - started
        errors.seek(0)
        stderr = errors.read().decode()
    if process.returncode != 0:
        raise RuntimeError(f"sync amplitude failed: {stderr[-2000:]}")
    return seconds, peak_kb, stderr


def _high_water_kb(pid: int) -> int:
    try:
        for line in Path(f"/proc/{pid}/status").read_text().splitlines():
            if line.startswith("VmHWM:"):
                return int(line.split()[1])
    except (OSError, ValueError):  # the process just exited
        pass
    return 0


def _python_reference(zips: list[bytes]) -> tuple[float, int]:
    """json.loads per event and pa.Table.from_pylist: the per-row path this module avoids."""
    schema = arrow_schema()
    keys = [(name, key, kind) for name, key, kind in COLUMNS]
    known = {key for _name, key, _kind in COLUMNS}
    started = time.perf_counter()
    rows = 0
    for blob in zips:
        with zipfile.ZipFile(io.BytesIO(blob)) as archive:
            for member in archive.infolist():
                with archive.open(member) as raw, gzip.open(raw, "rt") as lines:
                    records = []
                    for line in lines:
                        event = json.loads(line)
                        row = {}
                        for name, key, kind in keys:
                            value = event.get(key)
                            if kind == "ts":
                                value = dt.datetime.fromisoformat(value).replace(tzinfo=dt.UTC) if value else None
                            elif kind == "json" or (kind == "text" and isinstance(value, (dict, list))):
                                value = None if value is None else json.dumps(value, separators=(",", ":"))
                            elif kind == "text" and value is not None:
                                value = str(value)
                            row[name] = value
                        extra = {k: v for k, v in event.items() if k not in known}
                        row["extra"] = json.dumps(extra) if extra else None
                        records.append(row)
                    rows += pa.Table.from_pylist(records, schema=schema).num_rows
    return time.perf_counter() - started, rows


def main(quick: bool = False) -> dict:
    total = 30_000 if quick else 300_000
    per_hour = total // HOURS
    end = last_complete_hour(dt.datetime.now(dt.UTC))
    with FakeAmplitude() as fake, tempfile.TemporaryDirectory(prefix="bench-amplitude-") as data_dir:
        hours = [end - dt.timedelta(hours=h) for h in range(HOURS)]
        for index, hour in enumerate(hours):
            fake.add([amplitude_event(index * per_hour + n, hour + dt.timedelta(seconds=n % 3600))
                      for n in range(per_hour)])
        zips = [fake._zip([(key, events)]) for key, events in sorted(fake.events.items())]
        raw_bytes = sum(len(json.dumps(e)) + 1 for events in fake.events.values() for e in events)
        start = (end - dt.timedelta(hours=HOURS - 1)).date().isoformat()
        # warm the fake's zip cache so the sync is not waiting on the fake building archives
        for key in fake.events:
            fake._zips[(key,)] = fake._zip([(key, fake.events[key])])

        sync_s, rss_kb, _ = _run_sync(fake.url, data_dir, start)
        fixed_s, fixed_rss_kb, second = _run_sync(fake.url, data_dir, start)
        table = open_catalog(config.resolve(None, config.STORAGE, env={"BEMIDB_DATA_DIR": data_dir})) \
            .load_table(("amplitude", "events"))
        stored = table.scan(selected_fields=("uuid",)).to_arrow()
    python_s, python_rows = _python_reference(zips)

    net_s = max(sync_s - fixed_s, 1e-6)
    ok = len(stored) == total and len(set(stored.column("uuid").to_pylist())) == total and python_rows == total \
        and "up to date" in second
    summary = [
        {"metric": f"sync amplitude, {total:,} events, {HOURS} hours (net of startup)", "value": total / net_s,
         "unit": "events/s", "ok": ok},
        {"metric": "per-event python (json.loads + from_pylist)", "value": total / python_s, "unit": "events/s",
         "reference": "sync", "ratio": python_s / net_s},
        {"metric": "sync wall time / fixed startup", "value": f"{sync_s:.1f} / {fixed_s:.1f}", "unit": "s"},
        {"metric": "sync peak RSS (no-op run) vs export size",
         "value": f"{rss_kb / 1024:.0f} ({fixed_rss_kb / 1024:.0f}) / {raw_bytes / 1e6:.0f}", "unit": "MB"},
    ]
    return {"ok": ok, "summary": summary}


if __name__ == "__main__":  # the same as `python -m bench amplitude [--quick]`: one summary table for all
    from bench.__main__ import main as run_benchmarks

    sys.exit(run_benchmarks(["amplitude", *sys.argv[1:]]))
