"""What an approval binds of reference data, on real MariaDB: each table's delta digest (deleted
keys and new row images) as a plan computes it and as an apply writes it, and the matching
rule: an apply given the approved digests commits a table only when the delta it writes is the
approved one (or nothing), otherwise nothing of its FK group."""

from __future__ import annotations

import time

import pytest

from envsync import approval, refdata
from envsync.refdata.digest import CHANGED, EMPTY_DELTA, NEW, DeltaDigest, row_image
from tests.engine.conftest import Pair, config, table_result


def _currency(pair: Pair) -> None:
    """currency and country (country -> currency), plus fee, linked to neither."""
    pair.both("CREATE TABLE currency (code CHAR(3) PRIMARY KEY, name VARCHAR(64) NOT NULL, note VARCHAR(20) NULL)",
              "CREATE TABLE country (iso2 CHAR(2) PRIMARY KEY, currency_code CHAR(3) NOT NULL, "
              "FOREIGN KEY (currency_code) REFERENCES currency (code))",
              "CREATE TABLE fee (id INT PRIMARY KEY, amount DECIMAL(10, 2) NOT NULL)",
              "INSERT INTO currency VALUES ('EUR', 'Euro', NULL), ('JPY', 'Yen', NULL), ('USD', 'US dollar', NULL)",
              "INSERT INTO country VALUES ('DE', 'EUR'), ('JP', 'JPY')",
              "INSERT INTO fee VALUES (1, 1.50), (2, 2.00)")


def _digests(result) -> dict:
    return {t["table"]: t.get("digest") for t in result.to_dict()["tables"]}


def test_row_images_keep_apart_what_a_separator_or_null_would_merge() -> None:
    assert row_image(("a#b", "c")) != row_image(("a", "b#c"))
    assert row_image((None,)) != row_image(("NULL",)) and row_image((1,)) != row_image(("1",))
    first, second, changed = DeltaDigest([0], 2), DeltaDigest([0], 2), DeltaDigest([0], 2)
    for digest, rows, change in ((first, [("EUR", "Euro"), ("JPY", "Yen")], NEW),
                                 (second, [("JPY", "Yen"), ("EUR", "Euro")], NEW),
                                 (changed, [("JPY", "Yen"), ("EUR", "Euro")], CHANGED)):
        list(digest.watch(iter(rows), change))
        digest.deleted(("USD",))
    assert first.hexdigest() == second.hexdigest() != EMPTY_DELTA  # the order rows arrive in does not count
    assert changed.hexdigest() != first.hexdigest()  # a new row is not a changed one
    assert DeltaDigest([0], 2).hexdigest() == EMPTY_DELTA


def test_the_plan_and_the_apply_digest_the_same_delta_and_a_same_count_change_differs(pair: Pair) -> None:
    _currency(pair)
    pair.run(pair.source, "UPDATE currency SET name = 'Japanese Yen' WHERE code = 'JPY'",
             "INSERT INTO currency VALUES ('CHF', 'Swiss franc', NULL)", "DELETE FROM fee WHERE id = 2")
    planned = _digests(refdata.plan(pair.source, pair.target, config("currency", "country", "fee"),
                                    whole_tables=True))
    assert planned["country"] == EMPTY_DELTA and EMPTY_DELTA not in (planned["currency"], planned["fee"])
    # the same counts (~1 +1) with another new value: another digest
    pair.run(pair.source, "UPDATE currency SET name = 'Yen (JPY)' WHERE code = 'JPY'")
    other = _digests(refdata.plan(pair.source, pair.target, config("currency", "country", "fee")))
    assert other["currency"] != planned["currency"] and other["fee"] == planned["fee"]
    # what an approved apply writes is what the plan digested (it commits: the digests match)
    applied = refdata.apply(pair.source, pair.target, config("currency", "country", "fee"), approved=other)
    assert _digests(applied) == other
    assert pair.same("currency") and pair.same("fee")


def test_an_apply_nobody_approves_skips_the_digest_and_writes_the_same_rows(pair: Pair) -> None:
    _currency(pair)
    pair.run(pair.source, "UPDATE currency SET name = 'Japanese Yen' WHERE code = 'JPY'",
             "INSERT INTO currency VALUES ('CHF', 'Swiss franc', NULL)", "DELETE FROM fee WHERE id = 2")
    applied = refdata.apply(pair.source, pair.target, config("currency", "country", "fee"))
    assert set(_digests(applied).values()) == {None}  # an env without the gate binds nothing
    assert pair.same("currency") and pair.same("fee") and pair.same("country")


def test_excluded_columns_are_the_targets_and_not_part_of_the_digest(pair: Pair) -> None:
    _currency(pair)
    pair.run(pair.source, "UPDATE currency SET name = 'Japanese Yen' WHERE code = 'JPY'")
    excluded = config({"name": "currency", "exclude_columns": ["note"]})
    before = _digests(refdata.plan(pair.source, pair.target, excluded))["currency"]
    pair.run(pair.source, "UPDATE currency SET note = 'secret-ish' WHERE code = 'JPY'")
    assert _digests(refdata.plan(pair.source, pair.target, excluded))["currency"] == before


