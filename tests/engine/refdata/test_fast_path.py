"""md5 mode's fast path: between full 128-bit passes (default: daily), an in-sync table is
confirmed by the servers' CHECKSUM TABLE when both sides' definitions and flavours match; a
due pass, a differing checksum or a differing definition walks the table row by row."""

from __future__ import annotations

import pytest

from envsync.refdata import RefdataConfig, RefdataConfigError, apply, plan
from envsync.refdata.run import VERIFIED_TABLE
from tests.engine.conftest import Pair, config, table_result

RATES = "CREATE TABLE rates (id INT PRIMARY KEY, code CHAR(3) NOT NULL, v DECIMAL(10,4) NOT NULL)"


@pytest.fixture
def rates(pair: Pair) -> Pair:
    pair.both(RATES, "INSERT INTO rates SELECT seq, LPAD(seq, 3, '0'), seq / 3 FROM seq_1_to_50")
    return pair


def _checked_by(pair: Pair, cfg: RefdataConfig = None, run=apply) -> str:
    return table_result(run(pair.source, pair.target, cfg or config("rates", chunk_rows=10)), "rates")["checked_by"]


def _verified(pair: Pair):
    return pair.rows(pair.target, f"SELECT table_name FROM {VERIFIED_TABLE}")


def test_a_full_pass_is_recorded_then_checksum_table_confirms_until_it_is_due(rates: Pair) -> None:
    assert _checked_by(rates) == "chunks" and _verified(rates) == [("rates",)]
    assert _checked_by(rates) == "checksum_table"
    assert _checked_by(rates, run=plan) == "checksum_table"
    rates.run(rates.target, f"UPDATE {VERIFIED_TABLE} SET verified_at = verified_at - INTERVAL 25 HOUR")
    assert _checked_by(rates) == "chunks"  # due again (default: every 24 h)
    assert _checked_by(rates) == "checksum_table"
    assert _checked_by(rates, config("rates", full_check_hours=0)) == "chunks"


def test_a_change_after_the_full_pass_is_found_through_the_checksum(rates: Pair) -> None:
    assert _checked_by(rates) == "chunks"
    rates.run(rates.target, "UPDATE rates SET v = v + 1 WHERE id IN (31, 32)")  # not in the first chunk
    result = table_result(apply(rates.source, rates.target, config("rates", chunk_rows=10)), "rates")
    assert (result["checked_by"], result["updated"]) == ("chunks", 2)
    assert rates.same("rates")


def test_different_definitions_never_take_the_fast_path(rates: Pair) -> None:
    """An extra index on the target: equal columns, so no drift, but not the same table."""
    rates.run(rates.target, "ALTER TABLE rates ADD INDEX by_code (code)")
    assert _checked_by(rates) == "chunks"
    assert _checked_by(rates) == "chunks"


def test_plan_and_filtered_tables_record_nothing(rates: Pair) -> None:
    assert _checked_by(rates, run=plan) == "chunks"
    assert rates.rows(rates.target, f"SHOW TABLES LIKE '{VERIFIED_TABLE}'") == []
    apply(rates.source, rates.target, config({"name": "rates", "where": "id > 5"}))
    assert rates.rows(rates.target, f"SHOW TABLES LIKE '{VERIFIED_TABLE}'") == []


def test_full_check_hours_is_validated() -> None:
    for bad in (-1, "24", True, 9000):
        with pytest.raises(RefdataConfigError, match="full_check_hours"):
            RefdataConfig.from_dict({"tables": ["a"], "full_check_hours": bad})
    assert RefdataConfig.from_dict({"tables": ["a"]}).full_check_hours == 24
