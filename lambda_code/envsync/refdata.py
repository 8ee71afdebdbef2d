"""Reference-data sync: make the listed tables on the target equal to the source's.

Public API (the Lambda handler and `envsync refdata plan|apply` use only this):

    config = RefdataConfig.from_dict({"tables": [{"name": "currency"}], "chunk_rows": 1000})
    result = apply(source_conn, target_conn, config, deadline=time.monotonic() + 240)
    result.to_dict()   # {"status": "done"|"continue", "cursor": ..., "tables": [...], ...}

Both connections are PyMySQL connections to the same-named schema on two servers; the source
is only read. What happens, per listed table (allow-list: nothing else is touched):

1. Shapes are read from information_schema on both sides. No primary key -> `RefdataError`.
   A table or compared column missing on one side, or a different column type or key, is
   *drift*: reported for that table, and the table is not synchronised. An allow-list entry
   that cannot work (an `exclude_columns` name on neither side, an excluded NOT NULL column
   without default) *refuses* the table. Generated columns are compared by neither side and
   never written.
2. The diff (`refdata_diff`) first compares CHECKSUM TABLE on both servers where that is sound
   (whole table compared, 32-bit mode); otherwise, or when they differ, it walks the key in
   chunks with non-linear checksums computed on each server and keeps the changed keys.
3. The delta is applied (`refdata_apply`) in one transaction per group of tables linked by
   foreign keys: deletes, then inserts (rows streamed from the source), FK checks off inside
   the transaction and every reference verified before commit. A table whose delta would
   delete more than `max_delete_share` of its rows, orphan a row of an unlisted table, or
   break a constraint is *refused*: its group is rolled back and reported (state `refused`,
   `error`), and the tables after it are still synchronised. `SyncResult.failed` lists drift
   and refused tables; the CLI exits 2 and the handler reports status failed for them.

Time budget: `deadline` (a `time.monotonic()` value) is checked between chunks and between
tables. When it passes, the work done so far is applied (a table cut mid-way has its covered
key range applied in one transaction) and the result says `"continue"` with a JSON cursor; the
next call with that cursor resumes there. Every call makes progress (at least one chunk).
Tables linked by foreign keys are always finished as one unit inside a call.

ReplicationLagSeconds: the age of the oldest upstream change still missing after the call,
on the source server's UTC clock. With `updated_at_column` it is the oldest `updated_at` among
rows still differing (plan: the whole delta; apply: 0 for finished tables, and for the part
not reached yet the oldest source row newer than anything the target holds there). Deletes
and tables without such a column carry no timestamp: their missing changes are dated from when
the run (the chain of calls sharing a cursor) started, a lower bound; a table not compared yet
and without the column adds nothing. DATETIME columns are taken as UTC (Aurora's default).

Session settings: the engine sets `time_zone = '+00:00'` (TIMESTAMP values compare and copy as
UTC) and a large `group_concat_max_len` on both connections, and restores them afterwards.
"""

from __future__ import annotations

import datetime as _dt
import json
import logging
import re
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pymysql

from envsync.db import server_error_notice
from envsync.errors import EnvsyncError
from envsync.refdata_apply import apply_group, group_statements, planned_orphans, reference_error
from envsync.refdata_diff import HASHES, TableDelta, diff_table, first_chunk_equal, tables_checksum_equal
from envsync.refdata_schema import (
    PARAM,
    RefdataError,
    TablePlan,
    TableShape,
    bind,
    compare_shapes,
    decode_key,
    encode_key,
    fk_groups,
    quote_ident,
    read_foreign_keys,
    read_references,
    read_shapes,
)
from envsync.refdata_show import describe_rows, first_changed

__all__ = ["RefdataConfig", "RefdataConfigError", "RefdataError", "SyncResult", "TableConfig", "apply", "plan"]

LOG = logging.getLogger("envsync.refdata")
CURSOR_VERSION = 1
GROUP_CONCAT_MAX_LEN = 64 * 1024 * 1024
PLAN_SQL_STATEMENTS = 20  # per table in a plan: enough to read, bounded for a million-row delta
PLAN_SQL_CHARS = 4000
_IDENT = re.compile(r"^[^`\x00]{1,64}$")


class RefdataConfigError(EnvsyncError, ValueError):
    """The refdata configuration is invalid; the message names the key and the value."""


