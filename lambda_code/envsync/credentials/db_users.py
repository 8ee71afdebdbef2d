"""Create (idempotently) the sync reader and writer users of one app schema.

- reader (what an upstream exposes to its downstream): SELECT only on the allow-listed
  reference tables and the history table; on the rest of `<schema>` only SHOW VIEW and
  REFERENCES, which show definitions in information_schema (drift) and no row: REFERENCES lets
  a user create a foreign key naming the table (MySQL 8.0.22+; unused in MySQL 5.7 and MariaDB),
  and the reader can create nothing. View definitions stay hidden (they need SELECT on the view).
  Table grants follow the allow-list: what left it is revoked, what came is granted. A listed
  table that does not exist yet (its migration has not run here) cannot be granted (the
  server refuses a grant on a missing table); `envsync_admin.grant_reader_<schema>()`, a
  procedure with the master's rights that grants SELECT on exactly the listed tables that
  exist, is what the writer calls after each migration run (`refresh_reader_grants`);
- writer: DDL + DML on `<schema>`.* only, nothing on mysql.* or any other schema.
SQL common to MariaDB 10.11, MySQL 5.7 and 8.0: CREATE USER IF NOT EXISTS, then ALTER USER ...
IDENTIFIED BY so a rotated secret takes effect on the next run. Grants are additive and
idempotent; privileges outside the lists below are revoked so a re-run converges.
Run with the master user's credentials.
"""

from __future__ import annotations

import re
from typing import Any, Dict, List, Optional, Sequence, Tuple

import pymysql

from envsync.migrations import history

NO_SUCH_GRANT = 1141

ADMIN_SCHEMA = "envsync_admin"
# CALL of a procedure that does not exist: 1305, or 1370 (execute denied) for a user with no
# privilege on it, which the server answers before it looks.
NO_SUCH_PROCEDURE = (1305, 1370)
# On the whole schema: definitions visible, rows not (see the module docstring).
READER_PRIVILEGES = ("SHOW VIEW", "REFERENCES")
TABLE_GRANT = re.compile(r"^GRANT (?P<privileges>.+?) ON `(?P<schema>(?:[^`]|``)+)`\.`(?P<table>(?:[^`]|``)+)` TO ")
WRITER_PRIVILEGES = (
    "SELECT", "INSERT", "UPDATE", "DELETE", "CREATE", "DROP", "ALTER", "INDEX", "REFERENCES",
    "CREATE VIEW", "SHOW VIEW", "TRIGGER", "CREATE ROUTINE", "ALTER ROUTINE", "EXECUTE",
    "CREATE TEMPORARY TABLES", "LOCK TABLES",
)
# Aurora's master may not grant EVENT on every engine version; the writer does not need it.


def schema_pattern(schema: str) -> str:
    """`app_db` -> `app\\_db`: in GRANT ... ON db.*, `_` and `%` are wildcards."""
    escaped = schema.replace("\\", "\\\\").replace("_", "\\_").replace("%", "\\%")
    return "`" + escaped.replace("`", "``") + "`"


def _quoted(name: str) -> str:
    return "`" + name.replace("`", "``") + "`"


def table_grants(connection: Any, username: str, schema: str, host: str = "%") -> Dict[str, str]:
    """The user's table-level grants on `schema`: table -> privileges (from SHOW GRANTS)."""
    with connection.cursor() as cursor:
        cursor.execute("SHOW GRANTS FOR %s@%s", (username, host))
        lines = [row[0] for row in cursor.fetchall()]
    grants = {}
    for line in lines:
        match = TABLE_GRANT.match(line)
        if match and match.group("schema").replace("``", "`") == schema:
            grants[match.group("table").replace("``", "`")] = match.group("privileges")
    return grants


def ensure_reader_tables(connection: Any, *, username: str, schema: str, tables: Sequence[str],
                         host: str = "%") -> Tuple[List[str], List[str]]:
    """SELECT on exactly `tables` + the history table; returns (statements run, tables missing)."""
    wanted = list(dict.fromkeys([*tables, history.TABLE]))
    with connection.cursor() as cursor:
        cursor.execute("SELECT TABLE_NAME FROM information_schema.TABLES WHERE TABLE_SCHEMA = %s", (schema,))
        present = {row[0] for row in cursor.fetchall()}
    done: List[str] = []
    for table, privileges in sorted(table_grants(connection, username, schema, host).items()):
        if table not in wanted or privileges.upper() != "SELECT":
            target = f"{_quoted(schema)}.{_quoted(table)}"
            with connection.cursor() as cursor:
                cursor.execute(f"REVOKE ALL PRIVILEGES ON {target} FROM %s@%s", (username, host))
            done.append(f"REVOKE ALL PRIVILEGES ON {target} FROM '{username}'@'{host}'")
    missing = [table for table in wanted if table not in present]
    for table in wanted:
        if table in present:
            target = f"{_quoted(schema)}.{_quoted(table)}"
            with connection.cursor() as cursor:
                cursor.execute(f"GRANT SELECT ON {target} TO %s@%s", (username, host))
            done.append(f"GRANT SELECT ON {target} TO '{username}'@'{host}'")
    return done, missing


def grant_procedure(schema: str) -> str:
    return f"{_quoted(ADMIN_SCHEMA)}.{_quoted(('grant_reader_' + schema)[:64])}"


