"""Schema drift on real MariaDB: introspect two schemas, diff them, check every line.

Each case builds the same base schema in a left and a right schema, applies a change to the
right one and asserts the exact report. Positive cases must show exactly the introduced change
(nothing more: one change = one line); negative cases ("same schema, written differently")
must show nothing.
"""

from __future__ import annotations

import json
import uuid
from typing import Dict, Iterator, List, Sequence

import pymysql
import pytest

from envsync.drift.introspect import SchemaModel, load_schema
from envsync.drift.schemadiff import DriftReport, diff
from tests.conftest import root_connect

BASE_SCHEMA = [
    """CREATE TABLE currencies (
         code CHAR(3) NOT NULL PRIMARY KEY,
         name VARCHAR(50) NOT NULL,
         minor_units TINYINT UNSIGNED NOT NULL DEFAULT 2
       ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE customers (
         id INT NOT NULL AUTO_INCREMENT PRIMARY KEY,
         email VARCHAR(190) NOT NULL,
         name VARCHAR(100) NULL,
         created_at TIMESTAMP NOT NULL DEFAULT CURRENT_TIMESTAMP,
         UNIQUE KEY uq_customers_email (email),
         KEY ix_customers_name (name(20), email)
       ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE orders (
         id BIGINT NOT NULL AUTO_INCREMENT PRIMARY KEY,
         customer_id INT NOT NULL,
         currency CHAR(3) NOT NULL,
         amount DECIMAL(12,2) NOT NULL DEFAULT 0.00,
         status VARCHAR(20) NOT NULL DEFAULT 'new',
         note VARCHAR(200) NULL,
         updated_at DATETIME NULL ON UPDATE CURRENT_TIMESTAMP,
         amount_cents BIGINT AS (ROUND(amount * 100)) VIRTUAL,
         KEY ix_orders_customer_status (customer_id, status),
         CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id) REFERENCES customers (id)
           ON DELETE CASCADE,
         CONSTRAINT fk_orders_currency FOREIGN KEY (currency) REFERENCES currencies (code)
       ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE settings (
         name VARCHAR(50) NOT NULL PRIMARY KEY,
         value TEXT,
         priority INT NOT NULL DEFAULT 0
       ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE TABLE envsync_schema_history (
         version VARCHAR(50) NOT NULL PRIMARY KEY,
         checksum CHAR(64) NOT NULL
       ) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci""",
    """CREATE VIEW v_open_orders AS
         SELECT o.id, o.amount, c.email FROM orders o JOIN customers c ON c.id = o.customer_id
         WHERE o.status = 'new'""",
    """CREATE TRIGGER trg_orders_amount BEFORE INSERT ON orders
         FOR EACH ROW SET NEW.amount = ROUND(NEW.amount, 2)""",
    """CREATE FUNCTION fee(amount DECIMAL(12,2)) RETURNS DECIMAL(12,2) DETERMINISTIC
         RETURN amount * 0.01""",
    """CREATE PROCEDURE close_order(IN order_id BIGINT)
       BEGIN
         UPDATE orders SET status = 'closed' WHERE id = order_id;
       END""",
]

