"""Sync users on the machine's MariaDB: least privilege, idempotent, rotation, `_` not a wildcard."""

from __future__ import annotations

import uuid

import pymysql
import pytest

from envsync.bootstrap_users import ensure_sync_users, schema_pattern


def test_reader_reads_writer_migrates_nothing_more(machine_mariadb: dict, scratch_schema: str) -> None:
    suffix = uuid.uuid4().hex[:8]
    reader = {"username": f"r_{suffix}", "password": "reader-pass-1"}
    writer = {"username": f"w_{suffix}", "password": "writer-pass-1"}
    lookalike = scratch_schema.replace("_", "X")  # matched by `_` if it were left a wildcard
    master = pymysql.connect(**machine_mariadb, autocommit=True)
    try:
        with master.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{lookalike}`")
        ensure_sync_users(master, schema=scratch_schema, reader=reader, writer=writer, require_tls=False)
        ensure_sync_users(master, schema=scratch_schema, reader=reader, writer=writer, require_tls=False)

        def as_user(user: dict, database: str = scratch_schema) -> pymysql.Connection:
            return pymysql.connect(host="127.0.0.1", port=3306, user=user["username"],
                                   password=user["password"], database=database, autocommit=True)

        with as_user(writer).cursor() as cursor:
            cursor.execute("CREATE TABLE t (id INT PRIMARY KEY)")
            cursor.execute("INSERT INTO t VALUES (1)")
            cursor.execute("CREATE VIEW v AS SELECT id FROM t")
            cursor.execute("CREATE PROCEDURE p() SELECT 1")
            for forbidden in ("SELECT * FROM mysql.user", f"CREATE TABLE `{lookalike}`.t (id INT)",
                              "CREATE DATABASE envsync_other", "GRANT SELECT ON *.* TO CURRENT_USER"):
                with pytest.raises(pymysql.err.MySQLError) as denied:
                    cursor.execute(forbidden)
                assert denied.value.args[0] in (1044, 1045, 1142, 1227), forbidden
        with as_user(reader).cursor() as cursor:
            cursor.execute("SELECT id FROM v")
            assert cursor.fetchall() == ((1,),)
            cursor.execute("SHOW CREATE VIEW v")
            for forbidden in ("INSERT INTO t VALUES (2)", "CREATE TABLE x (id INT)", "DROP TABLE t"):
                with pytest.raises(pymysql.err.MySQLError) as denied:
                    cursor.execute(forbidden)
                assert denied.value.args[0] == 1142, forbidden

        # rotation: the next run sets the new password; the old one stops working
        rotated = {**reader, "password": "reader-pass-2"}
        ensure_sync_users(master, schema=scratch_schema, reader=rotated, writer=writer, require_tls=False)
        as_user(rotated).close()
        with pytest.raises(pymysql.err.OperationalError):
            as_user(reader)
    finally:
        with master.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{lookalike}`")
            for user in (reader, writer):
                cursor.execute("DROP USER IF EXISTS %s@'%%'", (user["username"],))
        master.close()


def test_schema_pattern_escapes_wildcards() -> None:
    assert schema_pattern("app_db") == "`app\\_db`"
    assert schema_pattern("a%b`c") == "`a\\%b``c`"


def test_an_env_nothing_reads_from_gets_no_reader(machine_mariadb: dict, scratch_schema: str) -> None:
    """prod: only the writer exists; there is no read-only user anything could pull with."""
    writer = {"username": f"w_{uuid.uuid4().hex[:8]}", "password": "writer-pass-1"}
    master = pymysql.connect(**machine_mariadb, autocommit=True)
    try:
        created = ensure_sync_users(master, schema=scratch_schema, reader=None, writer=writer, require_tls=False)
        assert set(created) == {"writer"}
        with master.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM mysql.user WHERE user = %s", (writer["username"],))
            assert cursor.fetchone()[0] == 1
    finally:
        with master.cursor() as cursor:
            cursor.execute("DROP USER IF EXISTS %s@'%%'", (writer["username"],))
        master.close()
