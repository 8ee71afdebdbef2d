"""Reference-data sync, what an approval binds: the content of one table's delta.

A table's delta digest is SHA-256 over its entries, sorted: one per deleted key (`-` and the
key) and one per written row (`+` new, `~` changed; the key and the row's values of the columns
the engine writes). Sorted, it does not depend on the order rows arrive in; two deltas share a
digest only when they delete the same keys, and insert and change the same rows. Excluded
columns are the target's and are not part of it (a plan never reads them). Each value is
type-tagged and length-prefixed, so `('a#b', 'c')` and `('a', 'b#c')`, NULL and 'NULL', 1 and
'1' differ.

A plan computes it over the rows it streams to build its statements, an apply over the rows it
writes inside the table's transaction: what is committed is what the digest describes.
"""

from __future__ import annotations

import datetime as _dt
import hashlib
from decimal import Decimal
from typing import Any, Iterator, List, Mapping, Optional, Sequence, Tuple

from envsync.refdata.schema import RefdataError
from envsync.refdata.sql import exact_value

EMPTY_DELTA = hashlib.sha256(b"").hexdigest()  # a table with nothing to change
NEW, CHANGED = b"+", b"~"


def value_image(value: Any) -> bytes:
    """One value, type-tagged and length-prefixed."""
    if value is None:
        return b"N"
    if isinstance(value, (bytes, bytearray)):
        tag, raw = b"b", bytes(value)
    elif isinstance(value, int):  # bool too, as the integer the server holds
        tag, raw = b"i", str(int(value)).encode()
    elif isinstance(value, Decimal):
        tag, raw = b"d", str(value).encode()
    elif isinstance(value, float):
        tag, raw = b"f", repr(value).encode()
    elif isinstance(value, (_dt.datetime, _dt.date, _dt.timedelta)):
        tag, raw = b"t", str(exact_value(value)).encode()
    else:
        tag, raw = b"s", str(value).encode("utf-8")
    return tag + str(len(raw)).encode() + b":" + raw


def row_image(values: Sequence[Any]) -> bytes:
    return str(len(values)).encode() + b"(" + b"".join(value_image(v) for v in values) + b")"


class DeltaDigest:
    """Collects one table's delta entries (deleted keys, written rows) and digests them."""

    def __init__(self, key_positions: Sequence[int], width: int) -> None:
        self.key_positions = list(key_positions)  # where the key's columns sit in a written row
        self.width = width  # the written columns: a changed row's kept values follow them
        self._entries: List[bytes] = []

    def deleted(self, key: Sequence[Any]) -> None:
        self._entries.append(hashlib.sha256(b"-" + row_image(key)).digest())

    def written(self, row: Sequence[Any], change: bytes) -> None:
        """A row written as new (`+`) or changed (`~`)."""
        values = tuple(row[:self.width])
        key = tuple(values[i] for i in self.key_positions)
        self._entries.append(hashlib.sha256(change + row_image(key) + row_image(values)).digest())

    def watch(self, rows: Iterator[Tuple[Any, ...]], change: bytes) -> Iterator[Tuple[Any, ...]]:
        """`rows`, unchanged, each one recorded as written on its way."""
        for row in rows:
            self.written(row, change)
            yield row

    def watch_keyed(self, pairs: Iterator[Tuple[str, Tuple[Any, ...]]]) -> Iterator[Tuple[str, Tuple[Any, ...]]]:
        """(encoded key, changed row) pairs, unchanged, each row recorded on its way."""
        for encoded, row in pairs:
            self.written(row, CHANGED)
            yield encoded, row

    def hexdigest(self) -> str:
        digest = hashlib.sha256()
        for entry in sorted(self._entries):
            digest.update(entry)
        return digest.hexdigest()


def watched(digest: Optional[DeltaDigest], rows: Iterator[Tuple[Any, ...]], change: bytes) -> Iterator[Tuple[Any, ...]]:
    return rows if digest is None else digest.watch(rows, change)


def unapproved_tables(digests: Mapping[str, DeltaDigest], approved: Mapping[str, str]) -> List[str]:
    """Tables whose delta is neither empty nor the approved one (a table `approved` does not
    list was approved unchanged). Writing nothing of a table never needs an approval."""
    differing = []
    for name, digest in digests.items():
        now = digest.hexdigest()
        if now != EMPTY_DELTA and now != approved.get(name, EMPTY_DELTA):
            differing.append(name)
    return differing


class DeltaNotApproved(RefdataError):
    """A table's delta is not the one a person approved: nothing of its group is written."""

    def __init__(self, tables: Sequence[str]) -> None:
        self.tables: List[str] = list(tables)
        super().__init__(
            f"table(s) {', '.join(self.tables)}: the reference-data delta is not the approved one (it changed "
            "upstream after the approval, or the approved scripts changed the table's shape first); nothing of "
            "it was applied. The next run plans it again and asks for a new approval")