# name -> (statements run on the right schema after the base, expected report lines)
POSITIVE_CASES: Dict[str, tuple] = {
    "table_added": (
        ["CREATE TABLE audit (id INT PRIMARY KEY)"],
        ["table audit: only in right: 1 columns"],
    ),
    "table_engine": (
        ["ALTER TABLE settings ENGINE=MyISAM"],
        ["table settings: engine InnoDB != MyISAM"],
    ),
    "table_charset": (
        ["ALTER TABLE settings DEFAULT CHARACTER SET latin1"],
        ["table settings: charset utf8mb4 != latin1"],
    ),
    "table_collation": (
        ["ALTER TABLE settings DEFAULT COLLATE utf8mb4_bin"],
        ["table settings: collation utf8mb4_unicode_ci != utf8mb4_bin"],
    ),
    "column_added_in_the_middle": (
        ["ALTER TABLE orders ADD COLUMN reference VARCHAR(40) NULL AFTER currency"],
        ["column orders.reference: only in right: varchar(40)"],
    ),
    "column_removed": (
        ["ALTER TABLE orders DROP COLUMN note"],
        ["column orders.note: only in left: varchar(200)"],
    ),
    "column_type": (
        ["ALTER TABLE orders MODIFY amount DECIMAL(14,2) NOT NULL DEFAULT 0.00"],
        ["column orders.amount: type decimal(12,2) != decimal(14,2)"],
    ),
    "column_nullability": (
        ["ALTER TABLE orders MODIFY note VARCHAR(200) NOT NULL"],
        ["column orders.note: nullable NULL != NOT NULL"],
    ),
    "column_default": (
        ["ALTER TABLE orders ALTER status SET DEFAULT 'open'"],
        ["column orders.status: default 'new' != 'open'"],
    ),
    "column_default_dropped": (
        ["ALTER TABLE settings ALTER priority DROP DEFAULT"],
        ["column settings.priority: default '0' != (none)"],
    ),
    "column_extra": (
        ["ALTER TABLE orders MODIFY updated_at DATETIME NULL"],
        ["column orders.updated_at: extra on update current_timestamp != ''"],
    ),
    "column_generation_expression": (
        ["ALTER TABLE orders MODIFY amount_cents BIGINT AS (ROUND(amount * 1000)) VIRTUAL"],
        ["column orders.amount_cents: generation round(amount*100,0) != round(amount*1000,0)"],
    ),
    "column_charset": (
        ["ALTER TABLE orders MODIFY note VARCHAR(200) CHARACTER SET latin1 NULL"],
        ["column orders.note: charset utf8mb4 != latin1"],
    ),
    "column_collation": (
        ["ALTER TABLE orders MODIFY note VARCHAR(200) COLLATE utf8mb4_bin NULL"],
        ["column orders.note: collation utf8mb4_unicode_ci != utf8mb4_bin"],
    ),
    "column_order": (
        ["ALTER TABLE orders MODIFY note VARCHAR(200) NULL AFTER customer_id"],
        ["column orders.note: position after status != after customer_id"],
    ),
    "index_added": (
        ["CREATE INDEX ix_orders_amount ON orders (amount)"],
        ["index orders.ix_orders_amount: only in right: (amount)"],
    ),
    "index_removed": (
        ["DROP INDEX ix_customers_name ON customers"],
        ["index customers.ix_customers_name: only in left: (name(20), email)"],
    ),
    "index_unique": (
        ["ALTER TABLE customers DROP INDEX uq_customers_email, ADD INDEX uq_customers_email (email)"],
        ["index customers.uq_customers_email: unique yes != no"],
    ),
    "index_columns": (
        ["ALTER TABLE orders DROP INDEX ix_orders_customer_status,"
         " ADD INDEX ix_orders_customer_status (customer_id, amount)"],
        ["index orders.ix_orders_customer_status: columns (customer_id, status) != (customer_id, amount)"],
    ),
    "index_column_order": (
        ["ALTER TABLE customers DROP INDEX ix_customers_name, ADD INDEX ix_customers_name (email, name(20))"],
        ["index customers.ix_customers_name: columns (name(20), email) != (email, name(20))"],
    ),
    "index_prefix": (
        ["ALTER TABLE customers DROP INDEX ix_customers_name, ADD INDEX ix_customers_name (name(30), email)"],
        ["index customers.ix_customers_name: columns (name(20), email) != (name(30), email)"],
    ),
    "index_descending": (
        ["ALTER TABLE customers DROP INDEX ix_customers_name,"
         " ADD INDEX ix_customers_name (name(20) DESC, email)"],
        ["index customers.ix_customers_name: columns (name(20), email) != (name(20) DESC, email)"],
    ),
    "index_type": (
        ["ALTER TABLE customers DROP INDEX ix_customers_name, ADD FULLTEXT INDEX ix_customers_name (name, email)"],
        ["index customers.ix_customers_name: type BTREE != FULLTEXT",
         "index customers.ix_customers_name: columns (name(20), email) != (name, email)"],
    ),
    "foreign_key_added": (
        # customer_id already leads an index, so the server adds no implicit one.
        ["ALTER TABLE orders ADD CONSTRAINT fk_orders_customer_2 FOREIGN KEY (customer_id)"
         " REFERENCES customers (id)"],
        ["foreign_key orders.fk_orders_customer_2: only in right: (customer_id) -> customers(id)"],
    ),
    "foreign_key_removed": (
        ["ALTER TABLE orders DROP FOREIGN KEY fk_orders_currency"],
        ["foreign_key orders.fk_orders_currency: only in left: (currency) -> currencies(code)"],
    ),
    "foreign_key_rule": (
        ["ALTER TABLE orders DROP FOREIGN KEY fk_orders_customer",
         "ALTER TABLE orders ADD CONSTRAINT fk_orders_customer FOREIGN KEY (customer_id)"
         " REFERENCES customers (id) ON DELETE RESTRICT ON UPDATE CASCADE"],
        ["foreign_key orders.fk_orders_customer: on_update RESTRICT != CASCADE",
         "foreign_key orders.fk_orders_customer: on_delete CASCADE != RESTRICT"],
    ),
    "foreign_key_target": (
        ["ALTER TABLE orders DROP FOREIGN KEY fk_orders_currency",
         "CREATE TABLE currencies_v2 LIKE currencies",
         "ALTER TABLE orders ADD CONSTRAINT fk_orders_currency FOREIGN KEY (currency)"
         " REFERENCES currencies_v2 (code)"],
        ["table currencies_v2: only in right: 3 columns",
         "foreign_key orders.fk_orders_currency: references currencies(code) != currencies_v2(code)"],
    ),
    "view_changed": (
        ["CREATE OR REPLACE VIEW v_open_orders AS SELECT o.id, o.amount, c.email FROM orders o"
         " JOIN customers c ON c.id = o.customer_id WHERE o.status = 'open'"],
        ["view v_open_orders: definition"
         " …ON(c.id=o.customer_id))WHERE o.status='new' != …ON(c.id=o.customer_id))WHERE o.status='open'"],
    ),
    "table_comment": (
        ["ALTER TABLE settings COMMENT = 'application settings'"],
        ["table settings: comment '' != application settings"],
    ),
    "table_row_format": (
        ["ALTER TABLE settings ROW_FORMAT=COMPACT"],
        ["table settings: options '' != row_format=compact"],
    ),
    "table_partitioning": (
        ["ALTER TABLE settings PARTITION BY KEY (name) PARTITIONS 2"],
        ["table settings: partitioning (none) != KEY (name): p0, p1"],
    ),
    "routine_comment": (
        ["ALTER PROCEDURE close_order COMMENT 'closes one order'"],
        ["procedure close_order: comment '' != closes one order"],
    ),
    "table_system_versioning": (
        ["ALTER TABLE settings ADD SYSTEM VERSIONING"],
        ["table settings: table_type BASE TABLE != SYSTEM VERSIONED"],
    ),
    "check_constraint_added": (
        ["ALTER TABLE settings ADD CONSTRAINT chk_priority CHECK (priority >= 0)"],
        ["check settings.chk_priority: only in right: priority>=0"],
    ),
    "column_comment": (
        ["ALTER TABLE orders MODIFY note VARCHAR(200) NULL COMMENT 'free text'"],
        ["column orders.note: comment '' != free text"],
    ),
    "index_comment": (
        ["ALTER TABLE orders DROP INDEX ix_orders_customer_status,"
         " ADD INDEX ix_orders_customer_status (customer_id, status) COMMENT 'by customer'"],
        ["index orders.ix_orders_customer_status: comment '' != by customer"],
    ),
    "index_ignored": (
        ["ALTER TABLE orders ALTER INDEX ix_orders_customer_status IGNORED"],
        ["index orders.ix_orders_customer_status: ignored no != yes"],
    ),
    "view_algorithm": (
        ["CREATE OR REPLACE ALGORITHM=TEMPTABLE VIEW v_open_orders AS SELECT o.id, o.amount, c.email"
         " FROM orders o JOIN customers c ON c.id = o.customer_id WHERE o.status = 'new'"],
        ["view v_open_orders: algorithm UNDEFINED != TEMPTABLE"],
    ),
    "event_added": (
        ["CREATE EVENT ev_purge ON SCHEDULE EVERY 1 DAY DO DELETE FROM settings WHERE priority < 0"],
        ["event ev_purge: only in right: EVERY 1 DAY"],
    ),
    "view_check_option": (
        ["CREATE OR REPLACE VIEW v_open_orders AS SELECT o.id, o.amount, c.email FROM orders o"
         " JOIN customers c ON c.id = o.customer_id WHERE o.status = 'new' WITH CHECK OPTION"],
        ["view v_open_orders: check_option NONE != CASCADED"],
    ),
    "view_removed": (
        ["DROP VIEW v_open_orders"],
        ["view v_open_orders: only in left"],
    ),
    "trigger_changed": (
        ["DROP TRIGGER trg_orders_amount",
         "CREATE TRIGGER trg_orders_amount BEFORE INSERT ON orders"
         " FOR EACH ROW SET NEW.amount = ROUND(NEW.amount, 4)"],
        ["trigger trg_orders_amount: body"
         " SET NEW.amount=ROUND(NEW.amount,2) != SET NEW.amount=ROUND(NEW.amount,4)"],
    ),
    "trigger_event": (
        ["DROP TRIGGER trg_orders_amount",
         "CREATE TRIGGER trg_orders_amount BEFORE UPDATE ON orders"
         " FOR EACH ROW SET NEW.amount = ROUND(NEW.amount, 2)"],
        ["trigger trg_orders_amount: event INSERT != UPDATE"],
    ),
    "trigger_removed": (
        ["DROP TRIGGER trg_orders_amount"],
        ["trigger trg_orders_amount: only in left: BEFORE INSERT ON orders"],
    ),
    "function_body": (
        ["DROP FUNCTION fee",
         "CREATE FUNCTION fee(amount DECIMAL(12,2)) RETURNS DECIMAL(12,2) DETERMINISTIC"
         " RETURN amount * 0.02"],
        ["function fee: body RETURN amount*0.01 != RETURN amount*0.02"],
    ),
    "function_returns_and_determinism": (
        ["DROP FUNCTION fee",
         "CREATE FUNCTION fee(amount DECIMAL(12,2)) RETURNS DECIMAL(14,2) NOT DETERMINISTIC"
         " RETURN amount * 0.01"],
        ["function fee: returns decimal(12,2) != decimal(14,2)",
         "function fee: deterministic yes != no"],
    ),
    "procedure_parameters": (
        ["DROP PROCEDURE close_order",
         "CREATE PROCEDURE close_order(IN order_id INT)"
         " BEGIN UPDATE orders SET status = 'closed' WHERE id = order_id; END"],
        ["procedure close_order: parameters (IN order_id bigint) != (IN order_id int)"],
    ),
    "procedure_added": (
        ["CREATE PROCEDURE purge_settings() DELETE FROM settings"],
        ["procedure purge_settings: only in right: ()"],
    ),
}

