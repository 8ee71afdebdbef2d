"""Per-schema advisory lock: at most one envsync writer per database schema at a time
(a migration run or a reference-data apply; they would otherwise interleave DDL and DML).

The reference-data fan-out (one apply per independent FK group, run at once by the state
machine's Map) shares the lock: `shared_schema_lock` takes the schema's lock only to enter,
then holds a slot lock of its own and lets go of the schema's. `schema_lock` (exclusive: a
migration, a whole-list apply) takes the schema's lock and then every slot, so it waits for the
groups inside to finish and keeps new ones out; the groups of one fan-out do not wait for each
other (two groups wait only when they share a slot: group index modulo SHARED_SLOTS).

`GET_LOCK` is held by the session, so the lock dies with the connection: a run killed with
kill -9 cannot leave it behind. Names are limited to 64 characters on MySQL 5.7+, so a long
schema name is replaced by its hash.
"""

from __future__ import annotations

import hashlib
import time
from contextlib import contextmanager
from typing import Any, Iterator, List, Sequence

import pymysql

from envsync.errors import EnvsyncError


class LockTimeout(EnvsyncError, RuntimeError):
    """Another run holds the schema's migration lock."""

    quotes_no_data = True


SHARED_SLOTS = 40  # the largest refdata max_concurrency: concurrent groups never share a slot


def lock_name(schema: str) -> str:
    name = f"envsync:{schema}"
    if len(name) > 61:  # room for a slot's "#NN" within MySQL's 64 characters
        name = "envsync:" + hashlib.sha256(schema.encode()).hexdigest()[:53]
    return name


def slot_name(schema: str, slot: int) -> str:
    return f"{lock_name(schema)}#{slot % SHARED_SLOTS}"


def _take(connection: Any, name: str, schema: str, timeout_seconds: float) -> None:
    with connection.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, %s)", (name, max(0, int(timeout_seconds))))
        acquired = cursor.fetchone()[0]
        if acquired != 1:
            cursor.execute("SELECT IS_USED_LOCK(%s)", (name,))
            holder = cursor.fetchone()[0]
            raise LockTimeout(
                f"another envsync run holds the migration lock '{name}' of schema {schema} "
                f"(server connection id {holder}); waited {timeout_seconds:.0f}s and gave up without "
                "applying anything. Retry when that run ends."
            )


def _release(connection: Any, names: Sequence[str]) -> None:
    try:
        with connection.cursor() as cursor:
            for name in reversed(names):
                cursor.execute("SELECT RELEASE_LOCK(%s)", (name,))
                cursor.fetchall()
    except pymysql.err.Error:
        pass  # the session is gone, and the locks with it; keep the original error visible


@contextmanager
def schema_lock(connection: Any, schema: str, timeout_seconds: int) -> Iterator[str]:
    """Exclusive: no other writer, and no reference-data group, until the block ends."""
    name = lock_name(schema)
    held: List[str] = []
    ends = time.monotonic() + timeout_seconds
    try:
        for lock in [name] + [slot_name(schema, slot) for slot in range(SHARED_SLOTS)]:
            _take(connection, lock, schema, ends - time.monotonic() if held else timeout_seconds)
            held.append(lock)
        yield name
    finally:
        _release(connection, held)


@contextmanager
def shared_schema_lock(connection: Any, schema: str, slot: int, timeout_seconds: int) -> Iterator[str]:
    """Shared by the groups of a reference-data fan-out (`slot`: the group's index): excludes an
    exclusive holder, not the other groups."""
    name, mine = lock_name(schema), slot_name(schema, slot)
    _take(connection, name, schema, timeout_seconds)  # waits while an exclusive holder is inside
    try:
        _take(connection, mine, schema, timeout_seconds)
    finally:
        _release(connection, [name])
    try:
        yield mine
    finally:
        _release(connection, [mine])
