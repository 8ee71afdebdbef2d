"""Reference-data sync, diff side: find the delta between two copies of a table.

Walk the primary key in chunks of `chunk_rows` source rows. Both servers fingerprint every chunk,
streamed (`_ChunkStream`): one thread per side, the source's finding each chunk's upper key and
handing the range to the target's, neither waiting for the other chunk by chunk, so the per-row
work stays on the servers, both work at once and each side is read once, in key order:

- *aggregate* mode: `COUNT(*)` and, per hash, `MD5(GROUP_CONCAT(<row image>))` (md5) or the
  exact sum of squared row CRCs (crc32), one small row per chunk and side (see `_row_hash`);
- *row* mode: `COUNT(*), GROUP_CONCAT(<key>:<row hash>)`, one string per chunk and side.
  Equal strings mean an equal chunk; otherwise the two strings are split and compared as
  sets in C (str.split, set difference), and only the keys of the differing entries are
  decoded in Python.

Before the walk, when a whole table is compared (no row filter, no excluded column, not resumed
mid-table; in md5 mode only between full passes and with equal definitions, see `refdata_run`),
`CHECKSUM TABLE ... EXTENDED` runs on both servers in parallel:
equal checksums mean the table is in sync and the walk is skipped. This is the engines' own C
loop over raw records (the benchmark's floor), so the common in-sync case costs about one
CHECKSUM TABLE. It is only a shortcut: checksums that differ for equal data (e.g. another
engine version's record format) just lead to the chunk walk. It is skipped when the first or
the last chunk already differs (`end_chunks_equal`; rows appended at the end of the key show in
the last), where it could only add its cost. Its 32-bit
strength equals the `crc32` row hash; in md5 mode the full 128-bit walk bounds how long a
collision can hide a change (`full_check_hours`).

`chunk_rows` is lowered so a chunk's row-mode string fits both servers' packet for the widest key
the definition allows (`fitting_chunk_rows`); a row-mode string cut anyway (the target holds many
more rows in the range) splits the range at the middle row of that side, recursively.

A chunk that differs in aggregate mode is re-read in row mode (a few at a time, when the stream
pauses). When most recent chunks differ (changes spread over the table), the stream switches to
row mode, so those chunks are read once, and back to aggregate mode when chunks come out clean
again. Streaming `(key, row hash)` row by row instead was measured slower: PyMySQL's per-row
work (~2 us a row and side) costs more than the servers' GROUP_CONCAT and a split in C.

Row hash: `crc32` (CRC32 of the row image, 32 bits) or `md5`: the first 64 bits of a
cryptographic digest of the row image, MD5 on MySQL and SHA1 where both servers are MariaDB (the
one each flavour computes cheaply per call, `Flavour.cheap_row_digest`); md5 mode's chunk
aggregates are MD5 (128 bits) on every flavour.
Only the changed rows are fetched in full, from the source, by key, streamed while they are
written (`TableDelta.written_rows`), so memory does not grow with the delta.
"""

from __future__ import annotations

import queue
import re
import threading
import time
from collections import deque
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any, Callable, Iterator, List, Optional, Sequence, Set, Tuple

import pymysql

from envsync.mysql.flavour import Flavour, row_digest_for
from envsync.refdata.schema import RefdataError
from envsync.refdata.sql import (
    BINARY_TYPES,
    INTEGER_TYPES,
    TablePlan,
    bind,
    exact_value,
    key_value_expr,
    quote_ident,
)

HASHES = ("crc32", "md5")
ROW_DIGESTS = ("MD5", "SHA1")  # SQL functions, spliced into statements: only these
FETCH_BATCH = 500
ADAPT_WINDOW = 8


