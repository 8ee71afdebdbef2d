"""`envsync_schema_history`: what each environment applied, statement by statement.

MySQL DDL commits implicitly, so a script is not atomic: the row records progress after every
statement (`statements_applied`). States:
- running: a run is executing statement `statements_applied + 1`, or died while doing so;
- failed: statement `statements_applied + 1` raised an error (see `error_text`);
- pending: a human ran `repair`; the next apply resumes at statement `statements_applied + 1`;
- success: every statement ran.
The script body is kept so downstream environments promote exactly what the upstream applied,
even after the S3 lifecycle deleted the object. The proof of origin (origin.py: dev's signature
over version, name, checksum and S3 version id, the signing key and algorithm) is kept with it;
a downstream env copies it unchanged.
"""

from __future__ import annotations

import datetime
import os
import socket
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from envsync.errors import EnvsyncError
from envsync.migrations.origin import Proof
from envsync.migrations.scripts import (
    HISTORY_TABLE,
    MAX_DESCRIPTION,
    MAX_SCRIPT_NAME,
    MAX_VERSION,
    Script,
    load_script,
    version_key,
)

TABLE = HISTORY_TABLE
RUNNING, FAILED, PENDING, SUCCESS = "running", "failed", "pending", "success"

# Portable across MySQL 5.7, 8.0 and MariaDB 10.11.
CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS `{TABLE}` (
  installed_rank INT NOT NULL AUTO_INCREMENT,
  version VARCHAR({MAX_VERSION}) NOT NULL,
  description VARCHAR({MAX_DESCRIPTION}) NOT NULL,
  script_name VARCHAR({MAX_SCRIPT_NAME}) NOT NULL,
  checksum CHAR(64) NOT NULL,
  statement_count INT NOT NULL,
  statements_applied INT NOT NULL DEFAULT 0,
  state VARCHAR(16) NOT NULL,
  success TINYINT(1) NOT NULL DEFAULT 0,
  error_text TEXT NULL,
  applied_at DATETIME(6) NULL,
  duration_ms BIGINT NULL,
  applied_by VARCHAR(255) NOT NULL,
  source_env VARCHAR(64) NOT NULL,
  source_uploaded_at DATETIME(6) NULL,
  script_body LONGBLOB NOT NULL,
  updated_at DATETIME(6) NOT NULL,
  source_version_id VARCHAR(1024) NULL,
  signing_key_id VARCHAR(2048) NULL,
  signing_algorithm VARCHAR(32) NULL,
  origin_signature VARBINARY(1024) NULL,
  PRIMARY KEY (installed_rank),
  UNIQUE KEY uq_envsync_history_version (version)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""

BASE_COLUMNS = (
    "installed_rank", "version", "description", "script_name", "checksum", "statement_count",
    "statements_applied", "state", "success", "error_text", "applied_at", "duration_ms", "applied_by",
    "source_env", "source_uploaded_at", "script_body", "updated_at",
)
# Added with proof of origin: `ensure_table` adds them to an older table (NULL: unsigned), and
# `read_rows` reads an upstream that has not been upgraded yet as unsigned.
ORIGIN_COLUMNS = (
    ("source_version_id", "VARCHAR(1024) NULL"),
    ("signing_key_id", "VARCHAR(2048) NULL"),
    ("signing_algorithm", "VARCHAR(32) NULL"),
    ("origin_signature", "VARBINARY(1024) NULL"),
)


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.timezone.utc).replace(tzinfo=None)


def _to_epoch(value: Optional[datetime.datetime]) -> Optional[float]:
    if value is None:
        return None
    return value.replace(tzinfo=datetime.timezone.utc).timestamp()


def _from_epoch(value: Optional[float]) -> Optional[datetime.datetime]:
    if value is None:
        return None
    return datetime.datetime.fromtimestamp(value, datetime.timezone.utc).replace(tzinfo=None)


def default_applied_by(connection: Any) -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT CURRENT_USER()")
        user = cursor.fetchone()[0]
    where = os.environ.get("AWS_LAMBDA_FUNCTION_NAME") or socket.gethostname()
    return f"{user} via envsync on {where}"