@dataclass(frozen=True)
class TableConfig:
    name: str
    exclude_columns: Tuple[str, ...] = ()
    where: Optional[str] = None
    updated_at_column: Optional[str] = None
    max_delete_share: Optional[float] = None  # None: the config's default


@dataclass(frozen=True)
class RefdataConfig:
    """The allow-list of reference tables for one env pair."""

    tables: Tuple[TableConfig, ...]
    # Rows per checksum chunk. 10 000 measured ~1.5x faster than 1 000 on 1 M rows with
    # clustered changes (fewer round trips); a differing chunk is re-read row by row, still cheap.
    chunk_rows: int = 10000
    # Row hash width. md5 (64 bits kept) by default: reference data is financial and small, and a
    # 32-bit CRC lets one changed row in ~4e9 go unnoticed. "crc32" (1.3-5x faster, and the
    # CHECKSUM TABLE shortcut for in-sync tables) is for large tables where speed matters more.
    hash: str = "md5"
    # Largest share of a table's (filtered) target rows one run may delete; more is refused
    # unless forced. Guards against an emptied or truncated upstream table reaching prod.
    max_delete_share: float = 0.5

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> RefdataConfig:
        if not isinstance(d, dict):
            raise RefdataConfigError(f"refdata config: expected a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - {"tables", "chunk_rows", "hash", "max_delete_share"})
        if unknown:
            raise RefdataConfigError(f"refdata config: unknown key(s) {', '.join(unknown)}")
        tables_value = d.get("tables")
        if not isinstance(tables_value, list) or not tables_value:
            raise RefdataConfigError(f"tables: expected a non-empty list of tables, got {tables_value!r}")
        chunk_rows = d.get("chunk_rows", cls.chunk_rows)
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or not 1 <= chunk_rows <= 100000:
            raise RefdataConfigError(f"chunk_rows: expected an integer from 1 to 100000, got {chunk_rows!r}")
        hash_name = d.get("hash", cls.hash)
        if hash_name not in HASHES:
            raise RefdataConfigError(f"hash: expected one of {', '.join(HASHES)}, got {hash_name!r}")
        share = _share(d.get("max_delete_share", cls.max_delete_share), "max_delete_share")
        tables: List[TableConfig] = []
        for i, item in enumerate(tables_value):
            tables.append(_table_from_dict(item, f"tables[{i}]"))
        names = [t.name for t in tables]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise RefdataConfigError(f"tables: listed more than once: {', '.join(duplicates)}")
        return cls(tables=tuple(tables), chunk_rows=chunk_rows, hash=hash_name, max_delete_share=share)

    def delete_share(self, table: TableConfig) -> float:
        return self.max_delete_share if table.max_delete_share is None else table.max_delete_share


def _share(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise RefdataConfigError(f"{where}: expected a number from 0 to 1 (share of rows), got {value!r}")
    return float(value)


def _table_from_dict(item: Any, where: str) -> TableConfig:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict):
        raise RefdataConfigError(f"{where}: expected a mapping with 'name', got {item!r}")
    unknown = sorted(set(item) - {"name", "exclude_columns", "where", "updated_at_column", "max_delete_share"})
    if unknown:
        raise RefdataConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not _IDENT.match(name):
        raise RefdataConfigError(f"{where}.name: expected a table name, got {name!r}")
    excludes = item.get("exclude_columns", [])
    if not isinstance(excludes, list) or not all(isinstance(c, str) and _IDENT.match(c) for c in excludes):
        raise RefdataConfigError(f"{where}.exclude_columns: expected a list of column names, got {excludes!r}")
    row_filter = item.get("where")
    if row_filter is not None:
        problem = filter_problem(row_filter) if isinstance(row_filter, str) else "not a string"
        if problem:
            raise RefdataConfigError(
                f"{where}.where (table {name!r}): expected one SQL condition: {problem}; got {row_filter!r}"
            )
    updated_at = item.get("updated_at_column")
    if updated_at is not None and (not isinstance(updated_at, str) or not _IDENT.match(updated_at)):
        raise RefdataConfigError(f"{where}.updated_at_column: expected a column name, got {updated_at!r}")
    if updated_at is not None and updated_at in excludes:
        raise RefdataConfigError(f"{where}.updated_at_column: {updated_at!r} is also in exclude_columns")
    share = _share(item["max_delete_share"], f"{where}.max_delete_share") if "max_delete_share" in item else None
    return TableConfig(name=name, exclude_columns=tuple(excludes), where=row_filter, updated_at_column=updated_at,
                       max_delete_share=share)


def filter_problem(text: str) -> str:
    """Why `text` is not one self-contained boolean expression ("" when it is).

    The engine wraps the filter as `AND (<filter>)` after its own key-range predicate, so the
    filter must not close that parenthesis, end the statement or comment out the rest. String
    literals and quoted identifiers are skipped as units (a `#`, `;` or `%` inside is just text).
    Backslashes are refused: with and without NO_BACKSLASH_ESCAPES a literal would end in
    different places.
    """
    if not text.strip():
        return "it is empty"
    if "\x00" in text or "\\" in text:
        return "NUL bytes and backslashes are not accepted"
    depth, i = 0, 0
    while i < len(text):
        char = text[i]
        if char in "'\"`":
            end = i + 1
            while True:
                end = text.find(char, end)
                if end < 0:
                    return f"the {char} opened at offset {i} is not closed"
                if text[end + 1:end + 2] == char:  # doubled quote inside the literal
                    end += 2
                    continue
                break
            i = end + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return f"the ')' at offset {i} closes a parenthesis the condition did not open"
        elif char == ";" or char == "#" or text.startswith(("--", "/*", "*/"), i):
            return f"statement separators and comments are not accepted (offset {i})"
        i += 1
    if depth:
        return f"{depth} parenthesis(es) not closed"
    return ""


@dataclass
class TableResult:
    table: str
    state: str = "pending"  # in_sync | changed | drift | refused | partial | not_reached
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    chunks_compared: int = 0
    chunks_differing: int = 0
    checked_by: str = ""  # checksum_table | chunks ("" when not compared)
    sql: List[str] = field(default_factory=list)
    drift: List[Dict[str, Any]] = field(default_factory=list)
    error: str = ""  # why a refused table was not synchronised (nothing of its group was written)
    notice: str = ""  # `error` as notifications carry it: no server message (it can quote rows)
    rows: List[Dict[str, Any]] = field(default_factory=list)  # plan: first changed rows, old -> new

    def to_dict(self, with_sql: bool) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "table": self.table, "state": self.state, "inserted": self.inserted, "updated": self.updated,
            "deleted": self.deleted, "chunks_compared": self.chunks_compared,
            "chunks_differing": self.chunks_differing, "checked_by": self.checked_by, "drift": self.drift,
        }
        if self.error:
            data["error"] = self.error
            data["notice"] = self.notice or self.error
        if with_sql:
            data["rows"] = self.rows
            data["sql"] = self.sql
        return data


