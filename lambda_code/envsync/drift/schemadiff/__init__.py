"""Compare two ``SchemaModel``s: one ``Difference`` per drifted attribute, in a stable order.

``diff(left, right)`` is pure (no server). ``left`` is usually the upstream, ``right`` the
environment being checked; name them with ``left_name``/``right_name`` so the report says
``only in dev`` rather than ``only in left``.

Counting rules (``DriftReport.count`` is the ``SchemaDriftCount`` metric), chosen so that one
DDL change counts once where the server lets us tell:

* A table, view, trigger or routine present on one side only is one difference; the columns,
  indexes and foreign keys of a missing table are not counted again.
* A column/index/foreign key present on one side only is one difference.
* Each differing attribute of an object present on both sides is one difference.
* A charset change is reported as ``charset`` only (it always changes the collation too); a
  collation change within the same charset as ``collation``.
* Column order: the columns present on both sides are compared as sequences; the columns
  outside their longest common subsequence are reported as ``position`` (``after x``), so moving
  one column is one difference and adding a column in the middle is only "column added".
* Ignored tables (exact names or ``fnmatch`` patterns) drop the table with its columns,
  indexes, foreign keys and triggers; a view whose name matches is dropped too.

Modules by concern (after Skeema's tengo): ``report`` (Difference, DriftReport), ``compare``
(presence and attributes, the mechanism every kind shares), and the per-kind comparisons
``tables`` (columns, order, indexes, foreign keys, checks) and ``objects`` (views, triggers,
routines, events); ``diff`` below walks the kinds.
"""

from __future__ import annotations

import fnmatch
from typing import Iterable, List, Tuple

from envsync.drift.introspect import SchemaModel
from envsync.drift.schemadiff.compare import diff_named
from envsync.drift.schemadiff.objects import (
    diff_event,
    diff_routine,
    diff_trigger,
    diff_view,
    routine_summary,
    trigger_summary,
)
from envsync.drift.schemadiff.report import Difference, DriftReport
from envsync.drift.schemadiff.tables import diff_table, table_summary

__all__ = ["DEFAULT_IGNORE_TABLES", "Difference", "DriftReport", "diff"]

# envsync's own tables: migration history, refdata's last full pass per table (`refdata_run`),
# and the audit of break-glass applies (`approval.break_glass`).
DEFAULT_IGNORE_TABLES: Tuple[str, ...] = ("envsync_schema_history", "envsync_refdata_verified", "envsync_break_glass")


def diff(
    a: SchemaModel,
    b: SchemaModel,
    ignore_tables: Iterable[str] = DEFAULT_IGNORE_TABLES,
    *,
    left_name: str = "left",
    right_name: str = "right",
    ignore_kinds: Iterable[str] = (),
) -> DriftReport:
    """Every difference between schema ``a`` (left) and ``b`` (right).

    ``ignore_kinds`` leaves out whole kinds (``trigger``, ``procedure``, ``function``, ``view``,
    ...): for a side read by a user that cannot see them (see ``load_schema``).
    """
    patterns = tuple(ignore_tables)
    skipped_kinds = frozenset(kind.lower() for kind in ignore_kinds)

    def ignored(name: str) -> bool:
        return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)

    out: List[Difference] = []
    diff_named(
        out, "table", [t for t in a.tables if not ignored(t.name)],
        [t for t in b.tables if not ignored(t.name)], table_summary, diff_table,
    )
    diff_named(
        out, "view", [v for v in a.views if not ignored(v.name)],
        [v for v in b.views if not ignored(v.name)], lambda v: "", diff_view,
    )
    diff_named(
        out, "trigger", [t for t in a.triggers if not ignored(t.table)],
        [t for t in b.triggers if not ignored(t.table)], trigger_summary, diff_trigger,
    )
    for routine_type in sorted({r.type for r in a.routines} | {r.type for r in b.routines}):
        diff_named(
            out, routine_type.lower(), [r for r in a.routines if r.type == routine_type],
            [r for r in b.routines if r.type == routine_type], routine_summary, diff_routine,
        )
    diff_named(out, "event", a.events, b.events, lambda e: e.schedule, diff_event)
    if skipped_kinds:
        out = [d for d in out if d.kind not in skipped_kinds]
    not_compared = sorted(
        item for item in set(a.not_compared) | set(b.not_compared)
        if item[0] not in skipped_kinds and not ignored(item[1].split(".", 1)[0])
    )
    return DriftReport(
        differences=tuple(out), left_name=left_name, right_name=right_name, ignored_tables=patterns,
        not_compared=tuple(not_compared),
    )