# Same schema reached another way: nothing may be reported.
NEGATIVE_CASES: Dict[str, List[str]] = {
    "rows_and_auto_increment_counters": [
        "INSERT INTO currencies VALUES ('EUR', 'Euro', 2)",
        "INSERT INTO customers (email, name) VALUES ('a@example.com', 'A')",
        "INSERT INTO orders (customer_id, currency, amount) VALUES (1, 'EUR', 10)",
        "ALTER TABLE customers AUTO_INCREMENT = 5000",
        "ANALYZE TABLE orders",
    ],
    "column_spellings": [
        # int(11) for int, '0' for 0, explicit DEFAULT NULL, lower case, other key order
        "DROP TABLE settings",
        "create table settings (priority_tmp int, name varchar(50) not null, value text default null,"
        " priority int(11) not null default '0', primary key (name))"
        " engine=innodb default charset=utf8mb4 collate=utf8mb4_unicode_ci",
        "ALTER TABLE settings DROP COLUMN priority_tmp",
    ],
    "current_timestamp_spellings": [
        "ALTER TABLE customers MODIFY created_at TIMESTAMP NOT NULL DEFAULT NOW()",
        "ALTER TABLE orders MODIFY updated_at DATETIME NULL ON UPDATE LOCALTIMESTAMP()",
    ],
    "index_recreated_by_alter": [
        "DROP INDEX ix_customers_name ON customers",
        "ALTER TABLE customers ADD INDEX ix_customers_name (name(20), email)",
    ],
    "foreign_key_explicit_default_rules": [
        "ALTER TABLE orders DROP FOREIGN KEY fk_orders_currency",
        "ALTER TABLE orders ADD CONSTRAINT fk_orders_currency FOREIGN KEY (currency)"
        " REFERENCES currencies (code) ON DELETE RESTRICT ON UPDATE NO ACTION",
    ],
    "view_schema_qualified_other_definer": [
        "CREATE OR REPLACE DEFINER = 'envsync_nobody'@'%' VIEW v_open_orders AS"
        " select o.id,o.amount,c.email   from `{schema}`.orders o join {schema}.customers c"
        " on c.id=o.customer_id where o.status='new'",
    ],
    "trigger_layout_and_comments": [
        "DROP TRIGGER trg_orders_amount",
        "CREATE DEFINER = 'envsync_nobody'@'%' TRIGGER trg_orders_amount BEFORE INSERT ON {schema}.orders"
        " FOR EACH ROW SET NEW.amount = ROUND( NEW.amount ,\n   2 ) /* keep cents */",
    ],
    "routine_keyword_case": [
        "DROP PROCEDURE close_order",
        "create procedure close_order(IN order_id BIGINT)\n"
        "begin\n  update orders set status = 'closed' where id = order_id;\nend",
    ],
    "routine_layout_comments_definer": [
        "DROP PROCEDURE close_order",
        "CREATE DEFINER = 'envsync_nobody'@'%' PROCEDURE close_order(IN order_id BIGINT)\n"
        "BEGIN\n  -- close it\n  UPDATE `{schema}`.orders\n     SET status = 'closed'\n"
        "   WHERE id = order_id;\nEND",
    ],
}