@dataclass
class SyncResult:
    mode: str  # plan | apply
    status: str  # done | continue
    cursor: Optional[Dict[str, Any]]
    tables: List[TableResult]
    replication_lag_seconds: float

    @property
    def failed(self) -> List[TableResult]:
        """Tables not synchronised because of their shape or constraints (drift or refused)."""
        return [t for t in self.tables if t.state in ("drift", "refused")]

    @property
    def rows_changed(self) -> int:
        """Rows written (apply) or that would be written (plan)."""
        return sum(t.inserted + t.updated + t.deleted for t in self.tables)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "mode": self.mode, "status": self.status, "cursor": self.cursor,
            "tables": [t.to_dict(with_sql=self.mode == "plan") for t in self.tables],
            "rows_changed": self.rows_changed,
            "replication_lag_seconds": round(self.replication_lag_seconds, 3),
        }


def plan(source_conn, target_conn, config: RefdataConfig, *, deadline: Optional[float] = None,
         cursor: Optional[Dict[str, Any]] = None, force: bool = False) -> SyncResult:
    """Dry run: per-table counts, the first changed rows (old -> new) and the first statements
    apply would run; writes nothing. Refusals (references, max_delete_share) are reported too."""
    return _run(source_conn, target_conn, config, deadline, cursor, write=False, force=force)


