"""Reference-data sync, schema side: what a listed table looks like on each server.

Reads `information_schema` through `envsync.mysql.infoschema` (SQL common to MariaDB 10.11, MySQL 5.7
and 8.0), finds the primary key, the columns to compare, the drift between the two sides and
the foreign-key order among the listed tables. The SQL built from a table's shape is in
`refdata_sql`.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence, Tuple

from envsync.errors import EnvsyncError
from envsync.mysql import infoschema

_GENERATED = re.compile(r"\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b")


class RefdataError(EnvsyncError, RuntimeError):
    """A listed table cannot be synchronised as configured (no primary key, bad cursor...)."""



@dataclass(frozen=True)
class Column:
    name: str
    data_type: str  # lower-case DATA_TYPE
    column_type: str  # full COLUMN_TYPE, e.g. "decimal(18,4) unsigned"
    nullable: bool
    charset: Optional[str]
    collation: Optional[str]
    generated: bool = False  # VIRTUAL/STORED GENERATED: computed by the server, never written
    has_default: bool = True

    @property
    def signature(self) -> Tuple[str, Optional[str], Optional[str], bool]:
        return (self.column_type.lower(), self.charset, self.collation, self.nullable)


@dataclass
class TableShape:
    """One table as seen on one server (None fields when the table is missing)."""

    name: str
    columns: Dict[str, Column] = field(default_factory=dict)  # in ordinal order
    primary_key: List[str] = field(default_factory=list)

    @property
    def exists(self) -> bool:
        return bool(self.columns)


def read_shapes(conn, names: Sequence[str]) -> Dict[str, TableShape]:
    """Columns and primary keys of the named tables in the connection's current schema."""
    shapes = {name: TableShape(name) for name in names}
    if not names:
        return shapes
    for row in infoschema.columns(conn, tables=names):
        extra = str(row.extra or "").upper()
        # MySQL 8 says DEFAULT_GENERATED for expression defaults: those are ordinary columns.
        generated = bool(_GENERATED.search(extra))
        nullable = row.nullable == "YES"
        shapes[row.table].columns[row.name] = Column(
            name=row.name, data_type=str(row.data_type).lower(), column_type=str(row.column_type),
            nullable=nullable, charset=row.charset, collation=row.collation, generated=generated,
            has_default=row.default is not None or nullable or generated or "AUTO_INCREMENT" in extra,
        )
    where, args = infoschema.where_tables(None, names)
    for table, column in infoschema.rows(
            conn, "SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.KEY_COLUMN_USAGE "
                  f"WHERE {where} AND CONSTRAINT_NAME = 'PRIMARY' ORDER BY TABLE_NAME, ORDINAL_POSITION", args):
        shapes[table].primary_key.append(column)
    return shapes


def read_foreign_keys(conn, names: Sequence[str]) -> List[Tuple[str, str]]:
    """(child, parent) pairs among the named tables, from the target's information_schema."""
    if not names:
        return []
    where, args = infoschema.where_tables(None, names)
    rows = infoschema.rows(
        conn, "SELECT DISTINCT TABLE_NAME, REFERENCED_TABLE_NAME FROM information_schema.KEY_COLUMN_USAGE "
              f"WHERE {where} AND REFERENCED_TABLE_SCHEMA = DATABASE() AND REFERENCED_TABLE_NAME IS NOT NULL", args)
    return [(child, parent) for child, parent in rows if parent in names]


@dataclass(frozen=True)
class ForeignKey:
    """One FK constraint on the target that touches a listed table (as child or as parent)."""

    name: str
    child: str
    child_columns: Tuple[str, ...]
    parent: str
    parent_columns: Tuple[str, ...]
    delete_rule: str
    update_rule: str

    def describe(self) -> str:
        return (f"{self.child}({', '.join(self.child_columns)}) -> {self.parent}({', '.join(self.parent_columns)}) "
                f"[constraint {self.name}, ON DELETE {self.delete_rule}, ON UPDATE {self.update_rule}]")


