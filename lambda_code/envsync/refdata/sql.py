"""Reference-data sync, SQL side: the statements and values built from a table's shape.

- the *row image*: `CONCAT_WS('|', <null bitmap>, ...)` where every string-like value is
  preceded by its byte length, so `('a|b','c')` and `('a','b|c')` give different images and a
  NULL is told from `''` by the bitmap (CONCAT_WS skips NULLs). FLOAT is widened to DOUBLE
  (`+ 0e0`) because the text protocol prints FLOAT with 6 significant digits.
- the *key encoding*: integers as decimal, everything else as HEX of its bytes, so a key
  travels inside a GROUP_CONCAT without any separator ambiguity and decodes exactly.
- values bound exactly (`bind`, `exact_value`) and cursor keys as JSON (`encode_key`).
"""

from __future__ import annotations

import datetime as _dt
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, List, Optional, Sequence, Tuple

from envsync.refdata.schema import Column, RefdataError

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


@dataclass
class TablePlan:
    """The SQL pieces the diff and apply use for one table (built from the source's shape)."""

    name: str
    columns: List[Column]  # compared and copied columns, PK included, in table order
    key: List[Column]
    where: Optional[str]
    # Excluded columns that exist on the target (not generated): the target owns their values,
    # which a changed row's delete + insert carries over (new rows get the column's default).
    kept: List[Column] = field(default_factory=list)

    @property
    def qname(self) -> str:
        return quote_ident(self.name)

    @property
    def column_list(self) -> str:
        return ", ".join(quote_ident(c.name) for c in self.columns)

    @property
    def key_names(self) -> List[str]:
        return [c.name for c in self.key]

    @property
    def kept_list(self) -> str:
        return ", ".join(quote_ident(c.name) for c in self.kept)

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
