"""Reference-data sync, apply side: turn a delta into SQL and run it on the target.

Statements are multi-row bytes and carry their values as literals: the target connection's
`escape` for text and numbers (exact `repr` for floats, exact Decimal), TIME as exact text, and
bytes as `_binary'...'` with backslash escapes (`sql_literal`); `plan` shows the first of the
same statements `apply` runs.

One transaction per group of FK-linked tables, in two steps:

1. DELETE the rows that go and the rows that change (by exact key), in every table of the group;
2. INSERT the new rows and the changed rows (plain INSERT: never an upsert).

A row whose INSERT would not fit the target's max_allowed_packet is inserted with its longest
values empty and those appended in pieces (`_pieces`); only a value longer than the packet
itself is refused (the server's CONCAT gives NULL past it).

Excluded columns are the target's: before step 1 the target's values of those columns are read
(`read_kept`, locked FOR UPDATE) for the rows that change, and their INSERT carries them over;
a new row gets the column's default. A row whose key changed is a new row.

After step 1 a table holds only rows the source holds too, and step 2 adds source rows, so
every intermediate state is a subset of the source's rows: no unique key can be violated on
the way (swapped unique values, a key change keeping a unique value, 'usd' -> 'USD' under a
_ci collation, a self-referencing FK, an FK cycle between listed tables). With a row filter a
new row whose key or unique value is held by a target row outside the filter fails with 1062
instead of rewriting that row.

Foreign key checks are off inside the transaction (so the row order does not matter), which
also means the server neither verifies nor cascades anything. Before committing, the engine
checks what the server would have (`check_references`): every written row that references a
parent finds it, and every row of any table - listed or not - that referenced a value the group
removed still finds a parent. A miss rolls the transaction back and refuses the group naming the
constraint, so a listed parent's delete never cascades into (or orphans) an unlisted table.
Delete and insert triggers fire instead of update triggers (reference tables have none); a
changed row's insert already holds the kept values of the excluded columns.
"""

from __future__ import annotations

from itertools import groupby
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from envsync.refdata.diff import TableDelta, key_text
from envsync.refdata.digest import CHANGED, NEW, DeltaDigest, DeltaNotApproved, unapproved_tables, watched
from envsync.refdata.schema import Column, ForeignKey, RefdataError
from envsync.refdata.sql import PARAM, TablePlan, bind, exact_value, quote_ident

MAX_STATEMENT_BYTES = 512 * 1024
MAX_STATEMENT_ROWS = 1000
CHECK_BATCH = 500
# Backslash escapes for bytes, applied in this order (the backslash first), each one C-speed
# pass: PyMySQL writes bytes as X'..' hex, twice their size, which pushes a 9 MB value past a
# 16 MB max_allowed_packet. Statements are bytes, so binary values are sent as they are.
_BYTE_ESCAPES = ((b"\\", b"\\\\"), (b"\x00", b"\\0"), (b"\n", b"\\n"), (b"\r", b"\\r"), (b"\x1a", b"\\Z"),
                 (b"'", b"\\'"), (b'"', b'\\"'))


def _batches(literals: Iterator[bytes], max_bytes: int = MAX_STATEMENT_BYTES) -> Iterator[List[bytes]]:
    """Group literals into statement-sized lists, lazily: a delta is never built all at once."""
    current: List[bytes] = []
    size = 0
    for literal in literals:
        if current and (size + len(literal) > max_bytes or len(current) >= MAX_STATEMENT_ROWS):
            yield current
            current, size = [], 0
        current.append(literal)
        size += len(literal) + 2
    if current:
        yield current


class _Raw:
    """SQL text in a value's place: DEFAULT, or a plan's placeholder for a value it does not read."""

    def __init__(self, text: str) -> None:
        self.text = text


def sql_literal(conn, value: Any) -> bytes:
    """The SQL literal of one value, as bytes in the connection's encoding."""
    if isinstance(value, (bytes, bytearray)):
        escaped = bytes(value)
        for raw, replacement in _BYTE_ESCAPES:
            escaped = escaped.replace(raw, replacement)
        return b"_binary'" + escaped + b"'"
    if isinstance(value, _Raw):
        return value.text.encode(conn.encoding)
    return conn.escape(exact_value(value)).encode(conn.encoding)


def _tuple_literal(conn, values: Sequence[Any]) -> bytes:
    return b"(" + b", ".join(sql_literal(conn, v) for v in values) + b")"


