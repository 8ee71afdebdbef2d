"""The connection contract: what a connection string holds and how every module connects.

The SSM SecureString `/envsync/<env>/db/<user>/connection` holds `ConnectionInfo` as JSON. The
password is never in it: it lives in the Secrets Manager secret named by `secret_arn`.
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Dict, Optional
from urllib.parse import parse_qs, unquote, urlparse

import pymysql
from pymysql.constants import ER

from envsync.errors import EnvsyncError

CA_BUNDLE_ENV = "ENVSYNC_CA_BUNDLE"
# The RDS CA bundle shipped inside the Lambda package (placed there by the packaging hook).
PACKAGED_CA_BUNDLE = Path(__file__).resolve().parents[1] / "certs" / "rds-global-bundle.pem"


class ConnectionConfigError(EnvsyncError, ValueError):
    """A connection string or URL that does not describe a database connection."""

    quotes_no_data = True


class DatabaseUnreachable(EnvsyncError, RuntimeError):
    """The database did not accept a connection (network, TLS or credentials)."""

    quotes_no_data = True

    def __init__(self, message: str, code: Optional[int] = None):
        super().__init__(message)
        self.code = code  # the server's error number, e.g. ACCESS_DENIED


# ER_ACCESS_DENIED_ERROR: wrong user or password (also what a rotation in flight looks like).
ACCESS_DENIED = 1045


@dataclass(frozen=True)
class ConnectionInfo:
    host: str
    port: int
    database: str
    user: str
    secret_arn: str
    tls: bool

    @classmethod
    def from_json(cls, text: str) -> ConnectionInfo:
        try:
            data = json.loads(text)
        except ValueError as error:
            raise ConnectionConfigError(f"connection string is not JSON: {error}") from None
        if not isinstance(data, dict):
            raise ConnectionConfigError("connection string must be a JSON object")
        return cls.from_dict(data)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> ConnectionInfo:
        if "password" in data:
            raise ConnectionConfigError(
                "connection string holds a 'password' key: passwords belong in Secrets Manager "
                "(reference the secret by 'secret_arn'), never in the connection string"
            )
        expected = {f.name for f in fields(cls)}
        missing = sorted(expected - set(data))
        extra = sorted(set(data) - expected)
        if missing or extra:
            parts = []
            if missing:
                parts.append(f"missing keys {missing}")
            if extra:
                parts.append(f"unknown keys {extra}")
            raise ConnectionConfigError(f"connection string: {', '.join(parts)}")
        try:
            port = int(data["port"])
        except (TypeError, ValueError):
            raise ConnectionConfigError(f"connection string: port {data['port']!r} is not a number") from None
        if not isinstance(data["tls"], bool):
            raise ConnectionConfigError("connection string: tls must be true or false")
        for key in ("host", "database", "user", "secret_arn"):
            if not isinstance(data[key], str):
                raise ConnectionConfigError(f"connection string: {key} must be a string")
        return cls(host=data["host"], port=port, database=data["database"], user=data["user"],
                   secret_arn=data["secret_arn"], tls=data["tls"])

    @property
    def address(self) -> str:
        return f"{self.host}:{self.port}"


@dataclass(frozen=True)
class UrlTarget:
    """What `parse_url` returns: a ConnectionInfo, its password and the CA bundle, if any."""

    info: ConnectionInfo
    password: str
    ca_bundle: Optional[str]


def parse_url(url: str) -> UrlTarget:
    """`mysql://user:pass@host:port/db?tls=true&ca=/path/ca.pem` (for the CLI)."""
    parsed = urlparse(url)
    if parsed.scheme not in ("mysql", "mariadb"):
        raise ConnectionConfigError(f"not a mysql:// URL: {parsed.scheme or url!r}")
    database = unquote(parsed.path.lstrip("/"))
    if not parsed.hostname or not database or not parsed.username:
        raise ConnectionConfigError("URL needs user, host and database: mysql://user:pass@host:port/db")
    query = {key: values[-1] for key, values in parse_qs(parsed.query).items()}
    unknown = sorted(set(query) - {"tls", "ca"})
    if unknown:
        raise ConnectionConfigError(f"URL: unknown options {unknown} (known: tls, ca)")
    tls = query.get("tls", "true" if "ca" in query else "false").lower() in ("1", "true", "yes")
    info = ConnectionInfo(host=parsed.hostname, port=parsed.port or 3306, database=database,
                          user=unquote(parsed.username), secret_arn="", tls=tls)
    return UrlTarget(info=info, password=unquote(parsed.password or ""), ca_bundle=query.get("ca"))


def resolve_ca_bundle(ca_bundle: Optional[str]) -> str:
    """Explicit bundle, else $ENVSYNC_CA_BUNDLE, else the RDS bundle shipped in the package."""
    candidate = ca_bundle or os.environ.get(CA_BUNDLE_ENV) or str(PACKAGED_CA_BUNDLE)
    if not Path(candidate).is_file():
        raise ConnectionConfigError(
            f"TLS is required but the CA bundle {candidate} does not exist; set {CA_BUNDLE_ENV} "
            "or pass a bundle (the RDS global bundle in AWS, the stand-ins' CA locally)"
        )
    return candidate


def connect(
    info: ConnectionInfo,
    password: str,
    *,
    ca_bundle: Optional[str] = None,
    autocommit: bool = True,
    connect_timeout: int = 10,
    read_timeout: Optional[int] = None,
    env_name: Optional[str] = None,
) -> pymysql.connections.Connection:
    """Connect with TLS verified against the CA bundle when `info.tls`; clear error otherwise."""
    ssl = {"ca": resolve_ca_bundle(ca_bundle), "check_hostname": True} if info.tls else None
    where = f"{info.user}@{info.address}/{info.database}" + (f" ({env_name})" if env_name else "")
    try:
        return pymysql.connect(
            host=info.host, port=info.port, user=info.user, password=password,
            database=info.database, ssl=ssl, autocommit=autocommit, charset="utf8mb4",
            connect_timeout=connect_timeout, read_timeout=read_timeout,
        )
    except pymysql.err.OperationalError as error:
        code = error.args[0] if error.args else "?"
        message = error.args[1] if len(error.args) > 1 else str(error)
        raise DatabaseUnreachable(f"cannot connect to {where}: [{code}] {message}",
                                  code if isinstance(code, int) else None) from None
    except (OSError, pymysql.err.Error) as error:
        raise DatabaseUnreachable(f"cannot connect to {where}: {error}") from None


CLIENT_ERRORS = (2000, 2999)  # CR_* codes: raised by the client (connection lost, refused ...)
_ERROR_NAMES = {value: name for name, value in vars(ER).items() if isinstance(value, int)}


def server_error_notice(error: BaseException) -> str:
    """`IntegrityError: MySQL error 1062 (DUP_ENTRY)`: what failed, without the server's
    message, which can quote row values ("Duplicate entry ..."). Notifications carry this; the
    full text stays in the env's history table and its encrypted logs."""
    args = getattr(error, "args", ())
    code = args[0] if args else None
    if code is None:
        return type(error).__name__
    if isinstance(code, int) and CLIENT_ERRORS[0] <= code <= CLIENT_ERRORS[1]:
        return str(error)  # the client library's own words ("Lost connection ..."): no data in them
    name = _ERROR_NAMES.get(code) if isinstance(code, int) else None
    return f"{type(error).__name__}: MySQL error {code}" + (f" ({name})" if name else "")


