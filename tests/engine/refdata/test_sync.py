"""Reference-data sync against real MariaDB: two schemas on the machine's server (fast), and
dev -> staging across two TLS stand-ins (as in AWS). Every test checks the target's final
rows against the source's, not just the counts the engine reports."""

from __future__ import annotations

import json
import logging
import os
import signal
import subprocess
import sys
import time
import uuid
from decimal import Decimal
from pathlib import Path

import pytest

from envsync.refdata import RefdataConfig, RefdataConfigError, RefdataError, apply, plan
from envsync.refdata.schema import fk_groups
from tests.engine.conftest import Pair, config, table_result

PROJECT_ROOT = Path(__file__).resolve().parents[3]


CURRENCY = (
    "CREATE TABLE currency (id INT PRIMARY KEY, code CHAR(3) NOT NULL, name VARCHAR(64) NULL, "
    "minor_units TINYINT NOT NULL, updated_at DATETIME(6) NOT NULL)"
)


def test_inserts_updates_deletes_then_second_run_changes_nothing(pair: Pair) -> None:
    pair.both(CURRENCY)
    pair.run(pair.source, "INSERT INTO currency VALUES (1,'EUR','Euro',2,NOW(6)), (2,'USD','Dollar',2,NOW(6)), "
             "(3,'JPY','Yen',0,NOW(6)), (5,'CHF','Franc',2,NOW(6))")
    pair.run(pair.target, "INSERT INTO currency SELECT * FROM " f"`{pair.source_name}`.currency")
    pair.run(pair.source, "UPDATE currency SET name = 'US dollar' WHERE id = 2", "DELETE FROM currency WHERE id = 3",
             "INSERT INTO currency VALUES (4,'GBP','Pound',2,NOW(6)), (6,'SEK',NULL,2,NOW(6))")
    pair.run(pair.target, "INSERT INTO currency VALUES (9,'XXX','stale',2,NOW(6))")

    first = apply(pair.source, pair.target, config({"name": "currency"}, chunk_rows=2))
    counts = table_result(first, "currency")
    assert (counts["inserted"], counts["updated"], counts["deleted"]) == (2, 1, 2)
    assert first.status == "done" and first.rows_changed == 5
    assert pair.same("currency") and pair.checksums_equal("currency")

    second = apply(pair.source, pair.target, config({"name": "currency"}, chunk_rows=2))
    assert second.rows_changed == 0 and table_result(second, "currency")["chunks_differing"] == 0


TRAPS = (
    "CREATE TABLE traps (k VARBINARY(16) NOT NULL, region VARCHAR(20) NOT NULL, a VARCHAR(20) NULL, "
    "b VARCHAR(20) NULL, label VARCHAR(50) CHARACTER SET utf8mb4 NULL, payload BLOB NULL, "
    "amount DECIMAL(30,10) NULL, ratio DOUBLE NULL, single FLOAT NULL, at DATETIME(6) NULL, "
    "stamp TIMESTAMP(6) NULL DEFAULT NULL, PRIMARY KEY (k, region))"
)


