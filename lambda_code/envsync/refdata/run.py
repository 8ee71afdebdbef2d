"""Reference-data sync, one call's run: the state a plan or apply carries from group to group
(`RefdataRun`), the sync of one FK group, the delete-share guard, and replication lag."""

from __future__ import annotations

import datetime as _dt
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pymysql

from envsync.mysql.connection import server_error_notice
from envsync.refdata.applier import apply_group, group_statements, max_packet, planned_orphans, reference_error
from envsync.refdata.config import RefdataConfig, TableConfig, config_problem, table_plan
from envsync.refdata.diff import (
    TableDelta,
    definitions_match,
    diff_table,
    end_chunks_equal,
    fitting_chunk_rows,
    new_table_delta,
    tables_checksum_equal,
)
from envsync.refdata.digest import DeltaDigest, DeltaNotApproved
from envsync.refdata.result import TableResult, log_table
from envsync.refdata.schema import ForeignKey, RefdataError, TableShape, compare_shapes
from envsync.refdata.show import describe_rows, first_changed
from envsync.refdata.sql import PARAM, TablePlan, bind, quote_ident

# On the target: per listed table, when its last full 128-bit pass started (md5 mode). Owned by
# envsync like the history table (schema drift ignores it); only apply writes it.
VERIFIED_TABLE = "envsync_refdata_verified"
NO_SUCH_TABLE = 1146
PLAN_SQL_STATEMENTS = 20  # per table in a plan: enough to read, bounded for a million-row delta
PLAN_SQL_CHARS = 4000

# Errors that concern one group's data or constraints (1062, 1452, a bad filter...): the group is
# refused and the run goes on. Lost connections and other server errors stop the run.
TABLE_ERRORS = (RefdataError, pymysql.err.IntegrityError, pymysql.err.DataError, pymysql.err.ProgrammingError)