def _connect(server: Dict[str, object], schema: str = "") -> pymysql.Connection:
    return pymysql.connect(**server, database=schema or None, autocommit=True)


def _run(conn: pymysql.Connection, schema: str, statements: Sequence[str]) -> None:
    with conn.cursor() as cursor:
        for statement in statements:
            cursor.execute(statement.replace("{schema}", schema))


@pytest.fixture(scope="module")
def left_schema(machine_mariadb: Dict[str, object]) -> Iterator[SchemaModel]:
    """The base schema, built once for the module; every case compares against it."""
    name = f"envsync_t_{uuid.uuid4().hex[:10]}"
    admin = _connect(machine_mariadb)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        conn = _connect(machine_mariadb, name)
        _run(conn, name, BASE_SCHEMA)
        yield load_schema(conn, name)
        conn.close()
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()


@pytest.fixture
def right_conn(machine_mariadb: Dict[str, object], scratch_schema: str) -> Iterator[pymysql.Connection]:
    conn = _connect(machine_mariadb, scratch_schema)
    _run(conn, scratch_schema, BASE_SCHEMA)
    yield conn
    conn.close()


@pytest.mark.parametrize("case", sorted(POSITIVE_CASES))
def test_drift_is_reported_exactly(
    case: str, left_schema: SchemaModel, right_conn: pymysql.Connection, scratch_schema: str
) -> None:
    statements, expected = POSITIVE_CASES[case]
    _run(right_conn, scratch_schema, statements)
    right = load_schema(right_conn, scratch_schema)

    report = diff(left_schema, right)

    assert report.lines() == expected
    assert report.count == len(expected)
    # The other direction sees the same differences, sides swapped.
    assert diff(right, left_schema).count == len(expected)


