"""Reference-data sync, schema side: what a listed table looks like on each server.

Reads `information_schema` through `envsync.infoschema` (SQL common to MariaDB 10.11, MySQL 5.7
and 8.0), finds the primary key, the columns to compare, the drift between the two sides, the
foreign-key order among the listed tables, and builds the per-row SQL expressions the diff runs on the server:

- the *row image*: `CONCAT_WS('|', <null bitmap>, ...)` where every string-like value is
  preceded by its byte length, so `('a|b','c')` and `('a','b|c')` give different images and a
  NULL is told from `''` by the bitmap (CONCAT_WS skips NULLs). FLOAT is widened to DOUBLE
  (`+ 0e0`) because the text protocol prints FLOAT with 6 significant digits.
- the *key encoding*: integers as decimal, everything else as HEX of its bytes, so a key
  travels inside a GROUP_CONCAT without any separator ambiguity and decodes exactly.
"""

from __future__ import annotations

import datetime as _dt
import re
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Dict, List, Optional, Sequence, Tuple

from envsync import infoschema
from envsync.errors import EnvsyncError

INTEGER_TYPES = {"tinyint", "smallint", "mediumint", "int", "integer", "bigint"}
BINARY_TYPES = {"binary", "varbinary", "tinyblob", "blob", "mediumblob", "longblob", "bit"}
TEXT_TYPES = {"char", "varchar", "tinytext", "text", "mediumtext", "longtext", "enum", "set", "json"}
FLOAT_TYPES = {"float"}
DECIMAL_TYPES = {"decimal", "numeric"}
REAL_TYPES = {"double", "real", "double precision"}
# Types whose text form never holds the separators ('|', and ',' between the images of a chunk):
# written without a length prefix. Everything else is preceded by its byte length.
PLAIN_TEXT_TYPES = (INTEGER_TYPES | FLOAT_TYPES | DECIMAL_TYPES | REAL_TYPES
                    | {"date", "datetime", "timestamp", "time", "year"})
LOB_TYPES = {"tinytext", "text", "mediumtext", "longtext", "json", "tinyblob", "blob", "mediumblob", "longblob"}
LOB_INLINE_BYTES = 4096  # longer LOB values are hashed into the row image, not copied into it


_GENERATED = re.compile(r"\b(VIRTUAL|STORED|PERSISTENT) GENERATED\b")


class RefdataError(EnvsyncError, RuntimeError):
    """A listed table cannot be synchronised as configured (no primary key, bad cursor...)."""