def test_an_apply_commits_only_the_approved_delta(pair: Pair) -> None:
    _currency(pair)
    tables = config("currency", "country", "fee")
    pair.run(pair.source, "UPDATE currency SET name = 'Japanese Yen' WHERE code = 'JPY'",
             "UPDATE country SET currency_code = 'USD' WHERE iso2 = 'JP'", "UPDATE fee SET amount = 1.75 WHERE id = 1")
    preview = refdata.plan(pair.source, pair.target, tables, whole_tables=True).to_dict()
    approved = {t["table"]: t["digest"] for t in approval.refdata_changes(preview)}
    assert set(approved) == {"currency", "country", "fee"}

    # upstream moves on between the approval and the apply: same counts, another row image
    pair.run(pair.source, "UPDATE currency SET name = 'Yen, Japanese' WHERE code = 'JPY'")
    result = refdata.apply(pair.source, pair.target, tables, approved=approved)
    states = {t.table: t.state for t in result.tables}
    assert states == {"currency": "unapproved", "country": "withheld", "fee": "changed"}
    assert [t.table for t in result.unapproved] == ["currency", "country"] and result.failed == []
    assert "not the approved one" in table_result(result, "currency")["error"]
    assert pair.rows(pair.target, "SELECT name FROM currency WHERE code = 'JPY'") == [("Yen",)]
    assert pair.rows(pair.target, "SELECT currency_code FROM country WHERE iso2 = 'JP'") == [("JPY",)]
    assert pair.same("fee")  # approved and unchanged since: applied
    assert result.rows_changed == 1

    # asked again: the new delta's digests, once approved, apply
    again = refdata.plan(pair.source, pair.target, tables, whole_tables=True).to_dict()
    approved = {t["table"]: t["digest"] for t in approval.refdata_changes(again)}
    assert set(approved) == {"currency", "country"}  # fee is in sync now
    done = refdata.apply(pair.source, pair.target, tables, approved=approved)
    assert done.unapproved == [] and pair.same("currency") and pair.same("country")


def test_a_table_approved_unchanged_is_left_alone_when_rows_arrive(pair: Pair) -> None:
    _currency(pair)
    pair.run(pair.source, "INSERT INTO fee VALUES (3, 3.00)")
    result = refdata.apply(pair.source, pair.target, config("fee"), approved={})
    assert table_result(result, "fee")["state"] == "unapproved"
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM fee") == [(2,)]
    # a table whose delta is empty now needs nothing approved (writing nothing is always allowed)
    pair.run(pair.source, "DELETE FROM fee WHERE id = 3")
    assert table_result(refdata.apply(pair.source, pair.target, config("fee"), approved={"fee": "0" * 64}),
                        "fee")["state"] == "in_sync"


def test_a_table_whose_shape_changes_first_is_not_approved_by_a_plan_made_before(pair: Pair) -> None:
    """Finding the delta after a pending migration: before it the table drifts (no digest, so
    nothing of it approved); after it, its rows differ and the apply leaves them alone."""
    _currency(pair)
    pair.run(pair.source, "ALTER TABLE currency ADD COLUMN sort_order SMALLINT NULL",
             "UPDATE currency SET name = 'Japanese Yen' WHERE code = 'JPY'")
    preview = refdata.plan(pair.source, pair.target, config("currency", "fee"), whole_tables=True).to_dict()
    assert approval.refdata_changes(preview) == []
    assert approval.refdata_not_compared(preview) == [{"table": "currency", "state": "drift"}]
    pair.run(pair.target, "ALTER TABLE currency ADD COLUMN sort_order SMALLINT NULL")  # the approved script
    result = refdata.apply(pair.source, pair.target, config("currency", "fee"), approved={})
    assert table_result(result, "currency")["state"] == "unapproved"
    assert pair.rows(pair.target, "SELECT name FROM currency WHERE code = 'JPY'") == [("Yen",)]


def test_with_approved_digests_a_deadline_never_cuts_a_table(pair: Pair) -> None:
    pair.both("CREATE TABLE rate (id INT PRIMARY KEY, v INT NOT NULL)")
    pair.run(pair.source, "INSERT INTO rate SELECT seq, seq FROM seq_1_to_3000")
    tables = config("rate", chunk_rows=100)
    approved = {"rate": _digests(refdata.plan(pair.source, pair.target, tables, whole_tables=True))["rate"]}
    cut = refdata.apply(pair.source, pair.target, tables, deadline=time.monotonic() - 1)
    assert cut.status == "continue" and table_result(cut, "rate").get("digest") is None  # a part: no digest
    pair.run(pair.target, "DELETE FROM rate")
    whole = refdata.apply(pair.source, pair.target, tables, deadline=time.monotonic() - 1, approved=approved)
    assert (whole.status, table_result(whole, "rate")["state"]) == ("done", "changed") and pair.same("rate")