@pytest.mark.parametrize("case", sorted(NEGATIVE_CASES))
def test_same_schema_written_differently_is_not_drift(
    case: str, left_schema: SchemaModel, right_conn: pymysql.Connection, scratch_schema: str
) -> None:
    _run(right_conn, scratch_schema, NEGATIVE_CASES[case])
    right = load_schema(right_conn, scratch_schema)

    report = diff(left_schema, right)

    assert report.lines() == []
    assert right == left_schema  # the models themselves are equal, not only the report


def test_identical_schemas_on_two_servers_have_no_drift(
    left_schema: SchemaModel, mariadb_instances: Dict[str, object]
) -> None:
    """Machine server (schema envsync_t_*) vs the suite's TLS 'staging' server (schema app)."""
    instance = mariadb_instances["staging"]
    name = f"app_{uuid.uuid4().hex[:8]}"
    admin = root_connect(instance, autocommit=True)
    with admin.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    try:
        conn = root_connect(instance, name, autocommit=True)
        _run(conn, name, BASE_SCHEMA)
        remote = load_schema(conn, name)
        conn.close()
    finally:
        with admin.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        admin.close()

    report = diff(left_schema, remote, left_name="machine", right_name="staging")
    assert report.lines() == []
    assert report.in_sync
    assert remote == left_schema
    assert remote.schema == name and remote.schema != left_schema.schema