@dataclass
class TableDelta:
    """Keys of the rows that differ; the rows themselves are streamed from the source on demand."""

    deletes: List[Tuple[Any, ...]] = field(default_factory=list)  # target keys
    insert_keys: List[Tuple[Any, ...]] = field(default_factory=list)  # source keys the target lacks
    update_keys: List[Tuple[Any, ...]] = field(default_factory=list)  # keys whose rows differ
    chunks_compared: int = 0
    chunks_differing: int = 0
    source_rows_seen: int = 0  # rows in the compared chunks (the mass-delete guard's lower bounds)
    target_rows_seen: int = 0
    complete: bool = True  # False: stopped at the deadline after `covered_to`
    covered_to: Optional[Tuple[Any, ...]] = None  # last key of the covered range when incomplete
    # keys -> the source rows with those keys (a few at a time, unbuffered)
    source_rows: Optional[Callable[[Sequence[Tuple[Any, ...]]], Iterator[Tuple[Any, ...]]]] = None
    target_rows: Optional[Callable[[Sequence[Tuple[Any, ...]]], Iterator[Tuple[Any, ...]]]] = None
    # keys -> (encoded key, source row): changed rows matched with the target's kept values
    keyed_source_rows: Optional[Callable[[Sequence[Tuple[Any, ...]]], Iterator[Tuple[str, Tuple[Any, ...]]]]] = None

    @property
    def changes(self) -> int:
        return len(self.insert_keys) + len(self.update_keys) + len(self.deletes)

    def written_rows(self) -> Iterator[Tuple[Any, ...]]:
        """The full source rows to insert (new, then changed), streamed: memory stays bounded."""
        if self.source_rows is None:
            return iter(())
        return self.source_rows(self.insert_keys + self.update_keys)


# Added per row whose image is NULL (only when it would exceed max_allowed_packet): far above
# any sum of chunk_rows (<= 100 000) 64-bit hashes, so such rows are counted, never skipped.
NULL_IMAGE_MARK = 10 ** 30


def _row_hash(plan: TablePlan, hash_name: str, row_digest: str = "MD5") -> Tuple[str, str]:
    """(chunk aggregate query head, per-row text) for the chosen hash; the WHERE goes last.
    `row_digest`: the SQL function of md5 mode's per-row hash (`row_digest_for`).

    Never a BIT_XOR of row hashes: CRC32 is linear over XOR, so an XOR of row CRCs cancels the
    same change made to an even number of rows.
    - md5: the MD5 (128 bits) of the chunk's row images joined by ',' - one MD5 over the chunk
      instead of one per row (~25 % less server time). Each image is self-delimiting (fixed
      column count, NULL bitmap, strings length-prefixed), so equal MD5s mean equal sequences of
      rows. GROUP_CONCAT follows the scan order: a plan that reads the two sides in different
      orders only sends the chunk to row mode. A truncated GROUP_CONCAT or a NULL image raises a
      warning, which sends the chunk to row mode too (see `fingerprint`).
    - crc32: the exact DECIMAL sum of each row's CRC32 squared (not linear over XOR either; h*h
      < 2**64 stays exact), each hash computed once in a materialised derived table (a LIMIT
      stops the merge); a NULL hash adds NULL_IMAGE_MARK, so it is counted, not skipped.
    """
    image = plan.row_image()
    if hash_name == "md5":
        return f"SELECT COUNT(*), MD5(GROUP_CONCAT({image} SEPARATOR ',')) FROM {plan.qname}", \
            f"IFNULL(LEFT({row_digest}({image}), 16), 'NULL')"
    return (f"SELECT COUNT(*), SUM(IFNULL(h * h, {NULL_IMAGE_MARK})) FROM "
            f"(SELECT CRC32({image}) AS h FROM {plan.qname}"), f"IFNULL(CRC32({image}), 'NULL')"


NO_LIMIT = 18446744073709551615