def ensure_grant_procedure(connection: Any, *, schema: str, reader: str, writer: str, tables: Sequence[str],
                           host: str = "%") -> List[str]:
    """(Re)create the procedure that grants the reader SELECT on the listed tables that exist,
    with the definer's (master's) rights, and let the writer execute it (and nothing else there)."""
    wanted = list(dict.fromkeys([*tables, history.TABLE]))
    literal = connection.escape
    body = f"""CREATE DEFINER = CURRENT_USER PROCEDURE {grant_procedure(schema)}() SQL SECURITY DEFINER
BEGIN
  DECLARE done INT DEFAULT 0;
  DECLARE listed VARCHAR(64);
  DECLARE tables CURSOR FOR SELECT TABLE_NAME FROM information_schema.TABLES
    WHERE TABLE_SCHEMA = {literal(schema)} AND TABLE_NAME IN ({', '.join(literal(t) for t in wanted)});
  DECLARE CONTINUE HANDLER FOR NOT FOUND SET done = 1;
  OPEN tables;
  each_table: LOOP
    FETCH tables INTO listed;
    IF done THEN LEAVE each_table; END IF;
    SET @envsync_grant = CONCAT('GRANT SELECT ON ', {literal(_quoted(schema))}, '.`',
                                REPLACE(listed, '`', '``'), '` TO ', {literal(literal(reader))}, '@',
                                {literal(literal(host))});
    PREPARE grant_statement FROM @envsync_grant;
    EXECUTE grant_statement;
    DEALLOCATE PREPARE grant_statement;
  END LOOP;
  CLOSE tables;
END"""
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS {_quoted(ADMIN_SCHEMA)}")
        cursor.execute(f"DROP PROCEDURE IF EXISTS {grant_procedure(schema)}")
        cursor.execute(body)
        cursor.execute(f"GRANT EXECUTE ON PROCEDURE {grant_procedure(schema)} TO %s@%s", (writer, host))
    return [f"CREATE PROCEDURE {grant_procedure(schema)} (SELECT for {reader} on {', '.join(wanted)})",
            f"GRANT EXECUTE ON PROCEDURE {grant_procedure(schema)} TO '{writer}'@'{host}'"]


def refresh_reader_grants(connection: Any, schema: str) -> bool:
    """As the writer: grant the reader the listed tables a migration just created. False where
    the env has no reader (no procedure: prod)."""
    try:
        with connection.cursor() as cursor:
            cursor.execute(f"CALL {grant_procedure(schema)}()")
    except pymysql.err.MySQLError as error:
        if error.args and error.args[0] in NO_SUCH_PROCEDURE:
            return False
        raise
    return True


def ensure_user(connection: Any, *, username: str, password: str, schema: str,
                privileges: Tuple[str, ...], require_tls: bool, host: str = "%") -> List[str]:
    """Create or update one user; returns the statements run (with the password masked)."""
    target = schema_pattern(schema)
    done: List[str] = []
    with connection.cursor() as cursor:
        cursor.execute("CREATE USER IF NOT EXISTS %s@%s IDENTIFIED BY %s", (username, host, password))
        done.append(f"CREATE USER IF NOT EXISTS '{username}'@'{host}' IDENTIFIED BY '***'")
        cursor.execute("ALTER USER %s@%s IDENTIFIED BY %s", (username, host, password))
        done.append(f"ALTER USER '{username}'@'{host}' IDENTIFIED BY '***'")
        if require_tls:
            cursor.execute("ALTER USER %s@%s REQUIRE SSL", (username, host))
            done.append(f"ALTER USER '{username}'@'{host}' REQUIRE SSL")
        # Converge: drop whatever the user holds on the schema, then grant exactly the list.
        try:
            cursor.execute(f"REVOKE ALL PRIVILEGES ON {target}.* FROM %s@%s", (username, host))
        except pymysql.err.MySQLError as error:
            if error.args[0] != NO_SUCH_GRANT:
                raise
        cursor.execute(f"GRANT {', '.join(privileges)} ON {target}.* TO %s@%s", (username, host))
        done.append(f"GRANT {', '.join(privileges)} ON {target}.* TO '{username}'@'{host}'")
    return done


def ensure_sync_users(connection: Any, *, schema: str, reader: Optional[Dict[str, str]], writer: Dict[str, str],
                      require_tls: bool = True, reader_tables: Sequence[str] = ()) -> Dict[str, List[str]]:
    """`reader`/`writer`: {"username", "password"} from their Secrets Manager secrets;
    `reader_tables`: the reference-data allow-list (config `refdata_tables`).

    reader is None in an env nothing reads from (prod): no read-only user is created there.
    Returns the statements run per user, and under "missing" the listed tables not granted yet.
    """
    if reader is not None and reader["username"] == writer["username"]:
        raise ValueError("the reader and the writer must be different users")
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE IF NOT EXISTS `{schema.replace('`', '``')}`")
    statements = {
        "writer": ensure_user(connection, username=writer["username"], password=writer["password"],
                              schema=schema, privileges=WRITER_PRIVILEGES, require_tls=require_tls),
    }
    if reader is not None:
        # The history table is envsync's own: created here so the reader can be granted it.
        with connection.cursor() as cursor:
            cursor.execute(f"USE {_quoted(schema)}")
        history.ensure_table(connection)
        statements["reader"] = ensure_user(connection, username=reader["username"], password=reader["password"],
                                           schema=schema, privileges=READER_PRIVILEGES, require_tls=require_tls)
        granted, statements["missing"] = ensure_reader_tables(
            connection, username=reader["username"], schema=schema, tables=reader_tables)
        statements["reader"] += granted
        statements["writer"] += ensure_grant_procedure(
            connection, schema=schema, reader=reader["username"], writer=writer["username"], tables=reader_tables)
    return statements