@dataclass
class RefdataRun:
    """One plan or apply call: both connections, the allow-list, both sides' shapes, the target's
    references, and what the call has found so far (per-table results, missing changes' ages)."""

    source: Any
    target: Any
    config: RefdataConfig
    write: bool
    force: bool
    source_shapes: Dict[str, TableShape]
    target_shapes: Dict[str, TableShape]
    references: List[ForeignKey]
    started_at: float  # wall clock when the chain of calls sharing a cursor began
    results: Dict[str, TableResult] = field(default_factory=dict)
    lag_since: List[Any] = field(default_factory=list)  # server-UTC datetimes or wall-clock epochs
    verified_ages: Optional[Dict[str, float]] = None  # seconds since each table's last full pass
    approved: Optional[Dict[str, str]] = None  # apply: per table, the delta digest a person approved
    # plan: a table the target lacks is planned as a pending script will create it (empty)
    plan_new_tables: bool = False

    def __post_init__(self) -> None:
        self.by_name: Dict[str, TableConfig] = {t.name: t for t in self.config.tables}
        if not self.results:
            self.results = {name: TableResult(table=name, state="not_reached") for name in self.by_name}

    @property
    def mode(self) -> str:
        return "apply" if self.write else "plan"

    def refuse(self, group: Sequence[str], error: Exception) -> None:
        message = str(error) if isinstance(error, RefdataError) else f"{type(error).__name__}: {error.args}"
        notice = str(error) if isinstance(error, RefdataError) else server_error_notice(error)
        for name in group:
            result = self.results[name]
            result.state, result.error, result.notice = "refused", message, notice
            result.inserted = result.updated = result.deleted = 0  # nothing of the group was written
            result.sql, result.rows = [], []
            log_table(result, self.mode, 0.0)

    def withhold(self, group: Sequence[str], error: DeltaNotApproved) -> None:
        """A group whose delta is not the approved one (digest.DeltaNotApproved): nothing written."""
        for name in group:
            result = self.results[name]
            if name not in error.tables and result.state != "changed":
                continue  # nothing of it to write
            result.state = "unapproved" if name in error.tables else "withheld"
            result.error = result.notice = str(error)
            result.inserted = result.updated = result.deleted = 0
            log_table(result, self.mode, 0.0)

    def sync_group(self, group: Sequence[str], start_after: Optional[Tuple[Any, ...]], deadline: Optional[float],
                   deleted: Dict[str, int]) -> Optional[Tuple[Any, ...]]:
        """Diff and (when writing) apply one FK group; returns the cut key when stopped early.
        `deleted` counts this run's deletes per table (carried in the cursor when a table is cut)."""
        diffed: List[Tuple[TablePlan, TableDelta]] = []
        timings: Dict[str, float] = {}
        for name in group:
            began = time.monotonic()
            delta_plan = self._diff_table(name, start_after, deadline, deleted)
            if delta_plan is not None:
                diffed.append(delta_plan)
                timings[name] = time.monotonic() - began
        began = time.monotonic()
        # A plan and an approved apply bind the delta by its digest; an apply nobody approves
        # (an env without the gate) skips it and writes new and changed rows in one stream.
        binds = not self.write or self.approved is not None
        digests = {plan_of_table.name: DeltaDigest([[c.name for c in plan_of_table.columns].index(k)
                                                    for k in plan_of_table.key_names], len(plan_of_table.columns))
                   for plan_of_table, _ in diffed} if binds else {}
        if self.write:
            apply_group(self.target, diffed, self.references, list(self.by_name), digests, self.approved)
        else:
            self._show_plan(diffed, digests)
        apply_seconds = time.monotonic() - began
        for plan_of_table, delta in diffed:  # a table cut at the deadline has only part of its delta
            bound = digests.get(plan_of_table.name)
            self.results[plan_of_table.name].digest = bound.hexdigest() if bound and delta.complete else ""
        if self.write:
            self._record_full_checks([plan_of_table.name for plan_of_table, delta in diffed if delta.complete])
        for plan_of_table, delta in diffed:
            if not self.write:
                self._lag_from_delta(plan_of_table, delta)
            log_table(self.results[plan_of_table.name], self.mode, timings[plan_of_table.name] + apply_seconds)
        cut = next((d for _, d in diffed if not d.complete), None)
        return cut.covered_to if cut is not None else None

    def _diff_table(self, name: str, start_after: Optional[Tuple[Any, ...]], deadline: Optional[float],
                    deleted: Dict[str, int]) -> Optional[Tuple[TablePlan, TableDelta]]:
        """One table's delta (None when it drifted: reported, not synchronised)."""
        began = time.monotonic()
        config, table_config, result = self.config, self.by_name[name], self.results[name]
        source_shape, target_shape = self.source_shapes[name], self.target_shapes[name]
        drift = compare_shapes(source_shape, target_shape, table_config.exclude_columns)
        if drift and self.plan_new_tables and not self.write and source_shape.exists and not target_shape.exists:
            plan_of_table = table_plan(source_shape, table_config)
            delta = new_table_delta(self.source, plan_of_table)
            result.writes = [c.name for c in plan_of_table.columns]
            result.checked_by, result.inserted = "new_table", len(delta.insert_keys)
            result.state = "changed" if delta.changes else "in_sync"
            return plan_of_table, delta
        if drift:
            result.state, result.drift = "drift", drift
            log_table(result, self.mode, time.monotonic() - began)
            return None
        problem = config_problem(source_shape, target_shape, table_config)
        if problem:
            raise RefdataError(problem)
        plan_of_table = table_plan(source_shape, table_config, target_shape)
        result.writes = [c.name for c in plan_of_table.columns]
        result.kept = [c.name for c in plan_of_table.kept]
        chunk_rows = fitting_chunk_rows(self.source, self.target, plan_of_table, config.chunk_rows, config.hash)
        # CHECKSUM TABLE covers whole rows of the whole table: no filter, no excluded column. In
        # crc32 mode it is as strong as the walk; in md5 mode it is trusted only between full passes.
        whole_table = start_after is None and not table_config.where and not table_config.exclude_columns
        if (whole_table
                and (config.hash == "crc32" or (not self._full_check_due(name)
                                                and definitions_match(self.source, self.target, plan_of_table)))
                and end_chunks_equal(self.source, self.target, plan_of_table, chunk_rows=chunk_rows,
                                      hash_name=config.hash)
                and tables_checksum_equal(self.source, self.target, plan_of_table)):
            delta = TableDelta()
            result.checked_by = "checksum_table"
        else:
            result.checked_by = "chunks"
            delta = diff_table(self.source, self.target, plan_of_table, chunk_rows=chunk_rows,
                               hash_name=config.hash, start_after=start_after, deadline=deadline)
        earlier = deleted.get(name, 0) if start_after is not None else 0
        if delta.deletes and not self.force:
            self._check_mass_delete(plan_of_table, delta, earlier, config.delete_share(table_config),
                                    config.delete_rows(table_config))
        deleted[name] = earlier + len(delta.deletes)  # carried in the cursor when the table is cut
        result.inserted, result.updated = len(delta.insert_keys), len(delta.update_keys)
        result.deleted = len(delta.deletes)
        result.chunks_compared, result.chunks_differing = delta.chunks_compared, delta.chunks_differing
        result.state = ("changed" if delta.changes else "in_sync") if delta.complete else "partial"
        return plan_of_table, delta

    def _show_plan(self, diffed: List[Tuple[TablePlan, TableDelta]], digests: Dict[str, DeltaDigest]) -> None:
        """Plan mode: refuse what apply would refuse, and keep the first changed rows and statements."""
        orphan = planned_orphans(self.target, diffed, self.references)
        if orphan is not None:
            raise reference_error(orphan[0].parent, orphan[0], orphan[1], list(self.by_name), incoming=True)
        for plan_of_table, delta in diffed:
            self.results[plan_of_table.name].rows = _changed_rows(plan_of_table, delta)
        packet = max_packet(self.target)
        for table, statement in group_statements(self.target, diffed, None, packet, digests):  # streamed; few kept
            shown = self.results[table].sql
            if len(shown) < PLAN_SQL_STATEMENTS:
                text = statement.decode(self.target.encoding, "backslashreplace")
                if len(text) > PLAN_SQL_CHARS:
                    text = text[:PLAN_SQL_CHARS] + f" ... ({len(text)} chars)"
                shown.append(text)

    def _check_mass_delete(self, plan_of_table: TablePlan, delta: TableDelta, earlier: int, share: float,
                           min_rows: int) -> None:
        """Refuse when the upstream table (filtered) is empty, or when this run's deletes (earlier
        calls' + this call's) exceed both `share` of the rows the table held when the run started
        and `min_rows`: an emptied or truncated upstream, not a small table's renamed keys.
        An empty upstream deletes every row, so only `share` 1 (any share) lets it through.
        The rows the diff saw are lower bounds of both tables' counts: when they already rule a
        refusal out, the tables are not counted again."""
        deletes = len(delta.deletes)
        total = deletes + earlier
        if share >= 1 or (delta.source_rows_seen
                          and (total <= min_rows or total <= share * (delta.target_rows_seen + earlier))):
            return
        where, args = plan_of_table.range_where(None, None)
        with self.source.cursor() as cur:
            cur.execute(bind(self.source, f"SELECT 1 FROM {plan_of_table.qname}{where} LIMIT 1", args))
            upstream_empty = cur.fetchone() is None
        with self.target.cursor() as cur:
            cur.execute(bind(self.target, f"SELECT COUNT(*) FROM {plan_of_table.qname}{where}", args))
            rows = int(cur.fetchone()[0]) + earlier
        deletes += earlier
        override = ("If intended, rerun with --force (event \"force\": true) or set max_delete_share / "
                    "min_delete_rows for this table in the refdata config")
        name = plan_of_table.name
        if upstream_empty:
            raise RefdataError(
                f"table {name!r}: refused: the upstream table is empty (0 rows{' matching where' if where else ''}) "
                f"and the run would delete {deletes} of {rows} target rows - is it emptied or not loaded yet? "
                f"{override}")
        if deletes > share * rows and deletes > min_rows:
            raise RefdataError(
                f"table {name!r}: refused: the run would delete {deletes} of {rows} target rows "
                f"({100.0 * deletes / max(rows, 1):.0f} %), more than max_delete_share {share} and more than "
                f"min_delete_rows {min_rows} - is the upstream table truncated? {override}")

    # --- the full 128-bit pass on a schedule (md5 mode) ---------------------------------------

    def _full_check_due(self, name: str) -> bool:
        if self.config.full_check_hours <= 0:
            return True
        if self.verified_ages is None:
            try:
                with self.target.cursor() as cur:
                    cur.execute(f"SELECT table_name, TIMESTAMPDIFF(MICROSECOND, verified_at, UTC_TIMESTAMP(6)) "
                                f"FROM {VERIFIED_TABLE}")
                    self.verified_ages = {str(table): int(micros) / 1e6 for table, micros in cur.fetchall()}
            except pymysql.err.ProgrammingError as error:
                if error.args[0] != NO_SUCH_TABLE:
                    raise
                self.verified_ages = {}  # no full pass recorded yet
        age = self.verified_ages.get(name)
        return age is None or age >= self.config.full_check_hours * 3600

    def _record_full_checks(self, names: Sequence[str]) -> None:
        """md5 mode: these whole tables were compared row by row (and synchronised) in this run."""
        names = [n for n in names if self.results[n].checked_by == "chunks" and not self.by_name[n].where
                 and not self.by_name[n].exclude_columns]
        if self.config.hash != "md5" or not names:
            return
        with self.target.cursor() as cur:
            cur.execute(f"CREATE TABLE IF NOT EXISTS {VERIFIED_TABLE} (table_name VARCHAR(64) NOT NULL PRIMARY KEY, "
                        "verified_at DATETIME(6) NOT NULL) ENGINE=InnoDB")
            # the run's start: the pass covered the table from then on (a cursor chain included)
            cur.executemany(f"REPLACE INTO {VERIFIED_TABLE} VALUES (%s, FROM_UNIXTIME(%s))",
                            [(name, self.started_at) for name in names])
        if not self.target.get_autocommit():
            self.target.commit()

    # --- replication lag ---------------------------------------------------------------------

    def _lag_from_delta(self, plan_of_table: TablePlan, delta: TableDelta) -> None:
        """Plan mode: the delta is still missing on the target."""
        column = self.by_name[plan_of_table.name].updated_at_column
        if column:
            position = [c.name for c in plan_of_table.columns].index(column)
            oldest, dated, written = None, 0, 0
            for row in delta.written_rows():  # streamed: nothing but the oldest stamp is kept
                written += 1
                stamp = row[position]
                if isinstance(stamp, _dt.datetime):
                    dated += 1
                    oldest = stamp if oldest is None or stamp < oldest else oldest
            if oldest is not None:
                self.lag_since.append(oldest)
            if delta.deletes or dated < written:
                self.lag_since.append(self.started_at)
        elif delta.changes:
            self.lag_since.append(self.started_at)

    def lag_not_reached(self, group: Sequence[str], after: Optional[Tuple[Any, ...]]) -> None:
        """Tables (or the rest of one) not compared in this call: oldest source change newer than the target."""
        for name in group:
            table_config = self.by_name[name]
            column = table_config.updated_at_column
            shape, target_shape = self.source_shapes[name], self.target_shapes[name]
            if not column or column not in shape.columns:
                continue
            if (compare_shapes(shape, target_shape, table_config.exclude_columns)
                    or config_problem(shape, target_shape, table_config)):
                continue  # drift or a bad entry: reported as such when the table is reached
            plan_of_table = table_plan(shape, table_config)
            where, args = plan_of_table.range_where(after, None)
            col = quote_ident(column)
            with self.target.cursor() as cur:
                cur.execute(bind(self.target, f"SELECT MAX({col}) FROM {plan_of_table.qname}{where}", args))
                newest_target = cur.fetchone()[0]
            extra = f" {'AND' if where else 'WHERE'} {col} > {PARAM}" if newest_target is not None else ""
            with self.source.cursor() as cur:
                cur.execute(bind(self.source, f"SELECT MIN({col}) FROM {plan_of_table.qname}{where}{extra}",
                                 args + ([newest_target] if newest_target is not None else [])))
                oldest_missing = cur.fetchone()[0]
            if isinstance(oldest_missing, _dt.datetime):
                self.lag_since.append(oldest_missing)

    def lag_seconds(self) -> float:
        if not self.lag_since:
            return 0.0
        with self.source.cursor() as cur:
            cur.execute("SELECT UTC_TIMESTAMP(6)")
            server_now = cur.fetchone()[0]
        ages = []
        for since in self.lag_since:
            if isinstance(since, _dt.datetime):
                ages.append((server_now - since).total_seconds())
            else:
                ages.append(time.time() - float(since))
        return max(0.0, max(ages))


def _changed_rows(plan_of_table: TablePlan, delta: TableDelta) -> List[Dict[str, Any]]:
    """The first changed rows of a plan, old -> new, fetched key by key from both sides."""
    changes = []
    for change, key in first_changed(delta.insert_keys, delta.update_keys, delta.deletes):
        # list(): read each unbuffered result to its end before the connection is used again
        olds = list(delta.target_rows([key])) if change != "insert" and delta.target_rows else []
        news = list(delta.source_rows([key])) if change != "delete" and delta.source_rows else []
        old, new = (olds or [None])[0], (news or [None])[0]
        changes.append((change, key, old, new))
    return describe_rows(changes, [c.name for c in plan_of_table.key], [c.name for c in plan_of_table.columns])