class _ChunkQueries:
    def __init__(self, plan: TablePlan, chunk_rows: int, hash_name: str, row_digest: str = "MD5") -> None:
        if hash_name not in HASHES:
            raise RefdataError(f"unknown hash {hash_name!r}: use one of {', '.join(HASHES)}")
        if row_digest not in ROW_DIGESTS:
            raise RefdataError(f"internal: unknown row digest {row_digest!r}")
        self.plan = plan
        self.chunk_rows = chunk_rows
        self.aggregate_head, per_row = _row_hash(plan, hash_name, row_digest)
        self.aggregate_tail = f" LIMIT {NO_LIMIT}) AS chunk" if hash_name == "crc32" else ""
        self.rows_sql = (
            f"SELECT COUNT(*), GROUP_CONCAT({plan.key_encoding()}, ':', {per_row} SEPARATOR ',') "
            f"FROM {plan.qname}"
        )
        key_values = ", ".join(key_value_expr(c) for c in plan.key)  # FLOAT keys widened, BIT as numbers
        self.boundary_sql = f"SELECT {key_values} FROM {plan.qname}"

    def boundary(self, conn, after: Optional[Tuple[Any, ...]], rows: int = 0) -> Optional[Tuple[Any, ...]]:
        """Key of the `rows`-th (default chunk_rows-th) row after `after`, or None when fewer remain."""
        where, args = self.plan.range_where(after, None)
        sql = f"{self.boundary_sql}{where} ORDER BY {self.plan.key_list} LIMIT 1 OFFSET {(rows or self.chunk_rows) - 1}"
        with conn.cursor() as cur:
            cur.execute(bind(conn, sql, args))
            row = cur.fetchone()
        return tuple(exact_value(v) for v in row) if row else None

    def last_lower(self, conn) -> Optional[Tuple[Any, ...]]:
        """Key just before the last chunk_rows rows, or None when the table holds no more rows."""
        where, args = self.plan.range_where(None, None)
        order = ", ".join(f"{quote_ident(c.name)} DESC" for c in self.plan.key)
        with conn.cursor() as cur:
            cur.execute(bind(conn, f"{self.boundary_sql}{where} ORDER BY {order} LIMIT 1 OFFSET {self.chunk_rows}",
                             args))
            row = cur.fetchone()
        return tuple(exact_value(v) for v in row) if row else None

    def fingerprint(self, conn, lower, upper, row_mode: bool) -> Tuple[int, Any]:
        where, args = self.plan.range_where(lower, upper)
        with conn.cursor() as cur:
            sql = self.rows_sql + where if row_mode else self.aggregate_head + where + self.aggregate_tail
            cur.execute(bind(conn, sql, args))
            count, value = cur.fetchone()
            if not row_mode and cur.warning_count:  # truncated GROUP_CONCAT, NULL image...: not a proof
                return int(count), object()  # equal to nothing: the chunk is re-read in row mode
        separator = b"," if isinstance(value, bytes) else ","
        if row_mode and count and (value is None or value.count(separator) + 1 != count):
            return int(count), Truncated()  # cut at max_allowed_packet: the range is split (`diff_table`)
        if not row_mode and isinstance(value, Decimal) and value >= NULL_IMAGE_MARK:
            raise RefdataError(
                f"{self.plan.name}: {int(value // NULL_IMAGE_MARK)} row(s) after key {lower!r} have a row image "
                "larger than max_allowed_packet, which cannot be compared; raise max_allowed_packet"
            )
        return int(count), value

    def stream_rows(self, conn, keys: Sequence[Tuple[Any, ...]]) -> Iterator[Tuple[Any, ...]]:
        """Source rows by key, FETCH_BATCH keys per query, read unbuffered (one row in memory)."""
        return self._stream(conn, keys, self.plan.select_list)

    def stream_keyed_rows(self, conn, keys: Sequence[Tuple[Any, ...]]) -> Iterator[Tuple[str, Tuple[Any, ...]]]:
        """(encoded key, row) by key: the encoding is the diff's, so it matches the target's."""
        for row in self._stream(conn, keys, f"{self.plan.key_encoding()}, {self.plan.select_list}"):
            yield key_text(row[0]), row[1:]

    def _stream(self, conn, keys: Sequence[Tuple[Any, ...]], select: str) -> Iterator[Tuple[Any, ...]]:
        for start in range(0, len(keys), FETCH_BATCH):
            condition, args = self.plan.key_in(keys[start:start + FETCH_BATCH])
            if self.plan.where:
                condition += f" AND ({self.plan.where})"
            sql = f"SELECT {select} FROM {self.plan.qname} WHERE {condition}"
            with conn.cursor(pymysql.cursors.SSCursor) as cur:
                cur.execute(bind(conn, sql, args))
                for row in cur:
                    yield tuple(row)