def apply(source_conn, target_conn, config: RefdataConfig, *, deadline: Optional[float] = None,
          cursor: Optional[Dict[str, Any]] = None, force: bool = False) -> SyncResult:
    """Apply the delta to the target, one transaction per table (or FK-linked group).

    `force` lifts the max_delete_share guard for this call (an intended mass delete).
    """
    return _run(source_conn, target_conn, config, deadline, cursor, write=True, force=force)


# --- the run -----------------------------------------------------------------------------

@dataclass
class _Resume:
    group: int = 0
    after: Optional[Tuple[Any, ...]] = None
    started_at: float = 0.0
    # rows deleted by earlier calls of this run from the table the cursor cuts (max_delete_share
    # is per run, not per call: a deadline must not split a mass delete into allowed pieces)
    deleted: Dict[str, int] = field(default_factory=dict)


def _parse_cursor(cursor: Optional[Dict[str, Any]], groups: List[List[str]]) -> _Resume:
    if not cursor:
        return _Resume(started_at=time.time())
    try:
        if cursor.get("v") != CURSOR_VERSION:
            raise RefdataError(f"cursor version {cursor.get('v')!r} is not {CURSOR_VERSION}")
        table = cursor["table"]
        index = next((i for i, g in enumerate(groups) if g[0] == table), None)
        if index is None:
            raise RefdataError(f"cursor points at table {table!r}, which no longer starts a listed group")
        deleted = {str(name): int(count) for name, count in (cursor.get("deleted") or {}).items()}
        return _Resume(group=index, after=decode_key(cursor.get("after")),
                       started_at=float(cursor.get("started_at") or time.time()), deleted=deleted)
    except (KeyError, TypeError, ValueError, AttributeError) as exc:
        raise RefdataError(f"cursor {cursor!r} is malformed ({exc}); start over without a cursor") from exc


def _cursor(groups: List[List[str]], index: int, after: Optional[Tuple[Any, ...]], started_at: float,
            deleted: Optional[Dict[str, int]] = None):
    cursor = {"v": CURSOR_VERSION, "table": groups[index][0], "after": encode_key(after), "started_at": started_at}
    if after is not None and deleted:
        cursor["deleted"] = {name: deleted[name] for name in groups[index] if deleted.get(name)}
    return cursor


class _Session:
    """Session settings the diff depends on, restored on exit."""

    def __init__(self, conn) -> None:
        self.conn = conn
        self.saved: Optional[Tuple[Any, Any, Any]] = None

    def __enter__(self):
        with self.conn.cursor() as cur:
            cur.execute("SELECT @@SESSION.time_zone, @@SESSION.group_concat_max_len, @@SESSION.sql_mode")
            self.saved = cur.fetchone()
            cur.execute(f"SET SESSION time_zone = '+00:00', SESSION group_concat_max_len = {GROUP_CONCAT_MAX_LEN}")
            # Literals are written with backslash escapes (as PyMySQL writes strings): a session
            # with NO_BACKSLASH_ESCAPES would store the backslashes themselves.
            modes = [m for m in str(self.saved[2] or "").split(",") if m and m != "NO_BACKSLASH_ESCAPES"]
            cur.execute("SET SESSION sql_mode = %s", (",".join(modes),))
        if not self.conn.get_autocommit():
            self.conn.rollback()  # end any open snapshot so this run reads current data
        return self

    def __exit__(self, *exc_info) -> None:
        if self.saved is None:
            return
        try:
            with self.conn.cursor() as cur:
                cur.execute("SET SESSION time_zone = %s, SESSION group_concat_max_len = %s, SESSION sql_mode = %s",
                            self.saved)
        except Exception:  # noqa: S110 - a broken connection must not mask the real error
            pass


