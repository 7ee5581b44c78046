"""Postgres's numeric results of avg, variance and stddev over integers and numerics, as DuckDB macros.

DuckDB answers these in DOUBLE; Postgres computes them exactly in numeric and rounds the quotient to a scale
that depends on the operands (select_div_scale in numeric.c: 16 significant digits at least, never fewer
decimals than the dividend has). The macros redo that arithmetic on unscaled HUGEINTs and give the value as
Postgres prints it (text: the scale belongs to each value, not to the column), or as DECIMAL where the result
feeds another expression (round(avg(x), 2) must compute on a number).
"""

from __future__ import annotations


def numeric_macros(s: str) -> list[str]:
    m = f"CREATE OR REPLACE MACRO {s}"
    return [
        f"{m}.pg_pow10(k) AS ('1' || repeat('0', (k)::INTEGER))::HUGEINT",
        f"{m}.pg_ndigits(u) AS length(abs(u)::VARCHAR)",
        # (unscaled, scale) of a DECIMAL or HUGEINT, from its text: DuckDB has no scale() of a value
        f"{m}.pg_unscaled(t) AS replace(t, '.', '')::HUGEINT",
        f"{m}.pg_scale_of(t) AS CASE WHEN contains(t, '.') THEN length(t) - strpos(t, '.') ELSE 0 END",
        # NBASE (10000) weight of u * 10^-s and its first NBASE digit, as numeric.c's select_div_scale sees them
        f"{m}.pg_weight(u, s) AS CASE WHEN u = 0 THEN 0 ELSE floor(({s}.pg_ndigits(u) - 1 - s) / 4)::INTEGER END",
        f"{m}.pg_first_digit(u, s, w) AS CASE WHEN u = 0 THEN 0::HUGEINT WHEN s + 4 * w >= 0 THEN abs(u) // "
        f"{s}.pg_pow10(s + 4 * w) ELSE abs(u) * {s}.pg_pow10(-(s + 4 * w)) END",
        # the scale of (u1 * 10^-s1) / (u2 * 10^-s2): 16 significant digits, at least the operands' scales
        f"{m}.pg_div_scale2(u1, s1, u2, s2) AS list_transform([struct_pack(w1 := {s}.pg_weight(u1, s1), "
        f"w2 := {s}.pg_weight(u2, s2))], lambda w: least(greatest(16 - 4 * (w.w1 - w.w2 - CASE WHEN "
        f"{s}.pg_first_digit(u1, s1, w.w1) <= {s}.pg_first_digit(u2, s2, w.w2) THEN 1 ELSE 0 END), s1, s2, 0), "
        "1000))[1]",
        # the quotient rounded half away from zero to r decimals, unscaled (r >= s1)
        f"{m}.pg_div_round2(u1, s1, u2, s2, r) AS sign(u1)::HUGEINT * sign(u2)::HUGEINT * ((2 * abs(u1) * "
        f"{s}.pg_pow10(r + s2 - s1) + abs(u2)) // (2 * abs(u2)))",
        f"{m}.pg_div_scale(u, s, n) AS {s}.pg_div_scale2(u, s, n, 0)",
        f"{m}.pg_div_round(u, s, n, r) AS {s}.pg_div_round2(u, s, n, 0, r)",
        f"{m}.pg_numeric_text(q, r) AS list_transform(list_transform([abs(q)::VARCHAR], lambda d: lpad(d, "
        "greatest(length(d), (r) + 1)::INTEGER, '0')), lambda p: "
        "CASE WHEN q < 0 THEN '-' ELSE '' END || CASE WHEN r = 0 THEN p ELSE "
        "left(p, (length(p) - (r))::INTEGER) || '.' || right(p, (r)::INTEGER) END)[1]",
        f"{m}.pg_div_text(u, s, n) AS list_transform([{s}.pg_div_scale(u, s, n)], lambda r: "
        f"{s}.pg_numeric_text({s}.pg_div_round(u, s, n, r), r))[1]",
        # numeric / numeric (or integer): Postgres's text of the quotient
        f"{m}.pg_numeric_div_text(a, b) AS CASE WHEN b = 0 THEN error('division by zero') ELSE list_transform("
        "[struct_pack(x := a::VARCHAR, y := b::VARCHAR)], lambda t: list_transform([struct_pack("
        f"u1 := {s}.pg_unscaled(t.x), s1 := {s}.pg_scale_of(t.x), u2 := {s}.pg_unscaled(t.y), "
        f"s2 := {s}.pg_scale_of(t.y))], lambda v: {s}.pg_numeric_text({s}.pg_div_round2(v.u1, v.s1, v.u2, v.s2, "
        f"{s}.pg_div_scale2(v.u1, v.s1, v.u2, v.s2)), {s}.pg_div_scale2(v.u1, v.s1, v.u2, v.s2)))[1])[1] END",
        # numeric * and +/- on exact texts: unscaled products and sums, at Postgres's scales
        f"{m}.pg_numeric_mul_text(a, b) AS list_transform([struct_pack(x := a::VARCHAR, y := b::VARCHAR)], "
        f"lambda t: CASE WHEN {s}.pg_ndigits({s}.pg_unscaled(t.x)) + {s}.pg_ndigits({s}.pg_unscaled(t.y)) <= 38 "
        f"THEN {s}.pg_numeric_text({s}.pg_unscaled(t.x) * {s}.pg_unscaled(t.y), {s}.pg_scale_of(t.x) + "
        f"{s}.pg_scale_of(t.y)) ELSE (t.x::DOUBLE * t.y::DOUBLE)::VARCHAR END)[1]",  # past 38 digits: a double
        f"{m}.pg_numeric_add_text(a, b, sgn) AS list_transform([struct_pack(x := a::VARCHAR, y := b::VARCHAR)], "
        f"lambda t: list_transform([greatest({s}.pg_scale_of(t.x), {s}.pg_scale_of(t.y))], lambda r: "
        f"{s}.pg_numeric_text({s}.pg_unscaled(t.x) * {s}.pg_pow10(r - {s}.pg_scale_of(t.x)) + sgn * "
        f"{s}.pg_unscaled(t.y) * {s}.pg_pow10(r - {s}.pg_scale_of(t.y)), r))[1])[1]",
        # float::numeric: the float printed to 15 (real: 6) significant digits, as float8_numeric reads it
        f"{m}.pg_float_numeric_text(x, n) AS list_transform([printf('%.' || n || 'g', x)], lambda t: CASE "
        "WHEN t IN ('nan', '-nan') THEN 'NaN' WHEN t = 'inf' THEN 'Infinity' WHEN t = '-inf' THEN '-Infinity' "
        "WHEN NOT contains(t, 'e') THEN t ELSE list_transform([struct_pack(neg := starts_with(t, '-'), "
        "ds := replace(replace(split_part(t, 'e', 1), '-', ''), '.', ''), e := split_part(t, 'e', 2)::INTEGER)], "
        "lambda p: CASE WHEN p.neg THEN '-' ELSE '' END || CASE WHEN p.e >= 0 THEN p.ds || repeat('0', "
        "greatest(p.e + 1 - length(p.ds), 0)) ELSE '0.' || repeat('0', -p.e - 1) || p.ds END)[1] END)[1]",
        # avg: sum / count
        f"{m}.pg_avg_text(total, n) AS CASE WHEN n > 0 THEN list_transform([total::VARCHAR], lambda t: "
        f"{s}.pg_div_text({s}.pg_unscaled(t), {s}.pg_scale_of(t), n::HUGEINT))[1] END",
        # variance: (n * sum(x^2) - sum(x)^2) / (n * (n - 1)), or / n^2 for the population's
        f"{m}.pg_var_parts(sx, sxx, n, pop) AS list_transform([struct_pack(a := sx::VARCHAR, b := sxx::VARCHAR)], "
        f"lambda t: struct_pack(num := n::HUGEINT * {s}.pg_unscaled(t.b) * {s}.pg_pow10(2 * {s}.pg_scale_of(t.a) - "
        f"{s}.pg_scale_of(t.b)) - {s}.pg_unscaled(t.a) * {s}.pg_unscaled(t.a), sc := 2 * {s}.pg_scale_of(t.a), "
        "den := CASE WHEN pop THEN n::HUGEINT * n ELSE n::HUGEINT * (n - 1) END))[1]",
        f"{m}.pg_var_text(sx, sxx, n, pop) AS CASE WHEN n > CASE WHEN pop THEN 0 ELSE 1 END THEN "
        f"list_transform([{s}.pg_var_parts(sx, sxx, n, pop)], lambda v: CASE WHEN v.num <= 0 THEN '0' ELSE "
        f"{s}.pg_div_text(v.num, v.sc, v.den) END)[1] END",
        # stddev: the square root of the variance as rounded above, to the same scale (sqrt_var)
        f"{m}.pg_isqrt(m) AS list_transform([(m // greatest(floor(sqrt(m::DOUBLE))::HUGEINT, 1) + "
        "greatest(floor(sqrt(m::DOUBLE))::HUGEINT, 1)) // 2], lambda g: CASE WHEN g * g > m THEN "
        "CASE WHEN (g - 1) * (g - 1) > m THEN g - 2 ELSE g - 1 END ELSE g END)[1]",
        # (rounded half up: sqrt(x) >= g + 1/2 exactly when x - g^2 > g. Past HUGEINT, as for a variance below
        # 1 with 20 decimals, DOUBLE's root printed to the same scale, right to about 16 significant digits)
        f"{m}.pg_sqrt_text(vu, r) AS CASE WHEN {s}.pg_ndigits(vu) + r <= 37 THEN list_transform([vu * "
        f"{s}.pg_pow10(r)], lambda x: list_transform([{s}.pg_isqrt(x)], lambda g: {s}.pg_numeric_text(g + CASE "
        "WHEN x - g * g > g THEN 1 ELSE 0 END, r))[1])[1] ELSE format('{:.{}f}', sqrt(vu::DOUBLE / 10 ** r), "
        "r) END",
        f"{m}.pg_stddev_text(sx, sxx, n, pop) AS CASE WHEN n > CASE WHEN pop THEN 0 ELSE 1 END THEN "
        f"list_transform([{s}.pg_var_parts(sx, sxx, n, pop)], lambda v: CASE WHEN v.num <= 0 THEN '0' ELSE "
        f"list_transform([{s}.pg_div_scale(v.num, v.sc, v.den)], lambda r: {s}.pg_sqrt_text("
        f"{s}.pg_div_round(v.num, v.sc, v.den, r), r))[1] END)[1] END",
    ]
