"""Per-kind comparison of tables: table options, columns (and their order), indexes, foreign keys
and CHECK constraints."""

from __future__ import annotations

from typing import List, Sequence

from envsync.drift.introspect import Check, Column, ForeignKey, Index, Table
from envsync.drift.schemadiff.compare import diff_attributes, diff_named
from envsync.drift.schemadiff.report import Difference


def table_summary(table: Table) -> str:
    return f"{len(table.columns)} columns"


def diff_table(out: List[Difference], name: str, left: Table, right: Table) -> None:
    table_attributes = (["engine", "charset"] + (["collation"] if left.charset == right.charset else [])
                        + ["table_type", "options", "comment", "partitioning", "sequence"])
    diff_attributes(out, "table", name, left, right, table_attributes)

    left_names = [c.name for c in left.columns]
    known = set(left_names)
    right_only = [c.name for c in right.columns if c.name not in known]
    diff_named(
        out, "column", left.columns, right.columns, _column_summary, _diff_column,
        prefix=left.name + ".", order=left_names + right_only,
    )
    _diff_column_order(out, left, right)
    diff_named(out, "index", left.indexes, right.indexes, _index_summary, _diff_index,
                prefix=left.name + ".")
    diff_named(out, "foreign_key", left.foreign_keys, right.foreign_keys, _fk_summary, _diff_fk,
                prefix=left.name + ".")
    diff_named(out, "check", left.checks, right.checks, lambda check: check.clause, _diff_check,
                prefix=left.name + ".")


def _diff_check(out: List[Difference], name: str, left: Check, right: Check) -> None:
    diff_attributes(out, "check", name, left, right, ("clause",))


def _column_summary(column: Column) -> str:
    text = column.type + ("" if column.nullable else " NOT NULL")
    return text if column.default is None else f"{text} DEFAULT {column.default}"


def _diff_column(out: List[Difference], name: str, left: Column, right: Column) -> None:
    attributes = ["type", "nullable", "default", "extra", "charset"]
    if left.charset == right.charset:
        attributes.append("collation")
    attributes += ["generation", "comment"]
    diff_attributes(out, "column", name, left, right, attributes,
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
    diff_attributes(out, "index", name, left, right, ("unique", "type", "columns", "comment", "ignored"),
                render={"columns": Index.render_columns})


def _fk_summary(fk: ForeignKey) -> str:
    return fk.render_reference()


def _fk_target(fk: ForeignKey) -> str:
    table = fk.referenced_table if fk.referenced_schema is None else (
        f"{fk.referenced_schema}.{fk.referenced_table}")
    return f"{table}({', '.join(fk.referenced_columns)})"


def _diff_fk(out: List[Difference], name: str, left: ForeignKey, right: ForeignKey) -> None:
    diff_attributes(out, "foreign_key", name, left, right, ("columns",))
    if _fk_target(left) != _fk_target(right):
        out.append(Difference("foreign_key", name, "references", _fk_target(left), _fk_target(right)))
    diff_attributes(out, "foreign_key", name, left, right, ("on_update", "on_delete"))