def _run(source, target, config: RefdataConfig, deadline: Optional[float],
         cursor: Optional[Dict[str, Any]], write: bool, force: bool = False) -> SyncResult:
    mode = "apply" if write else "plan"
    with _Session(source), _Session(target):
        names = [t.name for t in config.tables]
        by_name = {t.name: t for t in config.tables}
        source_shapes = read_shapes(source, names)
        target_shapes = read_shapes(target, names)
        for name in names:
            for side, shape in (("source", source_shapes[name]), ("target", target_shapes[name])):
                if shape.exists and not shape.primary_key:
                    raise RefdataError(
                        f"table {name!r} has no primary key on the {side}: reference-data sync compares "
                        "rows by primary key; add one (or remove the table from the refdata allow-list)"
                    )
        groups = fk_groups(names, read_foreign_keys(target, names))
        references = read_references(target, names)
        resume = _parse_cursor(cursor, groups)
        results = {name: TableResult(table=name, state="not_reached") for name in names}
        lag_since: List[Any] = []  # datetimes (server UTC) or wall-clock epochs of missing changes
        next_cursor: Optional[Dict[str, Any]] = None
        for index in range(resume.group, len(groups)):
            group = groups[index]
            if index > resume.group and deadline is not None and time.monotonic() >= deadline:
                next_cursor = _cursor(groups, index, None, resume.started_at)
                _lag_not_reached(source, target, group, by_name, source_shapes, target_shapes, None, lag_since)
                for later in groups[index + 1:]:
                    _lag_not_reached(source, target, later, by_name, source_shapes, target_shapes, None, lag_since)
                break
            start_after = resume.after if index == resume.group else None
            deleted = dict(resume.deleted) if index == resume.group else {}
            table_deadline = deadline if len(group) == 1 else None  # FK groups finish as one unit
            try:
                done = _sync_group(source, target, config, group, by_name, source_shapes, target_shapes,
                                   start_after, table_deadline, write, results, lag_since, resume.started_at,
                                   references, force, deleted)
            except _TABLE_ERRORS as error:  # this group only: the tables listed after it still sync
                _refuse(group, results, error, mode)
                continue
            if done is not None:  # cut at the deadline inside a single table
                next_cursor = _cursor(groups, index, done, resume.started_at, deleted)
                _lag_not_reached(source, target, group, by_name, source_shapes, target_shapes, done, lag_since)
                for later in groups[index + 1:]:
                    _lag_not_reached(source, target, later, by_name, source_shapes, target_shapes, None, lag_since)
                break
        lag = _lag_seconds(source, lag_since)
    ordered = [results[name] for group in groups for name in group]
    return SyncResult(mode=mode, status="continue" if next_cursor else "done", cursor=next_cursor,
                      tables=ordered, replication_lag_seconds=lag)


# Errors that concern one group's data or constraints (1062, 1452, a bad filter...): the group is
# refused and the run goes on. Lost connections and other server errors stop the run.
_TABLE_ERRORS = (RefdataError, pymysql.err.IntegrityError, pymysql.err.DataError, pymysql.err.ProgrammingError)


def _refuse(group: Sequence[str], results: Dict[str, TableResult], error: Exception, mode: str) -> None:
    message = str(error) if isinstance(error, RefdataError) else f"{type(error).__name__}: {error.args}"
    notice = str(error) if isinstance(error, RefdataError) else server_error_notice(error)
    for name in group:
        result = results[name]
        result.state, result.error, result.notice = "refused", message, notice
        result.inserted = result.updated = result.deleted = 0  # nothing of the group was written
        result.sql, result.rows = [], []
        _log(result, mode, 0.0)


