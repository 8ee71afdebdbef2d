"""The MySQL-8.0-only branches of `envsync.mysql.flavour`, against output MySQL 8.0 itself printed.

MySQL 8.0 cannot be installed here, so the information_schema rows MySQL's own test suite
recorded (tests/engine/mysql/fixtures, see SOURCE.md) are loaded into tables of the same
names and columns on the machine's MariaDB, and the engine's readers run their real queries
against them (`information_schema.` pointed at that schema). A query that names a column
MySQL 8.0 does not have fails there as it would on the server. Column defaults: the
COLUMNS rows MySQL 8.0 printed go through the engine's normaliser (what `tables` applies to
each row) and are compared with the same table created on MariaDB and read by the engine.
Rotation: the statement the engine builds for 8.0 is looked up among the statements MySQL 8.0
ran for an unprivileged account changing its own password, with the answer it gave.

Every MySQL-8.0-only branch of the flavour and its test here: `check_constraints` (8.0.16+) and
`check_constraints_name_their_table` (the joined query), `invisible_indexes` and
`index_expressions` (8.0.13+), the MySQL side of `quotes_literal_defaults` with 8.0's
DEFAULT_GENERATED, `own_password_statement` (REPLACE, 8.0.13+).
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pymysql
import pytest
from pymysql.converters import escape_str

from envsync.credentials.rotation import own_password_statement
from envsync.drift.introspect.keys import _CHECKS_SQL_WITH_TABLE, read_checks, read_indexes
from envsync.drift.introspect.model import Check, Index, IndexPart
from envsync.drift.introspect.normalise import normalise_default, normalise_expression, normalise_extra
from envsync.drift.introspect.reading import Reading
from envsync.drift.introspect.tables import read_tables
from envsync.mysql.flavour import Flavour

FIXTURES = Path(__file__).parent / "fixtures"
MYSQL80 = Flavour.from_version("8.0.36")  # what Aurora MySQL 3.06+ answers to SELECT VERSION()
Captured = Dict[str, Tuple[List[str], List[Tuple[Optional[str], ...]]]]
# MySQL 8.0 answers SHOW COLUMNS from information_schema.COLUMNS under these aliases
# (sql/dd/info_schema/show.cc, build_show_columns_query; see fixtures/SOURCE.md).
SHOW_COLUMNS_ALIASES = {"Field": "COLUMN_NAME", "Type": "COLUMN_TYPE", "Null": "IS_NULLABLE",
                        "Key": "COLUMN_KEY", "Default": "COLUMN_DEFAULT", "Extra": "EXTRA"}


def captured_tables(result_file: Path) -> Captured:
    """information_schema table -> (columns, rows) of each `SELECT * FROM INFORMATION_SCHEMA.X`."""
    lines = result_file.read_text().splitlines()
    tables: Captured = {}
    index = 0
    while index < len(lines):
        line = lines[index]
        if line.upper().startswith("SELECT * FROM INFORMATION_SCHEMA."):
            name = line.split(".", 1)[1].split()[0].rstrip(";")
            while not lines[index].endswith(";"):
                index += 1
            columns = lines[index + 1].split("\t")
            rows, index = [], index + 2
            while index < len(lines) and len(lines[index].split("\t")) == len(columns):
                rows.append(tuple(None if value == "NULL" else value for value in lines[index].split("\t")))
                index += 1
            tables[name] = (columns, rows)
            continue
        index += 1
    return tables


def captured_columns(result_file: Path) -> List[Dict[str, Optional[str]]]:
    """information_schema.COLUMNS rows (by column name) of each `SHOW COLUMNS` and each
    `SELECT <columns> FROM information_schema.columns` the result file records."""
    lines = result_file.read_text().splitlines()
    found: List[Dict[str, Optional[str]]] = []
    for index, line in enumerate(lines[:-1]):
        header = lines[index + 1].split("\t")
        if not line.endswith(";") or not (line.upper().startswith("SHOW COLUMNS")
                                           or "information_schema.columns" in line.lower()):
            continue
        names = [SHOW_COLUMNS_ALIASES.get(name, name) for name in header]
        for row in lines[index + 2:]:
            values = row.split("\t")
            if len(values) != len(names):
                break
            found.append({name: None if value == "NULL" else value for name, value in zip(names, values)})
    return found


def captured_statements(result_file: Path) -> Dict[Tuple[str, str], Optional[str]]:
    """(password_require_current, statement) -> the error MySQL 8.0 answered, None for success;
    statements lower-cased, without the final `;`."""
    outcomes: Dict[Tuple[str, str], Optional[str]] = {}
    policy, last = "OFF", None
    for line in result_file.read_text().splitlines():
        if line.startswith("ERROR") and last is not None:
            outcomes[last] = line
        elif line.endswith(";") and not line.startswith("#"):
            statement = " ".join(line[:-1].lower().split())
            if statement.startswith("set @@global.password_require_current="):
                policy = statement.split("=", 1)[1].upper()
            last = (policy, statement)
            outcomes[last] = None
    return outcomes


def _default_of(row: Dict[str, Optional[str]]) -> Optional[str]:
    """What the engine makes of a captured COLUMNS row's default (tables._read_columns' call)."""
    data_type = row.get("DATA_TYPE") or str(row["COLUMN_TYPE"]).split("(")[0].split()[0]
    return normalise_default(row["COLUMN_DEFAULT"], row["EXTRA"], data_type, MYSQL80)


def _mariadb_columns(machine_mariadb, schema: str, create: str) -> Dict[str, Tuple[Optional[str], str]]:
    """The same table created on MariaDB and read by the engine: column -> (default, extra)."""
    with pymysql.connect(**machine_mariadb, database=schema, autocommit=True) as connection:
        with connection.cursor() as cursor:
            cursor.execute(create)
            cursor.execute("SELECT VERSION()")
            (version,) = cursor.fetchone()
        (table,) = read_tables(Reading(conn=connection, schema=schema, flavour=Flavour.from_version(version)))
    return {column.name: (column.default, column.extra) for column in table.columns}


@pytest.fixture
def captured_schema(machine_mariadb) -> Iterator[str]:
    """A schema holding MySQL 8.0's captured information_schema tables, dropped afterwards."""
    name = f"envsync_m80_{uuid.uuid4().hex[:10]}"
    connection = pymysql.connect(**machine_mariadb, autocommit=True)
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE DATABASE `{name}`")
        for result in sorted(FIXTURES.glob("*.result")):
            for table, (columns, rows) in captured_tables(result).items():
                cursor.execute(f"CREATE TABLE `{name}`.`{table}` ("
                               + ", ".join(f"`{column}` TEXT NULL" for column in columns) + ")")
                cursor.executemany(f"INSERT INTO `{name}`.`{table}` VALUES ({', '.join(['%s'] * len(columns))})",
                                   rows)
    try:
        yield name
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
        connection.close()


