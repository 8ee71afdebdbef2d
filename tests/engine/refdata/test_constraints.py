"""Reference-data sync converges for every constraint shape a reference table has, and never
touches a table that is not listed. Each test builds the case on two schemas of the machine's
server, syncs, and compares the target's rows with the source's (not the engine's counts)."""

from __future__ import annotations

import time

import pytest

from envsync.refdata import apply, plan
from tests.engine.conftest import Pair, config, table_result

UNIQUE = "CREATE TABLE u (id INT PRIMARY KEY, code CHAR(1) NOT NULL, UNIQUE KEY uq_code (code))"


def _sync_twice(pair: Pair, table: str, **cfg) -> None:
    """Converged: one run makes the tables equal and a second finds nothing to do."""
    apply(pair.source, pair.target, config({"name": table, **cfg.pop("table", {})}, **cfg))
    assert pair.same(table)
    assert apply(pair.source, pair.target, config(table)).rows_changed == 0


def test_unique_values_swapped_between_rows(pair: Pair) -> None:
    pair.both(UNIQUE)
    pair.run(pair.source, "INSERT INTO u VALUES (1, 'A'), (2, 'B'), (3, 'C')")
    pair.run(pair.target, "INSERT INTO u VALUES (1, 'B'), (2, 'C'), (3, 'A')")
    _sync_twice(pair, "u")


def test_primary_key_change_keeping_the_unique_value(pair: Pair) -> None:
    pair.both(UNIQUE)
    pair.run(pair.source, "INSERT INTO u VALUES (2, 'A')")
    pair.run(pair.target, "INSERT INTO u VALUES (1, 'A')")
    _sync_twice(pair, "u")


def test_update_taking_a_deleted_rows_unique_value(pair: Pair) -> None:
    pair.both(UNIQUE)
    pair.run(pair.source, "INSERT INTO u VALUES (2, 'A')")
    pair.run(pair.target, "INSERT INTO u VALUES (1, 'A'), (2, 'B')")
    _sync_twice(pair, "u")


@pytest.mark.parametrize("row_filter", [None, "code <> 'zzz'"])
def test_collation_equal_keys_case_accent_and_trailing_space(pair: Pair, row_filter) -> None:
    pair.both("CREATE TABLE cur (code VARCHAR(8) COLLATE utf8mb4_unicode_ci PRIMARY KEY, name VARCHAR(20))")
    pair.run(pair.source, "INSERT INTO cur VALUES ('USD', 'dollar'), ('eur', 'euro'), ('ab', 'x')")
    pair.run(pair.target, "INSERT INTO cur VALUES ('usd', 'dollar'), ('eür', 'euro'), ('ab ', 'x')")
    table = {"where": row_filter} if row_filter else {}
    apply(pair.source, pair.target, config({"name": "cur", **table}))
    exact = "SELECT HEX(code), name FROM cur ORDER BY HEX(code)"
    assert pair.rows(pair.source, exact) == pair.rows(pair.target, exact)
    assert apply(pair.source, pair.target, config({"name": "cur", **table})).rows_changed == 0


def test_self_referencing_foreign_key_inserts_parents_first_and_deletes_children_first(pair: Pair) -> None:
    pair.both("CREATE TABLE node (id INT PRIMARY KEY, parent_id INT NULL, name VARCHAR(10), "
              "CONSTRAINT fk_node_parent FOREIGN KEY (parent_id) REFERENCES node (id))")
    # children carry lower ids than their parents: key order is the wrong order for both
    pair.run(pair.source, "INSERT INTO node VALUES (9, NULL, 'root'), (5, 9, 'mid'), (1, 5, 'leaf')")
    _sync_twice(pair, "node")
    pair.run(pair.source, "DELETE FROM node WHERE id = 1", "DELETE FROM node WHERE id = 5",
             "INSERT INTO node VALUES (3, 9, 'new'), (2, 3, 'newleaf')")
    _sync_twice(pair, "node")


def test_foreign_key_cycle_between_two_listed_tables(pair: Pair) -> None:
    pair.both("CREATE TABLE ca (id INT PRIMARY KEY, b_id INT NULL)",
              "CREATE TABLE cb (id INT PRIMARY KEY, a_id INT NULL)",
              "ALTER TABLE ca ADD CONSTRAINT fk_ca_b FOREIGN KEY (b_id) REFERENCES cb (id)",
              "ALTER TABLE cb ADD CONSTRAINT fk_cb_a FOREIGN KEY (a_id) REFERENCES ca (id)")
    pair.run(pair.source, "SET foreign_key_checks = 0", "INSERT INTO ca VALUES (1, 1)",
             "INSERT INTO cb VALUES (1, 1)", "SET foreign_key_checks = 1")
    apply(pair.source, pair.target, config("ca", "cb"))
    assert pair.same("ca") and pair.same("cb")
    pair.run(pair.source, "SET foreign_key_checks = 0", "DELETE FROM ca", "DELETE FROM cb",
             "SET foreign_key_checks = 1")
    apply(pair.source, pair.target, config("ca", "cb"))
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM ca") == [(0,)]