def row_digest(source, target) -> str:
    """md5 mode's per-row digest for this pair of connections (their handshake's server version)."""
    return row_digest_for(str(getattr(source, "server_version", "")), str(getattr(target, "server_version", "")))


def key_text(value: Any) -> str:
    """An encoded key as str (the server may return it as bytes)."""
    return bytes(value).decode("ascii") if isinstance(value, (bytes, bytearray)) else str(value)


class Truncated:
    """A row-mode fingerprint that did not fit. A new instance each time: tuples compare their
    items by identity first, so a shared marker would make two cut fingerprints equal."""
# Bytes of a row-mode fingerprint kept free of the budget (result row header, slack).
FINGERPRINT_SLACK = 4096


def _key_width(column) -> int:
    """Longest text of one key column in a row-mode fingerprint (`key_expr`), from its type."""
    if column.data_type in INTEGER_TYPES or column.data_type == "bit":
        return 20
    size = re.search(r"\((\d+)", column.column_type)
    length = int(size.group(1)) if size else 0
    if column.data_type in BINARY_TYPES:
        return 2 * (length or 3072)
    if column.data_type in ("char", "varchar"):
        return 8 * (length or 768)  # HEX of up to 4 utf8mb4 bytes per character
    return 2 * 72  # numbers and temporals: at most ~70 characters of text


