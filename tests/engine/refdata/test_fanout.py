"""Reference-data fan-out against real MariaDB: the allow-list as independent FK groups, and one
apply per group (what each iteration of the state machine's Map runs) with its own cursor."""

from __future__ import annotations

import pytest

from envsync.refdata import RefdataConfigError, RefdataError, apply, groups
from tests.engine.conftest import Pair, config, table_result

CURRENCY = "CREATE TABLE currency (code CHAR(3) PRIMARY KEY, name VARCHAR(32) NOT NULL)"
COUNTRY = ("CREATE TABLE country (iso CHAR(2) PRIMARY KEY, currency_code CHAR(3) NOT NULL, "
           "CONSTRAINT fk_country_currency FOREIGN KEY (currency_code) REFERENCES currency (code))")
FEE_TYPE = "CREATE TABLE fee_type (id INT PRIMARY KEY, label VARCHAR(32) NOT NULL)"
REGION = "CREATE TABLE region (id INT PRIMARY KEY, label VARCHAR(32) NOT NULL)"
LISTED = ({"name": "currency"}, {"name": "fee_type"}, {"name": "country"}, {"name": "region"})


def _three_groups(pair: Pair) -> None:
    pair.both(CURRENCY, COUNTRY, FEE_TYPE, REGION)
    pair.run(pair.source, "INSERT INTO currency VALUES ('EUR','Euro'), ('CHF','Franc')",
             "INSERT INTO country VALUES ('DE','EUR'), ('CH','CHF')",
             "INSERT INTO fee_type VALUES (1,'wire'), (2,'card')",
             "INSERT INTO region VALUES (1,'EMEA'), (2,'APAC'), (3,'AMER')")


def test_the_allow_list_splits_into_fk_groups_parents_first_in_config_order(pair: Pair) -> None:
    _three_groups(pair)
    assert groups(pair.target, config(*LISTED)) == [["currency", "country"], ["fee_type"], ["region"]]


def test_each_group_applies_alone_and_leaves_the_other_groups_untouched(pair: Pair) -> None:
    _three_groups(pair)
    listed = config(*LISTED)
    result = apply(pair.source, pair.target, listed, group=["currency", "country"])
    assert [t["table"] for t in result.to_dict()["tables"]] == ["currency", "country"]
    assert result.status == "done" and result.rows_changed == 4
    assert pair.same("currency") and pair.same("country")
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM fee_type")[0][0] == 0
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM region")[0][0] == 0

    region = apply(pair.source, pair.target, listed, group=["region"])
    assert table_result(region, "region")["inserted"] == 3 and pair.same("region")
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM fee_type")[0][0] == 0


def test_a_group_carries_its_own_cursor_across_calls(pair: Pair) -> None:
    _three_groups(pair)
    listed = config(*LISTED, chunk_rows=1)
    first = apply(pair.source, pair.target, listed, group=["region"], deadline=0.0)  # cut after the first chunk
    assert first.status == "continue" and first.cursor["table"] == "region"
    rest = apply(pair.source, pair.target, listed, group=["region"], cursor=first.cursor)
    assert rest.status == "done" and pair.same("region")


@pytest.mark.parametrize("group, says", [
    (["country"], "not one foreign-key group"),  # half of a linked set: its own transaction breaks the order
    (["currency", "country", "region"], "not one foreign-key group"),
    (["invoice"], "not one foreign-key group"),  # not listed at all
    ("region", "expected a non-empty list"),
    ([], "expected a non-empty list"),
])
def test_a_group_that_is_not_one_fk_group_now_is_refused_and_nothing_is_written(pair: Pair, group, says) -> None:
    _three_groups(pair)
    with pytest.raises(RefdataError, match=says):
        apply(pair.source, pair.target, config(*LISTED), group=group)
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM currency")[0][0] == 0


def test_max_concurrency_is_validated_when_read() -> None:
    assert config({"name": "region"}).max_concurrency == 4
    assert config({"name": "region"}, max_concurrency=8).max_concurrency == 8
    for bad in (0, 41, True, "4"):
        with pytest.raises(RefdataConfigError, match="max_concurrency: expected"):
            config({"name": "region"}, max_concurrency=bad)
