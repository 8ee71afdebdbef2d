"""Reference-data sync, for people: the first changed rows of a plan, old -> new.

Pure functions over rows already fetched (the plan fetches the first `PLAN_ROWS` changed keys
of a table from both sides); values are shown as SQL-like text, cut when long, binary as short
hex, so a plan of 50 000 updates stays a page long and never prints a secret column (excluded
columns are not read at all).
"""

from __future__ import annotations

import datetime as _dt
from decimal import Decimal
from typing import Any, Dict, List, Optional, Sequence, Tuple

from envsync.refdata.sql import exact_value

PLAN_ROWS = 10  # changed rows shown per table
VALUE_CHARS = 60
BINARY_BYTES = 16


def show_value(value: Any) -> str:
    """One value as short text: 'text' quoted and cut, 0x.. for binary, NULL, numbers exact."""
    if value is None:
        return "NULL"
    if isinstance(value, (bytes, bytearray)):
        raw = bytes(value)
        text = "0x" + raw[:BINARY_BYTES].hex()
        return text if len(raw) <= BINARY_BYTES else f"{text}... ({len(raw)} bytes)"
    if isinstance(value, float):
        return repr(value)
    if isinstance(value, (int, Decimal)):
        return str(value)
    if isinstance(value, (_dt.date, _dt.datetime, _dt.timedelta)):
        return f"'{exact_value(value)}'" if isinstance(value, _dt.timedelta) else f"'{value}'"
    text = str(value)
    if len(text) <= VALUE_CHARS:
        return repr(text)
    return f"{text[:VALUE_CHARS]!r}... ({len(text)} chars)"


def _sort_key(key: Tuple[Any, ...]) -> Tuple[Any, ...]:
    # keys of one table share their types; bytes, numbers and text each sort among themselves
    return tuple((type(part).__name__, part) for part in key)


def first_changed(insert_keys: Sequence[Tuple[Any, ...]], update_keys: Sequence[Tuple[Any, ...]],
                  delete_keys: Sequence[Tuple[Any, ...]], limit: int = PLAN_ROWS) -> List[Tuple[str, Tuple[Any, ...]]]:
    """The first `limit` (change, key) pairs in key order (byte/number order, not collation)."""
    tagged = ([("insert", k) for k in insert_keys] + [("update", k) for k in update_keys]
              + [("delete", k) for k in delete_keys])
    tagged.sort(key=lambda item: _sort_key(item[1]))
    return tagged[:limit]


def describe_rows(changes: Sequence[Tuple[str, Tuple[Any, ...], Optional[Tuple[Any, ...]], Optional[Tuple[Any, ...]]]],
                  key_names: Sequence[str], column_names: Sequence[str]) -> List[Dict[str, Any]]:
    """JSON-able entries from (change, key, old row, new row): per changed column [old, new] as text."""
    shown = []
    for change, key, old, new in changes:
        entry: Dict[str, Any] = {"change": change, "key": {n: _plain(v) for n, v in zip(key_names, key)}}
        if change != "delete" and new is not None:
            columns = {}
            for index, name in enumerate(column_names):
                if name in key_names:
                    continue
                before = None if old is None else old[index]
                if old is None or before != new[index] or type(before) is not type(new[index]):
                    columns[name] = [None if old is None else show_value(before), show_value(new[index])]
            entry["columns"] = columns
        shown.append(entry)
    return shown


def _plain(value: Any) -> Any:
    """A key part for JSON: integers as they are, anything else as its short text."""
    return value if isinstance(value, int) and not isinstance(value, bool) else show_value(value)


def row_line(entry: Dict[str, Any]) -> str:
    """`  ~ id=2: name 'Dollar' -> 'US dollar'` (insert: +, delete: -)."""
    mark = {"insert": "+", "update": "~", "delete": "-"}[entry["change"]]
    key = ", ".join(f"{n}={v}" for n, v in entry["key"].items())
    columns = entry.get("columns") or {}
    if entry["change"] == "update":
        detail = ", ".join(f"{n} {old} -> {new}" for n, (old, new) in columns.items())
    else:
        detail = ", ".join(f"{n}={new}" for n, (_old, new) in columns.items())
    return f"  {mark} {key}" + (f": {detail}" if detail else "")