def test_traps_are_detected_and_copied_exactly(pair: Pair) -> None:
    """Each target row differs from its source row only by one classic trap."""
    pair.both(TRAPS)
    source_rows = [
        # NULL vs '' and NULL position: CONCAT_WS skips NULLs
        (b"\x00\x01", "eu", "", None, "x", None, None, None, None, None, None),
        (b"\x00\x02", "eu", "a", None, "b", None, None, None, None, None, None),
        # separator shift: ('a|b','c') vs ('a','b|c')
        (b"\x00\x03", "eu", "a|b", "c", None, None, None, None, None, None, None),
        # utf8mb4 text and binary payload with NUL / 0xFF / quotes / backslashes
        (b"\xff\x00'\\", "asia", None, None, "Zürich 🏦 東京", b"\x00\xff'\"\\\n\x1a", None, None, None, None, None),
        # DECIMAL, DOUBLE last bit, FLOAT beyond 6 digits, fractional temporals
        (b"\x00\x05", "eu", None, None, None, None, "12345678901234567890.0123456789",
         0.30000000000000004, 16777217.0, "2024-02-29 23:59:59.999999", "2038-01-19 03:14:07.654321"),
        (b"\x00\x06", "eu", None, None, None, None, "-0.0000000001", 1e308, 0.1, "1000-01-01 00:00:00.000001",
         "1970-01-01 00:00:01.000001"),
    ]
    target_rows = [
        (b"\x00\x01", "eu", None, "", "x", None, None, None, None, None, None),
        (b"\x00\x02", "eu", None, "a", "b", None, None, None, None, None, None),
        (b"\x00\x03", "eu", "a", "b|c", None, None, None, None, None, None, None),
        (b"\xff\x00'\\", "asia", None, None, "Zurich 🏦 東京", b"\x00\xff'\"\\\n\x1b", None, None, None, None, None),
        (b"\x00\x05", "eu", None, None, None, None, "12345678901234567890.0123456788",
         0.3, 16777216.0, "2024-02-29 23:59:59.999998", "2038-01-19 03:14:07.654320"),
        (b"\x00\x06", "eu", None, None, None, None, "-0.0000000001", 1e308, 0.1, "1000-01-01 00:00:00.000001",
         "1970-01-01 00:00:01.000001"),  # identical: must stay untouched
    ]
    insert = "INSERT INTO traps VALUES (" + ", ".join(["%s"] * 11) + ")"
    for conn, rows in ((pair.source, source_rows), (pair.target, target_rows)):
        with conn.cursor() as cur:
            cur.execute("SET time_zone = '+00:00'")
            cur.executemany(insert, rows)

    result = apply(pair.source, pair.target, config({"name": "traps"}, hash="md5"))
    counts = table_result(result, "traps")
    assert (counts["inserted"], counts["updated"], counts["deleted"]) == (0, 5, 0)
    order = "k, region"
    exact = ("SELECT HEX(k), region, a, b, HEX(label), HEX(payload), amount, ratio + 0e0, single + 0e0, "
             "at, UNIX_TIMESTAMP(stamp) FROM traps ORDER BY " + order)
    assert pair.rows(pair.source, exact) == pair.rows(pair.target, exact)
    assert pair.checksums_equal("traps")
    assert apply(pair.source, pair.target, config({"name": "traps"})).rows_changed == 0


def test_binary_primary_key_insert_and_delete(pair: Pair) -> None:
    pair.both("CREATE TABLE bk (id BINARY(16) PRIMARY KEY, v VARCHAR(10))")
    keys = [uuid.UUID(int=i).bytes for i in (1, 2, 3)] + [b"\x00" * 15 + b"\xff", b"'\\%s" + b"\x00" * 12]
    with pair.source.cursor() as cur:
        cur.executemany("INSERT INTO bk VALUES (%s, %s)", [(k, str(i)) for i, k in enumerate(keys)])
    with pair.target.cursor() as cur:
        cur.execute("INSERT INTO bk VALUES (%s, 'gone')", (b"\x80" * 16,))
    result = apply(pair.source, pair.target, config("bk", chunk_rows=2))
    assert (table_result(result, "bk")["inserted"], table_result(result, "bk")["deleted"]) == (5, 1)
    assert pair.same("bk", "id")


