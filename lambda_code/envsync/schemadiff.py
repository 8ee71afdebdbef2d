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
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Optional, Sequence, Tuple

from envsync.introspect import (
    Check,
    Column,
    Event,
    ForeignKey,
    Index,
    Routine,
    SchemaModel,
    Table,
    Trigger,
    View,
)

__all__ = ["DEFAULT_IGNORE_TABLES", "Difference", "DriftReport", "diff"]

DEFAULT_IGNORE_TABLES: Tuple[str, ...] = ("envsync_schema_history",)

_LONG_DETAILS = ("definition", "body")  # shortened around the first difference in lines()


@dataclass(frozen=True)
class Difference:
    """``kind`` table|column|index|foreign_key|check|view|trigger|procedure|function|event;
    ``object`` ``table`` or ``table.child`` or the object's name; ``detail`` the attribute, or
    ``presence`` when the object exists on one side only (``left``/``right`` then hold a summary
    of it, or None on the side that lacks it)."""

    kind: str
    object: str
    detail: str
    left: Any
    right: Any

    def line(self, left_name: str = "left", right_name: str = "right") -> str:
        if self.detail == "presence":
            side, summary = (left_name, self.left) if self.right is None else (right_name, self.right)
            return f"{self.kind} {self.object}: only in {side}" + (f": {summary}" if summary else "")
        left, right = _render(self.left), _render(self.right)
        if self.detail in _LONG_DETAILS:
            left, right = _around_first_difference(left, right)
        return f"{self.kind} {self.object}: {self.detail} {left} != {right}"

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "object": self.object, "detail": self.detail,
                "left": _plain(self.left), "right": _plain(self.right)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Difference:
        return cls(kind=data["kind"], object=data["object"], detail=data["detail"],
                   left=_frozen(data["left"]), right=_frozen(data["right"]))


@dataclass(frozen=True)
class DriftReport:
    differences: Tuple[Difference, ...]
    left_name: str = "left"
    right_name: str = "right"
    ignored_tables: Tuple[str, ...] = field(default=())
    # (kind, object, what) either side could not compare: listed, never counted as equal.
    not_compared: Tuple[Tuple[str, str, str], ...] = field(default=())

    @property
    def count(self) -> int:
        return len(self.differences)

    @property
    def in_sync(self) -> bool:
        return not self.differences

    def lines(self) -> List[str]:
        return [d.line(self.left_name, self.right_name) for d in self.differences]

    def not_compared_lines(self) -> List[str]:
        return [f"not compared: {kind} {name}: {what}" for kind, name, what in self.not_compared]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "left": self.left_name,
            "right": self.right_name,
            "ignored_tables": list(self.ignored_tables),
            "count": self.count,
            "differences": [d.to_dict() for d in self.differences],
            "not_compared": [{"kind": kind, "object": name, "what": what}
                             for kind, name, what in self.not_compared],
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> DriftReport:
        return cls(
            differences=tuple(Difference.from_dict(d) for d in data["differences"]),
            left_name=data.get("left", "left"),
            right_name=data.get("right", "right"),
            ignored_tables=tuple(data.get("ignored_tables", ())),
            not_compared=tuple((item["kind"], item["object"], item["what"])
                               for item in data.get("not_compared", ())),
        )


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
    _diff_named(
        out, "table", [t for t in a.tables if not ignored(t.name)],
        [t for t in b.tables if not ignored(t.name)], _table_summary, _diff_table,
    )
    _diff_named(
        out, "view", [v for v in a.views if not ignored(v.name)],
        [v for v in b.views if not ignored(v.name)], lambda v: "", _diff_view,
    )
    _diff_named(
        out, "trigger", [t for t in a.triggers if not ignored(t.table)],
        [t for t in b.triggers if not ignored(t.table)], _trigger_summary, _diff_trigger,
    )
    for routine_type in sorted({r.type for r in a.routines} | {r.type for r in b.routines}):
        _diff_named(
            out, routine_type.lower(), [r for r in a.routines if r.type == routine_type],
            [r for r in b.routines if r.type == routine_type], _routine_summary, _diff_routine,
        )
    _diff_named(out, "event", a.events, b.events, lambda e: e.schedule, _diff_event)
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


# ----------------------------------------------------------------------------------------------
# Per kind


