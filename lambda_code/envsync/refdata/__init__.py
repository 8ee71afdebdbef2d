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
   (whole table compared; crc32 mode, or md5 mode between full passes - `full_check_hours` -
   with the same definition and server flavour on both sides); otherwise, or when they differ,
   it walks the key in chunks with non-linear checksums computed on each server and keeps the
   changed keys. A finished md5 walk of a whole table is recorded on the target (apply only).
3. The delta is applied (`refdata_apply`) in one transaction per group of tables linked by
   foreign keys: deletes, then inserts (rows streamed from the source; a changed row's insert
   carries the target's values of excluded columns over), FK checks off inside
   the transaction and every reference verified before commit. A table whose upstream is
   empty while the target has rows to delete, whose delta would delete more than
   `max_delete_share` of its rows and more than `min_delete_rows` rows, orphan a row of an unlisted table, or
   break a constraint is *refused*: its group is rolled back and reported (state `refused`,
   `error`), and the tables after it are still synchronised. `SyncResult.failed` lists drift
   and refused tables; the CLI exits 2 and the handler reports status failed for them.
4. Every whole table's delta has a digest (`refdata_digest`: deleted keys and written rows),
   from the rows a plan streams into its statements or an apply writes. An apply given the
   approved digests (an env that waits for a person) commits a group only when each table's
   written delta is empty or the approved one; otherwise it rolls the group back (state
   `unapproved`, `SyncResult.unapproved`).

Time budget: `deadline` (a `time.monotonic()` value) is checked between chunks and between
tables. When it passes, the work done so far is applied (a table cut mid-way has its covered
key range applied in one transaction) and the result says `"continue"` with a JSON cursor; the
next call with that cursor resumes there. Every call makes progress (at least one chunk).
With `whole_tables` (a plan an approval binds) or approved digests (apply), tables are never cut:
the deadline is checked between tables (and FK groups) only.
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

Modules: `refdata_config` (the allow-list), `refdata_schema` (shapes, per-row SQL),
`refdata_diff`, `refdata_apply`, `refdata_digest`, `refdata_show` (plan output), `refdata_run` (one call's state
and the sync of one group), `refdata_result` (what a call reports); this module drives a call.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field, replace
from typing import Any, Dict, List, Optional, Sequence, Tuple

from envsync.refdata.config import RefdataConfig, RefdataConfigError, TableConfig, filter_problem
from envsync.refdata.digest import DeltaNotApproved
from envsync.refdata.result import SyncResult, TableResult
from envsync.refdata.run import TABLE_ERRORS, RefdataRun
from envsync.refdata.schema import RefdataError, fk_groups, read_foreign_keys, read_references, read_shapes
from envsync.refdata.sql import decode_key, encode_key

__all__ = ["RefdataConfig", "RefdataConfigError", "RefdataError", "SyncResult", "TableConfig", "TableResult",
           "apply", "filter_problem", "groups", "plan"]

CURSOR_VERSION = 1
GROUP_CONCAT_MAX_LEN = 64 * 1024 * 1024


def groups(target_conn, config: RefdataConfig) -> List[List[str]]:
    """The allow-list as independent FK groups, as the target's foreign keys link them now: what
    the state machine fans out over (one `apply(..., group=...)` per group, each group in one
    transaction). Tables in different groups share no foreign key, so their applies commute."""
    names = [t.name for t in config.tables]
    return fk_groups(names, read_foreign_keys(target_conn, names))


def plan(source_conn, target_conn, config: RefdataConfig, *, deadline: Optional[float] = None,
         cursor: Optional[Dict[str, Any]] = None, force: bool = False, whole_tables: bool = False,
         group: Optional[Sequence[str]] = None) -> SyncResult:
    """Dry run: per-table counts, the first changed rows (old -> new), the first statements
    apply would run and each table's delta digest; writes nothing. Refusals (references, the
    mass-delete guard) are reported too. `whole_tables` (what an approval binds): the deadline
    never cuts a table, so every compared table has its whole delta's digest, and a table the
    target does not hold yet is planned as a pending script will create it, empty (all source
    rows new; if the script fills it, the apply finds another delta and writes none of it).
    `group`: one FK group only, as in `apply`."""
    if group is not None:
        config = group_config(target_conn, config, group)
    return _run(source_conn, target_conn, config, deadline, cursor, write=False, force=force,
                whole_tables=whole_tables)


def apply(source_conn, target_conn, config: RefdataConfig, *, deadline: Optional[float] = None,
          cursor: Optional[Dict[str, Any]] = None, force: bool = False,
          approved: Optional[Dict[str, str]] = None, group: Optional[Sequence[str]] = None) -> SyncResult:
    """Apply the delta to the target, one transaction per table (or FK-linked group).

    `force` lifts the mass-delete guard for this call (an intended mass delete).
    `approved` (an env that waits for a person): per table, the delta digest a person approved
    (a table not listed was approved unchanged). A table is then compared and written whole in
    one call, and a group whose written delta is not the approved one is rolled back before its
    commit: state `unapproved` (`withheld` for the tables linked to it), nothing of it written.
    `group` (the fan-out): only these tables, which must be one of `groups()` as the target's
    foreign keys link them now; the cursor is then this group's own.
    """
    if group is not None:
        config = group_config(target_conn, config, group)
    return _run(source_conn, target_conn, config, deadline, cursor, write=True, force=force, approved=approved,
                whole_tables=approved is not None)


def group_config(target_conn, config: RefdataConfig, group: Sequence[str]) -> RefdataConfig:
    """`config` narrowed to one FK group. Refused when `group` is not one group now (a migration
    linked or split tables after the run listed the groups): applying part of a linked set in
    its own transaction could break the order the foreign keys need."""
    if isinstance(group, str) or not group or not all(isinstance(name, str) for name in group):
        raise RefdataError(f"group {group!r}: expected a non-empty list of allow-listed table names")
    current = groups(target_conn, config)
    if not any(set(found) == set(group) and len(found) == len(group) for found in current):
        raise RefdataError(
            f"tables {', '.join(group)}: not one foreign-key group of the allow-list now (groups: "
            f"{'; '.join(', '.join(found) for found in current)}); the foreign keys changed after the run listed "
            "the groups. Nothing applied; the next run lists them again")
    wanted = set(group)
    return replace(config, tables=tuple(t for t in config.tables if t.name in wanted))


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
         cursor: Optional[Dict[str, Any]], write: bool, force: bool = False,
         approved: Optional[Dict[str, str]] = None, whole_tables: bool = False) -> SyncResult:
    with _Session(source), _Session(target):
        names = [t.name for t in config.tables]
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
        run = RefdataRun(source=source, target=target, config=config, write=write, force=force,
                         source_shapes=source_shapes, target_shapes=target_shapes, references=references,
                         started_at=resume.started_at, approved=approved,
                         plan_new_tables=whole_tables and not write)
        next_cursor: Optional[Dict[str, Any]] = None
        for index in range(resume.group, len(groups)):
            group = groups[index]
            if index > resume.group and deadline is not None and time.monotonic() >= deadline:
                next_cursor = _cursor(groups, index, None, resume.started_at)
                for later in groups[index:]:
                    run.lag_not_reached(later, None)
                break
            start_after = resume.after if index == resume.group else None
            deleted = dict(resume.deleted) if index == resume.group else {}
            # FK groups finish as one unit, and so does every table whose whole delta a digest binds
            table_deadline = deadline if len(group) == 1 and not whole_tables else None
            try:
                done = run.sync_group(group, start_after, table_deadline, deleted)
            except DeltaNotApproved as error:  # not the approved delta: nothing of the group written
                run.withhold(group, error)
                continue
            except TABLE_ERRORS as error:  # this group only: the tables listed after it still sync
                run.refuse(group, error)
                continue
            if done is not None:  # cut at the deadline inside a single table
                next_cursor = _cursor(groups, index, done, resume.started_at, deleted)
                run.lag_not_reached(group, done)
                for later in groups[index + 1:]:
                    run.lag_not_reached(later, None)
                break
        lag = run.lag_seconds()
    ordered = [run.results[name] for group in groups for name in group]
    return SyncResult(mode=run.mode, status="continue" if next_cursor else "done", cursor=next_cursor,
                      tables=ordered, replication_lag_seconds=lag)
