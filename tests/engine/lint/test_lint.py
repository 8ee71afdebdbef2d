"""Destructive-change lint: every form is run on MariaDB (the server accepts it) and classified
against the live schema read from that server."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pymysql
import pytest

from envsync.lint import ColumnFacts, LiveSchema, lint_scripts, read_live_schema
from envsync.migrations.scripts import load_script
from tests.engine.cli.test_cli import envsync
from tests.engine.conftest import EnvDB, write_scripts


def classify_statement(sql: str, live: Optional[LiveSchema] = None) -> List[Tuple[str, str]]:
    """(kind, detail) the lint gives one statement, run as the only one of a pending script."""
    script = load_script("V1__one_statement.sql", sql.encode())
    return [(finding.kind, finding.detail) for finding in lint_scripts([(script, 1)], live or LiveSchema())]


# The target every case starts from: rows in orders, child and part_t; empty_t and archive empty.
SCHEMA = [
    "CREATE TABLE parent (id INT PRIMARY KEY)",
    "CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(40) NULL, amount DECIMAL(12,2) NOT NULL,"
    " qty INT UNSIGNED NOT NULL, status ENUM('new','paid','void') NOT NULL, created DATETIME(6),"
    " KEY ix_note (note))",
    "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT,"
    " CONSTRAINT fk_parent FOREIGN KEY (parent_id) REFERENCES parent (id))",
    "CREATE TABLE empty_t (id INT PRIMARY KEY, a VARCHAR(10))",
    "CREATE TABLE archive (id INT PRIMARY KEY)",
    "CREATE TABLE part_t (id INT PRIMARY KEY) PARTITION BY RANGE (id)"
    " (PARTITION p0 VALUES LESS THAN (10), PARTITION p1 VALUES LESS THAN MAXVALUE)",
    "CREATE VIEW v_orders AS SELECT id FROM orders",
    "INSERT INTO parent VALUES (1)",
    "INSERT INTO orders VALUES (1, 'x', 1.50, 2, 'new', '2026-01-01 00:00:00')",
    "INSERT INTO child VALUES (1, 1)",
    "INSERT INTO part_t VALUES (1), (20)",
]

CASES = [
    # drops
    ("DROP TABLE archive", ["drop_table"]),
    ("drop table if exists `archive`, `empty_t`", ["drop_table"]),
    ("DROP TEMPORARY TABLE IF EXISTS scratch", []),
    ("DROP VIEW v_orders", ["drop_view"]),
    ("DROP VIEW IF EXISTS `v_orders`", ["drop_view"]),
    ("DROP INDEX ix_note ON orders", ["drop_index"]),
    ("ALTER TABLE orders DROP INDEX ix_note", ["drop_index"]),
    ("ALTER TABLE `orders` DROP KEY `ix_note`", ["drop_index"]),
    ("ALTER TABLE empty_t DROP PRIMARY KEY", ["drop_index"]),
    ("ALTER TABLE child DROP FOREIGN KEY fk_parent", ["drop_constraint"]),
    ("ALTER TABLE child DROP CONSTRAINT fk_parent", ["drop_constraint"]),
    ("ALTER TABLE orders DROP COLUMN note", ["drop_column"]),
    ("alter table orders drop note", ["drop_column"]),
    ("ALTER TABLE orders DROP COLUMN IF EXISTS note", ["drop_column"]),  # MariaDB form
    ("/*!40101 ALTER TABLE orders DROP COLUMN note */", ["drop_column"]),
    ("ALTER TABLE /* keep */ orders -- why\n DROP COLUMN `note`", ["drop_column"]),
    ("ALTER TABLE orders ADD COLUMN extra INT NULL, DROP COLUMN note", ["drop_column"]),
    ("ALTER TABLE orders ALTER COLUMN note DROP DEFAULT", []),
    ("ALTER TABLE part_t DROP PARTITION p0", ["drop_partition"]),
    ("DROP DATABASE IF EXISTS envsync_lint_nothing_here", ["drop_database"]),
    ("CREATE OR REPLACE TABLE archive (id INT PRIMARY KEY)", ["drop_table"]),  # MariaDB form
    ("CREATE TABLE fresh (id INT PRIMARY KEY)", []),
    # narrowing, against the live column types
    ("ALTER TABLE orders MODIFY note VARCHAR(20)", ["narrowing"]),
    ("ALTER TABLE orders MODIFY COLUMN note VARCHAR(80)", []),
    ("ALTER TABLE orders MODIFY note TEXT", []),
    ("ALTER TABLE orders MODIFY note VARCHAR(40) NOT NULL", ["narrowing"]),
    ("ALTER TABLE orders MODIFY qty SMALLINT UNSIGNED NOT NULL", ["narrowing"]),
    ("ALTER TABLE orders MODIFY qty BIGINT UNSIGNED NOT NULL", []),
    ("ALTER TABLE orders MODIFY qty INT NOT NULL", ["narrowing"]),
    ("ALTER TABLE orders MODIFY amount DECIMAL(10,2) NOT NULL", ["narrowing"]),
    ("ALTER TABLE orders MODIFY amount DECIMAL(14,3) NOT NULL", []),
    ("ALTER TABLE orders MODIFY amount INT NOT NULL", ["narrowing"]),
    ("ALTER TABLE orders MODIFY status ENUM('new','paid') NOT NULL", ["narrowing"]),
    ("ALTER TABLE orders MODIFY status ENUM('new','paid','void','refunded') NOT NULL", []),
    ("ALTER TABLE orders MODIFY created DATE", ["narrowing"]),
    ("ALTER TABLE orders MODIFY created DATETIME(3)", ["narrowing"]),
    ("ALTER TABLE orders CHANGE COLUMN note note VARCHAR(10)", ["narrowing"]),
    ("/*!50700 ALTER TABLE orders MODIFY note VARCHAR(5) */", ["narrowing"]),
    # NOT NULL without DEFAULT on a table with rows
    ("ALTER TABLE orders ADD COLUMN region CHAR(2) NOT NULL", ["not_null_without_default"]),
    ("ALTER TABLE orders ADD region CHAR(2) NOT NULL DEFAULT 'EU'", []),
    ("ALTER TABLE orders ADD COLUMN (region CHAR(2) NOT NULL, zone INT NULL)", ["not_null_without_default"]),
    ("ALTER TABLE empty_t ADD COLUMN b INT NOT NULL", []),
    ("ALTER TABLE orders ADD COLUMN total DECIMAL(14,2) AS (amount * qty) VIRTUAL", []),
    ("ALTER TABLE orders ADD INDEX ix_amount (amount)", []),
    # renames
    ("RENAME TABLE orders TO orders_old", ["rename"]),
    ("RENAME TABLE `archive` TO `a2`, empty_t TO e2", ["rename"]),
    ("ALTER TABLE orders RENAME TO orders_old", ["rename"]),
    ("ALTER TABLE orders RENAME AS orders_old", ["rename"]),
    ("ALTER TABLE orders RENAME COLUMN note TO remark", ["rename"]),
    ("ALTER TABLE orders RENAME INDEX ix_note TO ix_remark", ["rename"]),
    ("ALTER TABLE orders CHANGE note remark VARCHAR(40)", ["rename"]),
    ("ALTER TABLE orders CHANGE note remark VARCHAR(4)", ["rename", "narrowing"]),
    # emptying
    ("TRUNCATE TABLE orders", ["truncate"]),
    ("truncate `empty_t`", ["truncate"]),
    ("ALTER TABLE part_t TRUNCATE PARTITION p0", ["truncate"]),
    ("DELETE FROM orders", ["delete_without_where"]),
    ("DELETE LOW_PRIORITY FROM orders LIMIT 10", ["delete_without_where"]),
    ("DELETE o FROM orders o JOIN parent p ON p.id = o.id", ["delete_without_where"]),
    ("DELETE FROM orders WHERE id = 1", []),
    ("DELETE FROM orders WHERE id IN (SELECT id FROM parent)", []),
    ("UPDATE orders SET note = 'x'", ["update_without_where"]),
    ("UPDATE orders SET note = 'where'", ["update_without_where"]),
    ("UPDATE orders SET note = (SELECT 'y' FROM parent WHERE id = 1)", ["update_without_where"]),
    ("Update `orders` Set note = NULL Where id = 1", []),
    ("INSERT INTO archive VALUES (2)", []),
]


@pytest.fixture
def target(machine_mariadb: Dict[str, object], scratch_schema: str):
    connection = pymysql.connect(**machine_mariadb, database=scratch_schema, autocommit=True)
    with connection.cursor() as cursor:
        for statement in SCHEMA:
            cursor.execute(statement)
    yield connection
    connection.close()


@pytest.mark.parametrize("sql, expected", CASES, ids=[sql[:60] for sql, _ in CASES])
def test_each_form_is_accepted_by_the_server_and_classified(target, sql: str, expected: List[str]) -> None:
    live = read_live_schema(target)
    kinds = [kind for kind, _ in classify_statement(sql, live)]
    with target.cursor() as cursor:
        cursor.execute(sql)  # the form is real SQL the server runs, not only something we parse
    assert kinds == expected


def test_live_schema_knows_types_and_which_tables_have_rows(target) -> None:
    live = read_live_schema(target)
    assert live.columns["orders"]["note"] == ColumnFacts("varchar(40)", True)
    qty = live.columns["orders"]["qty"].column_type
    assert qty.startswith("int") and qty.endswith("unsigned")
    assert live.nonempty == {"orders", "child", "parent", "part_t"}
    assert "v_orders" not in live.columns


def test_details_name_table_column_and_types() -> None:
    live = LiveSchema(columns={"orders": {"note": ColumnFacts("varchar(40)", True)}}, nonempty={"orders"})
    [(kind, detail)] = classify_statement("ALTER TABLE `db`.`Orders` MODIFY `Note` VARCHAR(20) NULL", live)
    assert (kind, detail) == ("narrowing", "orders.note: varchar(40) narrows to varchar(20)")
    [(_, detail)] = classify_statement("ALTER TABLE orders ADD c INT NOT NULL", live)
    assert detail.startswith("adds orders.c NOT NULL without DEFAULT")
    assert classify_statement("DELETE FROM `orders`", live) == [("delete_without_where", "deletes every row of orders")]


def test_plan_order_is_simulated() -> None:
    """A table the plan creates is empty; a column changed twice is compared with its type after
    the first change; a renamed table keeps its rows and types."""
    live = LiveSchema(columns={"t": {"a": ColumnFacts("bigint(20)", False)}}, nonempty={"t"})
    first = load_script("V1__first.sql", b"CREATE TABLE n (id INT);\nALTER TABLE t MODIFY a INT NOT NULL;\n")
    second = load_script("V2__second.sql", (
        b"-- header\n"
        b"ALTER TABLE n ADD b INT NOT NULL;\n"
        b"ALTER TABLE t MODIFY a INT NOT NULL;\n"
        b"RENAME TABLE t TO t2;\n"
        b"ALTER TABLE t2 MODIFY a SMALLINT NOT NULL;\n"
        b"ALTER TABLE t2 ADD z INT NOT NULL;\n"))
    findings = lint_scripts([(first, 1), (second, 1)], live)
    assert [(f.script_name, f.statement, f.line, f.kind) for f in findings] == [
        ("V1__first.sql", 2, 2, "narrowing"),
        ("V2__second.sql", 3, 4, "rename"),
        ("V2__second.sql", 4, 5, "narrowing"),
        ("V2__second.sql", 5, 6, "not_null_without_default"),
    ]
    # CREATE TABLE IF NOT EXISTS keeps a table that has rows; CREATE TABLE ... SELECT makes one
    kept = load_script("V3__kept.sql", b"CREATE TABLE IF NOT EXISTS t (id INT);\nALTER TABLE t ADD y INT NOT NULL;\n"
                                       b"CREATE TABLE c AS SELECT * FROM t;\nALTER TABLE c ADD y2 INT NOT NULL;\n")
    assert [(f.statement, f.kind) for f in lint_scripts([(kept, 1)], live)] == [
        (2, "not_null_without_default"), (4, "not_null_without_default")]
    # resuming a script lints only the statements still to run, against the schema they left
    resumed = LiveSchema(columns={"t2": {"a": ColumnFacts("int(11)", False)}}, nonempty={"t2"})
    assert [f.statement for f in lint_scripts([(second, 4)], resumed)] == [4, 5]


def test_mysql8_forms_the_machine_server_does_not_run() -> None:
    assert classify_statement("WITH old AS (SELECT id FROM t) DELETE FROM t") == [
        ("delete_without_where", "deletes every row of t")]
    assert classify_statement("WITH x AS (SELECT 1 WHERE 1) UPDATE t SET a = 1 WHERE id = 2") == []


def test_unreadable_statement_is_flagged_for_a_person() -> None:
    script = load_script("V1__odd.sql", b"ALTER TABLE t MODIFY;\n")
    [finding] = lint_scripts([(script, 1)], LiveSchema())
    assert finding.kind == "unreadable" and finding.label == "V1__odd.sql statement 1 (line 1)"


def test_plan_shows_destructive_statements_with_file_and_line(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev = chain["dev"]
    write_scripts(tmp_path / "v1", {"V1__base.sql": "CREATE TABLE t (id INT PRIMARY KEY, note VARCHAR(40));\n"
                                                    "INSERT INTO t VALUES (1, 'a');\n"})
    assert envsync("apply", "--target", dev.url, "--scripts", str(tmp_path / "v1")).returncode == 0
    folder = write_scripts(tmp_path / "v1", {"V2__tidy.sql": "-- tidy up\n\nALTER TABLE t MODIFY note VARCHAR(10);\n"
                                                            "DELETE FROM t;\n"})
    text = envsync("plan", "--target", dev.url, "--scripts", str(folder))
    assert text.returncode == 1, text.stderr
    assert ("-- statement 1 (line 3)\n"
            "-- DESTRUCTIVE narrowing: t.note: varchar(40) narrows to varchar(10)") in text.stdout
    assert "destructive: narrowing x1, delete_without_where x1" in text.stdout
    assert "  delete_without_where: V2__tidy.sql statement 2 (line 4): deletes every row of t" in text.stdout
    data = json.loads(envsync("plan", "--json", "--target", dev.url, "--scripts", str(folder)).stdout)
    assert [(d["kind"], d["script_name"], d["line"], d["sql"]) for d in data["destructive"]] == [
        ("narrowing", "V2__tidy.sql", 3, "ALTER TABLE t MODIFY note VARCHAR(10)"),
        ("delete_without_where", "V2__tidy.sql", 4, "DELETE FROM t"),
    ]