def _sync_group(source, target, config: RefdataConfig, group: Sequence[str], by_name, source_shapes,
                target_shapes, start_after, deadline, write: bool, results: Dict[str, TableResult],
                lag_since: List[Any], started_at: float, references, force: bool,
                deleted: Dict[str, int]) -> Optional[Tuple[Any, ...]]:
    """Diff and (when writing) apply one FK group; returns the cut key when stopped early."""
    diffed: List[Tuple[TablePlan, TableDelta]] = []
    timings: Dict[str, float] = {}
    for name in group:
        began = time.monotonic()
        table_config = by_name[name]
        result = results[name]
        drift = compare_shapes(source_shapes[name], target_shapes[name], table_config.exclude_columns)
        if drift:
            result.state, result.drift = "drift", drift
            _log(result, "plan" if not write else "apply", time.monotonic() - began)
            continue
        problem = _config_problem(source_shapes[name], target_shapes[name], table_config)
        if problem:
            raise RefdataError(problem)
        table_plan = _table_plan(source_shapes[name], table_config)
        whole_table = (start_after is None and not table_config.where and not table_config.exclude_columns
                       and config.hash == "crc32")
        if (whole_table
                and first_chunk_equal(source, target, table_plan, chunk_rows=config.chunk_rows, hash_name=config.hash)
                and tables_checksum_equal(source, target, table_plan)):
            delta = TableDelta()
            result.checked_by = "checksum_table"
        else:
            result.checked_by = "chunks"
            delta = diff_table(source, target, table_plan, chunk_rows=config.chunk_rows,
                               hash_name=config.hash, start_after=start_after, deadline=deadline)
        earlier = deleted.get(name, 0) if start_after is not None else 0
        if delta.deletes and not force:
            _check_delete_share(target, table_plan, len(delta.deletes), earlier, config.delete_share(table_config))
        deleted[name] = earlier + len(delta.deletes)  # carried in the cursor when the table is cut
        result.inserted, result.updated = len(delta.insert_keys), len(delta.update_keys)
        result.deleted = len(delta.deletes)
        result.chunks_compared, result.chunks_differing = delta.chunks_compared, delta.chunks_differing
        result.state = ("changed" if delta.changes else "in_sync") if delta.complete else "partial"
        diffed.append((table_plan, delta))
        timings[name] = time.monotonic() - began
    began = time.monotonic()
    if write:
        apply_group(target, diffed, references, list(by_name))
    else:
        orphan = planned_orphans(target, diffed, references)
        if orphan is not None:
            raise reference_error(orphan[0].parent, orphan[0], orphan[1], list(by_name), incoming=True)
        for table_plan, delta in diffed:
            results[table_plan.name].rows = _changed_rows(table_plan, delta)
        for table, statement in group_statements(target, diffed):  # streamed; only the first few are kept
            shown = results[table].sql
            if len(shown) < PLAN_SQL_STATEMENTS:
                text = statement.decode(target.encoding, "backslashreplace")
                if len(text) > PLAN_SQL_CHARS:
                    text = text[:PLAN_SQL_CHARS] + f" ... ({len(text)} chars)"
                shown.append(text)
    apply_seconds = time.monotonic() - began
    for table_plan, delta in diffed:
        result = results[table_plan.name]
        if not write:
            _lag_from_delta(table_plan, delta, by_name[table_plan.name], lag_since, started_at)
        _log(result, "apply" if write else "plan", timings[table_plan.name] + apply_seconds)
    cut = next((d for _, d in diffed if not d.complete), None)
    return cut.covered_to if cut is not None else None


def _changed_rows(table_plan: TablePlan, delta: TableDelta) -> List[Dict[str, Any]]:
    """The first changed rows of a plan, old -> new, fetched key by key from both sides."""
    changes = []
    for change, key in first_changed(delta.insert_keys, delta.update_keys, delta.deletes):
        # list(): read each unbuffered result to its end before the connection is used again
        olds = list(delta.target_rows([key])) if change != "insert" and delta.target_rows else []
        news = list(delta.source_rows([key])) if change != "delete" and delta.source_rows else []
        old, new = (olds or [None])[0], (news or [None])[0]
        changes.append((change, key, old, new))
    return describe_rows(changes, [c.name for c in table_plan.key], [c.name for c in table_plan.columns])


def _config_problem(source: TableShape, target: TableShape, table_config: TableConfig) -> str:
    """What in the allow-list entry cannot work with these shapes ("" when nothing)."""
    name = table_config.name
    for column in table_config.exclude_columns:
        if column not in source.columns and column not in target.columns:
            return (f"table {name!r}: exclude_columns names {column!r}, which is a column on neither side "
                    f"(columns: {', '.join(source.columns)}); a typo would copy the column meant to be excluded")
        kept = target.columns.get(column)
        if kept is not None and not kept.has_default:
            return (f"table {name!r}: excluded column {column!r} is NOT NULL without a default on the target, "
                    "so rows cannot be inserted without it; give it a default or stop excluding it")
    return ""


def _check_delete_share(target, table_plan: TablePlan, deletes: int, earlier: int, share: float) -> None:
    """Refuse when this run's deletes (earlier calls' + this call's) exceed `share` of the rows
    the table held when the run started."""
    where, args = table_plan.range_where(None, None)
    with target.cursor() as cur:
        cur.execute(bind(target, f"SELECT COUNT(*) FROM {table_plan.qname}{where}", args))
        rows = int(cur.fetchone()[0]) + earlier
    deletes += earlier
    if deletes > share * rows:
        raise RefdataError(
            f"table {table_plan.name!r}: refused: the run would delete {deletes} of {rows} target rows "
            f"({100.0 * deletes / max(rows, 1):.0f} %), more than max_delete_share {share} - is the upstream table "
            "emptied or truncated? If intended, rerun with --force (event \"force\": true) or set "
            "max_delete_share for this table in the refdata config"
        )