@dataclass(frozen=True)
class HistoryRow:
    installed_rank: int
    version: str
    description: str
    script_name: str
    checksum: str
    statement_count: int
    statements_applied: int
    state: str
    success: bool
    error_text: Optional[str]
    applied_at: Optional[datetime.datetime]
    duration_ms: Optional[int]
    applied_by: str
    source_env: str
    source_uploaded_at: Optional[datetime.datetime]
    script_body: bytes
    updated_at: datetime.datetime
    proof: Optional[Proof] = None  # dev's signature (origin.py); None: unsigned

    def script(self) -> Script:
        """The script exactly as it was applied (statements re-split from the stored body)."""
        return load_script(self.script_name, self.script_body, _to_epoch(self.source_uploaded_at))

    def to_dict(self, with_body: bool = False) -> Dict[str, Any]:
        data = {
            "version": self.version, "description": self.description,
            "script_name": self.script_name, "checksum": self.checksum,
            "statement_count": self.statement_count, "statements_applied": self.statements_applied,
            "state": self.state, "success": self.success, "error": self.error_text,
            "applied_at": self.applied_at.isoformat() if self.applied_at else None,
            "duration_ms": self.duration_ms, "applied_by": self.applied_by,
            "source_env": self.source_env, "signed_by": self.proof.key_id if self.proof else None,
        }
        if with_body:
            data["script_body"] = self.script_body.decode("utf-8", "replace")
        return data


def ensure_table(connection: Any) -> None:
    """Create the table, or add the columns an older release did not have (nothing is lost:
    the new columns are NULL, an unsigned row)."""
    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLE)
    present = _columns(connection)
    missing = [f"ADD COLUMN {name} {definition}" for name, definition in ORIGIN_COLUMNS if name not in present]
    if missing:
        with connection.cursor() as cursor:
            cursor.execute(f"ALTER TABLE `{TABLE}` {', '.join(missing)}")


def _columns(connection: Any) -> set:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COLUMN_NAME FROM information_schema.columns WHERE table_schema = DATABASE() "
            "AND table_name = %s", (TABLE,))
        return {str(row[0]).lower() for row in cursor.fetchall()}


def table_exists(connection: Any) -> bool:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT COUNT(*) FROM information_schema.tables WHERE table_schema = DATABASE() "
            "AND table_name = %s", (TABLE,),
        )
        return bool(cursor.fetchone()[0])


def read_rows(connection: Any) -> List[HistoryRow]:
    """All rows of the connection's schema, in version order; [] when the table is absent."""
    if not table_exists(connection):
        return []
    present = _columns(connection)
    origin = ", ".join(name if name in present else f"NULL AS {name}" for name, _ in ORIGIN_COLUMNS)
    with connection.cursor() as cursor:
        cursor.execute(f"SELECT {', '.join(BASE_COLUMNS)}, {origin} FROM `{TABLE}`")
        rows = [
            HistoryRow(
                installed_rank=r[0], version=r[1], description=r[2], script_name=r[3],
                checksum=r[4], statement_count=r[5], statements_applied=r[6], state=r[7],
                success=bool(r[8]), error_text=r[9], applied_at=r[10], duration_ms=r[11],
                applied_by=r[12], source_env=r[13], source_uploaded_at=r[14],
                script_body=bytes(r[15]), updated_at=r[16], proof=_proof(r[17:21]),
            )
            for r in cursor.fetchall()
        ]
    return sorted(rows, key=lambda row: version_key(row.version))


def _proof(values: tuple) -> Optional[Proof]:
    version_id, key_id, algorithm, signature = values
    if not (key_id and algorithm and signature):
        return None
    return Proof(source_version_id=version_id or "", key_id=key_id, algorithm=algorithm,
                 signature=bytes(signature))


class HistoryWriteError(EnvsyncError, RuntimeError):
    """A history write that changed no row: the run cannot prove what it recorded."""


def _write(connection: Any, sql: str, args: tuple, version: str, what: str) -> None:
    """One history write that must change exactly one row (`updated_at` changes every time,
    so a matched row is also a changed row)."""
    with connection.cursor() as cursor:
        changed = cursor.execute(sql, args)
    if changed != 1:
        raise HistoryWriteError(
            f"{TABLE}: recording {what} of version {version} changed {changed} rows, not 1; the "
            "history no longer says where this env stands. Run `envsync status` and check by hand"
        )


def _proof_values(proof: Optional[Proof]) -> tuple:
    if proof is None:
        return (None, None, None, None)
    return (proof.source_version_id, proof.key_id, proof.algorithm, proof.signature)