def test_ignore_list_drops_tables_with_their_children(
    left_schema: SchemaModel, right_conn: pymysql.Connection, scratch_schema: str
) -> None:
    _run(right_conn, scratch_schema, [
        "ALTER TABLE envsync_schema_history ADD COLUMN applied_at DATETIME NULL",
        "CREATE TABLE tmp_import (id INT PRIMARY KEY)",
        "ALTER TABLE settings ADD INDEX ix_settings_priority (priority)",
        "CREATE TRIGGER trg_settings BEFORE INSERT ON settings FOR EACH ROW SET NEW.priority = 1",
    ])
    right = load_schema(right_conn, scratch_schema)

    # Default: the history table is ignored, everything else shows.
    assert diff(left_schema, right).lines() == [
        "index settings.ix_settings_priority: only in right: (priority)",
        "table tmp_import: only in right: 1 columns",
        "trigger trg_settings: only in right: BEFORE INSERT ON settings",
    ]
    # Nothing ignored: the history table's column shows too.
    assert "column envsync_schema_history.applied_at: only in right: datetime" in (
        diff(left_schema, right, ignore_tables=()).lines()
    )
    # Patterns; an ignored table takes its indexes and triggers with it.
    ignored = diff(left_schema, right, ignore_tables=("envsync_*", "tmp_*", "settings"))
    assert ignored.lines() == []


def test_report_and_model_survive_json(
    left_schema: SchemaModel, right_conn: pymysql.Connection, scratch_schema: str
) -> None:
    _run(right_conn, scratch_schema, [
        "ALTER TABLE orders MODIFY amount DECIMAL(14,2) NOT NULL DEFAULT 0.00",
        "DROP INDEX ix_customers_name ON customers",
        "DROP PROCEDURE close_order",
    ])
    right = load_schema(right_conn, scratch_schema)
    report = diff(left_schema, right, left_name="dev", right_name="staging")

    model_json = json.dumps(right.to_dict())
    assert SchemaModel.from_dict(json.loads(model_json)) == right

    report_json = json.dumps(report.to_dict())
    restored = DriftReport.from_dict(json.loads(report_json))
    assert restored == report
    assert restored.to_dict() == report.to_dict()
    assert json.loads(report_json)["count"] == 3
    assert report.lines() == [
        "index customers.ix_customers_name: only in dev: (name(20), email)",
        "column orders.amount: type decimal(12,2) != decimal(14,2)",
        "procedure close_order: only in dev: (IN order_id bigint)",
    ]


def test_report_order_is_deterministic(
    left_schema: SchemaModel, right_conn: pymysql.Connection, scratch_schema: str
) -> None:
    _run(right_conn, scratch_schema, [
        "CREATE TABLE zz_last (id INT PRIMARY KEY)",
        "CREATE TABLE aa_first (id INT PRIMARY KEY)",
        "ALTER TABLE settings ENGINE=MyISAM",
        "ALTER TABLE orders DROP COLUMN note",
    ])
    right = load_schema(right_conn, scratch_schema)
    shuffled = SchemaModel(
        tables=tuple(reversed(right.tables)), views=right.views, triggers=right.triggers,
        routines=right.routines,
    )
    lines = diff(left_schema, right).lines()
    assert lines == diff(left_schema, shuffled).lines()
    assert [line.split(":")[0] for line in lines] == [
        "table aa_first", "column orders.note", "table settings", "table zz_last",
    ]


