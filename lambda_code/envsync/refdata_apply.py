"""Reference-data sync, apply side: turn a delta into SQL and run it on the target.

Statements are multi-row and carry their values as literals escaped by the target
connection itself (PyMySQL's `escape`: `_binary'...'` for bytes, exact `repr` for floats,
exact strings for Decimal), so `plan` shows exactly the SQL `apply` runs and binary data
stays byte-exact.

Order inside one transaction for a group of FK-linked tables: inserts and updates
parents-first, then deletes children-first. Upserting first lets a child move from a parent
that is going away to a new one before that parent is deleted.

Updates are `INSERT ... ON DUPLICATE KEY UPDATE`: the row's primary key already exists, and
InnoDB checks the clustered (primary) index first, so the row updated is the one with that
key. Inserts are plain `INSERT` (a concurrent insert on the target fails loudly rather than
being overwritten), except with a row filter, where the target may hold the key outside the
filtered scope: then they upsert too.
"""

from __future__ import annotations

from typing import Any, Dict, List, Sequence, Tuple

from envsync.refdata_diff import TableDelta
from envsync.refdata_schema import TablePlan, quote_ident

MAX_STATEMENT_BYTES = 512 * 1024
MAX_STATEMENT_ROWS = 1000


def _batches(literals: Sequence[str]) -> List[List[str]]:
    batches: List[List[str]] = []
    current: List[str] = []
    size = 0
    for literal in literals:
        if current and (size + len(literal) > MAX_STATEMENT_BYTES or len(current) >= MAX_STATEMENT_ROWS):
            batches.append(current)
            current, size = [], 0
        current.append(literal)
        size += len(literal) + 1
    if current:
        batches.append(current)
    return batches


def _tuple_literal(conn, values: Sequence[Any]) -> str:
    return "(" + ", ".join(conn.escape(v) for v in values) + ")"


def upsert_statements(conn, plan: TablePlan, delta: TableDelta) -> List[str]:
    """INSERT statements for new rows, then INSERT ... ON DUPLICATE KEY UPDATE for changed rows."""
    statements: List[str] = []
    head = f"INSERT INTO {plan.qname} ({plan.column_list}) VALUES "
    key_names = {c.name for c in plan.key}
    assign = [c for c in plan.columns if c.name not in key_names] or list(plan.key)
    upsert = " ON DUPLICATE KEY UPDATE " + ", ".join(
        f"{quote_ident(c.name)} = VALUES({quote_ident(c.name)})" for c in assign
    )
    insert_tail = upsert if plan.where else ""
    for rows, tail in ((delta.inserts, insert_tail), (delta.updates, upsert)):
        for batch in _batches([_tuple_literal(conn, row) for row in rows]):
            statements.append(head + ",\n".join(batch) + tail)
    return statements


def delete_statements(conn, plan: TablePlan, delta: TableDelta) -> List[str]:
    statements: List[str] = []
    if len(plan.key) == 1:
        literals = [conn.escape(key[0]) for key in delta.deletes]
        target = quote_ident(plan.key[0].name)
    else:
        literals = [_tuple_literal(conn, key) for key in delta.deletes]
        target = f"({plan.key_list})"
    for batch in _batches(literals):
        statements.append(f"DELETE FROM {plan.qname} WHERE {target} IN ({', '.join(batch)})")
    return statements


def group_statements(
    conn, group: Sequence[Tuple[TablePlan, TableDelta]]
) -> Tuple[List[str], Dict[str, List[str]]]:
    """All statements for one FK group in execution order, and the same split per table."""
    ordered: List[str] = []
    per_table: Dict[str, List[str]] = {plan.name: [] for plan, _ in group}
    for plan, delta in group:  # parents first
        statements = upsert_statements(conn, plan, delta)
        ordered.extend(statements)
        per_table[plan.name].extend(statements)
    for plan, delta in reversed(group):  # children first
        statements = delete_statements(conn, plan, delta)
        ordered.extend(statements)
        per_table[plan.name].extend(statements)
    return ordered, per_table


def apply_statements(conn, statements: Sequence[str]) -> None:
    """Run the statements in one transaction on the target; roll back on any error."""
    if not statements:
        return
    conn.begin()
    try:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement)
        conn.commit()
    except BaseException:
        try:
            conn.rollback()
        except Exception:  # noqa: S110 - connection lost: the server rolls back; keep the real error
            pass
        raise