def test_foreign_keys_parents_inserted_first_children_deleted_first(pair: Pair) -> None:
    pair.both(
        "CREATE TABLE country (code CHAR(2) PRIMARY KEY, name VARCHAR(40))",
        "CREATE TABLE city (id INT PRIMARY KEY, country CHAR(2) NOT NULL, name VARCHAR(40), "
        "FOREIGN KEY (country) REFERENCES country (code))",
    )
    pair.both("INSERT INTO country VALUES ('DE','Germany'), ('XX','Old')",
              "INSERT INTO city VALUES (1,'DE','Berlin'), (2,'XX','Gone'), (3,'XX','Moved')")
    # upstream: new parent + child on it, child deleted with its parent, child moved off it
    pair.run(pair.source, "INSERT INTO country VALUES ('FR','France')", "INSERT INTO city VALUES (4,'FR','Paris')",
             "UPDATE city SET country = 'FR' WHERE id = 3", "DELETE FROM city WHERE id = 2",
             "DELETE FROM country WHERE code = 'XX'")
    # children listed before parents: the order comes from information_schema, not the config
    cfg = config("city", "country")
    result = apply(pair.source, pair.target, cfg)
    assert [t["table"] for t in result.to_dict()["tables"]] == ["country", "city"]
    assert pair.same("country") and pair.same("city")
    assert apply(pair.source, pair.target, cfg).rows_changed == 0


def test_fk_groups_order_parents_first_and_keep_unrelated_tables_apart() -> None:
    groups = fk_groups(["line", "order_", "fx", "customer"], [("line", "order_"), ("order_", "customer")])
    assert groups == [["customer", "order_", "line"], ["fx"]]


def test_table_without_primary_key_is_refused(pair: Pair) -> None:
    pair.both("CREATE TABLE loose (a INT, b INT)")
    with pytest.raises(RefdataError, match=r"'loose' has no primary key on the source.*add one"):
        plan(pair.source, pair.target, config("loose"))


def test_excluded_columns_untouched_and_never_logged(pair: Pair, caplog: pytest.LogCaptureFixture) -> None:
    pair.both("CREATE TABLE fee (id INT PRIMARY KEY, rate DECIMAL(6,4), updated_by VARCHAR(40))")
    pair.run(pair.source, "INSERT INTO fee VALUES (1, 0.0100, 'alice-secret'), (2, 0.0200, 'bob-secret')")
    pair.run(pair.target, "INSERT INTO fee VALUES (1, 0.0100, 'target-own')")
    caplog.set_level(logging.INFO, logger="envsync.refdata")
    result = apply(pair.source, pair.target, config({"name": "fee", "exclude_columns": ["updated_by"]}))
    assert result.rows_changed == 1  # row 1 differs only in the excluded column
    assert pair.rows(pair.target, "SELECT id, rate, updated_by FROM fee ORDER BY id") == [
        (1, Decimal("0.0100"), "target-own"), (2, Decimal("0.0200"), None)]
    lines = [json.loads(r.getMessage()) for r in caplog.records if r.name == "envsync.refdata"]
    assert lines and lines[0]["table"] == "fee" and lines[0]["inserted"] == 1
    assert "secret" not in caplog.text and "target-own" not in caplog.text


def test_row_filter_limits_both_sides(pair: Pair) -> None:
    pair.both("CREATE TABLE rate_card (id INT PRIMARY KEY, active TINYINT NOT NULL, v INT)")
    pair.run(pair.source, "INSERT INTO rate_card VALUES (1,1,10), (2,1,20), (3,0,30)")
    pair.run(pair.target, "INSERT INTO rate_card VALUES (1,1,11), (3,0,99), (4,0,40), (5,1,50)")
    result = apply(pair.source, pair.target, config({"name": "rate_card", "where": "active = 1"}))
    counts = table_result(result, "rate_card")
    assert (counts["inserted"], counts["updated"], counts["deleted"]) == (1, 1, 1)
    # inactive rows on either side are out of scope: (3,0,99) and (4,0,40) stay as they were
    assert pair.rows(pair.target, "SELECT * FROM rate_card ORDER BY id") == [
        (1, 1, 10), (2, 1, 20), (3, 0, 99), (4, 0, 40)]


