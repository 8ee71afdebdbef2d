"""The one layer that reads `information_schema`, shared by drift (`introspect`), reference data
(`refdata_schema`) and the lint (`lint.read_live_schema`).

`rows()` runs a query and hands back plain tuples whatever the connection's cursor class, with
the bytes some MySQL 8 columns arrive as decoded. `columns()` is the one reader of
`information_schema.COLUMNS`: each caller builds its own model from the same `ColumnRow`s.
Tables are named either by schema (`schema=`) or, when it is None, by the connection's current
database (`DATABASE()`), optionally restricted to a list of table names.
"""

from __future__ import annotations

from typing import Any, List, NamedTuple, Optional, Sequence, Tuple


def _text(value: Any) -> Any:
    # Some MySQL 8 information_schema columns arrive as bytes through PyMySQL.
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    return value


def rows(conn: Any, sql: str, args: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
    """Run a query; rows as tuples in select order whatever cursor class the connection uses."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql, tuple(args))
        fetched = cursor.fetchall()
        names = [d[0] for d in cursor.description or ()]
    finally:
        cursor.close()
    if fetched and isinstance(fetched[0], dict):
        fetched = [tuple(row[name] for name in names) for row in fetched]
    # Decode only when some value came back as bytes (checking is far cheaper than converting).
    if {type(value) for row in fetched for value in row} & {bytes, bytearray}:
        fetched = [tuple(_text(value) for value in row) for row in fetched]
    return list(fetched)


def where_tables(schema: Optional[str], tables: Optional[Sequence[str]] = None, *,
                 schema_column: str = "TABLE_SCHEMA", table_column: str = "TABLE_NAME") -> Tuple[str, List[Any]]:
    """`WHERE` conditions (without the keyword) and their arguments for a schema and tables."""
    if schema is None:
        condition, args = f"{schema_column} = DATABASE()", []
    else:
        condition, args = f"{schema_column} = %s", [schema]
    if tables is not None:
        condition += f" AND {table_column} IN ({','.join(['%s'] * len(tables))})"
        args += list(tables)
    return condition, args


class ColumnRow(NamedTuple):
    """One row of information_schema.COLUMNS, as the server reports it (not normalised)."""

    table: str
    name: str
    position: int
    column_type: str
    data_type: str
    nullable: str  # 'YES' / 'NO'
    default: Optional[str]
    extra: Optional[str]
    charset: Optional[str]
    collation: Optional[str]
    generation: Optional[str]
    comment: Optional[str]


_COLUMNS_SQL = """
SELECT c.TABLE_NAME, c.COLUMN_NAME, c.ORDINAL_POSITION, c.COLUMN_TYPE, c.DATA_TYPE, c.IS_NULLABLE,
       c.COLUMN_DEFAULT, c.EXTRA, c.CHARACTER_SET_NAME, c.COLLATION_NAME, c.GENERATION_EXPRESSION,
       c.COLUMN_COMMENT
FROM information_schema.COLUMNS c{join}
WHERE {where}
ORDER BY c.TABLE_NAME, c.ORDINAL_POSITION
"""

_BASE_TABLES_JOIN = """
JOIN information_schema.TABLES t
  ON t.TABLE_SCHEMA = c.TABLE_SCHEMA AND t.TABLE_NAME = c.TABLE_NAME AND t.TABLE_TYPE = 'BASE TABLE'"""


def columns(conn: Any, schema: Optional[str] = None, tables: Optional[Sequence[str]] = None, *,
            base_tables_only: bool = False) -> List[ColumnRow]:
    """The columns of `schema` (None: the current database), by table then ordinal position;
    of the named `tables` only when given, of base tables only when asked (no views)."""
    if tables is not None and not tables:
        return []
    where, args = where_tables(schema, tables, schema_column="c.TABLE_SCHEMA", table_column="c.TABLE_NAME")
    sql = _COLUMNS_SQL.format(join=_BASE_TABLES_JOIN if base_tables_only else "", where=where)
    return [ColumnRow(*row) for row in rows(conn, sql, args)]