def test_generated_columns_are_never_written(pair: Pair) -> None:
    pair.both("CREATE TABLE g (id INT PRIMARY KEY, a INT NOT NULL, "
              "twice INT AS (a * 2) VIRTUAL, thrice INT AS (a * 3) STORED)")
    pair.run(pair.source, "INSERT INTO g (id, a) VALUES (1, 1), (2, 2)")
    pair.run(pair.target, "INSERT INTO g (id, a) VALUES (2, 7), (3, 3)")
    _sync_twice(pair, "g")


def test_bit_primary_key(pair: Pair) -> None:
    pair.both("CREATE TABLE bits (id BIT(12) PRIMARY KEY, v VARCHAR(5))")
    pair.run(pair.source, "INSERT INTO bits VALUES (b'1', 'one'), (b'101010101010', 'wide'), (b'0', 'zero')")
    pair.run(pair.target, "INSERT INTO bits VALUES (b'1', 'uno'), (b'11', 'gone')")
    apply(pair.source, pair.target, config("bits", chunk_rows=2))
    exact = "SELECT id + 0, v FROM bits ORDER BY id"
    assert pair.rows(pair.source, exact) == pair.rows(pair.target, exact)


def test_prefix_primary_key(pair: Pair) -> None:
    pair.both("CREATE TABLE pfx (name VARCHAR(50) NOT NULL, v INT, PRIMARY KEY (name(10)))")
    pair.run(pair.source, "INSERT INTO pfx VALUES ('abcdefghij-long-1', 1), ('short', 2)")
    pair.run(pair.target, "INSERT INTO pfx VALUES ('abcdefghij-other', 1), ('short', 3), ('gone', 4)")
    _sync_twice(pair, "pfx")


def test_time_primary_key_resumes_exactly_across_deadlines(pair: Pair) -> None:
    pair.both("CREATE TABLE tk (t TIME(6) PRIMARY KEY, v INT)")
    values = ["-838:59:59", "-25:00:00", "-00:30:00.5", "-00:00:00.000001", "00:00:00", "00:30:00",
              "23:59:59.999999", "24:00:00", "100:00:01", "838:59:59"]
    pair.run(pair.source, "INSERT INTO tk VALUES " + ", ".join(f"('{v}', {i})" for i, v in enumerate(values)))
    cursor, rounds = None, 0
    while True:
        result = apply(pair.source, pair.target, config("tk", chunk_rows=1), deadline=time.monotonic(),
                       cursor=cursor)
        rounds += 1
        assert rounds < 30, "the calls never finish"
        if result.status == "done":
            break
        cursor = result.cursor
    assert pair.same("tk")


def test_time_values_copied_exactly(pair: Pair) -> None:
    """PyMySQL writes timedelta(minutes=-30) as '-1:30:00': values are bound as exact TIME text."""
    pair.both("CREATE TABLE tv (id INT PRIMARY KEY, t TIME(6))")
    pair.run(pair.source, "INSERT INTO tv VALUES (1, '-00:30:00'), (2, '-25:00:00.25'), (3, '100:00:00')")
    _sync_twice(pair, "tv")


CASCADE_CHILD = ("CREATE TABLE customer_account (id INT PRIMARY KEY, currency_id INT NULL, "
                 "CONSTRAINT fk_acct_cur FOREIGN KEY (currency_id) REFERENCES ccy (id) ON DELETE {rule})")


def refusal(result, table: str) -> str:
    entry = table_result(result, table)
    assert entry["state"] == "refused", entry
    return entry["error"]


@pytest.mark.parametrize("rule", ["CASCADE", "SET NULL"])
def test_delete_of_a_parent_with_an_unlisted_cascading_child_is_refused(pair: Pair, rule: str) -> None:
    pair.both("CREATE TABLE ccy (id INT PRIMARY KEY, code CHAR(3))")
    pair.run(pair.source, "INSERT INTO ccy VALUES (1, 'EUR')")
    pair.run(pair.target, "INSERT INTO ccy VALUES (1, 'EUR'), (2, 'OLD')", CASCADE_CHILD.format(rule=rule),
             "INSERT INTO customer_account VALUES (10, 2), (11, 1)")
    for run in (plan, apply):
        message = refusal(run(pair.source, pair.target, config("ccy")), "ccy")
        assert "customer_account" in message and "fk_acct_cur" in message and rule in message
    assert pair.rows(pair.target, "SELECT * FROM customer_account ORDER BY id") == [(10, 2), (11, 1)]
    assert pair.rows(pair.target, "SELECT id FROM ccy ORDER BY id") == [(1,), (2,)]


