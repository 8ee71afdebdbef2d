"""Statement splitting and script naming, pinned by fixtures named after their edge case."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pymysql
import pytest

from envsync.scripts import ScriptError, load_script, parse_name, sort_scripts, split_statements

FIXTURES = Path(__file__).parent / "fixtures" / "scripts"
CASES = sorted(path.name for path in FIXTURES.iterdir() if path.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_splitter_fixture(case: str) -> None:
    folder = FIXTURES / case
    text = (folder / "input.sql").read_text()
    if (folder / "error.txt").exists():
        with pytest.raises(ScriptError) as error:
            split_statements(text)
        assert (folder / "error.txt").read_text().strip() in str(error.value)
        return
    expected = json.loads((folder / "expected.json").read_text())
    got = [{"line": s.line, "sql": s.sql} for s in split_statements(text)]
    assert got == expected
    assert [s.number for s in split_statements(text)] == list(range(1, len(expected) + 1))


def test_split_statements_run_on_mariadb(machine_mariadb: dict, scratch_schema: str) -> None:
    """The server accepts what the splitter produces for routines, triggers and events."""
    connection = pymysql.connect(**machine_mariadb, database=scratch_schema, autocommit=True)
    try:
        with connection.cursor() as cursor:
            cursor.execute("CREATE TABLE t (v INT)")
            for case in ("delimiterprocedure", "delimitertrigger", "executablecomment",
                         "semicoloninidentifier", "comments"):
                for statement in split_statements((FIXTURES / case / "input.sql").read_text()):
                    if statement.sql.startswith("INSERT INTO t"):
                        continue
                    cursor.execute(statement.sql)
            cursor.execute("CALL bump(1)")
            cursor.execute("SELECT two()")
            assert cursor.fetchone() == (2,)
            cursor.execute("INSERT INTO t VALUES (-5)")
            cursor.execute("SELECT v FROM t")
            assert cursor.fetchone() == (0,)  # the trigger's body ran whole
    finally:
        connection.close()


def test_names_and_numeric_order() -> None:
    assert parse_name("V1.10__add_index.sql") == ("1.10", "add index")
    names = ["V1.10__b.sql", "V1.9__a.sql", "V2__c.sql", "V1__z.sql"]
    ordered = sort_scripts(load_script(name, b"SELECT 1;") for name in names)
    assert [s.name for s in ordered] == ["V1__z.sql", "V1.9__a.sql", "V1.10__b.sql", "V2__c.sql"]
    for bad in ("v1__x.sql", "V1_1__x.sql", "V1__x.txt", "V__x.sql", "V1.__x.sql"):
        with pytest.raises(ScriptError, match="not a migration script name"):
            parse_name(bad)
    with pytest.raises(ScriptError, match="same version"):
        sort_scripts([load_script("V1.0__a.sql", b""), load_script("V1__b.sql", b"")])


def test_checksum_is_sha256_of_bytes_and_errors_name_the_file() -> None:
    script = load_script("V3__x.sql", b"SELECT 1;\n")
    assert script.checksum == hashlib.sha256(b"SELECT 1;\n").hexdigest()
    with pytest.raises(ScriptError, match=r"V3__x.sql: line 2: unterminated"):
        load_script("V3__x.sql", b"SELECT 1;\nSELECT 'x;\n")