def test_missing_column_or_table_is_drift_not_synced(pair: Pair) -> None:
    pair.run(pair.source, "CREATE TABLE product (id INT PRIMARY KEY, name VARCHAR(20), tier INT)",
             "INSERT INTO product VALUES (1, 'a', 1)", "CREATE TABLE only_up (id INT PRIMARY KEY)")
    pair.run(pair.target, "CREATE TABLE product (id INT PRIMARY KEY, name VARCHAR(20))")
    result = apply(pair.source, pair.target, config("product", "only_up"))
    product, only_up = table_result(result, "product"), table_result(result, "only_up")
    assert product["state"] == "drift" and product["drift"] == [
        {"kind": "missing_column", "column": "tier", "missing_on": "target"}]
    assert only_up["state"] == "drift" and only_up["drift"] == [{"kind": "missing_table", "missing_on": "target"}]
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM product") == [(0,)]
    # excluding the missing column makes the rest syncable
    assert apply(pair.source, pair.target, config({"name": "product", "exclude_columns": ["tier"]})).rows_changed == 1


def test_plan_reports_sql_and_lag_and_writes_nothing(pair: Pair) -> None:
    pair.both(CURRENCY)
    pair.run(pair.source, "INSERT INTO currency VALUES (1,'EUR','Euro',2, UTC_TIMESTAMP(6) - INTERVAL 100 SECOND), "
             "(2,'USD','Dollar',2, UTC_TIMESTAMP(6) - INTERVAL 5 SECOND)")
    cfg = config({"name": "currency", "updated_at_column": "updated_at"})
    result = plan(pair.source, pair.target, cfg).to_dict()
    entry = result["tables"][0]
    assert entry["inserted"] == 2 and len(entry["sql"]) == 1 and entry["sql"][0].startswith("INSERT INTO `currency`")
    assert 100 <= result["replication_lag_seconds"] < 160
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM currency") == [(0,)]
    applied = apply(pair.source, pair.target, cfg).to_dict()
    assert applied["replication_lag_seconds"] == 0 and "sql" not in applied["tables"][0]
    assert plan(pair.source, pair.target, cfg).to_dict()["replication_lag_seconds"] == 0


def _seed_numbers(pair: Pair, rows: int) -> None:
    pair.both("CREATE TABLE num (id INT PRIMARY KEY, grp INT NOT NULL, v VARCHAR(20), updated_at DATETIME NOT NULL)")
    pair.run(pair.source, f"INSERT INTO num SELECT seq, seq % 7, CONCAT('v', seq), UTC_TIMESTAMP() "
             f"FROM seq_1_to_{rows}")
    pair.run(pair.target, f"INSERT INTO num SELECT * FROM `{pair.source_name}`.num",
             "UPDATE num SET v = 'old' WHERE id % 37 = 0", "DELETE FROM num WHERE id % 53 = 0",
             f"INSERT INTO num SELECT seq + {rows}, 0, 'extra', UTC_TIMESTAMP() FROM seq_1_to_{rows // 50}")


def test_tiny_deadline_resumes_to_the_same_state_as_one_run(pair: Pair, machine_mariadb) -> None:
    _seed_numbers(pair, 3000)
    pair.both("CREATE TABLE tag (id INT PRIMARY KEY, v INT)")
    pair.run(pair.source, "INSERT INTO tag VALUES (1, 1), (2, 2)")
    cfg = config({"name": "num", "updated_at_column": "updated_at"}, "tag", chunk_rows=100)
    # a copy of the target, synchronised in one long run, is the reference
    reference = f"{pair.target_name}_ref"
    admin = pair.connect(pair.source_name)
    pair.run(admin, f"CREATE DATABASE `{reference}`", f"CREATE TABLE `{reference}`.num LIKE num",
             f"CREATE TABLE `{reference}`.tag LIKE tag",
             f"INSERT INTO `{reference}`.num SELECT * FROM `{pair.target_name}`.num")
    try:
        one_run = apply(pair.source, pair.connect(reference), cfg)
        assert one_run.status == "done"
        cursor, rounds, changed = None, 0, 0
        while True:
            result = apply(pair.source, pair.target, cfg, deadline=time.monotonic(), cursor=cursor)
            json.dumps(result.to_dict())  # the cursor travels through Step Functions as JSON
            rounds += 1
            changed += result.rows_changed
            if result.status == "done":
                break
            cursor = result.cursor
            assert rounds < 200
        assert rounds > 10
        assert changed == one_run.rows_changed
        for table in ("num", "tag"):
            assert pair.rows(pair.target, f"SELECT * FROM {table} ORDER BY id") == pair.rows(
                admin, f"SELECT * FROM `{reference}`.{table} ORDER BY id")
    finally:
        pair.run(admin, f"DROP DATABASE IF EXISTS `{reference}`")
        admin.close()


