"""Sync users on the machine's MariaDB: least privilege, idempotent, rotation, `_` not a wildcard."""

from __future__ import annotations

import uuid

import pymysql
import pytest

from envsync.credentials.db_users import ensure_sync_users, grant_procedure, refresh_reader_grants, schema_pattern


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
            # No table is allow-listed here: the reader reads only the history table.
            cursor.execute("SELECT COUNT(*) FROM envsync_schema_history")
            for forbidden in ("SELECT id FROM t", "SELECT id FROM v", "SHOW CREATE VIEW v",
                              "INSERT INTO t VALUES (2)", "CREATE TABLE x (id INT)", "DROP TABLE t"):
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
            cursor.execute(f"DROP PROCEDURE IF EXISTS {grant_procedure(scratch_schema)}")
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
        assert refresh_reader_grants(master, scratch_schema) is False  # no reader, no procedure
        as_writer = pymysql.connect(host="127.0.0.1", port=3306, user=writer["username"],
                                    password=writer["password"], database=scratch_schema, autocommit=True)
        assert refresh_reader_grants(as_writer, scratch_schema) is False  # what prod's writer is told
        as_writer.close()
        with master.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM mysql.user WHERE user = %s", (writer["username"],))
            assert cursor.fetchone()[0] == 1
    finally:
        with master.cursor() as cursor:
            cursor.execute("DROP USER IF EXISTS %s@'%%'", (writer["username"],))
        master.close()


def _as(user: dict, schema: str) -> pymysql.Connection:
    return pymysql.connect(host="127.0.0.1", port=3306, user=user["username"], password=user["password"],
                           database=schema, autocommit=True)


def _readable(user: dict, schema: str, tables: tuple) -> dict:
    """table -> True if the user may SELECT its rows, else the server's error code."""
    seen = {}
    with _as(user, schema).cursor() as cursor:
        for table in tables:
            try:
                cursor.execute(f"SELECT COUNT(*) FROM `{table}`")
                seen[table] = True
            except pymysql.err.MySQLError as error:
                seen[table] = error.args[0]
    return seen


def test_reader_selects_only_allow_listed_tables_and_history_and_follows_the_list(
    machine_mariadb: dict, scratch_schema: str,
) -> None:
    """dev's and staging's reader: customer rows stay home; the grants follow refdata_tables."""
    suffix = uuid.uuid4().hex[:8]
    reader = {"username": f"r_{suffix}", "password": "reader-pass-1"}
    writer = {"username": f"w_{suffix}", "password": "writer-pass-1"}
    tables = ("currency", "country", "customers", "envsync_schema_history")
    master = pymysql.connect(**machine_mariadb, autocommit=True)
    try:
        with master.cursor() as cursor:
            for table in tables[:3]:
                cursor.execute(f"CREATE TABLE `{scratch_schema}`.{table} (id INT PRIMARY KEY)")
            # An existing install: the reader used to SELECT the whole schema.
            cursor.execute(f"CREATE USER r_{suffix}@'%' IDENTIFIED BY 'x'")
            cursor.execute(f"GRANT SELECT, SHOW VIEW ON {schema_pattern(scratch_schema)}.* TO r_{suffix}@'%'")
        done = ensure_sync_users(master, schema=scratch_schema, reader=reader, writer=writer, require_tls=False,
                                 reader_tables=["currency", "fx_rate"])
        assert done["missing"] == ["fx_rate"]  # listed, not created here yet: granted by a later run
        assert _readable(reader, scratch_schema, tables) == {
            "currency": True, "country": 1142, "customers": 1142, "envsync_schema_history": True}

        # A migration creates fx_rate: the writer's call after the run grants it to the reader.
        with _as(writer, scratch_schema).cursor() as cursor:
            cursor.execute("CREATE TABLE fx_rate (id INT PRIMARY KEY)")
        assert _readable(reader, scratch_schema, ("fx_rate",)) == {"fx_rate": 1142}
        assert refresh_reader_grants(_as(writer, scratch_schema), scratch_schema) is True
        assert _readable(reader, scratch_schema, ("fx_rate", "customers")) == {"fx_rate": True, "customers": 1142}
        with pytest.raises(pymysql.err.MySQLError) as denied:  # the writer may only run it
            _as(writer, scratch_schema).cursor().execute(
                f"DROP PROCEDURE {grant_procedure(scratch_schema)}")
        assert denied.value.args[0] in (1044, 1370), denied.value
        # The allow-list changes: currency leaves, country comes.
        done = ensure_sync_users(master, schema=scratch_schema, reader=reader, writer=writer, require_tls=False,
                                 reader_tables=["country", "fx_rate"])
        assert done["missing"] == []
        revoked = f"REVOKE ALL PRIVILEGES ON `{scratch_schema}`.`currency` FROM '{reader['username']}'@'%'"
        assert revoked in done["reader"]
        assert _readable(reader, scratch_schema, (*tables, "fx_rate")) == {
            "currency": 1142, "country": True, "customers": 1142, "envsync_schema_history": True, "fx_rate": True}
        with master.cursor() as cursor:
            cursor.execute("SHOW GRANTS FOR %s@'%%'", (reader["username"],))
            grants = sorted(row[0].split(" TO ")[0] for row in cursor.fetchall() if "USAGE" not in row[0])
        assert grants == sorted([
            f"GRANT REFERENCES, SHOW VIEW ON {schema_pattern(scratch_schema)}.*",
            f"GRANT SELECT ON `{scratch_schema}`.`country`",
            f"GRANT SELECT ON `{scratch_schema}`.`envsync_schema_history`",
            f"GRANT SELECT ON `{scratch_schema}`.`fx_rate`",
        ])
        # Definitions of every table stay visible (drift), rows of unlisted ones do not.
        with _as(reader, scratch_schema).cursor() as cursor:
            cursor.execute("SELECT TABLE_NAME, COLUMN_NAME FROM information_schema.COLUMNS "
                           "WHERE TABLE_SCHEMA = %s AND TABLE_NAME = 'customers'", (scratch_schema,))
            assert cursor.fetchall() == (("customers", "id"),)
    finally:
        with master.cursor() as cursor:
            for user in (reader, writer):
                cursor.execute("DROP USER IF EXISTS %s@'%%'", (user["username"],))
            cursor.execute(f"DROP PROCEDURE IF EXISTS {grant_procedure(scratch_schema)}")
        master.close()
