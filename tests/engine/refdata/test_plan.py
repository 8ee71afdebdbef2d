"""A plan a person can read: per table a one-line summary, then the first changed rows in key
order with the changed columns as old -> new (long values cut, binary as short hex); --json
carries the same for machines."""

from __future__ import annotations

import json
from pathlib import Path

from envsync.refdata import plan
from tests.engine.conftest import Pair, config, table_result
from tests.engine.refdata.test_guards import run_cli


def _currency(pair: Pair) -> None:
    pair.both("CREATE TABLE currency (id INT PRIMARY KEY, code CHAR(3), name VARCHAR(300), logo VARBINARY(64))")
    pair.run(pair.source, "INSERT INTO currency VALUES (1, 'EUR', 'Euro', NULL), (2, 'USD', 'US dollar', 0x00ff10), "
             f"(3, 'JPY', '{'y' * 200}', NULL), (5, 'CHF', 'Franc', NULL)")
    pair.run(pair.target, "INSERT INTO currency VALUES (1, 'EUR', 'Euro', NULL), (2, 'USD', 'Dollar', 0x00), "
             "(3, 'JPY', 'Yen', NULL), (9, 'XXX', 'stale', NULL)")


def test_plan_lists_changed_rows_in_key_order_with_old_and_new_values(pair: Pair) -> None:
    _currency(pair)
    entry = table_result(plan(pair.source, pair.target, config("currency")), "currency")
    rows = entry["rows"]
    assert [(r["change"], r["key"]) for r in rows] == [
        ("update", {"id": 2}), ("update", {"id": 3}), ("insert", {"id": 5}), ("delete", {"id": 9})]
    assert rows[0]["columns"] == {"name": ["'Dollar'", "'US dollar'"], "logo": ["0x00", "0x00ff10"]}
    old, new = rows[1]["columns"]["name"]
    assert old == "'Yen'" and new.startswith("'yyyy") and "200 chars" in new and len(new) < 120
    assert rows[2]["columns"]["code"] == [None, "'CHF'"]


def test_plan_text_is_one_summary_line_per_table_then_the_rows(pair: Pair, capsys, tmp_path: Path) -> None:
    _currency(pair)
    code, out = run_cli(pair, capsys, tmp_path, {"tables": ["currency"]}, command="plan")
    assert code == 1
    lines = out.splitlines()
    assert lines[0].startswith("currency: changed, +1 ~2 -1")
    assert "  ~ id=2: name 'Dollar' -> 'US dollar', logo 0x00 -> 0x00ff10" in lines
    assert "  - id=9" in lines and any(line.startswith("  + id=5: ") for line in lines)
    code, out = run_cli(pair, capsys, tmp_path, {"tables": ["currency"]}, "--json", command="plan")
    assert json.loads(out)["tables"][0]["rows"][0]["key"] == {"id": 2}