def _diff_named(
    out: List[Difference],
    kind: str,
    left: Sequence[Any],
    right: Sequence[Any],
    summary: Callable[[Any], str],
    compare: Callable[[List[Difference], str, Any, Any], None],
    prefix: str = "",
    order: Optional[Sequence[str]] = None,
) -> None:
    """Presence differences for objects on one side only, then ``compare`` for the shared ones.

    ``order`` fixes the reporting order (e.g. column ordinal order); the default is by name.
    """
    left_by_name = {item.name: item for item in left}
    right_by_name = {item.name: item for item in right}
    names = order if order is not None else sorted(set(left_by_name) | set(right_by_name))
    for name in names:
        in_left, in_right = left_by_name.get(name), right_by_name.get(name)
        if in_left is None and in_right is None:
            continue
        if in_left is None or in_right is None:
            out.append(Difference(
                kind, prefix + name, "presence",
                summary(in_left) if in_left is not None else None,
                summary(in_right) if in_right is not None else None,
            ))
            continue
        compare(out, prefix + name, in_left, in_right)


def _attributes(
    out: List[Difference], kind: str, name: str, left: Any, right: Any, attributes: Sequence[str],
    render: Optional[Dict[str, Callable[[Any], Any]]] = None,
) -> None:
    for attribute in attributes:
        value_left, value_right = getattr(left, attribute), getattr(right, attribute)
        if value_left != value_right:
            show = (render or {}).get(attribute)
            if show is not None:
                value_left, value_right = show(left), show(right)
            out.append(Difference(kind, name, attribute, value_left, value_right))


def _table_summary(table: Table) -> str:
    return f"{len(table.columns)} columns"


def _diff_table(out: List[Difference], name: str, left: Table, right: Table) -> None:
    table_attributes = (["engine", "charset"] + (["collation"] if left.charset == right.charset else [])
                        + ["table_type", "options", "comment", "partitioning", "sequence"])
    _attributes(out, "table", name, left, right, table_attributes)

    left_names = [c.name for c in left.columns]
    known = set(left_names)
    right_only = [c.name for c in right.columns if c.name not in known]
    _diff_named(
        out, "column", left.columns, right.columns, _column_summary, _diff_column,
        prefix=left.name + ".", order=left_names + right_only,
    )
    _diff_column_order(out, left, right)
    _diff_named(out, "index", left.indexes, right.indexes, _index_summary, _diff_index,
                prefix=left.name + ".")
    _diff_named(out, "foreign_key", left.foreign_keys, right.foreign_keys, _fk_summary, _diff_fk,
                prefix=left.name + ".")
    _diff_named(out, "check", left.checks, right.checks, lambda check: check.clause, _diff_check,
                prefix=left.name + ".")


def _diff_check(out: List[Difference], name: str, left: Check, right: Check) -> None:
    _attributes(out, "check", name, left, right, ("clause",))


def _diff_event(out: List[Difference], name: str, left: Event, right: Event) -> None:
    _attributes(out, "event", name, left, right, ("schedule", "status", "on_completion", "comment", "body"))


def _column_summary(column: Column) -> str:
    text = column.type + ("" if column.nullable else " NOT NULL")
    return text if column.default is None else f"{text} DEFAULT {column.default}"


def _diff_column(out: List[Difference], name: str, left: Column, right: Column) -> None:
    attributes = ["type", "nullable", "default", "extra", "charset"]
    if left.charset == right.charset:
        attributes.append("collation")
    attributes += ["generation", "comment"]
    _attributes(out, "column", name, left, right, attributes,
                render={"nullable": lambda c: "NULL" if c.nullable else "NOT NULL"})


def _diff_column_order(out: List[Difference], left: Table, right: Table) -> None:
    right_names = {c.name for c in right.columns}
    left_names = {c.name for c in left.columns}
    left_common = [c.name for c in left.columns if c.name in right_names]
    right_common = [c.name for c in right.columns if c.name in left_names]
    if left_common == right_common:
        return
    kept = set(_longest_common_subsequence(left_common, right_common))
    left_order = [c.name for c in left.columns]
    right_order = [c.name for c in right.columns]
    for name in left_common:
        if name not in kept:
            out.append(Difference(
                "column", f"{left.name}.{name}", "position",
                _position(left_order, name), _position(right_order, name),
            ))