def quote_ident(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


# Placeholder of the engine's own SQL. Not PyMySQL's `%s`: its `sql % args` would also read a
# `%` in a table name or a row filter as a format directive. NUL cannot occur in an identifier,
# and row filters containing it are refused, so the engine binds exactly its own markers.
PARAM = "\x00"


def bind(conn, sql: str, args: Sequence[Any] = ()) -> str:
    """`sql` with each PARAM replaced by the target connection's literal of the matching arg."""
    pieces = sql.split(PARAM)
    if len(pieces) != len(args) + 1:
        raise RefdataError(f"internal: {len(pieces) - 1} placeholders for {len(args)} values")
    out = [pieces[0]]
    for value, piece in zip(args, pieces[1:]):
        out.append(conn.escape(exact_value(value)))
        out.append(piece)
    return "".join(out)


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


@dataclass
class TablePlan:
    """The SQL pieces the diff and apply use for one table (built from the source's shape)."""

    name: str
    columns: List[Column]  # compared and copied columns, PK included, in table order
    key: List[Column]
    where: Optional[str]

    @property
    def qname(self) -> str:
        return quote_ident(self.name)

    @property
    def column_list(self) -> str:
        return ", ".join(quote_ident(c.name) for c in self.columns)

    @property
    def select_list(self) -> str:
        """Columns as fetched for copying: FLOAT widened so no precision is lost."""
        return ", ".join(value_expr(c) for c in self.columns)

    @property
    def key_list(self) -> str:
        return ", ".join(quote_ident(c.name) for c in self.key)

    def row_image(self) -> str:
        parts: List[str] = []
        nullable = [c for c in self.columns if c.nullable]
        if nullable:
            parts.append("CONCAT(" + ", ".join(f"ISNULL({quote_ident(c.name)})" for c in nullable) + ")")
        for column in self.columns:
            ident = quote_ident(column.name)
            if column.data_type in LOB_TYPES:
                # Long values enter the image as their MD5 (the length before it says which form
                # follows), so an image never exceeds max_allowed_packet, where CONCAT gives NULL.
                parts.append(f"LENGTH({ident})")
                parts.append(f"IF(LENGTH({ident}) > {LOB_INLINE_BYTES}, MD5({ident}), {ident})")
            elif column.data_type not in PLAIN_TEXT_TYPES:  # text, binary, spatial...: length first
                parts.append(f"LENGTH({ident})")
                parts.append(ident)
            else:
                parts.append(value_expr(column))
        return "CONCAT_WS('|', " + ", ".join(parts) + ")"

    def key_encoding(self) -> str:
        parts = [key_expr(c) for c in self.key]
        return parts[0] if len(parts) == 1 else "CONCAT_WS('.', " + ", ".join(parts) + ")"

    def decode_key(self, encoded: str) -> Tuple[Any, ...]:
        pieces = encoded.split(".") if len(self.key) > 1 else [encoded]
        return tuple(decode_key_part(c, p) for c, p in zip(self.key, pieces))

    def after(self, key: Optional[Sequence[Any]]) -> Tuple[str, List[Any]]:
        """SQL condition `key > given` (expanded, so every engine uses the PK range)."""
        if key is None:
            return "", []
        return _tuple_compare(self.key, key, ">")

    def upto(self, key: Optional[Sequence[Any]]) -> Tuple[str, List[Any]]:
        if key is None:
            return "", []
        return _tuple_compare(self.key, key, "<=")

    def key_in(self, keys: Sequence[Tuple[Any, ...]]) -> Tuple[str, List[Any]]:
        if len(self.key) == 1:
            marks = ", ".join([PARAM] * len(keys))
            return f"{quote_ident(self.key[0].name)} IN ({marks})", [k[0] for k in keys]
        row = "(" + ", ".join([PARAM] * len(self.key)) + ")"
        args: List[Any] = []
        for key in keys:
            args.extend(key)
        return f"({self.key_list}) IN ({', '.join([row] * len(keys))})", args

    def range_where(self, lower: Optional[Sequence[Any]], upper: Optional[Sequence[Any]]) -> Tuple[str, List[Any]]:
        conditions, args = [], []
        for sql, values in (self.after(lower), self.upto(upper)):
            if sql:
                conditions.append(sql)
                args.extend(values)
        if self.where:
            conditions.append(f"({self.where})")
        return (" WHERE " + " AND ".join(conditions)) if conditions else "", args


def _tuple_compare(key: Sequence[Column], values: Sequence[Any], op: str) -> Tuple[str, List[Any]]:
    """(a, b) > (x, y) written as a > x OR (a = x AND b > y), which every optimizer ranges."""
    strict = op.rstrip("=")
    disjuncts, args = [], []
    for i in range(len(key)):
        terms = [f"{quote_ident(c.name)} = {PARAM}" for c in key[:i]]
        last_op = op if i == len(key) - 1 else strict
        terms.append(f"{quote_ident(key[i].name)} {last_op} {PARAM}")
        disjuncts.append("(" + " AND ".join(terms) + ")")
        args.extend(values[: i + 1])
    return "(" + " OR ".join(disjuncts) + ")", args


def value_expr(column: Column) -> str:
    ident = quote_ident(column.name)
    return f"({ident} + 0e0)" if column.data_type in FLOAT_TYPES else ident


def key_value_expr(column: Column) -> str:
    """A key column as fetched for a chunk boundary: BIT as its number (compares exactly)."""
    return f"({quote_ident(column.name)} + 0)" if column.data_type == "bit" else value_expr(column)


def key_expr(column: Column) -> str:
    ident = quote_ident(column.name)
    if column.data_type in INTEGER_TYPES:
        return ident
    if column.data_type == "bit":  # HEX(b'101') is '5': odd length; its number travels exactly
        return f"({ident} + 0)"
    if column.data_type in BINARY_TYPES:
        return f"HEX({ident})"
    return f"HEX(CONVERT({value_expr(column)} USING utf8mb4))"


def decode_key_part(column: Column, text: str) -> Any:
    if column.data_type in INTEGER_TYPES or column.data_type == "bit":
        return int(text)
    raw = bytes.fromhex(text)
    if column.data_type in BINARY_TYPES:
        return raw
    value = raw.decode("utf-8")
    if column.data_type in DECIMAL_TYPES:
        return Decimal(value)
    if column.data_type in FLOAT_TYPES or column.data_type in REAL_TYPES:
        return float(value)
    return value  # text and temporal values bind as strings


def exact_value(value: Any) -> Any:
    """A value as it must be bound to SQL: TIME values as exact text.

    PyMySQL returns TIME as timedelta and writes timedelta(minutes=-30) back as '-1:30:00';
    '-00:30:00.000000' is what the server means by it (and ranges past 24 h are kept).
    """
    if isinstance(value, _dt.timedelta):
        micros = value // _dt.timedelta(microseconds=1)
        sign = "-" if micros < 0 else ""
        seconds, fraction = divmod(abs(micros), 1_000_000)
        hours, rest = divmod(seconds, 3600)
        return f"{sign}{hours:02d}:{rest // 60:02d}:{rest % 60:02d}.{fraction:06d}"
    return value


# Cursor keys must be JSON: tag every value with its type.
def encode_key(key: Optional[Sequence[Any]]) -> Optional[List[List[str]]]:
    if key is None:
        return None
    encoded = []
    for value in key:
        if isinstance(value, bool) or value is None:
            raise RefdataError(f"cannot encode key value of type {type(value).__name__} in a cursor")
        if isinstance(value, int):
            encoded.append(["i", str(value)])
        elif isinstance(value, (bytes, bytearray)):
            encoded.append(["b", bytes(value).hex()])
        elif isinstance(value, Decimal):
            encoded.append(["d", str(value)])
        elif isinstance(value, float):
            encoded.append(["f", repr(value)])
        elif isinstance(value, (_dt.datetime, _dt.date, _dt.timedelta)):
            encoded.append(["s", str(value)])
        else:
            encoded.append(["s", str(value)])
    return encoded


def decode_key(encoded: Optional[Sequence[Sequence[str]]]) -> Optional[Tuple[Any, ...]]:
    if encoded is None:
        return None
    decoders = {"i": int, "b": bytes.fromhex, "d": Decimal, "f": float, "s": str}
    try:
        return tuple(decoders[tag](text) for tag, text in encoded)
    except (KeyError, ValueError, TypeError) as exc:
        raise RefdataError(f"cursor key {encoded!r} is not one this engine wrote: {exc}") from exc
