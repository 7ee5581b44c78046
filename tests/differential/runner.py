"""Run one case on the source Postgres and on bemidb with psycopg, and compare what a client sees: column
names, type OIDs, typmods, the values' wire bytes (text or binary), row order when the query orders, and the
SQLSTATE of an error. Values are compared as the raw bytes of the result (psycopg's pgresult), so no client-side
type loader hides a difference.
"""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field

import psycopg


@dataclass(frozen=True)
class Case:
    family: str  # the class a difference is reported under: "type:c_int4", "function:string" ...
    sql: str
    params: tuple | None = None
    binary: bool = False
    ordered: bool = False  # compare row order (the query has a total ORDER BY)


@dataclass
class Outcome:
    names: list[str] = field(default_factory=list)
    oids: list[int] = field(default_factory=list)
    mods: list[int] = field(default_factory=list)
    rows: list[tuple] = field(default_factory=list)
    sqlstate: str | None = None
    message: str = ""


def run(conn: psycopg.Connection, case: Case) -> Outcome:
    out = Outcome()
    try:
        with conn.cursor(binary=case.binary) as cur:
            cur.execute(case.sql, case.params, prepare=False)
            res = cur.pgresult
            if res is None or res.nfields == 0:
                return out
            out.names = [res.fname(i).decode() for i in range(res.nfields)]
            out.oids = [res.ftype(i) for i in range(res.nfields)]
            out.mods = [res.fmod(i) for i in range(res.nfields)]
            out.rows = [tuple(res.get_value(r, c) for c in range(res.nfields)) for r in range(res.ntuples)]
    except psycopg.Error as exc:
        out.sqlstate = exc.sqlstate or "?"
        out.message = str(exc).splitlines()[0] if str(exc) else ""
        if conn.info.transaction_status != psycopg.pq.TransactionStatus.IDLE:
            conn.rollback()
    return out


def compare(case: Case, theirs: Outcome, ours: Outcome) -> str | None:
    """The first kind of difference ('error', 'names', 'type', 'typmod', 'rows', 'values', 'order'), or None."""
    if theirs.sqlstate or ours.sqlstate:
        if theirs.sqlstate and ours.sqlstate:
            return None if theirs.sqlstate == ours.sqlstate else "sqlstate"
        return "bemidb error" if ours.sqlstate else "postgres error"
    if theirs.names != ours.names:
        return "names"
    if theirs.oids != ours.oids:
        return "type"
    if theirs.mods != ours.mods:
        return "typmod"
    if len(theirs.rows) != len(ours.rows):
        return "rows"
    if case.ordered:
        if theirs.rows != ours.rows:
            return "values" if sorted(theirs.rows, key=_key) != sorted(ours.rows, key=_key) else "order"
        return None
    return None if sorted(theirs.rows, key=_key) == sorted(ours.rows, key=_key) else "values"


def _key(row: tuple) -> tuple:
    return tuple((v is None, v or b"") for v in row)


@dataclass
class Difference:
    case: Case
    kind: str
    theirs: Outcome
    ours: Outcome

    def detail(self) -> str:
        if self.kind in ("bemidb error", "postgres error", "sqlstate"):
            return f"pg={self.theirs.sqlstate} {self.theirs.message[:60]!r} ours={self.ours.sqlstate} " \
                   f"{self.ours.message[:90]!r}"
        if self.kind == "names":
            return f"pg={self.theirs.names} ours={self.ours.names}"
        if self.kind == "type":
            return f"pg={self.theirs.oids} ours={self.ours.oids}"
        if self.kind == "typmod":
            return f"pg={self.theirs.mods} ours={self.ours.mods}"
        return f"pg={self.theirs.rows[:3]!r:.120} ours={self.ours.rows[:3]!r:.120}"


def run_all(pg_conn, our_conn, cases: list[Case]) -> tuple[int, list[Difference]]:
    differences = []
    for case in cases:
        theirs, ours = run(pg_conn, case), run(our_conn, case)
        kind = compare(case, theirs, ours)
        if kind:
            differences.append(Difference(case, kind, theirs, ours))
    return len(cases) - len(differences), differences


def report(identical: int, differences: list[Difference], verbose: bool = True) -> str:
    lines = [f"{identical} identical, {len(differences)} differ"]
    by_class = Counter((d.case.family.split(":")[0], d.kind) for d in differences)
    if by_class:
        lines.append(f"{'family':<12} {'difference':<16} count")
        lines += [f"{fam:<12} {kind:<16} {n}" for (fam, kind), n in sorted(by_class.items())]
    if verbose:
        for d in differences:
            lines.append(f"- [{d.case.family}] {d.kind}: {d.case.sql}"
                         f"{' (binary)' if d.case.binary else ''}\n    {d.detail()}")
    return "\n".join(lines)
