"""Per-kind readers for what hangs off a table: indexes, CHECK constraints, foreign keys.
Each returns the table's objects by table name, sorted by object name."""

from __future__ import annotations

from typing import Dict, List, Optional, Tuple

from envsync.drift.introspect.model import Check, ForeignKey, Index, IndexPart
from envsync.drift.introspect.normalise import fk_rule, normalise_expression
from envsync.drift.introspect.reading import Reading

_INDEXES_SQL = """
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, COLLATION,
       INDEX_TYPE, INDEX_COMMENT, {ignored}, {expression}
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %s
"""

_CHECKS_SQL_WITH_TABLE = """
SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE, 'YES'
FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s
"""
_CHECKS_SQL_JOINED = """
SELECT tc.TABLE_NAME, cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE, tc.ENFORCED
FROM information_schema.CHECK_CONSTRAINTS cc
JOIN information_schema.TABLE_CONSTRAINTS tc
  ON tc.CONSTRAINT_SCHEMA = cc.CONSTRAINT_SCHEMA AND tc.CONSTRAINT_NAME = cc.CONSTRAINT_NAME
 AND tc.CONSTRAINT_TYPE = 'CHECK'
WHERE cc.CONSTRAINT_SCHEMA = %s
"""

_FK_RULES_SQL = """
SELECT TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE
FROM information_schema.REFERENTIAL_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s
"""

_FK_COLUMNS_SQL = """
SELECT TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION, COLUMN_NAME, REFERENCED_TABLE_SCHEMA,
       REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = %s AND REFERENCED_TABLE_NAME IS NOT NULL
"""


def read_indexes(reading: Reading) -> Dict[str, List[Index]]:
    flavour = reading.flavour
    ignored_column = ("IGNORED = 'YES'" if flavour.ignored_indexes
                      else "IS_VISIBLE = 'NO'" if flavour.invisible_indexes else "0")
    expression_column = "EXPRESSION" if flavour.index_expressions else "NULL"
    parts: Dict[Tuple[str, str], List[Tuple[int, IndexPart]]] = {}
    info: Dict[Tuple[str, str], Tuple[bool, str, str, bool]] = {}
    for (table, name, non_unique, seq, column, sub_part, collation, index_type, comment,
         ignored, expression) in reading.rows(
            _INDEXES_SQL.format(ignored=ignored_column, expression=expression_column)):
        key = (table, name)
        info[key] = (int(non_unique) == 0, str(index_type or "").upper(), comment or "",
                     bool(int(ignored or 0)))
        if column is None and expression is None:
            reading.not_shown("index", f"{table}.{name}", f"key part expressions (not shown by {flavour})")
        parts.setdefault(key, []).append((int(seq), IndexPart(
            column=column,
            sub_part=int(sub_part) if sub_part is not None else None,
            descending=(collation or "").upper() == "D",
            expression=normalise_expression(expression) if expression else None,
        )))
    indexes: Dict[str, List[Index]] = {}
    for (table, name), key_parts in parts.items():
        unique, index_type, comment, ignored = info[(table, name)]
        indexes.setdefault(table, []).append(Index(
            name=name, unique=unique, type=index_type,
            columns=tuple(part for _, part in sorted(key_parts, key=lambda item: item[0])),
            comment=comment, ignored=ignored,
        ))
    return _by_name(indexes)


def read_checks(reading: Reading) -> Dict[str, List[Check]]:
    checks: Dict[str, List[Check]] = {}
    if not reading.flavour.check_constraints:
        return checks
    sql = _CHECKS_SQL_WITH_TABLE if reading.flavour.check_constraints_name_their_table else _CHECKS_SQL_JOINED
    for table, name, clause, enforced in reading.rows(sql):
        # MySQL's NOT ENFORCED (https://dev.mysql.com/doc/refman/8.0/en/create-table-check-constraints.html)
        text = (normalise_expression(clause) or "") + ("" if enforced == "YES" else " NOT ENFORCED")
        checks.setdefault(table, []).append(Check(name=name, clause=text))
    return _by_name(checks)


def read_foreign_keys(reading: Reading) -> Dict[str, List[ForeignKey]]:
    rules = {
        (table, name): (fk_rule(update_rule), fk_rule(delete_rule))
        for table, name, update_rule, delete_rule in reading.rows(_FK_RULES_SQL)
    }
    columns: Dict[Tuple[str, str], List[Tuple[int, str, Optional[str], str, str]]] = {}
    for (table, name, position, column, ref_schema, ref_table, ref_column) in reading.rows(_FK_COLUMNS_SQL):
        columns.setdefault((table, name), []).append((int(position), column, ref_schema, ref_table, ref_column))
    foreign_keys: Dict[str, List[ForeignKey]] = {}
    for (table, name), entries in columns.items():
        entries.sort(key=lambda item: item[0])
        ref_schema = entries[0][2]
        on_update, on_delete = rules.get((table, name), ("RESTRICT", "RESTRICT"))
        foreign_keys.setdefault(table, []).append(ForeignKey(
            name=name,
            columns=tuple(entry[1] for entry in entries),
            referenced_schema=None if ref_schema in (None, reading.schema) else ref_schema,
            referenced_table=entries[0][3],
            referenced_columns=tuple(entry[4] for entry in entries),
            on_update=on_update,
            on_delete=on_delete,
        ))
    return _by_name(foreign_keys)


def _by_name(objects: Dict[str, list]) -> Dict[str, list]:
    return {table: sorted(items, key=lambda item: item.name) for table, items in objects.items()}