def test_continue_reports_lag_of_the_part_not_reached(pair: Pair) -> None:
    _seed_numbers(pair, 1000)
    pair.both("UPDATE num SET updated_at = UTC_TIMESTAMP() - INTERVAL 1000 SECOND")  # last synced then
    pair.run(pair.source, "UPDATE num SET updated_at = UTC_TIMESTAMP() - INTERVAL 300 SECOND, v = 'new' WHERE id = 990")
    cfg = config({"name": "num", "updated_at_column": "updated_at"}, chunk_rows=100)
    result = apply(pair.source, pair.target, cfg, deadline=time.monotonic())
    assert result.status == "continue" and table_result(result, "num")["state"] == "partial"
    assert result.replication_lag_seconds >= 300


KILL_CHILD = """
import sys, pymysql
from envsync.refdata import RefdataConfig, apply
db = dict(host=sys.argv[1], port=int(sys.argv[2]), user='root', password='', charset='utf8mb4', autocommit=True)
apply(pymysql.connect(**db, database=sys.argv[3]), pymysql.connect(**db, database=sys.argv[4]),
      RefdataConfig.from_dict({"tables": ["num"], "chunk_rows": 5000}))
"""


def test_kill_9_during_apply_leaves_table_unchanged_or_complete(pair: Pair, machine_mariadb) -> None:
    rows = 120_000
    _seed_numbers(pair, rows)
    pair.run(pair.target, "DELETE FROM num WHERE id % 2 = 0")  # ~60k rows to write in one transaction
    before = pair.rows(pair.target, "CHECKSUM TABLE num EXTENDED")[0][1]
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT / "lambda_code")}
    child = subprocess.Popen(
        [sys.executable, "-c", KILL_CHILD, str(machine_mariadb["host"]), str(machine_mariadb["port"]),
         pair.source_name, pair.target_name], env=env,
    )
    watcher = pair.connect(pair.target_name)
    killed_mid_transaction = False
    deadline = time.monotonic() + 60
    while child.poll() is None and time.monotonic() < deadline:
        writing = pair.rows(watcher, "SELECT COUNT(*) FROM information_schema.INNODB_TRX "
                                     "WHERE trx_rows_modified > 0")[0][0]
        if writing:
            os.kill(child.pid, signal.SIGKILL)
            killed_mid_transaction = True
            break
        time.sleep(0.15)  # INNODB_TRX is a cache refreshed only when idle for 0.1 s
    child.wait()
    assert killed_mid_transaction, f"the apply ended (exit {child.returncode}) before it could be killed"
    # the server rolls the dead session's transaction back; wait until it has
    for _ in range(200):
        time.sleep(0.15)
        if not pair.rows(watcher, "SELECT COUNT(*) FROM information_schema.INNODB_TRX")[0][0]:
            break
    after = pair.rows(watcher, "CHECKSUM TABLE num EXTENDED")[0][1]
    source_sum = pair.rows(pair.source, "CHECKSUM TABLE num EXTENDED")[0][1]
    assert after in (before, source_sum)
    rerun = apply(pair.source, pair.target, config("num", chunk_rows=5000))
    assert rerun.status == "done" and pair.checksums_equal("num")
    watcher.close()