def max_packet(conn) -> int:
    """The connection's max_allowed_packet: no statement and no value may be longer."""
    with conn.cursor() as cur:
        cur.execute("SELECT @@SESSION.max_allowed_packet")
        return int(cur.fetchone()[0])


# Kept values: encoded key -> the target's values of the kept (excluded) columns, read before
# the delete; None in a plan, whose statements show a placeholder instead (excluded columns
# can be secrets and are never read into a plan).
Kept = Optional[Dict[str, Tuple[Any, ...]]]


def read_kept(conn, plan: TablePlan, delta: TableDelta) -> Dict[str, Tuple[Any, ...]]:
    """The target's values of the kept columns of the rows that change, locked until commit."""
    kept: Dict[str, Tuple[Any, ...]] = {}
    if not plan.kept:
        return kept
    keys = list(delta.update_keys)
    for start in range(0, len(keys), CHECK_BATCH):
        condition, args = plan.key_in(keys[start:start + CHECK_BATCH])
        with conn.cursor() as cur:
            cur.execute(bind(conn, f"SELECT {plan.key_encoding()}, {plan.kept_list} FROM {plan.qname} "
                        f"WHERE {condition} FOR UPDATE", args))
            for row in cur.fetchall():
                kept[key_text(row[0])] = tuple(row[1:])
    return kept


def _kept_values(plan: TablePlan, kept: Kept, encoded: str) -> Tuple[Any, ...]:
    if kept is None:
        return tuple(_Raw(f"<target's {c.name}>") for c in plan.kept)
    values = kept.get(encoded)
    if values is None:  # the target row went away since the diff: the insert makes it new
        return tuple(_Raw("DEFAULT") for _ in plan.kept)
    return values


# Bytes of a statement kept free around its values (packet header, slack).
PIECE_SLACK = 512