_RECORDED_SERVER_ERROR = re.compile(r"(?P<label>[^\n]*? statement \d+ \(line \d+\)): \[(?P<code>\d+)\] ")


def recorded_error_notice(error_text: Optional[str]) -> Optional[str]:
    """`V4__x.sql statement 1 (line 3): MySQL error 1061 (DUP_KEYNAME)` from a history row's
    error text when the runner recorded a server error there (`<label>: [code] <server
    message>`); None when the text holds no server message (the runner's own words)."""
    match = _RECORDED_SERVER_ERROR.match(error_text or "")
    if not match:
        return None
    code = int(match.group("code"))
    return f"{match.group('label')}: MySQL error {code}" + (f" ({_ERROR_NAMES[code]})" if code in _ERROR_NAMES else "")


# A server error quoted in free text: `[1062] Duplicate entry ...` (the runner's form, to the end
# of the line) or pymysql's `(1062, "Duplicate entry ...")`.
_QUOTED_SERVER_ERROR = re.compile(r"\[(?P<code>\d{4})\] [^\n]*|\((?P<tuple_code>\d{4}), (?P<q>['\"]).*?(?P=q)\)")


def scrub_server_text(text: str) -> str:
    """`text` with every quoted server message replaced by its code and name, as notices carry
    it (`MySQL error 1062 (DUP_ENTRY)`): the server's own words can quote row values."""

    def notice(match: re.Match) -> str:
        code = int(match.group("code") or match.group("tuple_code"))
        return f"MySQL error {code}" + (f" ({_ERROR_NAMES[code]})" if code in _ERROR_NAMES else "")

    return _QUOTED_SERVER_ERROR.sub(notice, text)
