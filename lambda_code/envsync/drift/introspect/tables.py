"""Per-kind reader for tables: their columns, options, partitioning and sequence options, with
the indexes, checks and foreign keys ``keys`` reads attached."""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from envsync.drift.introspect import keys
from envsync.drift.introspect.model import Column, Table
from envsync.drift.introspect.normalise import (
    charset_of_collation,
    normalise_charset,
    normalise_collation,
    normalise_column_type,
    normalise_create_options,
    normalise_default,
    normalise_expression,
    normalise_extra,
)
from envsync.drift.introspect.reading import Reading
from envsync.mysql import infoschema

_TABLES_SQL = """
SELECT TABLE_NAME, ENGINE, TABLE_COLLATION, TABLE_TYPE, TABLE_COMMENT, CREATE_OPTIONS
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = %s AND TABLE_TYPE NOT IN ('VIEW', 'TEMPORARY')
"""

_PARTITIONS_SQL = """
SELECT TABLE_NAME, PARTITION_NAME, SUBPARTITION_NAME, PARTITION_METHOD, SUBPARTITION_METHOD,
       PARTITION_EXPRESSION, SUBPARTITION_EXPRESSION, PARTITION_DESCRIPTION, PARTITION_COMMENT
FROM information_schema.PARTITIONS
WHERE TABLE_SCHEMA = %s AND PARTITION_NAME IS NOT NULL
ORDER BY TABLE_NAME, PARTITION_ORDINAL_POSITION, SUBPARTITION_ORDINAL_POSITION
"""


def read_tables(reading: Reading) -> Tuple[Table, ...]:
    table_rows = sorted(reading.rows(_TABLES_SQL), key=lambda row: row[0])
    columns = _read_columns(reading, {row[0] for row in table_rows})
    indexes = keys.read_indexes(reading)
    checks = keys.read_checks(reading)
    foreign_keys = keys.read_foreign_keys(reading)
    partitioning = _partitioning(reading.rows(_PARTITIONS_SQL))
    return tuple(
        Table(
            name=name,
            engine=engine,
            charset=normalise_charset(charset_of_collation(collation)),
            collation=normalise_collation(collation),
            columns=tuple(columns.get(name, [])),
            indexes=tuple(indexes.get(name, [])),
            foreign_keys=tuple(foreign_keys.get(name, [])),
            comment=comment or "",
            options=normalise_create_options(create_options),
            table_type=str(table_type).upper(),
            partitioning=partitioning.get(name),
            checks=tuple(checks.get(name, [])),
            # information_schema has no sequence options before MariaDB 11.5: one query per
            # sequence (they are few), reading the options and not the sequence's current value.
            sequence=_sequence_options(reading, name) if str(table_type).upper() == "SEQUENCE" else None,
        )
        for name, engine, collation, table_type, comment, create_options in table_rows
    )


def _read_columns(reading: Reading, table_names: set) -> Dict[str, List[Column]]:
    """Columns of the schema's tables (not of its views), in ordinal order."""
    columns: Dict[str, List[Column]] = {}
    for row in infoschema.columns(reading.conn, reading.schema):
        if row.table not in table_names:
            continue  # a view's columns
        columns.setdefault(row.table, []).append(Column(
            name=row.name,
            type=normalise_column_type(row.column_type),
            nullable=str(row.nullable).upper() == "YES",
            default=normalise_default(row.default, row.extra, row.data_type, reading.flavour),
            extra=normalise_extra(row.extra),
            charset=normalise_charset(row.charset),
            collation=normalise_collation(row.collation),
            generation=normalise_expression(row.generation) if row.generation else None,
            comment=row.comment or "",
        ))
    return columns


def _sequence_options(reading: Reading, name: str) -> str:
    quoted = "`" + name.replace("`", "``") + "`"
    start, minimum, maximum, increment, cache, cycle = reading.rows(
        f"SELECT start_value, minimum_value, maximum_value, increment, cache_size, cycle_option "
        f"FROM {quoted}", ())[0]
    return (f"START {start} INCREMENT {increment} MINVALUE {minimum} MAXVALUE {maximum} "
            f"CACHE {cache} {'CYCLE' if int(cycle) else 'NOCYCLE'}")


def _partitioning(rows: Sequence[Tuple[Any, ...]]) -> Dict[str, str]:
    """One text per partitioned table: method (expression), then each partition and its bound."""
    methods: Dict[str, str] = {}
    partitions: Dict[str, List[str]] = {}
    for (table, name, subname, method, submethod, expression, subexpression, description,
         comment) in rows:
        if table not in methods:
            text = f"{method} ({normalise_expression(expression) or ''})"
            if submethod:
                text += f" SUBPARTITION BY {submethod} ({normalise_expression(subexpression) or ''})"
            methods[table] = text
        part = name + (f"/{subname}" if subname else "")
        if description is not None:
            part += f" {description}"
        if comment:
            part += f" COMMENT {comment!r}"
        partitions.setdefault(table, []).append(part)
    return {table: f"{methods[table]}: {', '.join(partitions[table])}" for table in methods}