def _pieces(conn, plan: TablePlan, columns: Sequence[Column], row: Tuple[Any, ...], packet: int) -> Iterator[bytes]:
    """One row whose INSERT does not fit the target's max_allowed_packet: its longest text and
    binary values are inserted empty, then appended in pieces that fit (`CONCAT`). A value
    longer than the packet is refused: the server's CONCAT gives NULL past it."""
    names = [c.name for c in columns]
    key = tuple(row[names.index(c.name)] for c in plan.key)
    where = b" WHERE " + b" AND ".join(quote_ident(c.name).encode(conn.encoding) + b" = " + sql_literal(conn, v)
                                       for c, v in zip(plan.key, key))
    head = f"INSERT INTO {plan.qname} ({', '.join(quote_ident(n) for n in names)}) VALUES (".encode(conn.encoding)
    literals = [sql_literal(conn, v) for v in row]
    size = len(head) + sum(len(literal) + 2 for literal in literals) + 1
    cut: List[int] = []
    for i in sorted(range(len(row)), key=lambda i: -len(literals[i])):
        if size + PIECE_SLACK < packet:
            break
        if not isinstance(row[i], (bytes, bytearray, str)) or names[i] in plan.key_names:
            continue  # numbers, kept placeholders and keys are written whole
        empty = sql_literal(conn, row[i][:0])
        size -= len(literals[i]) - len(empty)
        literals[i] = empty
        cut.append(i)
    if size + PIECE_SLACK >= packet:
        raise RefdataError(
            f"table {plan.name!r}: refused: the row with key {key!r} takes {size} bytes to INSERT even with its "
            f"long values left out, more than the target's max_allowed_packet ({packet}); raise it on the target")
    for i in cut:
        length = len(row[i]) if isinstance(row[i], (bytes, bytearray)) else len(row[i].encode("utf-8"))
        if length > packet:
            raise RefdataError(
                f"table {plan.name!r}: refused: column {names[i]!r} of the row with key {key!r} holds {length} "
                f"bytes, more than the target's max_allowed_packet ({packet}), the longest value the server "
                f"builds (CONCAT gives NULL past it); raise max_allowed_packet on the target to at least {length}")
    yield head + b", ".join(literals) + b")"
    for i in cut:
        column = quote_ident(names[i])
        update = f"UPDATE {plan.qname} SET {column} = CONCAT({column}, ".encode(conn.encoding)
        room = packet - PIECE_SLACK - len(update) - len(where) - 16
        # escaping at most doubles a byte; a character takes at most 4 bytes in utf8mb4
        step = max(1, room // 2 if isinstance(row[i], (bytes, bytearray)) else room // 4)
        for start in range(0, len(row[i]), step):
            yield update + sql_literal(conn, row[i][start:start + step]) + b")" + where


def _row_statements(conn, plan: TablePlan, columns: Sequence[Column], rows: Iterator[Tuple[Any, ...]],
                    packet: int) -> Iterator[bytes]:
    """Multi-row INSERTs of `rows`; a row whose INSERT would not fit the packet is written in pieces."""
    head = f"INSERT INTO {plan.qname} ({', '.join(quote_ident(c.name) for c in columns)}) VALUES ".encode(
        conn.encoding)
    max_bytes = min(MAX_STATEMENT_BYTES, packet - PIECE_SLACK - len(head)) if packet else MAX_STATEMENT_BYTES
    items = ((_tuple_literal(conn, row), row) for row in rows)
    for fits, group in groupby(items, key=lambda item: not packet or len(head) + len(item[0]) + PIECE_SLACK < packet):
        if fits:
            for batch in _batches((literal for literal, _ in group), max_bytes):
                yield head + b",\n".join(batch)
        else:
            for _, row in group:
                yield from _pieces(conn, plan, columns, row, packet)


def insert_statements(conn, plan: TablePlan, delta: TableDelta, kept: Kept = None, packet: int = 0,
                      digest: Optional[DeltaDigest] = None) -> Iterator[bytes]:
    """Plain INSERTs of the new and the changed source rows (generated columns are not listed).

    With kept (excluded) columns, new rows leave them to the column's default and changed rows
    carry the target's values over (`kept`, read before the delete). `packet`: the target's
    max_allowed_packet (0: unknown), which a row's INSERT must fit or be written in pieces.
    `digest` records every row on its way into a statement.
    """
    keyed, source_rows = delta.keyed_source_rows, delta.source_rows
    kept_apart = bool(plan.kept) and keyed is not None  # changed rows carry the kept values over
    if source_rows is None:
        return
    if digest is None and not kept_apart:  # one stream of new and changed rows: the fewest statements
        yield from _row_statements(conn, plan, plan.columns, delta.written_rows(), packet)
        return
    if delta.insert_keys:
        yield from _row_statements(conn, plan, plan.columns, watched(digest, source_rows(delta.insert_keys), NEW),
                                   packet)
    if not delta.update_keys:
        return
    if not kept_apart:
        yield from _row_statements(conn, plan, plan.columns,
                                   watched(digest, source_rows(delta.update_keys), CHANGED), packet)
        return
    pairs = keyed(delta.update_keys)
    if digest is not None:
        pairs = digest.watch_keyed(pairs)
    changed = (row + _kept_values(plan, kept, encoded) for encoded, row in pairs)
    yield from _row_statements(conn, plan, list(plan.columns) + list(plan.kept), changed, packet)


def delete_statements(conn, plan: TablePlan, delta: TableDelta) -> Iterator[bytes]:
    """DELETEs by exact key of the rows that go and of the rows that change."""
    keys = (key for part in (delta.deletes, delta.update_keys) for key in part)
    if len(plan.key) == 1:
        literals = (sql_literal(conn, key[0]) for key in keys)
        target = quote_ident(plan.key[0].name)
    else:
        literals = (_tuple_literal(conn, key) for key in keys)
        target = f"({plan.key_list})"
    head = f"DELETE FROM {plan.qname} WHERE {target} IN (".encode(conn.encoding)
    for batch in _batches(literals):
        yield head + b", ".join(batch) + b")"


def group_statements(conn, group: Sequence[Tuple[TablePlan, TableDelta]],
                     kept: Optional[Dict[str, Dict[str, Tuple[Any, ...]]]] = None, packet: int = 0,
                     digests: Optional[Dict[str, DeltaDigest]] = None) -> Iterator[Tuple[str, bytes]]:
    """(table, statement) for one FK group in execution order: all deletes, then all inserts.
    `kept`: per table, the target's kept values (apply); None shows placeholders (plan).
    `packet`: the target's max_allowed_packet, which bounds every statement.
    `digests`: per table, what the statements delete and write is recorded there (digest.py)."""
    digests = digests or {}
    for plan, delta in group:
        digest = digests.get(plan.name)
        for key in delta.deletes if digest is not None else ():
            digest.deleted(key)
        for statement in delete_statements(conn, plan, delta):
            yield plan.name, statement
    for plan, delta in group:
        for statement in insert_statements(conn, plan, delta, None if kept is None else kept.get(plan.name, {}),
                                           packet, digests.get(plan.name)):
            yield plan.name, statement


# --- references ------------------------------------------------------------------------------

def _columns(alias: str, names: Sequence[str]) -> List[str]:
    return [f"{alias}.{quote_ident(n)}" for n in names]


def _parent_exists(fk: ForeignKey) -> str:
    match = " AND ".join(f"p.{quote_ident(pc)} = c.{quote_ident(cc)}"
                         for pc, cc in zip(fk.parent_columns, fk.child_columns))
    return f"EXISTS (SELECT 1 FROM {quote_ident(fk.parent)} p WHERE {match})"


def _values_in(columns: List[str], values: Sequence[Tuple[Any, ...]]) -> Tuple[str, List[Any]]:
    if len(columns) == 1:
        return f"{columns[0]} IN ({', '.join([PARAM] * len(values))})", [v[0] for v in values]
    row = "(" + ", ".join([PARAM] * len(columns)) + ")"
    args = [x for v in values for x in v]
    return f"({', '.join(columns)}) IN ({', '.join([row] * len(values))})", args


def removed_parent_values(conn, group: Sequence[Tuple[TablePlan, TableDelta]],
                          references: Sequence[ForeignKey]) -> List[Tuple[ForeignKey, List[Tuple[Any, ...]]]]:
    """Per FK into the group: the referenced values held by rows the group will delete or rewrite.

    Read on the target before writing; the rows that change are rewritten, so their old
    referenced values count as removed until the check after the writes finds them again.
    """
    by_name = {plan.name: (plan, delta) for plan, delta in group}
    removed = []
    for fk in references:
        if fk.parent not in by_name:
            continue
        plan, delta = by_name[fk.parent]
        keys = list(delta.deletes) + list(delta.update_keys)
        values: set = set()
        for start in range(0, len(keys), CHECK_BATCH):
            condition, args = plan.key_in(keys[start:start + CHECK_BATCH])
            with conn.cursor() as cur:
                cur.execute(bind(conn, f"SELECT DISTINCT {', '.join(_columns('p', fk.parent_columns))} "
                            f"FROM {plan.qname} p WHERE {condition}", args))
                values.update(tuple(r) for r in cur.fetchall() if None not in r)
        if values:
            removed.append((fk, sorted(values, key=repr)))
    return removed


def _referencing_row(conn, fk: ForeignKey, values: Sequence[Tuple[Any, ...]],
                     only_orphans: bool) -> Optional[Tuple[Any, ...]]:
    """A child row of `fk` that references one of `values` (and, with only_orphans, has no parent)."""
    child_columns = _columns("c", fk.child_columns)
    orphan = f" AND NOT {_parent_exists(fk)}" if only_orphans else ""
    for start in range(0, len(values), CHECK_BATCH):
        condition, args = _values_in(child_columns, values[start:start + CHECK_BATCH])
        with conn.cursor() as cur:
            cur.execute(bind(conn, f"SELECT {', '.join(child_columns)} FROM {quote_ident(fk.child)} c "
                        f"WHERE {condition}{orphan} LIMIT 1", args))
            row = cur.fetchone()
        if row is not None:
            return tuple(row)
    return None


def orphaned_references(conn, removed: Sequence[Tuple[ForeignKey, List[Tuple[Any, ...]]]],
                        ) -> Optional[Tuple[ForeignKey, Tuple[Any, ...]]]:
    """The first FK whose child rows reference a removed value that no parent row holds now."""
    for fk, values in removed:
        row = _referencing_row(conn, fk, values, only_orphans=True)
        if row is not None:
            return fk, row
    return None


def unmatched_parents(conn, group: Sequence[Tuple[TablePlan, TableDelta]],
                      references: Sequence[ForeignKey]) -> Optional[Tuple[ForeignKey, Tuple[Any, ...]]]:
    """The first FK of a written row whose parent row does not exist (MATCH SIMPLE: NULLs pass)."""
    by_name = {plan.name: (plan, delta) for plan, delta in group}
    for fk in references:
        if fk.child not in by_name:
            continue
        plan, delta = by_name[fk.child]
        keys = list(delta.insert_keys) + list(delta.update_keys)
        child_columns = _columns("c", fk.child_columns)
        not_null = " AND ".join(f"{c} IS NOT NULL" for c in child_columns)
        for start in range(0, len(keys), CHECK_BATCH):
            condition, args = plan.key_in(keys[start:start + CHECK_BATCH])
            with conn.cursor() as cur:
                cur.execute(bind(conn, f"SELECT {', '.join(child_columns)} FROM {plan.qname} c WHERE {condition} "
                            f"AND {not_null} AND NOT {_parent_exists(fk)} LIMIT 1", args))
                row = cur.fetchone()
            if row is not None:
                return fk, tuple(row)
    return None


def planned_orphans(conn, group: Sequence[Tuple[TablePlan, TableDelta]], references: Sequence[ForeignKey],
                    ) -> Optional[Tuple[ForeignKey, Tuple[Any, ...]]]:
    """Plan mode (reads only): a row of a table outside the group that references a value the
    group would remove and not write again (compared byte-exact, so a collation-only change of a
    referenced value is reported here although apply would accept it)."""
    by_name = {plan.name: (plan, delta) for plan, delta in group}
    outside = [fk for fk in references if fk.child not in by_name]
    remaining = []
    for fk, values in removed_parent_values(conn, group, outside):
        plan, delta = by_name[fk.parent]
        positions = [[c.name for c in plan.columns].index(n) for n in fk.parent_columns
                     if n in {c.name for c in plan.columns}]
        written = set()
        if len(positions) == len(fk.parent_columns):
            written = {tuple(row[i] for i in positions) for row in delta.written_rows()}
        gone = [v for v in values if v not in written]
        if gone:
            remaining.append((fk, gone))
    for fk, values in remaining:
        row = _referencing_row(conn, fk, values, only_orphans=False)
        if row is not None:
            return fk, row
    return None


def reference_error(table: str, fk: ForeignKey, value: Tuple[Any, ...], listed: Sequence[str],
                    incoming: bool) -> RefdataError:
    if incoming:
        what = "listed" if fk.child in listed else "NOT listed (refdata never changes it)"
        return RefdataError(
            f"table {table!r}: refused: rows it would delete or change are still referenced by "
            f"{fk.describe()}, value {value!r}; {fk.child} is {what}. Nothing was changed: fix the "
            f"referencing rows on the target or list {fk.child} too"
        )
    return RefdataError(
        f"table {table!r}: refused: a row it would write references a missing parent through "
        f"{fk.describe()}, value {value!r}. Nothing was changed: list {fk.parent} too or sync it first"
    )


def apply_group(conn, group: Sequence[Tuple[TablePlan, TableDelta]], references: Sequence[ForeignKey],
                listed: Sequence[str], digests: Optional[Dict[str, DeltaDigest]] = None,
                approved: Optional[Dict[str, str]] = None) -> None:
    """Write one FK group's delta in one transaction; roll back on any error or reference miss.
    `digests` record what is written; with `approved` (per table, the delta digest a person
    approved) a table whose written delta is another one rolls the group back before commit
    (`DeltaNotApproved`): what is committed is what was approved."""
    if not any(delta.changes for _, delta in group):
        return
    with conn.cursor() as cur:
        cur.execute("SELECT @@SESSION.foreign_key_checks")
        saved_checks = cur.fetchone()[0]
    conn.begin()
    try:
        removed = removed_parent_values(conn, group, references)
        kept = {plan.name: read_kept(conn, plan, delta) for plan, delta in group if plan.kept and delta.update_keys}
        packet = max_packet(conn)
        with conn.cursor() as cur:
            cur.execute("SET SESSION foreign_key_checks = 0")
            for table, statement in group_statements(conn, group, kept, packet, digests):
                if len(statement) >= packet:  # a DELETE of one enormous key; INSERTs are cut to fit
                    raise RefdataError(
                        f"table {table!r}: refused: a statement takes {len(statement)} bytes, more than the "
                        f"target's max_allowed_packet ({packet}); raise max_allowed_packet on the target")
                cur.execute(statement)
        for found, incoming in ((orphaned_references(conn, removed), True),
                                (unmatched_parents(conn, group, references), False)):
            if found is not None:
                fk, value = found
                raise reference_error(fk.parent if incoming else fk.child, fk, value, listed, incoming)
        if approved is not None:
            differing = unapproved_tables(digests or {}, approved)
            if differing:
                raise DeltaNotApproved(differing)
        conn.commit()
    except BaseException:
        try:
            conn.rollback()
        except Exception:  # noqa: S110 - connection lost: the server rolls back; keep the real error
            pass
        raise
    finally:
        try:
            with conn.cursor() as cur:
                cur.execute("SET SESSION foreign_key_checks = %s", (saved_checks,))
        except Exception:  # noqa: S110 - a broken connection must not mask the real error
            pass