def test_reader_privileges_decide_what_is_visible(
    machine_mariadb: Dict[str, object], left_schema: SchemaModel, right_conn: pymysql.Connection,
    scratch_schema: str,
) -> None:
    """A SELECT + SHOW VIEW user sees tables and views but no triggers and no routines."""
    user = f"envsync_rd_{uuid.uuid4().hex[:8]}"
    password = uuid.uuid4().hex
    hosts = ("localhost", "127.0.0.1", "%")
    with right_conn.cursor() as cursor:
        for host in hosts:
            cursor.execute(f"CREATE USER '{user}'@'{host}' IDENTIFIED BY '{password}'")  # hex
            cursor.execute(f"GRANT SELECT, SHOW VIEW ON `{scratch_schema}`.* TO '{user}'@'{host}'")
    try:
        reader = dict(machine_mariadb, user=user, password=password)
        conn = _connect(reader, scratch_schema)
        seen = load_schema(conn, scratch_schema)
        conn.close()
        assert (len(seen.tables), len(seen.views), seen.triggers, seen.routines) == (
            len(left_schema.tables), 1, (), ()
        )
        assert diff(left_schema, seen).lines() == [
            "trigger trg_orders_amount: only in left: BEFORE INSERT ON orders",
            "function fee: only in left: (IN amount decimal(12,2)) RETURNS decimal(12,2)",
            "procedure close_order: only in left: (IN order_id bigint)",
        ]
        assert diff(left_schema, seen, ignore_kinds=("trigger", "procedure", "function")).in_sync

        with right_conn.cursor() as cursor:
            for host in hosts:
                cursor.execute(f"GRANT TRIGGER ON `{scratch_schema}`.* TO '{user}'@'{host}'")
                cursor.execute(f"GRANT SELECT ON mysql.proc TO '{user}'@'{host}'")
        conn = _connect(reader, scratch_schema)
        assert diff(left_schema, load_schema(conn, scratch_schema)).in_sync
        conn.close()
    finally:
        with right_conn.cursor() as cursor:
            for host in hosts:
                cursor.execute(f"DROP USER IF EXISTS '{user}'@'{host}'")


def test_the_sync_reader_sees_every_definition_but_view_text_and_no_customer_row(
    machine_mariadb: Dict[str, object], left_schema: SchemaModel, right_conn: pymysql.Connection,
    scratch_schema: str,
) -> None:
    """The upstream's reader as Custom::SyncUsers grants it (SELECT on the allow-list and the
    history, SHOW VIEW + REFERENCES on the schema): drift compares every table, column, index
    and FK; view definitions are listed as not compared, triggers and routines stay left out."""
    from envsync.credentials.db_users import ensure_sync_users, grant_procedure
    from envsync.lambdas.handlers import READER_INVISIBLE_KINDS

    suffix = uuid.uuid4().hex[:8]
    reader = {"username": f"r_{suffix}", "password": uuid.uuid4().hex}
    writer = {"username": f"w_{suffix}", "password": uuid.uuid4().hex}
    ensure_sync_users(right_conn, schema=scratch_schema, reader=reader, writer=writer, require_tls=False,
                      reader_tables=["currencies"])
    right_conn.select_db(scratch_schema)
    try:
        conn = _connect(dict(machine_mariadb, user=reader["username"], password=reader["password"]),
                        scratch_schema)
        seen = load_schema(conn, scratch_schema)
        with conn.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM currencies")
            with pytest.raises(pymysql.err.OperationalError) as denied:
                cursor.execute("SELECT email FROM customers")
            assert denied.value.args[0] == 1142
        conn.close()
        report = diff(left_schema, seen, left_name="staging", right_name="dev (reader)",
                      ignore_kinds=READER_INVISIBLE_KINDS)
        assert report.in_sync, report.lines()
        assert [t.name for t in seen.tables] == [t.name for t in left_schema.tables]
        assert report.not_compared_lines() == [
            "not compared: view v_open_orders: definition (not shown to this user: it needs SELECT on the view)"]
    finally:
        with right_conn.cursor() as cursor:
            for user in (reader, writer):
                cursor.execute("DROP USER IF EXISTS %s@'%%'", (user["username"],))
            cursor.execute(f"DROP PROCEDURE IF EXISTS {grant_procedure(scratch_schema)}")


