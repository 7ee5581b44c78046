"""Postgres functions DuckDB lacks or answers differently, as DuckDB macros (installed with functions_extra.py's):
width_bucket, scale/min_scale/trim_scale of a numeric's text, justify_hours/justify_days on an interval's
months, days and microseconds (as interval.c moves them), encode(bytea, 'escape'), upper() without DuckDB's
capital sharp s (Postgres's C.UTF-8 upper keeps 'ß'), and cardinality() counting every element of a
multi-dimensional array.
"""

from __future__ import annotations

# Postgres name -> macro name, for the calls sql/extra_functions.py sends here.
MATH_MACROS = frozenset({"width_bucket", "scale", "min_scale", "trim_scale", "justify_hours", "justify_days",
                         "jsonb_pretty", "array_replace", "array_dims", "array_fill", "array_ndims", "justify_interval"})

_DAY_US = 86400000000
_MONTHS = "(datepart('year', i) * 12 + datepart('month', i))"
_MICROS = ("(datepart('hour', i)::BIGINT * 3600000000 + datepart('minute', i)::BIGINT * 60000000 + "
           "datepart('microsecond', i))")
_PRIVATE = "chr(57344)"  # U+E000 stands in for 'ß' while DuckDB upper-cases the rest


def math_macros(s: str) -> list[str]:
    m = f"CREATE OR REPLACE MACRO {s}"
    trimmed = "CASE WHEN contains(t, '.') THEN rtrim(rtrim(t, '0'), '.') ELSE t END"
    return [
        # bucket 0 below the range, count + 1 at or above its end; the bounds may be given high to low
        f"{m}.width_bucket(op, lo, hi, n) AS CASE WHEN lo = hi THEN error('lower bound cannot equal upper "
        "bound') WHEN n <= 0 THEN error('count must be greater than zero') "
        "WHEN lo < hi AND op < lo THEN 0 WHEN lo < hi AND op >= hi THEN n + 1 "
        "WHEN lo > hi AND op > lo THEN 0 WHEN lo > hi AND op <= hi THEN n + 1 "
        "ELSE least(floor(n::DOUBLE * (op - lo)::DOUBLE / (hi - lo)::DOUBLE)::INTEGER, n - 1) + 1 END::INTEGER",
        f"{m}.scale(x) AS list_transform([x::VARCHAR], lambda t: CASE WHEN contains(t, '.') THEN "
        "length(t) - strpos(t, '.') ELSE 0 END)[1]::INTEGER",
        f"{m}.trim_scale(x) AS list_transform([x::VARCHAR], lambda t: {trimmed})[1]",
        f"{m}.min_scale(x) AS list_transform([x::VARCHAR], lambda t: list_transform([{trimmed}], lambda u: "
        "CASE WHEN contains(u, '.') THEN length(u) - strpos(u, '.') ELSE 0 END)[1])[1]::INTEGER",
        # whole days of the time part into days; days and time then carry the same sign
        f"{m}.bemidb_justified_hours(mo, d, t) AS to_months(mo::INTEGER) + to_days(CASE WHEN d > 0 AND t < 0 "
        "THEN d - 1 WHEN d < 0 AND t > 0 THEN d + 1 ELSE d END::INTEGER) + to_microseconds(CASE WHEN d > 0 AND "
        f"t < 0 THEN t + {_DAY_US} WHEN d < 0 AND t > 0 THEN t - {_DAY_US} ELSE t END)",
        f"{m}.justify_hours(i) AS {s}.bemidb_justified_hours({_MONTHS}, datepart('day', i) + {_MICROS} // "
        f"{_DAY_US}, {_MICROS} % {_DAY_US})",
        # 30-day months out of the days
        f"{m}.bemidb_justified_days(mo, d, t) AS to_months(CASE WHEN mo > 0 AND d < 0 THEN mo - 1 WHEN mo < 0 "
        "AND d > 0 THEN mo + 1 ELSE mo END::INTEGER) + to_days(CASE WHEN mo > 0 AND d < 0 THEN d + 30 WHEN "
        "mo < 0 AND d > 0 THEN d - 30 ELSE d END::INTEGER) + to_microseconds(t)",
        f"{m}.justify_days(i) AS {s}.bemidb_justified_days({_MONTHS} + datepart('day', i) // 30, "
        f"datepart('day', i) % 30, {_MICROS})",
        # justify_interval: time into days, days into 30-day months, then every part with the months' sign
        f"{m}.bemidb_justified(mo, d, t) AS list_transform([CASE WHEN mo > 0 AND (d < 0 OR (d = 0 AND t < 0)) THEN "
        "struct_pack(mo := mo - 1, d := d + 30) WHEN mo < 0 AND (d > 0 OR (d = 0 AND t > 0)) THEN struct_pack("
        "mo := mo + 1, d := d - 30) ELSE struct_pack(mo := mo, d := d) END], lambda a: to_months(a.mo::INTEGER) + "
        "to_days(CASE WHEN a.d > 0 AND t < 0 THEN a.d - 1 WHEN a.d < 0 AND t > 0 THEN a.d + 1 ELSE a.d END::INTEGER) "
        f"+ to_microseconds(CASE WHEN a.d > 0 AND t < 0 THEN t + {_DAY_US} WHEN a.d < 0 AND t > 0 THEN t - {_DAY_US} "
        "ELSE t END))[1]",
        f"{m}.justify_interval(i) AS list_transform([datepart('day', i) + {_MICROS} // {_DAY_US}], lambda d: "
        f"{s}.bemidb_justified({_MONTHS} + d // 30, d % 30, {_MICROS} % {_DAY_US}))[1]",
        # time as the interval since midnight (timestamp + time, time - time)
        f"{m}.bemidb_time_interval(t) AS to_microseconds(datepart('hour', t)::BIGINT * 3600000000 + "
        "datepart('minute', t)::BIGINT * 60000000 + datepart('microsecond', t))",
        # encode(b, 'escape'): NUL and bytes from 0x80 as \ooo, a backslash doubled, the rest as they are
        # interval / number as interval.c divides: months and days truncated, their remainders carried down
        # (rounded to microseconds) into days and time, the time rounded half to even
        f"{m}.bemidb_interval_div(i, f) AS CASE WHEN f = 0 THEN error('division by zero') ELSE list_transform(["
        f"struct_pack(m := {_MONTHS}::DOUBLE / f, d := datepart('day', i)::DOUBLE / f, t := {_MICROS}::DOUBLE / f)"
        "], lambda q: list_transform([struct_pack(rm := trunc(q.m), rd := trunc(q.d), mrd := round((q.m - trunc(q.m)) "
        "* 30, 6))], lambda r: list_transform([round((q.d - r.rd + r.mrd - trunc(r.mrd)) * 86400, 6)], lambda sr: "
        "to_months(r.rm::INTEGER) + to_days((r.rd + trunc(sr / 86400) + trunc(r.mrd))::INTEGER) + "
        "to_microseconds(round_even(q.t + (sr - trunc(sr / 86400) * 86400) * 1000000, 0)::BIGINT))[1])[1])[1] END",
        f"{m}.array_replace(arr, old, new) AS list_transform(arr, lambda e: CASE WHEN e IS NOT DISTINCT FROM old "
        "THEN new ELSE e END)",
        f"{m}.array_ndims(arr) AS CASE WHEN len(arr) > 0 THEN CASE WHEN json_type(json_extract(to_json(arr), "
        "'$[0]')) = 'ARRAY' THEN 2 ELSE 1 END END",
        f"{m}.array_dims(arr) AS CASE WHEN len(arr) > 0 THEN '[1:' || len(arr) || ']' END",
        f"{m}.array_fill(v, dims) AS list_transform(range(dims[1]), lambda k: v)",
        f"{m}.bemidb_encode_escape(b) AS list_transform([hex(b)], lambda h: array_to_string(list_transform("
        "range(0, length(h) // 2), lambda k: list_transform([('0x' || substr(h, 2 * k + 1, 2))::INTEGER], "
        "lambda v: CASE WHEN v = 0 OR v >= 128 THEN '\\' || format('{:03o}', v) WHEN v = 92 THEN '\\\\' "
        "ELSE chr(v) END)[1]), ''))[1]",
        f"{m}.bemidb_sqrt(x) AS CASE WHEN x < 0 THEN error('cannot take square root of a negative number') "
        "ELSE sqrt(x) END",
        f"{m}.bemidb_ln(x) AS CASE WHEN x = 0 THEN error('cannot take logarithm of zero') WHEN x < 0 THEN "
        "error('cannot take logarithm of a negative number') ELSE ln(x) END",
        f"{m}.bemidb_log10(x) AS CASE WHEN x = 0 THEN error('cannot take logarithm of zero') WHEN x < 0 THEN "
        "error('cannot take logarithm of a negative number') ELSE log10(x) END",
        f"{m}.bemidb_to_hex(x) AS lower(hex(x))",
        f"{m}.bemidb_power(a, b) AS CASE WHEN a = 0 AND b < 0 THEN error('zero raised to a negative power is "
        "undefined') WHEN a < 0 AND b <> floor(b) THEN error('a negative number raised to a non-integer power "
        "yields a complex result') ELSE power(a, b) END",
        f"{m}.bemidb_upper(x) AS replace(upper(replace(x, 'ß', {_PRIVATE})), {_PRIVATE}, 'ß')",
        # every element of an array of arrays (DuckDB's len counts the outer list only)
        f"{m}.cardinality(arr) AS CASE WHEN json_type(json_extract(to_json(arr), '$[0]')) = 'ARRAY' THEN "
        "len(json_extract(to_json(arr), '$[*][*]')) ELSE len(arr) END",
    ]


