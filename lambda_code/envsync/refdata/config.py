"""Reference-data sync, configuration side: the allow-list (`RefdataConfig`, one `TableConfig` per
table), validated when read so a bad entry is refused with the key and value named, and what an
entry makes of a table's shape (`config_problem`, `table_plan`)."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any, Dict, List, Optional, Tuple

from envsync.errors import EnvsyncError
from envsync.refdata.diff import HASHES
from envsync.refdata.schema import RefdataError, TableShape
from envsync.refdata.sql import TablePlan

_IDENT = re.compile(r"^[^`\x00]{1,64}$")


class RefdataConfigError(EnvsyncError, ValueError):
    """The refdata configuration is invalid; the message names the key and the value.
    `key`: the top-level key at fault when it is not the table list (a caller that maps keys
    to its own files names the right one)."""

    quotes_no_data = True

    def __init__(self, message: str, key: Optional[str] = None) -> None:
        super().__init__(message)
        self.key = key


@dataclass(frozen=True)
class TableConfig:
    name: str
    exclude_columns: Tuple[str, ...] = ()
    where: Optional[str] = None
    updated_at_column: Optional[str] = None
    max_delete_share: Optional[float] = None  # None: the config's default
    min_delete_rows: Optional[int] = None  # None: the config's default


@dataclass(frozen=True)
class RefdataConfig:
    """The allow-list of reference tables for one env pair."""

    tables: Tuple[TableConfig, ...]
    # Rows per checksum chunk. 10 000 measured ~1.5x faster than 1 000 on 1 M rows with
    # clustered changes (fewer round trips); a differing chunk is re-read row by row, still cheap.
    chunk_rows: int = 10000
    # Row hash width. md5 (64 bits kept) by default: reference data is financial and small, and a
    # 32-bit CRC lets one changed row in ~4e9 go unnoticed. "crc32" (1.3-5x faster, and the
    # CHECKSUM TABLE shortcut for in-sync tables) is for large tables where speed matters more.
    hash: str = "md5"
    # The mass-delete guard, against an emptied or truncated upstream table reaching prod: a run
    # is refused (unless forced) when the upstream table (filtered) is empty while the target
    # has rows to delete, or when it would delete more than max_delete_share of the target's
    # (filtered) rows AND more than min_delete_rows rows. The count lets small lookup tables
    # be renamed or replaced (2 of 3 keys), which is routine reference-data work. A share of 1
    # turns the guard off.
    max_delete_share: float = 0.5
    min_delete_rows: int = 10
    # md5 mode: a table whose last full 128-bit pass is younger than this is confirmed in sync by
    # the servers' CHECKSUM TABLE (32 bits) when both sides' definitions and flavours match; the
    # full pass runs when it is due and whenever the checksums differ. 0: always the full pass.
    full_check_hours: float = 24.0
    # The state machine's fan-out: how many independent FK groups are applied at once (its Map's
    # MaxConcurrency). Each group holds one target connection and one transaction; 4 keeps a
    # db.r5.large's connections and I/O for the application.
    max_concurrency: int = 4

    @classmethod
    def from_dict(cls, d: Dict[str, Any]) -> RefdataConfig:
        if not isinstance(d, dict):
            raise RefdataConfigError(f"refdata config: expected a mapping, got {type(d).__name__}")
        unknown = sorted(set(d) - {"tables", "chunk_rows", "hash", "max_delete_share", "min_delete_rows",
                                   "full_check_hours", "max_concurrency"})
        if unknown:
            raise RefdataConfigError(f"refdata config: unknown key(s) {', '.join(unknown)}")
        tables_value = d.get("tables")
        if not isinstance(tables_value, list) or not tables_value:
            raise RefdataConfigError(f"tables: expected a non-empty list of tables, got {tables_value!r}")
        chunk_rows = d.get("chunk_rows", cls.chunk_rows)
        if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, int) or not 1 <= chunk_rows <= 100000:
            raise RefdataConfigError(f"chunk_rows: expected an integer from 1 to 100000, got {chunk_rows!r}")
        hash_name = d.get("hash", cls.hash)
        if hash_name not in HASHES:
            raise RefdataConfigError(f"hash: expected one of {', '.join(HASHES)}, got {hash_name!r}")
        share = _share(d.get("max_delete_share", cls.max_delete_share), "max_delete_share")
        min_rows = _row_count(d.get("min_delete_rows", cls.min_delete_rows), "min_delete_rows")
        full_check = d.get("full_check_hours", cls.full_check_hours)
        if isinstance(full_check, bool) or not isinstance(full_check, (int, float)) or not 0 <= full_check <= 8760:
            raise RefdataConfigError(
                f"full_check_hours: expected hours from 0 (always) to 8760 between full 128-bit passes, "
                f"got {full_check!r}")
        max_concurrency = d.get("max_concurrency", cls.max_concurrency)
        if isinstance(max_concurrency, bool) or not isinstance(max_concurrency, int) or not 1 <= max_concurrency <= 40:
            raise RefdataConfigError(
                f"max_concurrency: expected the number of table groups applied at once, 1 to 40, "
                f"got {max_concurrency!r}", key="max_concurrency")
        tables: List[TableConfig] = []
        for i, item in enumerate(tables_value):
            tables.append(_table_from_dict(item, f"tables[{i}]"))
        names = [t.name for t in tables]
        duplicates = sorted({n for n in names if names.count(n) > 1})
        if duplicates:
            raise RefdataConfigError(f"tables: listed more than once: {', '.join(duplicates)}")
        return cls(tables=tuple(tables), chunk_rows=chunk_rows, hash=hash_name, max_delete_share=share,
                   min_delete_rows=min_rows, full_check_hours=float(full_check), max_concurrency=max_concurrency)

    def delete_share(self, table: TableConfig) -> float:
        return self.max_delete_share if table.max_delete_share is None else table.max_delete_share

    def delete_rows(self, table: TableConfig) -> int:
        return self.min_delete_rows if table.min_delete_rows is None else table.min_delete_rows


def _share(value: Any, where: str) -> float:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 <= value <= 1:
        raise RefdataConfigError(f"{where}: expected a number from 0 to 1 (share of rows), got {value!r}")
    return float(value)


def _row_count(value: Any, where: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or not 0 <= value <= 1_000_000_000:
        raise RefdataConfigError(f"{where}: expected a whole number of rows from 0 to 1000000000, got {value!r}")
    return value


def _table_from_dict(item: Any, where: str) -> TableConfig:
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, dict):
        raise RefdataConfigError(f"{where}: expected a mapping with 'name', got {item!r}")
    unknown = sorted(set(item) - {"name", "exclude_columns", "where", "updated_at_column", "max_delete_share",
                                  "min_delete_rows"})
    if unknown:
        raise RefdataConfigError(f"{where}: unknown key(s) {', '.join(unknown)}")
    name = item.get("name")
    if not isinstance(name, str) or not _IDENT.match(name):
        raise RefdataConfigError(f"{where}.name: expected a table name, got {name!r}")
    excludes = item.get("exclude_columns", [])
    if not isinstance(excludes, list) or not all(isinstance(c, str) and _IDENT.match(c) for c in excludes):
        raise RefdataConfigError(f"{where}.exclude_columns: expected a list of column names, got {excludes!r}")
    row_filter = item.get("where")
    if row_filter is not None:
        problem = filter_problem(row_filter) if isinstance(row_filter, str) else "not a string"
        if problem:
            raise RefdataConfigError(
                f"{where}.where (table {name!r}): expected one SQL condition: {problem}; got {row_filter!r}"
            )
    updated_at = item.get("updated_at_column")
    if updated_at is not None and (not isinstance(updated_at, str) or not _IDENT.match(updated_at)):
        raise RefdataConfigError(f"{where}.updated_at_column: expected a column name, got {updated_at!r}")
    if updated_at is not None and updated_at in excludes:
        raise RefdataConfigError(f"{where}.updated_at_column: {updated_at!r} is also in exclude_columns")
    share = _share(item["max_delete_share"], f"{where}.max_delete_share") if "max_delete_share" in item else None
    min_rows = _row_count(item["min_delete_rows"], f"{where}.min_delete_rows") if "min_delete_rows" in item else None
    return TableConfig(name=name, exclude_columns=tuple(excludes), where=row_filter, updated_at_column=updated_at,
                       max_delete_share=share, min_delete_rows=min_rows)


def filter_problem(text: str) -> str:
    """Why `text` is not one self-contained boolean expression ("" when it is).

    The engine wraps the filter as `AND (<filter>)` after its own key-range predicate, so the
    filter must not close that parenthesis, end the statement or comment out the rest. String
    literals and quoted identifiers are skipped as units (a `#`, `;` or `%` inside is just text).
    Backslashes are refused: with and without NO_BACKSLASH_ESCAPES a literal would end in
    different places.
    """
    if not text.strip():
        return "it is empty"
    if "\x00" in text or "\\" in text:
        return "NUL bytes and backslashes are not accepted"
    depth, i = 0, 0
    while i < len(text):
        char = text[i]
        if char in "'\"`":
            end = i + 1
            while True:
                end = text.find(char, end)
                if end < 0:
                    return f"the {char} opened at offset {i} is not closed"
                if text[end + 1:end + 2] == char:  # doubled quote inside the literal
                    end += 2
                    continue
                break
            i = end + 1
            continue
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
            if depth < 0:
                return f"the ')' at offset {i} closes a parenthesis the condition did not open"
        elif char == ";" or char == "#" or text.startswith(("--", "/*", "*/"), i):
            return f"statement separators and comments are not accepted (offset {i})"
        i += 1
    if depth:
        return f"{depth} parenthesis(es) not closed"
    return ""




def config_problem(source: TableShape, target: TableShape, table_config: TableConfig) -> str:
    """What in the allow-list entry cannot work with these shapes ("" when nothing)."""
    name = table_config.name
    for column in table_config.exclude_columns:
        if column not in source.columns and column not in target.columns:
            return (f"table {name!r}: exclude_columns names {column!r}, which is a column on neither side "
                    f"(columns: {', '.join(source.columns)}); a typo would copy the column meant to be excluded")
        kept = target.columns.get(column)
        if kept is not None and not kept.has_default:
            return (f"table {name!r}: excluded column {column!r} is NOT NULL without a default on the target, "
                    "so rows cannot be inserted without it; give it a default or stop excluding it")
    return ""


def table_plan(shape: TableShape, table_config: TableConfig, target: Optional[TableShape] = None) -> TablePlan:
    """The SQL pieces for one table, from the source's shape; the target's shape (when given)
    says which excluded columns hold target-owned values that changed rows keep."""
    excluded = set(table_config.exclude_columns)
    bad = [c for c in shape.primary_key if c in excluded]
    if bad:
        raise RefdataError(f"table {shape.name!r}: primary key column(s) {', '.join(bad)} cannot be excluded")
    if table_config.updated_at_column and table_config.updated_at_column not in shape.columns:
        raise RefdataError(
            f"table {shape.name!r}: updated_at_column {table_config.updated_at_column!r} does not exist"
        )
    columns = [c for c in shape.columns.values() if c.name not in excluded and not c.generated]
    key = [shape.columns[name] for name in shape.primary_key]
    kept = [target.columns[name] for name in table_config.exclude_columns
            if target is not None and name in target.columns and not target.columns[name].generated]
    return TablePlan(name=shape.name, columns=columns, key=key, where=table_config.where, kept=kept)