def test_config_errors_name_the_key() -> None:
    bad = [
        ({"tables": []}, "tables: expected a non-empty list"),
        ({"tables": ["a"], "chunk": 5}, "unknown key"),
        ({"tables": [{"name": "a", "exclude_columns": "x"}]}, r"tables\[0\]\.exclude_columns"),
        ({"tables": [{"name": "a", "where": "1=1; DROP TABLE a"}]}, r"tables\[0\]\.where"),
        ({"tables": [{"name": "a", "colour": 1}]}, r"tables\[0\]: unknown key\(s\) colour"),
        ({"tables": ["a", "a"]}, "listed more than once: a"),
        ({"tables": ["a"], "chunk_rows": 0}, "chunk_rows"),
        ({"tables": ["a"], "hash": "sha1"}, "hash"),
        ({"tables": [{"name": "a", "updated_at_column": "u", "exclude_columns": ["u"]}]}, "also in exclude"),
    ]
    for data, message in bad:
        with pytest.raises(RefdataConfigError, match=message):
            RefdataConfig.from_dict(data)
    ok = RefdataConfig.from_dict({"tables": [{"name": "currency", "exclude_columns": ["updated_by"],
                                              "where": "active = 1", "updated_at_column": "updated_at"}],
                                  "chunk_rows": 1000})
    assert ok.tables[0].exclude_columns == ("updated_by",) and ok.chunk_rows == 1000


def test_dev_to_staging_over_tls(chain) -> None:
    """The real topology: two servers, TLS required, same-named schema on each."""
    dev, staging = chain["dev"].connect(autocommit=True), chain["staging"].connect(autocommit=True)
    try:
        for conn in (dev, staging):
            Pair.run(conn, CURRENCY)
        Pair.run(dev, "INSERT INTO currency VALUES (1,'EUR','Euro',2,NOW(6)), (2,'CHF','Franken 🇨🇭',2,NOW(6))")
        Pair.run(staging, "INSERT INTO currency VALUES (3,'DEM','Mark',2,NOW(6))")
        result = apply(dev, staging, config("currency"))
        assert result.rows_changed == 3
        assert Pair.rows(dev, "SELECT * FROM currency ORDER BY id") == Pair.rows(
            staging, "SELECT * FROM currency ORDER BY id")
    finally:
        dev.close()
        staging.close()


def test_in_sync_table_is_confirmed_by_checksum_table_without_a_chunk_walk(pair: Pair) -> None:
    pair.both(CURRENCY, "INSERT INTO currency VALUES (1,'EUR','Euro',2,'2024-01-01 00:00:00.5')")
    fast = table_result(apply(pair.source, pair.target, config("currency", hash="crc32")), "currency")
    assert (fast["checked_by"], fast["chunks_compared"], fast["state"]) == ("checksum_table", 0, "in_sync")
    # md5 (the default) asks for 64-bit row hashes: the 32-bit CHECKSUM TABLE shortcut is not taken
    walked = table_result(apply(pair.source, pair.target, config("currency")), "currency")
    assert (walked["checked_by"], walked["chunks_compared"]) == ("chunks", 1)
    # excluded columns or a row filter: CHECKSUM TABLE would cover rows/columns out of scope
    filtered = apply(pair.source, pair.target, config({"name": "currency", "where": "minor_units = 2"},
                                                      hash="crc32"))
    assert table_result(filtered, "currency")["checked_by"] == "chunks"


def test_continue_skips_lag_queries_for_drifted_tables(pair: Pair) -> None:
    _seed_numbers(pair, 500)
    pair.run(pair.source, "CREATE TABLE later (id INT PRIMARY KEY, updated_at DATETIME)")
    cfg = config({"name": "num", "updated_at_column": "updated_at"},
                 {"name": "later", "updated_at_column": "updated_at"}, chunk_rows=100)
    result = apply(pair.source, pair.target, cfg, deadline=time.monotonic())
    assert result.status == "continue"
    while result.status == "continue":
        result = apply(pair.source, pair.target, cfg, deadline=time.monotonic(), cursor=result.cursor)
    assert table_result(result, "later")["state"] == "drift" and pair.same("num", "id")