def json_macros(s: str) -> list[str]:
    """jsonb || jsonb: two objects merge their keys (the right one's value wins, keys in jsonb's order: shorter
    first, then bytewise); anything else concatenates as arrays, a non-array taken as a one-element array."""
    m = f"CREATE OR REPLACE MACRO {s}"
    entries = ("list_sort(list_transform(map_entries(map_concat(a::JSON::MAP(VARCHAR, JSON), "
               "b::JSON::MAP(VARCHAR, JSON))), lambda e: struct_pack(n := length(e.key), "
               "key := e.key, value := e.value)))")
    merged = (f"to_json(map_from_entries(list_transform({entries}, lambda e: struct_pack(key := e.key, "
              "value := e.value))))")
    as_list = ("CASE WHEN json_type({x}::JSON) = 'ARRAY' THEN {x}::JSON::JSON[] "
               "ELSE [{x}::JSON] END")
    return [
        # jsonb - 'key': the object without that key, an array without the strings equal to it
        f"{m}.bemidb_jsonb_minus(j, k) AS CASE WHEN json_type(j::JSON) = 'OBJECT' THEN to_json(map_from_entries("
        "list_filter(map_entries(j::JSON::MAP(VARCHAR, JSON)), lambda e: e.key <> k))) WHEN json_type(j::JSON) = "
        "'ARRAY' THEN to_json(list_filter(j::JSON::JSON[], lambda e: e IS DISTINCT FROM to_json(k))) "
        "ELSE error('cannot delete from scalar') END",
        # jsonb_pretty: one character at a time over the compact text, as jsonb's output writes it (four blanks a
        # level, an empty object as "{\n}"); state: output, depth, in a string, after a backslash, line pending
        f"{m}.jsonb_pretty(x) AS list_reduce(string_split(json(x)::VARCHAR, ''), lambda a, c: CASE WHEN a.s THEN "
        "struct_pack(o := a.o || c, d := a.d, s := a.e OR c <> '\"', e := NOT a.e AND c = '\\', p := false) "
        "WHEN c IN ('{', '[') THEN struct_pack(o := a.o || CASE WHEN a.p THEN chr(10) || repeat('    ', a.d) "
        "ELSE '' END || c, d := a.d + 1, s := false, e := false, p := true) "
        "WHEN c IN ('}', ']') THEN struct_pack(o := a.o || chr(10) || repeat('    ', a.d - 1) || c, d := a.d - 1, "
        "s := false, e := false, p := false) "
        "WHEN c = ',' THEN struct_pack(o := a.o || c, d := a.d, s := false, e := false, p := true) "
        "WHEN c = ':' THEN struct_pack(o := a.o || ': ', d := a.d, s := false, e := false, p := false) "
        "ELSE struct_pack(o := a.o || CASE WHEN a.p THEN chr(10) || repeat('    ', a.d) ELSE '' END || c, "
        "d := a.d, s := c = '\"', e := false, p := false) END, "
        "struct_pack(o := '', d := 0, s := false, e := false, p := false)).o",
        # jsonb_set(t, '{key}', v, create_missing): one top-level key of an object replaced (or added)
        f"{m}.bemidb_jsonb_set_key(t, k, v, make) AS CASE WHEN t IS NULL OR v IS NULL THEN NULL WHEN "
        "json_type(t::JSON) <> 'OBJECT' OR (NOT make AND json_extract(t::JSON, '/' || replace(replace(k, '~', "
        f"'~0'), '/', '~1')) IS NULL) THEN json(t) ELSE {s}.bemidb_jsonb_concat(t, json_object(k, v::JSON)) END",
        f"{m}.bemidb_jsonb_concat(a, b) AS CASE WHEN a IS NULL OR b IS NULL THEN NULL WHEN json_type(a::JSON) = 'OBJECT' AND json_type(b::JSON) = "
        f"'OBJECT' THEN {merged} ELSE to_json(list_concat({as_list.format(x='a')}, {as_list.format(x='b')})) END",
    ]