def fitting_chunk_rows(source, target, plan: TablePlan, chunk_rows: int, hash_name: str) -> int:
    """chunk_rows, lowered so a chunk's row-mode fingerprint fits both servers' max_allowed_packet
    (where GROUP_CONCAT is cut), from the widest key the table's definition allows. A chunk that
    still does not fit (e.g. many more target rows than source rows) is split when read."""
    width = sum(_key_width(c) for c in plan.key) + len(plan.key) + (16 if hash_name == "md5" else 10) + 2
    budgets = []
    for conn in (source, target):
        with conn.cursor() as cur:
            cur.execute("SELECT LEAST(@@SESSION.max_allowed_packet, @@SESSION.group_concat_max_len)")
            budgets.append(int(cur.fetchone()[0]))
    budget = min(budgets)
    return max(1, min(chunk_rows, (budget - min(FINGERPRINT_SLACK, budget // 4)) // width))


def _entries(count: int, text: Optional[Any], side: str, table: str) -> Set[str]:
    if not count or text is None:  # a cut fingerprint never gets here (`Truncated`, split first)
        return set()
    if isinstance(text, (bytes, bytearray)):
        text = bytes(text).decode("ascii")
    entries = set(text.split(","))
    oversized = [e.rsplit(":", 1)[0] for e in entries if e.endswith(":NULL")] if ":NULL" in text else []
    if oversized:
        raise RefdataError(
            f"{table}: {side} row(s) with encoded key {', '.join(sorted(oversized)[:5])} have a row image larger "
            "than max_allowed_packet, which cannot be compared; raise max_allowed_packet"
        )
    if len(entries) != count:
        raise RefdataError(
            f"{table}: {side} chunk fingerprint lists {len(entries)} distinct rows for COUNT(*) = {count} "
            "(duplicate keys under the primary key?)"
        )
    return entries


CHECKSUM_MAX_ROWS = 20_000_000  # one statement: keep it well inside a Lambda invocation


def _on_both(source, target, work):
    """work(source) here and work(target) on a worker thread, at the same time."""
    with ThreadPoolExecutor(max_workers=1, thread_name_prefix="refdata-target") as pool:
        pending = pool.submit(work, target)
        try:
            source_value = work(source)
        finally:
            target_value = pending.result()
    return source_value, target_value


def end_chunks_equal(source, target, plan: TablePlan, *, chunk_rows: int, hash_name: str) -> bool:
    """Aggregate fingerprints of the first and the last chunk on both sides (a cheap probe, ~2/N
    of a walk). A differing end says the table differs, so a whole-table CHECKSUM TABLE would
    only add its cost before the walk; rows appended at the end of the key (the usual change to
    reference data) show in the last chunk.
    """
    queries = _ChunkQueries(plan, chunk_rows, hash_name)
    upper = queries.boundary(source, None)
    last_lower = queries.last_lower(source) if upper is not None else None

    def ends(conn) -> Tuple[Any, ...]:
        first = queries.fingerprint(conn, None, upper, False)
        return (first, queries.fingerprint(conn, last_lower, None, False)) if upper is not None else (first,)

    source_prints, target_prints = _on_both(source, target, ends)
    return source_prints == target_prints


_AUTO_INCREMENT = re.compile(r" AUTO_INCREMENT=\d+")


def definitions_match(source, target, plan: TablePlan) -> bool:
    """Same server flavour and version (major.minor) and the same CREATE TABLE on both sides:
    only then can equal data give equal CHECKSUM TABLE values (it sums raw record images)."""

    def definition(conn) -> Tuple[str, Tuple[int, ...], str]:
        with conn.cursor() as cur:
            cur.execute("SELECT VERSION()")
            flavour = Flavour.from_version(str(cur.fetchone()[0]))
            cur.execute(f"SHOW CREATE TABLE {plan.qname}")
            create = str(cur.fetchone()[1])
        return flavour.vendor, flavour.version[:2], _AUTO_INCREMENT.sub("", create)

    return definition(source) == definition(target)


def tables_checksum_equal(source, target, plan: TablePlan) -> bool:
    """CHECKSUM TABLE on both servers at once; True when both give the same non-NULL value."""

    def checksum(conn) -> Optional[int]:
        with conn.cursor() as cur:
            cur.execute("SELECT TABLE_ROWS FROM information_schema.TABLES "
                        "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s", (plan.name,))
            estimate = cur.fetchone()
            if estimate and estimate[0] and int(estimate[0]) > CHECKSUM_MAX_ROWS:
                return None
            cur.execute(f"CHECKSUM TABLE {plan.qname} EXTENDED")
            row = cur.fetchone()
        return None if row is None or row[1] is None else int(row[1])

    source_sum, target_sum = _on_both(source, target, checksum)
    return source_sum is not None and source_sum == target_sum


class _Failed:
    def __init__(self, error: BaseException) -> None:
        self.error = error


class _ChunkStream:
    """Fingerprints of consecutive chunks from `start_after` to the end of the table, computed by
    one thread per side: the source's thread finds each chunk's upper key, hands the range to the
    target's thread and fingerprints the chunk on the source; the target's thread fingerprints the
    same ranges. Neither side waits for the other chunk by chunk (each runs at most `depth` chunks
    ahead of the caller), so both servers stay busy and each side is read once, in key order.

    Iterating yields (lower, upper, source print, target print) in key order; `close` stops both
    threads and waits for them, after which the caller may use the connections again."""

    def __init__(self, queries: _ChunkQueries, source, target, start_after: Optional[Tuple[Any, ...]],
                 row_mode: bool, depth: int = 1) -> None:
        self._queries, self._row_mode = queries, row_mode
        self._stop = threading.Event()
        self._ranges: queue.Queue = queue.Queue()
        self._source_out: queue.Queue = queue.Queue(maxsize=depth)
        self._target_out: queue.Queue = queue.Queue(maxsize=depth)
        self._threads = [threading.Thread(target=self._source_work, args=(source, start_after), daemon=True,
                                          name="refdata-source"),
                         threading.Thread(target=self._target_work, args=(target,), daemon=True,
                                          name="refdata-target")]
        for thread in self._threads:
            thread.start()

    def _put(self, out: queue.Queue, item: Any) -> bool:
        while not self._stop.is_set():
            try:
                out.put(item, timeout=0.05)
                return True
            except queue.Full:
                continue
        return False

    def _source_work(self, conn, lower: Optional[Tuple[Any, ...]]) -> None:
        try:
            while not self._stop.is_set():
                upper = self._queries.boundary(conn, lower)
                self._ranges.put((lower, upper))
                print_ = self._queries.fingerprint(conn, lower, upper, self._row_mode)
                if not self._put(self._source_out, (lower, upper, print_)) or upper is None:
                    return
                lower = upper
        except BaseException as error:  # handed to the caller, which raises it
            self._ranges.put(_Failed(error))
            self._put(self._source_out, _Failed(error))

    def _target_work(self, conn) -> None:
        try:
            while not self._stop.is_set():
                try:
                    item = self._ranges.get(timeout=0.05)
                except queue.Empty:
                    continue
                if isinstance(item, _Failed):
                    return
                print_ = self._queries.fingerprint(conn, *item, self._row_mode)
                if not self._put(self._target_out, print_) or item[1] is None:
                    return
        except BaseException as error:  # handed to the caller, which raises it
            self._put(self._target_out, _Failed(error))

    def __iter__(self) -> Iterator[Tuple[Any, Any, Tuple[int, Any], Tuple[int, Any]]]:
        while True:
            item = self._source_out.get()
            if isinstance(item, _Failed):
                raise item.error
            target_print = self._target_out.get()
            if isinstance(target_print, _Failed):
                raise target_print.error
            lower, upper, source_print = item
            yield lower, upper, source_print, target_print
            if upper is None:
                return

    def close(self) -> None:
        self._stop.set()
        for thread in self._threads:
            thread.join()


PENDING_CHUNKS = 4  # aggregate chunks that differed, re-read in row mode once this many wait


def diff_table(
    source,
    target,
    plan: TablePlan,
    *,
    chunk_rows: int,
    hash_name: str,
    start_after: Optional[Tuple[Any, ...]] = None,
    deadline: Optional[float] = None,
) -> TableDelta:
    """Compare the table chunk by chunk from `start_after`; stop early at `deadline`.

    The chunks are streamed from both sides at once (`_ChunkStream`): aggregate fingerprints
    while chunks come out equal, row-mode fingerprints (key and row hash of every row, split in C)
    once most recent chunks differ, so with changes spread over the table each side is read once.
    An aggregate chunk that differs is re-read in row mode when the stream pauses (every
    PENDING_CHUNKS such chunks, at a mode switch and at the end). At least one chunk is compared
    per call, so repeated calls always make progress.
    """
    queries = _ChunkQueries(plan, chunk_rows, hash_name, row_digest(source, target))
    delta = TableDelta()
    insert_keys: List[Tuple[Any, ...]] = []
    update_keys: List[Tuple[Any, ...]] = []
    recent: deque = deque(maxlen=ADAPT_WINDOW)
    pending: List[Tuple[Any, Any]] = []

    def row_prints(lower, upper):
        return _on_both(source, target, lambda conn: queries.fingerprint(conn, lower, upper, True))

    def compare(lower, upper, source_print, target_print) -> None:
        """Keys of the differing rows of (lower, upper]; a fingerprint cut at the packet splits the
        range in two at the middle row of the side that did not fit (halve, recurse)."""
        for side, conn, (count, value) in (("source", source, source_print), ("target", target, target_print)):
            if isinstance(value, Truncated):
                if count < 2:
                    raise RefdataError(
                        f"{plan.name}: the {side} row after key {lower!r} does not fit in a fingerprint of the "
                        "server's max_allowed_packet; raise max_allowed_packet")
                middle = queries.boundary(conn, lower, count // 2)
                for part in ((lower, middle), (middle, upper)):
                    compare(*part, *row_prints(*part))
                return
        if source_print == target_print:
            return
        source_entries = _entries(*source_print, "source", plan.name)
        target_entries = _entries(*target_print, "target", plan.name)
        source_only = {e.rsplit(":", 1)[0] for e in source_entries - target_entries}
        target_only = {e.rsplit(":", 1)[0] for e in target_entries - source_entries}
        update_keys.extend(plan.decode_key(k) for k in source_only & target_only)
        insert_keys.extend(plan.decode_key(k) for k in source_only - target_only)
        delta.deletes.extend(plan.decode_key(k) for k in target_only - source_only)

    lower, row_mode, finished = start_after, False, False
    while not finished:
        cut = None  # a row-mode chunk whose fingerprint did not fit: split once the stream stopped
        stream = _ChunkStream(queries, source, target, lower, row_mode)
        try:
            for chunk_lower, upper, source_print, target_print in stream:
                delta.chunks_compared += 1
                delta.source_rows_seen += source_print[0]
                delta.target_rows_seen += target_print[0]
                differs = source_print != target_print
                recent.append(1 if differs else 0)
                if differs and not row_mode:
                    pending.append((chunk_lower, upper))
                elif differs and any(isinstance(p[1], Truncated) for p in (source_print, target_print)):
                    delta.chunks_differing += 1
                    cut = (chunk_lower, upper, source_print, target_print)
                elif differs:
                    delta.chunks_differing += 1
                    compare(chunk_lower, upper, source_print, target_print)
                if upper is None:
                    finished = True
                    break
                if deadline is not None and time.monotonic() >= deadline:
                    delta.complete, delta.covered_to, finished = False, upper, True
                    break
                # row mode from half the recent chunks differing, aggregate again below a quarter: each
                # switch restarts the stream (and drops the chunk or two each side read ahead)
                share = 4 * sum(recent) / len(recent)
                want_row_mode = len(recent) >= 2 and (share >= 2 or (row_mode and share > 1))
                if cut or len(pending) >= PENDING_CHUNKS or want_row_mode != row_mode:
                    lower, row_mode = upper, want_row_mode
                    break
        finally:
            stream.close()
        if cut:
            compare(*cut)
        for part in pending:
            prints = row_prints(*part)
            if prints[0] != prints[1]:
                delta.chunks_differing += 1
                compare(*part, *prints)
        pending.clear()
    delta.insert_keys, delta.update_keys = insert_keys, update_keys
    delta.source_rows = lambda keys: queries.stream_rows(source, keys)
    delta.target_rows = lambda keys: queries.stream_rows(target, keys)
    delta.keyed_source_rows = lambda keys: queries.stream_keyed_rows(source, keys)
    return delta


def new_table_delta(source, plan: TablePlan) -> TableDelta:
    """The delta into a table the target does not hold yet, as it will be once a pending script
    creates it empty: every source row (matching the filter) is new. Only the keys are read now;
    the rows are streamed from the source on demand, as for any delta."""
    queries = _ChunkQueries(plan, FETCH_BATCH, HASHES[0])  # only its row streams are used
    where = f" WHERE {plan.where}" if plan.where else ""
    with source.cursor(pymysql.cursors.SSCursor) as cur:
        cur.execute(f"SELECT {plan.key_encoding()} FROM {plan.qname}{where}")
        keys = [plan.decode_key(key_text(row[0])) for row in cur]
    delta = TableDelta(insert_keys=keys, source_rows_seen=len(keys))
    delta.source_rows = lambda wanted: queries.stream_rows(source, wanted)
    delta.keyed_source_rows = lambda wanted: queries.stream_keyed_rows(source, wanted)
    return delta