def _position(order: Sequence[str], name: str) -> str:
    index = order.index(name)
    return "first" if index == 0 else f"after {order[index - 1]}"


def _longest_common_subsequence(a: Sequence[str], b: Sequence[str]) -> List[str]:
    # O(len(a) * len(b)); tables have tens of columns, and this runs only when orders differ.
    lengths = [[0] * (len(b) + 1) for _ in range(len(a) + 1)]
    for i in range(len(a) - 1, -1, -1):
        for j in range(len(b) - 1, -1, -1):
            lengths[i][j] = (
                lengths[i + 1][j + 1] + 1 if a[i] == b[j] else max(lengths[i + 1][j], lengths[i][j + 1])
            )
    result: List[str] = []
    i = j = 0
    while i < len(a) and j < len(b):
        if a[i] == b[j]:
            result.append(a[i])
            i += 1
            j += 1
        elif lengths[i + 1][j] >= lengths[i][j + 1]:
            i += 1
        else:
            j += 1
    return result


def _index_summary(index: Index) -> str:
    return ("UNIQUE " if index.unique else "") + index.render_columns()


def _diff_index(out: List[Difference], name: str, left: Index, right: Index) -> None:
    _attributes(out, "index", name, left, right, ("unique", "type", "columns", "comment", "ignored"),
                render={"columns": Index.render_columns})


def _fk_summary(fk: ForeignKey) -> str:
    return fk.render_reference()


def _fk_target(fk: ForeignKey) -> str:
    table = fk.referenced_table if fk.referenced_schema is None else (
        f"{fk.referenced_schema}.{fk.referenced_table}")
    return f"{table}({', '.join(fk.referenced_columns)})"


def _diff_fk(out: List[Difference], name: str, left: ForeignKey, right: ForeignKey) -> None:
    _attributes(out, "foreign_key", name, left, right, ("columns",))
    if _fk_target(left) != _fk_target(right):
        out.append(Difference("foreign_key", name, "references", _fk_target(left), _fk_target(right)))
    _attributes(out, "foreign_key", name, left, right, ("on_update", "on_delete"))


def _trigger_summary(trigger: Trigger) -> str:
    return f"{trigger.timing} {trigger.event} ON {trigger.table}"


def _diff_view(out: List[Difference], name: str, left: View, right: View) -> None:
    _attributes(out, "view", name, left, right, ("check_option", "security_type"))
    if left.definition is not None and right.definition is not None:  # None: not shown to the user
        _attributes(out, "view", name, left, right, ("definition",))
    if left.algorithm is not None and right.algorithm is not None:  # None: the server does not say
        _attributes(out, "view", name, left, right, ("algorithm",))


def _diff_trigger(out: List[Difference], name: str, left: Trigger, right: Trigger) -> None:
    _attributes(out, "trigger", name, left, right, ("table", "timing", "event", "order", "body"))


def _routine_summary(routine: Routine) -> str:
    return _render_parameters(routine) + (f" RETURNS {routine.returns}" if routine.returns else "")


def _render_parameters(routine: Routine) -> str:
    return "(" + ", ".join(
        " ".join(part for part in (p.mode, p.name, p.type) if part) for p in routine.parameters
    ) + ")"


def _diff_routine(out: List[Difference], name: str, left: Routine, right: Routine) -> None:
    _attributes(
        out, left.type.lower(), name, left, right,
        ("parameters", "returns", "deterministic", "data_access", "security_type", "body", "comment"),
        render={"parameters": _render_parameters},
    )


# ----------------------------------------------------------------------------------------------
# Rendering


def _render(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_render(v) for v in value) + ")"
    text = str(value)
    return text if text else "''"


def _around_first_difference(left: str, right: str, width: int = 60) -> Tuple[str, str]:
    """Show long bodies from just before where they start to differ."""
    if max(len(left), len(right)) <= width:
        return left, right
    prefix = 0
    while prefix < min(len(left), len(right)) and left[prefix] == right[prefix]:
        prefix += 1
    start = max(0, prefix - 20)
    word_start = left.rfind(" ", 0, start) + 1  # start on a word when one begins nearby
    if start and word_start and start - word_start <= 20:
        start = word_start

    def cut(text: str) -> str:
        piece = text[start:start + width]
        return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")

    return cut(left), cut(right)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value