class CapturedReading(Reading):
    """A Reading whose information_schema is the captured MySQL 8.0 tables."""

    captured: str = ""

    def rows(self, sql, args=None):
        return super().rows(sql.replace("information_schema.", f"`{self.captured}`."), args)


@pytest.fixture
def reading(machine_mariadb, captured_schema) -> Iterator[CapturedReading]:
    connection = pymysql.connect(**machine_mariadb, autocommit=True)
    found = CapturedReading(conn=connection, schema="test", flavour=MYSQL80)
    found.captured = captured_schema
    try:
        yield found
    finally:
        connection.close()


def test_the_captured_output_is_mysql_8_0s():
    checks = captured_tables(FIXTURES / "check_constraints.result")
    assert checks["CHECK_CONSTRAINTS"][0] == ["CONSTRAINT_CATALOG", "CONSTRAINT_SCHEMA", "CONSTRAINT_NAME",
                                              "CHECK_CLAUSE"]
    assert "ENFORCED" in checks["TABLE_CONSTRAINTS"][0]
    statistics = captured_tables(FIXTURES / "functional_index.result")["STATISTICS"]
    assert statistics[0][-2:] == ["IS_VISIBLE", "EXPRESSION"] and len(statistics[1]) == 2


def test_check_constraints_come_from_the_joined_query_on_mysql_8_0(reading):
    assert MYSQL80.check_constraints and not MYSQL80.check_constraints_name_their_table
    # The MariaDB query names CHECK_CONSTRAINTS.TABLE_NAME, which MySQL 8.0 does not have.
    with pytest.raises(pymysql.err.OperationalError, match="Unknown column 'TABLE_NAME'"):
        reading.rows(_CHECKS_SQL_WITH_TABLE)
    assert read_checks(reading) == {"t1": [Check("t1_chk_1", "f2<10"),
                                           Check("t2_cc1", "(f1+sqrt(f2))>6174")]}


