"""The normalisations that make MariaDB 10.11, MySQL 5.7 and MySQL 8.0 reports compare equal.

Only MariaDB runs here, so the MySQL side of each pair is what MySQL's information_schema
reports for the same DDL as its reference manual describes it (COLUMN_DEFAULT is the raw value,
NULL for no default or a NULL default; EXTRA carries DEFAULT_GENERATED for expression defaults
in 8.0.13+; 8.0.19+ drops integer display widths), not a value read from a MySQL server. The
MariaDB side is what the server in this suite returns (test_drift.py proves it end to end).
"""

from __future__ import annotations

import pytest

from envsync.drift.introspect import (
    normalise_body,
    normalise_collation,
    normalise_column_type,
    normalise_default,
    normalise_expression,
    normalise_extra,
)
from envsync.mysql.flavour import Flavour

MARIADB_10_11 = Flavour.from_version("10.11.19-MariaDB-0+deb12u1")
MYSQL_5_7, MYSQL_8_0 = Flavour.from_version("5.7.12-log"), Flavour.from_version("8.0.36")


@pytest.mark.parametrize(
    ("mariadb_or_57", "mysql80"),
    [
        ("int(11)", "int"),
        ("bigint(20) unsigned", "bigint unsigned"),
        ("tinyint(4)", "tinyint"),
        ("year(4)", "year"),
        ("enum('A','b')", "enum('A','b')"),
    ],
)
def test_integer_display_widths_do_not_count(mariadb_or_57: str, mysql80: str) -> None:
    assert normalise_column_type(mariadb_or_57) == normalise_column_type(mysql80)


def test_zerofill_keeps_its_width_and_enum_values_keep_their_case() -> None:
    assert normalise_column_type("int(5) unsigned zerofill") == "int(5) unsigned zerofill"
    assert normalise_column_type("int(5) zerofill") != normalise_column_type("int(6) zerofill")
    assert normalise_column_type("ENUM('Yes','no')") == "enum('Yes','no')"


# (MariaDB COLUMN_DEFAULT, (MySQL COLUMN_DEFAULT, MySQL EXTRA, DATA_TYPE), canonical)
DEFAULT_PAIRS = [
    ("'abc'", ("abc", "", "varchar"), "'abc'"),
    ("'it''s'", ("it's", "", "varchar"), "'it''s'"),
    ("'x\\\\y'", ("x\\y", "", "varchar"), "'x\\y'"),
    ("''", ("", "", "varchar"), "''"),
    ("'NULL'", ("NULL", "", "varchar"), "'NULL'"),  # the string 'NULL' is not NULL
    ("NULL", (None, "", "int"), None),  # MariaDB spells a NULL default as the word NULL
    ("0.00", ("0.00", "", "decimal"), "'0.00'"),
    ("-1", ("-1", "", "int"), "'-1'"),
    ("b'1'", ("b'1'", "", "bit"), "b'1'"),
    ("current_timestamp()", ("CURRENT_TIMESTAMP", "DEFAULT_GENERATED", "timestamp"), "current_timestamp"),
    ("current_timestamp()", ("CURRENT_TIMESTAMP", "", "timestamp"), "current_timestamp"),  # 5.7
    ("current_timestamp(3)", ("CURRENT_TIMESTAMP(3)", "DEFAULT_GENERATED", "datetime"),
     "current_timestamp(3)"),
    ("uuid()", ("uuid()", "DEFAULT_GENERATED", "varchar"), "uuid()"),
    ("(1 + 2)", ("(1 + 2)", "DEFAULT_GENERATED", "int"), "1+2"),
]


@pytest.mark.parametrize(("mariadb", "mysql", "canonical"), DEFAULT_PAIRS)
def test_defaults_compare_equal_across_servers(mariadb: str, mysql: tuple, canonical: object) -> None:
    raw, extra, data_type = mysql
    assert normalise_default(mariadb, "", data_type, MARIADB_10_11) == canonical
    assert normalise_default(raw, extra, data_type, MYSQL_5_7) == canonical
    assert normalise_default(raw, extra, data_type, MYSQL_8_0) == canonical


def test_mysql_literal_that_looks_like_a_function_stays_a_literal() -> None:
    # On MySQL only DEFAULT_GENERATED (or CURRENT_TIMESTAMP on a temporal column) is an expression.
    assert normalise_default("uuid()", "", "varchar", MYSQL_8_0) == "'uuid()'"
    assert normalise_default("CURRENT_TIMESTAMP", "", "varchar", MYSQL_5_7) == "'CURRENT_TIMESTAMP'"


@pytest.mark.parametrize(
    ("mariadb", "mysql"),
    [
        ("on update current_timestamp()", "on update CURRENT_TIMESTAMP"),
        ("on update current_timestamp(3)", "DEFAULT_GENERATED on update CURRENT_TIMESTAMP(3)"),
        ("", "DEFAULT_GENERATED"),
        ("auto_increment", "auto_increment"),
        ("VIRTUAL GENERATED", "VIRTUAL GENERATED"),
    ],
)
def test_extra_compares_equal_across_servers(mariadb: str, mysql: str) -> None:
    assert normalise_extra(mariadb) == normalise_extra(mysql)


def test_generation_expressions_ignore_mysql_parentheses() -> None:
    assert normalise_expression("`pid` + 1") == normalise_expression("(`pid` + 1)")
    assert normalise_expression("(a + 1) * (b + 1)") == "(a+1)*(b+1)"  # not one enclosing pair


def test_utf8_is_utf8mb3() -> None:
    assert normalise_collation("utf8_general_ci") == normalise_collation("utf8mb3_general_ci")


def test_bodies_drop_own_schema_qualifiers_comments_and_layout_but_not_strings() -> None:
    left = normalise_body(
        "select `app_dev`.`t`.`a` AS `a` from `app_dev`.`t` where x = 'app_dev.t'", "app_dev"
    )
    right = normalise_body(
        "select   `app_stg`.`t`.`a` AS `a`\n  from app_stg.t /* c */ where x='app_dev.t'", "app_stg"
    )
    assert left == right == "SELECT t.a AS a FROM t WHERE x='app_dev.t'"
    # Backquotes stay where the name needs them.
    assert normalise_body("select `my col` from `t`") == "SELECT `my col` FROM t"
    # Another schema's qualifier is kept: that is a real reference.
    assert normalise_body("select * from other.t", "app") == "SELECT*FROM other.t"
    # Case and content of string literals matter.
    assert normalise_body("set x = 'A  b'") != normalise_body("set x = 'a b'")