@pytest.mark.parametrize("changed", ["scripts", "refdata"])
def test_the_plan_digest_binds_the_scripts_and_each_tables_delta(changed: str) -> None:
    scripts = [{"version": "43", "script_name": "V43__currency_sort_order.sql", "checksum": "a" * 64}]
    refdata_changes = [{"table": "currency", "inserted": 0, "updated": 1, "deleted": 0, "digest": "b" * 64}]
    digest = approval.plan_digest(scripts, refdata_changes)
    gate = {"digest": digest, "scripts": scripts, "refdata": refdata_changes}
    decision = approval.granted({**gate, "decision": {"digest": digest, "approved_by": "alice"}})
    assert approval.decision_refusal("prod", decision) is None
    assert approval.approved_refdata(decision) == {"currency": "b" * 64}
    if changed == "scripts":
        gate["scripts"] = [{**scripts[0], "checksum": "c" * 64}]
    else:
        gate["refdata"] = [{**refdata_changes[0], "digest": "c" * 64}]
    forged = approval.granted({**gate, "decision": {"digest": digest, "approved_by": "alice"}})
    assert "is not for the plan this run made" in (approval.decision_refusal("prod", forged) or "")
    assert approval.plan_digest(scripts) == approval.plan_digest(scripts, [])  # script-only plans as before


def test_the_message_lists_each_allow_listed_table_with_its_first_rows_old_to_new(pair: Pair) -> None:
    _currency(pair)
    pair.run(pair.source, "UPDATE currency SET name = 'Japanese Yen' WHERE code = 'JPY'",
             "INSERT INTO currency VALUES ('CHF', 'Swiss franc', NULL)", "ALTER TABLE fee ADD COLUMN note TEXT NULL")
    preview = refdata.plan(pair.source, pair.target, config("currency", "country", "fee"), whole_tables=True).to_dict()
    changes = approval.refdata_changes(preview)
    digest = approval.plan_digest([], changes)
    message = approval.approval_message(
        env="prod", upstream_env="staging", run_id="run-8", pending=[], findings=[], digest=digest,
        timeout_seconds=3600, refdata=approval.refdata_changes(preview, with_rows=True),
        refdata_listed=[t["table"] for t in preview["tables"]], not_compared=approval.refdata_not_compared(preview))
    lines = message.splitlines()
    assert lines[0] == ("envsync: prod waits for your approval before it applies reference-data changes in "
                        "1 table promoted from staging.")
    assert f"Plan digest: {digest}" in lines
    section = lines[lines.index(next(line for line in lines if line.startswith("Reference data from staging"))):]
    assert "customer tables are never in the allow-list and never appear here" in section[0]
    assert section[1:5] == [
        f"  currency: +1 ~1 -0  (delta digest {changes[0]['digest'][:12]}…)",
        "    + code='CHF': name='Swiss franc', note=NULL",
        "    ~ code='JPY': name 'Yen' -> 'Japanese Yen'",
        "  country: no change",
    ]
    assert section[5].startswith("  fee: not compared now (its shape differs from the upstream's; a pending script "
                                 "may change it): nothing of it is applied under this approval")
    assert "if a table's rows change, nothing of that table is applied; the next run asks again" in message


def test_a_table_a_pending_script_creates_is_planned_as_it_will_be_created_empty(pair: Pair) -> None:
    pair.run(pair.source, "CREATE TABLE rate (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL)",
             "INSERT INTO rate VALUES (1, 'one'), (2, 'two')")
    preview = refdata.plan(pair.source, pair.target, config("rate"), whole_tables=True)
    entry = table_result(preview, "rate")
    assert (entry["state"], entry["checked_by"], entry["inserted"]) == ("changed", "new_table", 2)
    assert [row["key"] for row in entry["rows"]] == [{"id": 1}, {"id": 2}]
    assert table_result(refdata.plan(pair.source, pair.target, config("rate")), "rate")["state"] == "drift"
    approved = {"rate": entry["digest"]}
    # the script creates it empty: the apply finds the approved delta and writes it
    pair.run(pair.target, "CREATE TABLE rate (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL)")
    assert table_result(refdata.apply(pair.source, pair.target, config("rate"), approved=approved),
                        "rate")["state"] == "changed" and pair.same("rate")
    # a script that also fills it: another delta (a changed row, not a new one), nothing of it written
    pair.run(pair.target, "DROP TABLE rate")
    preview = refdata.plan(pair.source, pair.target, config("rate"), whole_tables=True)
    pair.run(pair.target, "CREATE TABLE rate (id INT PRIMARY KEY, v VARCHAR(10) NOT NULL)",
             "INSERT INTO rate VALUES (1, 'uno')")
    result = refdata.apply(pair.source, pair.target, config("rate"),
                           approved={"rate": table_result(preview, "rate")["digest"]})
    assert table_result(result, "rate")["state"] == "unapproved"
    assert pair.rows(pair.target, "SELECT * FROM rate") == [(1, "uno")]
