"""Where each simulated account's database really is: the local MariaDB stand-in.

The mapping is given to the launcher at start, one entry per env:
`{"dev": {"account_id": "111111111111", "host": "127.0.0.1", "port": 33061}, ...}`, optionally
with `admin_user`/`admin_password` (and `ca_bundle` for TLS): then creating a cluster does on
the stand-in what Aurora does on a new cluster, i.e. creates the master user with the
password of the managed master secret, and the initial database (`DatabaseName`).
A cluster created in an account reports that env's host and port as its endpoints, so the
connection strings the stacks write point at the local databases.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

ACCOUNT_ID = re.compile(r"^\d{12}$")
CONNECT_TIMEOUT_SECONDS = 2.0


class EndpointMapError(ValueError):
    """The endpoint mapping given at start is malformed."""


class EndpointUnavailable(RuntimeError):
    """No stand-in is mapped to an account, or it does not accept connections."""


@dataclass(frozen=True)
class DatabaseEndpoint:
    env: str
    account_id: str
    host: str
    port: int
    admin_user: Optional[str] = None
    admin_password: str = ""
    ca_bundle: Optional[str] = None
    # Where the cluster's replica answers (same port), for a cluster with a reader instance.
    reader_host: Optional[str] = None


_BY_ACCOUNT: Dict[str, DatabaseEndpoint] = {}


def parse(mapping: Mapping[str, Any]) -> Dict[str, DatabaseEndpoint]:
    """Validate the mapping; key the result by account id."""
    if not isinstance(mapping, Mapping):
        raise EndpointMapError(f"endpoint mapping must be an object {{env: {{...}}}}, got {mapping!r}")
    by_account: Dict[str, DatabaseEndpoint] = {}
    for env, entry in mapping.items():
        where = f"endpoint mapping entry {env!r}"
        if not isinstance(entry, Mapping):
            raise EndpointMapError(f"{where}: must be an object with account_id, host, port")
        missing = [key for key in ("account_id", "host", "port") if key not in entry]
        if missing:
            raise EndpointMapError(f"{where}: missing {', '.join(missing)}")
        account_id = str(entry["account_id"])
        if not ACCOUNT_ID.match(account_id):
            raise EndpointMapError(f"{where}: account_id {account_id!r} is not 12 digits")
        try:
            port = int(entry["port"])
        except (TypeError, ValueError):
            raise EndpointMapError(f"{where}: port {entry['port']!r} is not a number") from None
        if not 0 < port < 65536:
            raise EndpointMapError(f"{where}: port {port} is out of range")
        if account_id in by_account:
            raise EndpointMapError(
                f"{where}: account {account_id} is already mapped to env {by_account[account_id].env!r}"
            )
        by_account[account_id] = DatabaseEndpoint(
            str(env), account_id, str(entry["host"]), port,
            admin_user=entry.get("admin_user"), admin_password=str(entry.get("admin_password") or ""),
            ca_bundle=entry.get("ca_bundle"), reader_host=entry.get("reader_host"))
    return by_account


def configure(mapping: Mapping[str, Any]) -> None:
    parsed = parse(mapping)
    _BY_ACCOUNT.clear()
    _BY_ACCOUNT.update(parsed)


def for_account(account_id: str) -> DatabaseEndpoint:
    """The reachable stand-in of an account, or a clear error (never a hang)."""
    endpoint = _BY_ACCOUNT.get(account_id)
    if endpoint is None:
        known = ", ".join(f"{e.env}={e.account_id}" for e in _BY_ACCOUNT.values()) or "none"
        raise EndpointUnavailable(
            f"no local database is mapped to account {account_id} (mapped: {known}); "
            "add it to the endpoints file given to the moto server (--endpoints)"
        )
    try:
        with socket.create_connection((endpoint.host, endpoint.port), timeout=CONNECT_TIMEOUT_SECONDS):
            pass
    except OSError as error:
        raise EndpointUnavailable(
            f"the local database of env {endpoint.env!r} (account {account_id}) at "
            f"{endpoint.host}:{endpoint.port} does not accept connections ({error}); "
            "start the MariaDB stand-ins first"
        ) from None
    return endpoint


def provision_master_user(endpoint: DatabaseEndpoint, username: str, password: str,
                          database: Optional[str]) -> None:
    """What Aurora does on a new cluster: the master user (all privileges) and DatabaseName."""
    if not endpoint.admin_user:
        return
    connection = admin_connection(endpoint)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s", (username, password))
            cursor.execute("ALTER USER %s@'%%' IDENTIFIED BY %s", (username, password))
            cursor.execute(f"GRANT ALL PRIVILEGES ON *.* TO {_quote(username)}@'%' WITH GRANT OPTION")
            if database:
                cursor.execute(f"CREATE DATABASE IF NOT EXISTS {_quote(database)} "
                               "CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    finally:
        connection.close()


def admin_connection(endpoint: DatabaseEndpoint, host: Optional[str] = None) -> Any:
    """The stand-in's admin session (autocommit) on the writer, or on `host` (the replica)."""
    import pymysql  # the moto venv has it; only needed when a mapping names an admin

    host = host or endpoint.host
    try:
        return pymysql.connect(
            host=host, port=endpoint.port, user=endpoint.admin_user or "root",
            password=endpoint.admin_password, connect_timeout=CONNECT_TIMEOUT_SECONDS,
            ssl={"ca": endpoint.ca_bundle} if endpoint.ca_bundle else None, autocommit=True)
    except pymysql.MySQLError as error:
        raise EndpointUnavailable(
            f"the local database of env {endpoint.env!r} at {host}:{endpoint.port} refused "
            f"the admin user {endpoint.admin_user!r}: {error}") from None


def _quote(identifier: str) -> str:
    return "`" + identifier.replace("`", "``") + "`"