def test_delete_of_a_parent_still_referenced_by_an_unlisted_child_is_refused(pair: Pair) -> None:
    pair.both("CREATE TABLE ccy (id INT PRIMARY KEY, code CHAR(3))")
    pair.run(pair.target, "INSERT INTO ccy VALUES (2, 'OLD')",
             "CREATE TABLE acct (id INT PRIMARY KEY, ccy_id INT, CONSTRAINT fk_acct FOREIGN KEY (ccy_id) "
             "REFERENCES ccy (id))", "INSERT INTO acct VALUES (1, 2)")
    assert "acct" in refusal(apply(pair.source, pair.target, config("ccy")), "ccy")
    assert pair.rows(pair.target, "SELECT id FROM ccy") == [(2,)]


def test_update_of_a_parent_with_an_unlisted_child_keeps_the_child(pair: Pair) -> None:
    """An update rewrites the parent row in place (same key): the unlisted child is untouched."""
    pair.both("CREATE TABLE ccy (id INT PRIMARY KEY, code CHAR(3))")
    pair.run(pair.source, "INSERT INTO ccy VALUES (1, 'EUR'), (2, 'USD')")
    pair.run(pair.target, "INSERT INTO ccy VALUES (1, 'EUR'), (2, 'usd')", CASCADE_CHILD.format(rule="CASCADE"),
             "INSERT INTO customer_account VALUES (10, 2)")
    apply(pair.source, pair.target, config("ccy"))
    assert pair.same("ccy")
    assert pair.rows(pair.target, "SELECT * FROM customer_account") == [(10, 2)]


def test_insert_with_a_filter_never_rewrites_a_row_outside_it(pair: Pair) -> None:
    pair.both("CREATE TABLE rate (id INT PRIMARY KEY, kind VARCHAR(5), v INT)")
    pair.run(pair.source, "INSERT INTO rate VALUES (1, 'pub', 10)")
    pair.run(pair.target, "INSERT INTO rate VALUES (1, 'priv', 99)")  # out of scope on the target
    result = apply(pair.source, pair.target, config({"name": "rate", "where": "kind = 'pub'"}))
    assert "Duplicate" in refusal(result, "rate")  # the full text, for the env's logs
    # what a notification carries: the error class, never the server's text that quotes a row
    [table] = [t for t in result.to_dict()["tables"] if t["table"] == "rate"]
    assert table["notice"] == "IntegrityError: MySQL error 1062 (DUP_ENTRY)"
    assert pair.rows(pair.target, "SELECT * FROM rate") == [(1, "priv", 99)]


def test_a_refused_table_does_not_stop_the_tables_listed_after_it(pair: Pair) -> None:
    pair.both("CREATE TABLE ccy (id INT PRIMARY KEY, code CHAR(3))", "CREATE TABLE later (id INT PRIMARY KEY)")
    pair.run(pair.source, "INSERT INTO later VALUES (1)")
    pair.run(pair.target, "INSERT INTO ccy VALUES (2, 'OLD')", CASCADE_CHILD.format(rule="CASCADE"),
             "INSERT INTO customer_account VALUES (10, 2)")
    result = apply(pair.source, pair.target, config("ccy", "later"))
    assert refusal(result, "ccy") and result.failed
    assert pair.same("later")


def test_a_table_refused_mid_stream_leaves_the_source_connection_usable(pair: Pair) -> None:
    """The insert fails on the first statement while the source rows are still being read."""
    pair.both("CREATE TABLE many (id INT PRIMARY KEY, code INT NOT NULL, UNIQUE KEY uq (code))",
              "CREATE TABLE later (id INT PRIMARY KEY)")
    pair.run(pair.source, "INSERT INTO many SELECT seq, seq FROM seq_1_to_3000", "INSERT INTO later VALUES (1)")
    pair.run(pair.target, "INSERT INTO many VALUES (100000, 1)")  # its unique value blocks row 1
    result = apply(pair.source, pair.target, config({"name": "many", "where": "id < 50000"}, "later"))
    assert "Duplicate" in refusal(result, "many")
    assert pair.same("later")
    assert pair.rows(pair.target, "SELECT * FROM many") == [(100000, 1)]