def test_the_same_checks_on_mariadb_compare_equal_but_for_mysqls_extra_parentheses(reading, scratch_schema,
                                                                                   machine_mariadb):
    """The same CHECKs read from MariaDB (names aside: MariaDB names a column-level check after
    its column, MySQL `<table>_chk_<n>`): the simple clause is equal after normalisation; MySQL
    8.0 prints `((f1 + sqrt(f2)) > 6174)` with parentheses MariaDB leaves out, which stays a
    difference (the server's own rewriting, listed as not normalised in envsync.drift.introspect)."""
    with pymysql.connect(**machine_mariadb, database=scratch_schema, autocommit=True) as connection:
        with connection.cursor() as cursor:  # the statement the captured output came from
            cursor.execute("CREATE TABLE t1(f1 INT PRIMARY KEY, f2 INT CHECK (f2 < 10), "
                           "CONSTRAINT t2_cc1 CHECK (f1 + SQRT(f2) > 6174))")
            cursor.execute("SELECT VERSION()")
            (version,) = cursor.fetchone()
        mariadb = read_checks(Reading(conn=connection, schema=scratch_schema, flavour=Flavour.from_version(version)))
    assert {c.name: c.clause for c in mariadb["t1"]} == {"f2": "f2<10", "t2_cc1": "f1+sqrt(f2)>6174"}
    mysql = {c.name: c.clause for c in read_checks(reading)["t1"]}
    assert mysql["t1_chk_1"] == "f2<10" and mysql["t2_cc1"] == "(f1+sqrt(f2))>6174"


def test_functional_and_invisible_index_columns_on_mysql_8_0(reading):
    assert MYSQL80.invisible_indexes and MYSQL80.index_expressions and not MYSQL80.ignored_indexes
    assert read_indexes(reading) == {"t1": [
        Index("int_func_index", unique=False, type="BTREE",
              columns=(IndexPart(column=None, expression=normalise_expression("abs(`int_col`)")),)),
        Index("string_func_index", unique=False, type="BTREE",
              columns=(IndexPart(column=None, expression=normalise_expression("substr(`string_col`,1,2)")),)),
    ]}
    assert reading.not_compared == []  # the expressions were read, nothing left unshown
    # MariaDB's column for the same idea does not exist on MySQL 8.0.
    with pytest.raises(pymysql.err.OperationalError, match="Unknown column 'IGNORED'"):
        reading.rows("SELECT IGNORED FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = %s")