def _table_plan(shape: TableShape, table_config: TableConfig) -> TablePlan:
    excluded = set(table_config.exclude_columns)
    bad = [c for c in shape.primary_key if c in excluded]
    if bad:
        raise RefdataError(f"table {shape.name!r}: primary key column(s) {', '.join(bad)} cannot be excluded")
    if table_config.updated_at_column and table_config.updated_at_column not in shape.columns:
        raise RefdataError(
            f"table {shape.name!r}: updated_at_column {table_config.updated_at_column!r} does not exist"
        )
    columns = [c for c in shape.columns.values() if c.name not in excluded and not c.generated]
    key = [shape.columns[name] for name in shape.primary_key]
    return TablePlan(name=shape.name, columns=columns, key=key, where=table_config.where)


# --- replication lag ------------------------------------------------------------------------

def _lag_from_delta(table_plan: TablePlan, delta: TableDelta, table_config: TableConfig,
                    lag_since: List[Any], started_at: float) -> None:
    """Plan mode: the delta is still missing on the target."""
    column = table_config.updated_at_column
    if column:
        position = [c.name for c in table_plan.columns].index(column)
        oldest, dated, written = None, 0, 0
        for row in delta.written_rows():  # streamed: nothing but the oldest stamp is kept
            written += 1
            stamp = row[position]
            if isinstance(stamp, _dt.datetime):
                dated += 1
                oldest = stamp if oldest is None or stamp < oldest else oldest
        if oldest is not None:
            lag_since.append(oldest)
        if delta.deletes or dated < written:
            lag_since.append(started_at)
    elif delta.changes:
        lag_since.append(started_at)


def _lag_not_reached(source, target, group, by_name, source_shapes, target_shapes, after,
                     lag_since: List[Any]) -> None:
    """Tables (or the rest of one) not compared in this call: oldest source change newer than the target."""
    for name in group:
        column = by_name[name].updated_at_column
        shape = source_shapes[name]
        if not column or column not in shape.columns:
            continue
        if (compare_shapes(shape, target_shapes[name], by_name[name].exclude_columns)
                or _config_problem(shape, target_shapes[name], by_name[name])):
            continue  # drift or a bad entry: reported as such when the table is reached
        table_plan = _table_plan(shape, by_name[name])
        where, args = table_plan.range_where(after, None)
        col = quote_ident(column)
        with target.cursor() as cur:
            cur.execute(bind(target, f"SELECT MAX({col}) FROM {table_plan.qname}{where}", args))
            newest_target = cur.fetchone()[0]
        extra = f" {'AND' if where else 'WHERE'} {col} > {PARAM}" if newest_target is not None else ""
        with source.cursor() as cur:
            cur.execute(bind(source, f"SELECT MIN({col}) FROM {table_plan.qname}{where}{extra}",
                             args + ([newest_target] if newest_target is not None else [])))
            oldest_missing = cur.fetchone()[0]
        if isinstance(oldest_missing, _dt.datetime):
            lag_since.append(oldest_missing)


def _lag_seconds(source, lag_since: List[Any]) -> float:
    if not lag_since:
        return 0.0
    with source.cursor() as cur:
        cur.execute("SELECT UTC_TIMESTAMP(6)")
        server_now = cur.fetchone()[0]
    ages = []
    for since in lag_since:
        if isinstance(since, _dt.datetime):
            ages.append((server_now - since).total_seconds())
        else:
            ages.append(time.time() - float(since))
    return max(0.0, max(ages))


def _log(result: TableResult, mode: str, seconds: float) -> None:
    # Counts and drift only: never row values (excluded columns are not even read).
    LOG.info(json.dumps({
        "event": "refdata_table", "mode": mode, "table": result.table, "state": result.state,
        "inserted": result.inserted, "updated": result.updated, "deleted": result.deleted,
        "chunks_compared": result.chunks_compared, "chunks_differing": result.chunks_differing,
        "checked_by": result.checked_by, "drift": result.drift, "seconds": round(seconds, 3),
    }, default=str))
