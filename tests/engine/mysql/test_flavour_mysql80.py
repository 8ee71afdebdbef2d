"""The MySQL-8.0-only branches of `envsync.mysql.flavour`, against output MySQL 8.0 itself printed.

MySQL 8.0 cannot be installed here, so the information_schema rows MySQL's own test suite
recorded (tests/engine/fixtures/mysql80, see SOURCE.md) are loaded into tables of the same
names and columns on the machine's MariaDB, and the engine's readers run their real queries
against them (`information_schema.` pointed at that schema). A query that names a column
MySQL 8.0 does not have fails there as it would on the server.
"""

from __future__ import annotations

import uuid
from pathlib import Path
from typing import Dict, Iterator, List, Optional, Tuple

import pymysql
import pytest

from envsync.drift.introspect.keys import _CHECKS_SQL_WITH_TABLE, read_checks, read_indexes
from envsync.drift.introspect.model import Check, Index, IndexPart
from envsync.drift.introspect.normalise import normalise_expression
from envsync.drift.introspect.reading import Reading
from envsync.mysql.flavour import Flavour

FIXTURES = Path(__file__).parents[1] / "fixtures" / "mysql80"
MYSQL80 = Flavour.from_version("8.0.36")  # what Aurora MySQL 3.06+ answers to SELECT VERSION()
Captured = Dict[str, Tuple[List[str], List[Tuple[Optional[str], ...]]]]


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
