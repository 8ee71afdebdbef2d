"""Row filters (`where`) are one boolean expression, passed to the server as written: a `%`
or a `#` inside a string literal works, anything that could close the engine's own parenthesis
or comment out the rest of its statement is refused at config time, naming the table."""

from __future__ import annotations

import pytest

from envsync.refdata import RefdataConfigError, apply
from tests.engine.conftest import Pair, config


@pytest.mark.parametrize("row_filter, kept", [
    ("code LIKE 'U%'", ["USD"]),
    ("name <> 'a#b' AND code <> 'EUR'", ["USD"]),
    ("(code = 'EUR') OR (name = 'x;y -- /*')", ["EUR"]),
])
def test_filters_with_percent_hash_and_comment_marks_inside_literals(pair: Pair, row_filter: str, kept) -> None:
    pair.both("CREATE TABLE cur (code CHAR(3) PRIMARY KEY, name VARCHAR(20))")
    pair.run(pair.source, "INSERT INTO cur VALUES ('USD', 'dollar'), ('EUR', 'euro'), ('a#b', 'a#b')")
    apply(pair.source, pair.target, config({"name": "cur", "where": row_filter}))
    assert [r[0] for r in pair.rows(pair.target, "SELECT code FROM cur ORDER BY code")] == kept


@pytest.mark.parametrize("row_filter", [
    "1=1) OR (1=1", "(1=1", "a = 1; DROP TABLE x", "a = 1 -- c", "a = 1 /* c */", "a = 1 # c",
    "a = 'open", "a = 'x\\' OR 1=1 -- '", "",
])
def test_filters_that_could_escape_the_range_predicate_are_refused(row_filter: str) -> None:
    with pytest.raises(RefdataConfigError, match=r"tables\[0\]\.where"):
        config({"name": "cur", "where": row_filter})


def test_percent_in_table_and_column_names(pair: Pair) -> None:
    pair.both("CREATE TABLE `rate%s` (`id%d` INT PRIMARY KEY, `v%` VARCHAR(5))")
    pair.run(pair.source, "INSERT INTO `rate%s` VALUES (1, 'a'), (2, 'b')")
    pair.run(pair.target, "INSERT INTO `rate%s` VALUES (2, 'x'), (3, 'c')")
    apply(pair.source, pair.target, config({"name": "rate%s", "where": "`v%` <> '%'"}, chunk_rows=1))
    assert pair.same("rate%s")