def read_references(conn, names: Sequence[str]) -> List[ForeignKey]:
    """Every FK of the target's schema whose child or parent is one of the named tables."""
    if not names:
        return []
    marks = ",".join(["%s"] * len(names))
    rows = infoschema.rows(
        conn,
        "SELECT k.CONSTRAINT_NAME, k.TABLE_NAME, k.COLUMN_NAME, k.REFERENCED_TABLE_NAME, "
        "k.REFERENCED_COLUMN_NAME, r.DELETE_RULE, r.UPDATE_RULE "
        "FROM information_schema.KEY_COLUMN_USAGE k JOIN information_schema.REFERENTIAL_CONSTRAINTS r "
        "ON r.CONSTRAINT_SCHEMA = k.CONSTRAINT_SCHEMA AND r.CONSTRAINT_NAME = k.CONSTRAINT_NAME "
        "AND r.TABLE_NAME = k.TABLE_NAME "
        "WHERE k.TABLE_SCHEMA = DATABASE() AND k.REFERENCED_TABLE_SCHEMA = DATABASE() "
        f"AND (k.TABLE_NAME IN ({marks}) OR k.REFERENCED_TABLE_NAME IN ({marks})) "
        "ORDER BY k.TABLE_NAME, k.CONSTRAINT_NAME, k.ORDINAL_POSITION",
        list(names) + list(names),
    )
    parts: Dict[Tuple[str, str], List[Tuple[Any, ...]]] = {}
    for row in rows:
        parts.setdefault((row[1], row[0]), []).append(row)
    return [
        ForeignKey(name=name, child=child, child_columns=tuple(r[2] for r in columns), parent=columns[0][3],
                   parent_columns=tuple(r[4] for r in columns), delete_rule=columns[0][5],
                   update_rule=columns[0][6])
        for (child, name), columns in parts.items()
    ]


def fk_groups(names: Sequence[str], edges: Sequence[Tuple[str, str]]) -> List[List[str]]:
    """Listed tables grouped by FK connectivity, each group parents-first, groups in config order.

    Tables linked by foreign keys are applied in one transaction (children's deletes after
    the parents' inserts), so both orders hold without a half-applied table in between.
    A self-reference is ignored for ordering; a cycle keeps config order for its members.
    """
    parent_of: Dict[str, set] = {name: set() for name in names}
    linked: Dict[str, set] = {name: set() for name in names}
    for child, parent in edges:
        if child != parent:
            parent_of[child].add(parent)
            linked[child].add(parent)
            linked[parent].add(child)
    seen: set = set()
    groups: List[List[str]] = []
    for name in names:
        if name in seen:
            continue
        component, stack = [], [name]
        while stack:
            current = stack.pop()
            if current in seen:
                continue
            seen.add(current)
            component.append(current)
            stack.extend(sorted(linked[current] - seen))
        members = [n for n in names if n in component]  # config order
        ordered: List[str] = []
        remaining = list(members)
        while remaining:
            ready = [n for n in remaining if not (parent_of[n] & set(remaining)) - {n}]
            pick = ready[0] if ready else remaining[0]  # cycle: fall back to config order
            ordered.append(pick)
            remaining.remove(pick)
        groups.append(ordered)
    return groups


def compare_shapes(source: TableShape, target: TableShape, exclude: Sequence[str]) -> List[Dict[str, Any]]:
    """Drift entries between the two sides for the compared (non-excluded) columns."""
    drift: List[Dict[str, Any]] = []
    for side, shape in (("source", source), ("target", target)):
        if not shape.exists:
            drift.append({"kind": "missing_table", "missing_on": side})
    if drift:
        return drift
    excluded = set(exclude)
    for name in source.columns:
        if name not in excluded and name not in target.columns:
            drift.append({"kind": "missing_column", "column": name, "missing_on": "target"})
    for name in target.columns:
        if name not in excluded and name not in source.columns:
            drift.append({"kind": "missing_column", "column": name, "missing_on": "source"})
    for name, column in source.columns.items():
        other = target.columns.get(name)
        if name in excluded or other is None:
            continue
        if column.signature != other.signature:
            drift.append({
                "kind": "column_type", "column": name,
                "source": _describe(column), "target": _describe(other),
            })
    if source.primary_key != target.primary_key:
        drift.append({"kind": "primary_key", "source": source.primary_key, "target": target.primary_key})
    return drift


def _describe(column: Column) -> str:
    text = column.column_type + ("" if column.nullable else " NOT NULL")
    return text + (f" {column.charset}/{column.collation}" if column.charset else "")