def test_literal_defaults_on_mysql_8_0_are_unquoted_and_read_as_literals(machine_mariadb, scratch_schema):
    """MySQL 8.0 keeps a literal default raw in COLUMN_DEFAULT (`8`, while SHOW CREATE TABLE
    prints `DEFAULT '8'`) and a NULL default as SQL NULL; MariaDB 10.11 quotes literals. The
    engine's MySQL branch (not `quotes_literal_defaults`) makes both the same quoted literal."""
    assert not MYSQL80.quotes_literal_defaults
    shown = {row["COLUMN_NAME"]: row for row in captured_columns(FIXTURES / "invisible_columns.result")}
    assert (shown["f2"]["COLUMN_DEFAULT"], shown["f2"]["EXTRA"]) == ("8", "INVISIBLE")
    assert "`f2` int DEFAULT '8'" in (FIXTURES / "invisible_columns.result").read_text()
    mysql = {name: (_default_of(row), normalise_extra(row["EXTRA"])) for name, row in shown.items()}
    assert mysql == {"f1": (None, ""), "f2": ("'8'", "invisible")}
    # The statement the captured output came from, on MariaDB (INVISIBLE columns since 10.3).
    assert _mariadb_columns(machine_mariadb, scratch_schema,
                            "CREATE TABLE t1 (f1 INT, f2 INT INVISIBLE DEFAULT 8)") == mysql


def test_expression_defaults_on_mysql_8_0_are_told_by_default_generated(machine_mariadb, scratch_schema):
    """MySQL 8.0.13+ prints an expression default bare in COLUMN_DEFAULT and marks it with
    DEFAULT_GENERATED in EXTRA; that flag alone tells `md5(`i`)` from the literal string
    'md5(`i`)'. Read this way it equals MariaDB's, and DEFAULT_GENERATED leaves no drift."""
    rows = captured_columns(FIXTURES / "default_as_expr.result")
    utf8, (plain, generated) = rows[0], rows[1:]
    assert (generated["COLUMN_NAME"], generated["COLUMN_DEFAULT"], generated["EXTRA"]) == (
        "b", "md5(`i`)", "DEFAULT_GENERATED")
    assert _default_of(generated) == normalise_expression("md5(`i`)") == "md5(i)"
    assert _default_of({**generated, "EXTRA": ""}) == "'md5(`i`)'"  # without the flag: a literal
    assert _mariadb_columns(machine_mariadb, scratch_schema,
                            "CREATE TABLE t1 (i INT, b char(255) DEFAULT (md5(i)))") == {
        plain["COLUMN_NAME"]: (_default_of(plain), normalise_extra(plain["EXTRA"])),
        "b": (_default_of(generated), normalise_extra(generated["EXTRA"])),
    }
    # Read from information_schema.COLUMNS itself: an expression, kept as the server printed it
    # (MySQL 8.0 backslash-escapes the quotes of a literal inside it there, where SHOW CREATE
    # TABLE does not: one of the server's rewritings the introspection does not normalise).
    assert utf8["EXTRA"] == "DEFAULT_GENERATED" and utf8["DATA_TYPE"] == "varchar"
    assert _default_of(utf8) == normalise_expression(utf8["COLUMN_DEFAULT"])
    assert str(_default_of(utf8)).startswith("_utf8mb4\\'")


def test_own_password_change_on_mysql_8_0_is_one_8_0_accepted_under_either_policy():
    """The rotation's statement, with a sync user's rights (no privilege on mysql.*), as MySQL
    8.0 answered it with password_require_current OFF (the default) and ON: without REPLACE it is
    refused under ON, with the current password in REPLACE it succeeds under both."""
    outcomes = captured_statements(FIXTURES / "password_require_current.result")
    assert outcomes[("OFF", "select @@global.password_require_current")] is None  # its answer: 0
    args = {"new": escape_str("pwd2"), "current": escape_str("pwd1")}
    statement = own_password_statement("8.0.36") % args
    assert statement == "ALTER USER USER() IDENTIFIED BY 'pwd2' REPLACE 'pwd1'"
    assert outcomes[("OFF", statement.lower())] is None
    assert outcomes[("ON", statement.lower())] is None
    # What 5.7 (and the engine before 8.0.13) says, refused by 8.0 under ON.
    without_replace = own_password_statement("5.7.12-log") % {"new": escape_str("pwd1")}
    assert outcomes[("OFF", without_replace.lower())] is None
    assert outcomes[("ON", without_replace.lower())] == (
        "ERROR HY000: Current password needs to be specified in the REPLACE clause in order to change it.")