def test_what_cannot_be_compared_is_listed_per_object(
    left_schema: SchemaModel, right_conn: pymysql.Connection, scratch_schema: str
) -> None:
    _run(right_conn, scratch_schema, [
        "CREATE SEQUENCE seq_orders",
        "CREATE EVENT ev_purge ON SCHEDULE EVERY 1 DAY DO DELETE FROM settings WHERE priority < 0",
    ])
    right = load_schema(right_conn, scratch_schema)
    report = diff(left_schema, right, left_name="dev", right_name="staging")
    assert report.not_compared_lines() == ["not compared: event ev_purge: STARTS/ENDS"]
    assert "event ev_purge: only in staging: EVERY 1 DAY" in report.lines()
    again = DriftReport.from_dict(json.loads(json.dumps(report.to_dict())))
    assert again.not_compared == report.not_compared
    assert SchemaModel.from_dict(json.loads(json.dumps(right.to_dict()))) == right
    assert diff(left_schema, right, ignore_kinds=("event",)).not_compared_lines() == []


def test_flavours_name_what_each_server_can_show() -> None:
    from envsync.mysql.flavour import Flavour

    mariadb = Flavour.from_version("10.11.19-MariaDB-0+deb12u1")
    mysql57, mysql80 = Flavour.from_version("5.7.12-log"), Flavour.from_version("8.0.36")
    assert str(mariadb) == "MariaDB 10.11.19" and str(mysql80) == "MySQL 8.0.36"
    assert [f.check_constraints for f in (mariadb, mysql57, mysql80)] == [True, False, True]
    assert [f.quotes_literal_defaults for f in (mariadb, mysql57, mysql80)] == [True, False, False]
    assert [f.ignored_indexes or f.invisible_indexes for f in (mariadb, mysql57, mysql80)] == [True, False, True]
    assert [f.view_algorithm for f in (mariadb, mysql57, mysql80)] == [True, False, False]
    assert [Flavour.from_version(v).check_constraints for v in ("10.2.22-MariaDB", "10.3.9-MariaDB",
                                                               "10.3.10-MariaDB", "8.0.15")] == [
        True, False, True, False]
    assert [f.index_expressions for f in (mariadb, mysql57, mysql80)] == [False, False, True]


def test_sequence_options_are_compared_not_its_current_value(
    right_conn: pymysql.Connection, scratch_schema: str
) -> None:
    _run(right_conn, scratch_schema, ["CREATE SEQUENCE seq_orders START WITH 1 CACHE 10"])
    before = load_schema(right_conn, scratch_schema)
    _run(right_conn, scratch_schema, ["SELECT NEXTVAL(seq_orders)"])  # a value, not structure
    assert diff(before, load_schema(right_conn, scratch_schema)).lines() == []
    _run(right_conn, scratch_schema, ["DROP SEQUENCE seq_orders",
                                      "CREATE SEQUENCE seq_orders START WITH 10 CACHE 10 CYCLE"])
    assert diff(before, load_schema(right_conn, scratch_schema)).lines() == [
        "table seq_orders: sequence START 1 INCREMENT 1 MINVALUE 1 MAXVALUE 9223372036854775806 CACHE 10"
        " NOCYCLE != START 10 INCREMENT 1 MINVALUE 1 MAXVALUE 9223372036854775806 CACHE 10 CYCLE"]


def test_changed_check_clause_is_one_difference(right_conn: pymysql.Connection, scratch_schema: str) -> None:
    _run(right_conn, scratch_schema, ["ALTER TABLE settings ADD CONSTRAINT chk_priority CHECK (priority >= 0)"])
    before = load_schema(right_conn, scratch_schema)
    _run(right_conn, scratch_schema, ["ALTER TABLE settings DROP CONSTRAINT chk_priority",
                                      "ALTER TABLE settings ADD CONSTRAINT chk_priority CHECK (priority >= 1)"])
    report = diff(before, load_schema(right_conn, scratch_schema), left_name="dev", right_name="staging")
    assert report.lines() == ["check settings.chk_priority: clause priority>=0 != priority>=1"]
