"""Create (idempotently) the sync reader and writer users of one app schema.

- reader: SELECT, SHOW VIEW on `<schema>`.* only (what an upstream exposes to its downstream);
- writer: DDL + DML on `<schema>`.* only, nothing on mysql.* or any other schema.
SQL common to MariaDB 10.11, MySQL 5.7 and 8.0: CREATE USER IF NOT EXISTS, then ALTER USER ...
IDENTIFIED BY so a rotated secret takes effect on the next run. Grants are additive and
idempotent; privileges outside the lists below are revoked so a re-run converges.
Run with the master user's credentials.
"""

from __future__ import annotations

from typing import Any, Dict, List, Optional, Tuple

import pymysql

NO_SUCH_GRANT = 1141

READER_PRIVILEGES = ("SELECT", "SHOW VIEW")
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
                      require_tls: bool = True) -> Dict[str, List[str]]:
    """`reader`/`writer`: {"username", "password"} from their Secrets Manager secrets.

    reader is None in an env nothing reads from (prod): no read-only user is created there.
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
        statements["reader"] = ensure_user(connection, username=reader["username"], password=reader["password"],
                                           schema=schema, privileges=READER_PRIVILEGES, require_tls=require_tls)
    return statements
