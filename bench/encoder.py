"""Result encoder throughput: Arrow batches -> DataRow bytes, vs DuckDB producing the same batches.

    python -m bench encoder [--quick]       (or python -m bench.encoder)

One run measures, on the same 6-column result (bigint, double, varchar, timestamp, decimal(12,2), boolean):
  duckdb   - DuckDB executing the query and handing over Arrow record batches (the reference),
  text     - our vectorised encoder, text format (psql, psycopg, pg8000 ...),
  binary   - our vectorised encoder, binary format (asyncpg, PgJDBC),
  copy     - COPY (...) TO STDOUT in csv,
  small    - the whole per-query cost for a 4-row answer (what TPC-H results look like),
  naive    - a per-value Python loop (str() + struct per value, what a straightforward encoder does),
and prints rows/s and the ratios encode/duckdb and naive/encode. Correctness is checked (every row parses
back, values equal the naive loop's for the columns where both print the same text); timings never fail.
"""

from __future__ import annotations

import struct
import sys
import time

import duckdb

from bemidb.server.codec.encoder import DataRowEncoder, copy_out, row_description

QUERY = """SELECT i::BIGINT AS id, i * 1.5::DOUBLE AS price, 'customer ' || i AS name,
                  TIMESTAMP '2024-01-01' + to_seconds(i) AS created_at, (i / 100)::DECIMAL(12,2) AS amount,
                  i % 2 = 0 AS active
           FROM range({rows}) t(i)"""


def _duckdb_batches(con, rows: int) -> tuple[list, float]:
    started = time.perf_counter()
    reader = con.sql(QUERY.format(rows=rows)).to_arrow_reader(122_880)
    batches = list(reader)
    return batches, time.perf_counter() - started


def _encode(batches, fmt: int) -> tuple[int, float]:
    encoder = DataRowEncoder(batches[0].schema, [fmt])
    started = time.perf_counter()
    total = 0
    for batch in batches:
        total += len(encoder.encode(batch))
    return total, time.perf_counter() - started


def _copy(batches) -> float:
    started = time.perf_counter()
    for i, batch in enumerate(batches):
        copy_out(batch, "csv", header=i == 0)
    return time.perf_counter() - started


def _small_result_us(con) -> float:
    """Per-query cost for a TPC-H-sized answer (4 rows): encoder set-up + RowDescription + DataRows."""
    batch = con.sql(QUERY.format(rows=4)).to_arrow_table().to_batches()[0]
    runs = 500
    started = time.perf_counter()
    for _ in range(runs):
        encoder = DataRowEncoder(batch.schema)
        row_description(encoder.fields)
        encoder.encode(batch)
    return (time.perf_counter() - started) / runs * 1e6


def naive_encode(batch) -> bytes:
    """The per-value loop this module replaces."""
    out = bytearray()
    columns = [c.to_pylist() for c in batch.columns]
    count = struct.pack(">h", len(columns))
    for row in zip(*columns, strict=True):
        body = bytearray(count)
        for v in row:
            if v is None:
                body += b"\xff\xff\xff\xff"
            else:
                data = (("t" if v else "f") if isinstance(v, bool) else str(v)).encode()
                body += struct.pack(">i", len(data)) + data
        out += b"D" + struct.pack(">i", len(body) + 4) + body
    return bytes(out)


def _rows(data: bytes) -> list[list[bytes | None]]:
    rows, pos = [], 0
    while pos < len(data):
        (length,) = struct.unpack(">i", data[pos + 1:pos + 5])
        (count,) = struct.unpack(">h", data[pos + 5:pos + 7])
        p, row = pos + 7, []
        for _ in range(count):
            (n,) = struct.unpack(">i", data[p:p + 4])
            row.append(None if n < 0 else data[p + 4:p + 4 + n])
            p += 4 + max(n, 0)
        rows.append(row)
        pos += 1 + length
    return rows


def main(quick: bool = False) -> dict:
    rows = 100_000 if quick else 1_000_000
    con = duckdb.connect()
    con.execute("SET arrow_lossless_conversion = true")
    _duckdb_batches(con, 10_000)  # warm up
    batches, duck_s = min((_duckdb_batches(con, rows) for _ in range(3)), key=lambda r: r[1])
    text_bytes, text_s = min((_encode(batches, 0) for _ in range(5)), key=lambda r: r[1])
    binary_bytes, binary_s = min((_encode(batches, 1) for _ in range(5)), key=lambda r: r[1])
    copy_s = min(_copy(batches) for _ in range(3))
    small_us = _small_result_us(con)
    sample = batches[0].slice(0, min(50_000, rows))
    started = time.perf_counter()
    naive = naive_encode(sample)
    naive_s = (time.perf_counter() - started) * rows / sample.num_rows  # extrapolated to the whole result

    ours = _rows(DataRowEncoder(sample.schema).encode(sample))
    theirs = _rows(naive)
    same_columns = (0, 2, 4)  # bigint, varchar, decimal print identically in both
    ok = len(ours) == sample.num_rows and all(
        [r[c] for c in same_columns] == [t[c] for c in same_columns] for r, t in zip(ours, theirs, strict=True))
    ok = ok and ours[3][5] == b"f" and ours[2][3] == b"2024-01-01 00:00:02"

    def rate(seconds: float) -> float:
        return rows / seconds

    summary = [
        {"metric": f"duckdb -> arrow, {rows:,} rows x 6 cols", "value": rate(duck_s), "unit": "rows/s"},
        {"metric": "encode text", "value": rate(text_s), "unit": "rows/s", "reference": "duckdb",
         "ratio": text_s / duck_s},
        {"metric": "encode binary", "value": rate(binary_s), "unit": "rows/s", "reference": "duckdb",
         "ratio": binary_s / duck_s},
        {"metric": "COPY TO STDOUT csv", "value": rate(copy_s), "unit": "rows/s", "reference": "duckdb",
         "ratio": copy_s / duck_s},
        {"metric": "4-row result: describe + encode", "value": small_us, "unit": "us"},
        {"metric": "naive per-value loop", "value": rate(naive_s), "unit": "rows/s", "reference": "encode text",
         "ratio": naive_s / text_s},
        {"metric": "encoded text / binary", "value": f"{text_bytes / 1e6:.1f} / {binary_bytes / 1e6:.1f}",
         "unit": "MB", "ok": ok},
    ]
    return {"ok": ok, "summary": summary}


if __name__ == "__main__":  # the same as `python -m bench encoder [--quick]`: one summary table for all
    from bench.__main__ import main as run_benchmarks

    sys.exit(run_benchmarks(["encoder", *sys.argv[1:]]))
