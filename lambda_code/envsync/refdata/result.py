"""Reference-data sync, results side: what one call found and did per table (`TableResult`) and
in all (`SyncResult`), and the one log line per table (counts and drift, never row values)."""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

LOG = logging.getLogger("envsync.refdata")


@dataclass
class TableResult:
    table: str
    # in_sync | changed | drift | refused | partial | not_reached | unapproved (its delta is not the
    # approved one) | withheld (linked by a foreign key to an unapproved table)
    state: str = "pending"
    inserted: int = 0
    updated: int = 0
    deleted: int = 0
    chunks_compared: int = 0
    chunks_differing: int = 0
    checked_by: str = ""  # checksum_table | chunks ("" when not compared)
    sql: List[str] = field(default_factory=list)
    drift: List[Dict[str, Any]] = field(default_factory=list)
    error: str = ""  # why a refused table was not synchronised (nothing of its group was written)
    notice: str = ""  # `error` as notifications carry it: no server message (it can quote rows)
    rows: List[Dict[str, Any]] = field(default_factory=list)  # plan: first changed rows, old -> new
    writes: List[str] = field(default_factory=list)  # the columns the engine writes
    kept: List[str] = field(default_factory=list)  # excluded columns: kept on changed rows, default on new
    digest: str = ""  # the whole delta's digest (digest.py); "" when not compared whole

    def to_dict(self, with_sql: bool) -> Dict[str, Any]:
        data: Dict[str, Any] = {
            "table": self.table, "state": self.state, "inserted": self.inserted, "updated": self.updated,
            "deleted": self.deleted, "chunks_compared": self.chunks_compared,
            "chunks_differing": self.chunks_differing, "checked_by": self.checked_by, "drift": self.drift,
        }
        if self.digest:
            data["digest"] = self.digest
        if self.error:
            data["error"] = self.error
            data["notice"] = self.notice or self.error
        if self.writes:
            data["writes_columns"] = self.writes
        if self.kept:
            data["excluded_columns"] = {"columns": self.kept, "changed_rows": "keep the target's value",
                                        "new_rows": "get the column's default"}
        if with_sql:
            data["rows"] = self.rows
            data["sql"] = self.sql
        return data


@dataclass
class SyncResult:
    mode: str  # plan | apply
    status: str  # done | continue
    cursor: Optional[Dict[str, Any]]
    tables: List[TableResult]
    replication_lag_seconds: float

    @property
    def failed(self) -> List[TableResult]:
        """Tables not synchronised because of their shape or constraints (drift or refused)."""
        return [t for t in self.tables if t.state in ("drift", "refused")]

    @property
    def unapproved(self) -> List[TableResult]:
        """Tables not written because their delta is not the approved one (or linked to one that is not)."""
        return [t for t in self.tables if t.state in ("unapproved", "withheld")]

    @property
    def rows_changed(self) -> int:
        """Rows written (apply) or that would be written (plan)."""
        return sum(t.inserted + t.updated + t.deleted for t in self.tables)

    def to_dict(self) -> Dict[str, Any]:
        return {
            "mode": self.mode, "status": self.status, "cursor": self.cursor,
            "tables": [t.to_dict(with_sql=self.mode == "plan") for t in self.tables],
            "rows_changed": self.rows_changed,
            "replication_lag_seconds": round(self.replication_lag_seconds, 3),
        }


def log_table(result: TableResult, mode: str, seconds: float) -> None:
    # Counts and drift only: never row values (excluded columns are not even read).
    LOG.info(json.dumps({
        "event": "refdata_table", "mode": mode, "table": result.table, "state": result.state,
        "inserted": result.inserted, "updated": result.updated, "deleted": result.deleted,
        "chunks_compared": result.chunks_compared, "chunks_differing": result.chunks_differing,
        "checked_by": result.checked_by, "drift": result.drift, "seconds": round(seconds, 3),
    }, default=str))
