"""What a client's statement asks for: one plan type per statement kind, made by rewrite.translate and
dispatched on with `match` by the protocol's executor. Plans are immutable (translations are cached by text).
"""

from __future__ import annotations

from dataclasses import dataclass, field


@dataclass(frozen=True)
class Empty:
    """Only comments or blanks: EmptyQueryResponse."""

    tag: str = ""


@dataclass(frozen=True)
class Query:
    """A query DuckDB runs, streamed back as rows."""

    sql: str  # DuckDB SQL
    tag: str = "SELECT"  # CommandComplete word: SELECT or EXPLAIN
    param_hints: tuple[tuple[int, int], ...] = ()  # (0-based parameter index, type OID) DuckDB cannot infer
    unparsed: bool = False  # sqlglot could not parse it: DuckDB gets the text as written, if it parses it
    origins: tuple = ()  # per result column, the table column it is (sql/column_origins.py), for RowDescription
    typed_args: tuple = ()  # nodes whose rewrite depends on their operands' types, with their origins


@dataclass(frozen=True)
class CopyOut:
    """COPY (query) TO STDOUT / COPY table [(cols)] TO STDOUT, with its options (format, header, ...)."""

    query: Query
    options: dict = field(default_factory=dict, hash=False)
    tag: str = "COPY"


@dataclass(frozen=True)
class SetSetting:
    """SET name = value (value None: DEFAULT)."""

    name: str
    value: str | None
    tag: str = "SET"


@dataclass(frozen=True)
class SetConfig:
    """SELECT set_config('name', 'value', is_local): a SET that answers one row, the value now shown."""

    name: str
    value: str
    column: str = "set_config"
    tag: str = "SELECT 1"


@dataclass(frozen=True)
class ResetSetting:
    """RESET name, RESET ALL (name "all"), SET TIME ZONE LOCAL/DEFAULT (tag SET)."""

    name: str
    tag: str = "RESET"


@dataclass(frozen=True)
class ShowSetting:
    """SHOW name, SHOW ALL (name "all")."""

    name: str
    tag: str = "SHOW"


@dataclass(frozen=True)
class Transaction:
    """BEGIN, COMMIT, ROLLBACK [TO SAVEPOINT], SAVEPOINT, RELEASE: tracked for ReadyForQuery's status."""

    tag: str
    to_savepoint: bool = False


@dataclass(frozen=True)
class NoOp:
    """Answered with its tag only (DISCARD, LISTEN, CHECKPOINT ...); DISCARD ALL resets the session."""

    tag: str


@dataclass(frozen=True)
class Matview:
    """CREATE / REFRESH / ALTER ... RENAME / DROP MATERIALIZED VIEW: the only writes clients can make."""

    action: str  # create | refresh | rename | drop
    name: str
    tag: str
    schema: str | None = None  # when written qualified (else the session's first schema)
    sql: str | None = None  # create: the DuckDB query that fills it
    definition: str | None = None  # create: the defining query as Postgres SQL (kept in the catalog)
    flags: frozenset[str] = frozenset()  # if_exists, if_not_exists, no_data, concurrently
    new_name: str | None = None  # rename: the new name


@dataclass(frozen=True)
class DeclareCursor:
    """DECLARE name [BINARY] [NO SCROLL] CURSOR [WITH HOLD] FOR query: a server-side cursor streaming the query."""

    name: str
    query: Query
    hold: bool = False
    binary: bool = False
    scroll: bool = False  # SCROLL was asked for: refused, this server's cursors only go forward
    tag: str = "DECLARE CURSOR"


@dataclass(frozen=True)
class FetchCursor:
    """FETCH / MOVE [direction] [FROM | IN] name. direction: forward (count None: ALL), relative, absolute."""

    name: str
    direction: str = "forward"
    count: int | None = 1
    move: bool = False
    tag: str = "FETCH"


@dataclass(frozen=True)
class CloseCursor:
    """CLOSE name, CLOSE ALL (name None)."""

    name: str | None
    tag: str = "CLOSE CURSOR"


@dataclass(frozen=True)
class Deallocate:
    """DEALLOCATE [PREPARE] name | ALL: drops prepared statements (the protocol's too, as in Postgres)."""

    name: str | None  # None: ALL
    tag: str = "DEALLOCATE"


Plan = (Empty | Query | CopyOut | SetSetting | SetConfig | ResetSetting | ShowSetting | Transaction | NoOp | Matview
        | DeclareCursor | FetchCursor | CloseCursor | Deallocate)
