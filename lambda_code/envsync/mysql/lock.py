"""Per-schema advisory lock: at most one envsync writer per database schema at a time
(a migration run or a reference-data apply; they would otherwise interleave DDL and DML).

`GET_LOCK` is held by the session, so the lock dies with the connection: a run killed with
kill -9 cannot leave it behind. Names are limited to 64 characters on MySQL 5.7+, so a long
schema name is replaced by its hash.
"""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from typing import Any, Iterator

import pymysql

from envsync.errors import EnvsyncError


class LockTimeout(EnvsyncError, RuntimeError):
    """Another run holds the schema's migration lock."""

    quotes_no_data = True


def lock_name(schema: str) -> str:
    name = f"envsync:{schema}"
    if len(name) > 64:
        name = "envsync:" + hashlib.sha256(schema.encode()).hexdigest()[:56]
    return name


@contextmanager
def schema_lock(connection: Any, schema: str, timeout_seconds: int) -> Iterator[str]:
    name = lock_name(schema)
    with connection.cursor() as cursor:
        cursor.execute("SELECT GET_LOCK(%s, %s)", (name, int(timeout_seconds)))
        acquired = cursor.fetchone()[0]
        if acquired != 1:
            cursor.execute("SELECT IS_USED_LOCK(%s)", (name,))
            holder = cursor.fetchone()[0]
            raise LockTimeout(
                f"another envsync run holds the migration lock '{name}' of schema {schema} "
                f"(server connection id {holder}); waited {timeout_seconds}s and gave up without "
                "applying anything. Retry when that run ends."
            )
    try:
        yield name
    finally:
        try:
            with connection.cursor() as cursor:
                cursor.execute("SELECT RELEASE_LOCK(%s)", (name,))
                cursor.fetchall()
        except pymysql.err.Error:
            pass  # the session is gone, and the lock with it; keep the original error visible