def start(connection: Any, script: Script, *, applied_by: str, source_env: str,
          existing: Optional[HistoryRow], proof: Optional[Proof] = None) -> None:
    """Mark `script` running (a new row, or a repaired row resuming where it stopped), with its
    proof of origin. A row stored under another spelling of the version (`1.0` by an older
    release) takes the canonical one, so every later write finds it under `script.version`."""
    now = _now()
    values = (script.description, script.name, script.checksum, len(script.statements),
              applied_by, source_env, _from_epoch(script.uploaded_at), script.body, now,
              *_proof_values(proof))
    if existing is None:
        _write(connection,
               f"INSERT INTO `{TABLE}` (description, script_name, checksum, statement_count, "
               "applied_by, source_env, source_uploaded_at, script_body, updated_at, "
               "source_version_id, signing_key_id, signing_algorithm, origin_signature, version, "
               "statements_applied, state, success) "
               "VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, 0, %s, 0)",
               (*values, script.version, RUNNING), script.version, "the start")
    else:
        _write(connection,
               f"UPDATE `{TABLE}` SET description = %s, script_name = %s, checksum = %s, "
               "statement_count = %s, applied_by = %s, source_env = %s, source_uploaded_at = %s, "
               "script_body = %s, updated_at = %s, source_version_id = %s, signing_key_id = %s, "
               "signing_algorithm = %s, origin_signature = %s, state = %s, error_text = NULL, "
               "version = %s WHERE version = %s",
               (*values, RUNNING, script.version, existing.version), script.version, "the start")


def set_proof(connection: Any, version: str, proof: Proof) -> None:
    """Record the proof of origin of a row applied before it existed (dev re-signs its history;
    a downstream env copies the upstream's proof of a script it applied with the same checksum)."""
    _write(connection,
           f"UPDATE `{TABLE}` SET source_version_id = %s, signing_key_id = %s, signing_algorithm = %s, "
           "origin_signature = %s, updated_at = %s WHERE version = %s AND state = %s",
           (*_proof_values(proof), _now(), version, SUCCESS), version, "the proof of origin")


def record_progress(connection: Any, version: str, statements_applied: int) -> None:
    _write(connection,
           f"UPDATE `{TABLE}` SET statements_applied = %s, updated_at = %s WHERE version = %s",
           (statements_applied, _now(), version), version, f"statement {statements_applied}")


def finish(connection: Any, version: str, *, duration_ms: int) -> None:
    _write(connection,
           f"UPDATE `{TABLE}` SET state = %s, success = 1, applied_at = %s, duration_ms = %s, "
           "updated_at = %s, error_text = NULL WHERE version = %s",
           (SUCCESS, _now(), duration_ms, _now(), version), version, "success")


def fail(connection: Any, version: str, *, error_text: str, duration_ms: int,
         statements_applied: int) -> None:
    """Statement `statements_applied + 1` raised, or its work was rolled back."""
    _write(connection,
           f"UPDATE `{TABLE}` SET state = %s, success = 0, error_text = %s, duration_ms = %s, "
           "statements_applied = %s, updated_at = %s WHERE version = %s",
           (FAILED, error_text, duration_ms, statements_applied, _now(), version), version, "the failure")


def interrupted(connection: Any, version: str, *, error_text: str, duration_ms: int) -> None:
    """The script's session died mid-statement: the row stays `running` (in doubt), with why."""
    _write(connection,
           f"UPDATE `{TABLE}` SET error_text = %s, duration_ms = %s, updated_at = %s "
           "WHERE version = %s AND state = %s",
           (error_text, duration_ms, _now(), version, RUNNING), version, "the interruption")


def mark_pending(connection: Any, version: str, *, statements_applied: int, note: str,
                 statement_count: Optional[int] = None) -> None:
    """`repair`: a human checked the schema; resume at statement `statements_applied + 1`
    (of `statement_count`, when the script now splits into another count)."""
    _write(connection,
           f"UPDATE `{TABLE}` SET state = %s, success = 0, statements_applied = %s, "
           "statement_count = COALESCE(%s, statement_count), error_text = %s, updated_at = %s "
           "WHERE version = %s",
           (PENDING, statements_applied, statement_count, note, _now(), version), version,
           "the resume point")


def delete(connection: Any, version: str) -> None:
    """`repair` of an attempt that applied nothing: the version is free again."""
    _write(connection, f"DELETE FROM `{TABLE}` WHERE version = %s AND state <> %s",
           (version, SUCCESS), version, "the removal")
