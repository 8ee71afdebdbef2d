"""Statement splitting and script naming, pinned by fixtures named after their edge case."""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import pymysql
import pytest

from envsync.migrations.scripts import (
    MAX_DESCRIPTION,
    ScriptError,
    is_script_candidate,
    load_script,
    parse_name,
    script_text,
    sort_scripts,
    split_statements,
)

FIXTURES = Path(__file__).parent / "fixtures" / "scripts"
CASES = sorted(path.name for path in FIXTURES.iterdir() if path.is_dir())


@pytest.mark.parametrize("case", CASES)
def test_splitter_fixture(case: str) -> None:
    folder = FIXTURES / case
    # as load_script reads a file: bytes, BOM stripped, line endings normalised
    text = script_text((folder / "input.sql").read_bytes())
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
            for case in ("delimiterprocedure", "delimitertrigger", "executablecomment", "delimitercaseexpression",
                         "semicoloninidentifier", "comments"):
                for statement in split_statements(script_text((FIXTURES / case / "input.sql").read_bytes())):
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


@pytest.mark.parametrize("body", [
    b"USE`other`;\n",
    b"/*!40000 USE other */;\n",
    b"/*M!100000 use other*/;\n",
    b"/* why */ -- and a line comment\n# and a hash\n  Use\n other;\n",
    b"SELECT 1;\n/*!USE `other` */;\n",
])
def test_every_spelling_of_use_is_refused(body: bytes) -> None:
    """The server executes `/*!...*/` bodies and ignores comments: the head is read as it would."""
    with pytest.raises(ScriptError, match=r"V1__x.sql: statement \d \(line \d\): USE is not allowed"):
        load_script("V1__x.sql", body)


def test_words_that_merely_start_with_use_are_statements() -> None:
    script = load_script("V1__x.sql", b"SELECT `use` FROM t;\nUSER_COUNT();\n/* USE */ SELECT 1;\n")
    assert [s.sql for s in script.statements] == ["SELECT `use` FROM t", "USER_COUNT()", "SELECT 1"]


def test_client_use_command_is_refused() -> None:
    with pytest.raises(ScriptError, match=r"line 2: client command \\u"):
        load_script("V1__x.sql", b"SELECT 1;\n\\u other\nSELECT 2;\n")


def test_versions_are_canonical() -> None:
    assert parse_name("V1.0__x.sql") == ("1", "x")
    assert parse_name("V01.002.0__x.sql") == ("1.2", "x")
    assert load_script("V2.10.0__x.sql", b"").version == "2.10"


def test_bom_is_stripped_and_line_endings_normalised_before_checksum() -> None:
    lf = load_script("V1__x.sql", b"INSERT INTO t VALUES ('a\nb');\nSELECT 2;\n")
    crlf = load_script("V1__x.sql", b"\xef\xbb\xbfINSERT INTO t VALUES ('a\r\nb');\r\nSELECT 2;\r\n")
    cr = load_script("V1__x.sql", b"INSERT INTO t VALUES ('a\rb');\rSELECT 2;\r")
    assert crlf.statements == lf.statements == cr.statements
    assert crlf.statements[0].sql == "INSERT INTO t VALUES ('a\nb')"
    assert crlf.checksum == lf.checksum == cr.checksum == hashlib.sha256(lf.body).hexdigest()
    assert crlf.body == lf.body


@pytest.mark.parametrize("name", ["V2__x.SQL", "v2__x.sql", "V2_x.sql", "V2__x.Sql", "V2.__x.sql",
                                  "V2__x.sql.bak"])
def test_near_miss_names_are_script_candidates_and_refused(name: str) -> None:
    assert is_script_candidate(name)
    with pytest.raises(ScriptError, match="not a migration script name"):
        load_script(name, b"SELECT 1;")


@pytest.mark.parametrize("name", ["README.md", "notes.txt", ".keep", "Vagrantfile"])
def test_other_files_are_not_script_candidates(name: str) -> None:
    assert not is_script_candidate(name)


def test_a_description_the_history_cannot_store_is_an_error_naming_the_file() -> None:
    name = f"V3__{'d' * (MAX_DESCRIPTION + 1)}.sql"
    with pytest.raises(ScriptError, match=rf"{name}: the description is {MAX_DESCRIPTION + 1} "
                                          rf"characters; the history keeps at most {MAX_DESCRIPTION}"):
        load_script(name, b"SELECT 1;")
    assert load_script(f"V3__{'d' * MAX_DESCRIPTION}.sql", b"SELECT 1;").description


def test_custom_delimiter_block_runs_statement_by_statement_on_mariadb(
    machine_mariadb: dict, scratch_schema: str
) -> None:
    """Each part the splitter makes of a multi-statement block is one statement to the server."""
    text = script_text((FIXTURES / "delimitermultistatement" / "input.sql").read_bytes())
    connection = pymysql.connect(**machine_mariadb, database=scratch_schema, autocommit=True)
    try:
        with connection.cursor() as cursor:
            for statement in split_statements(text):
                cursor.execute(statement.sql)
            cursor.execute("INSERT INTO m VALUES (-4)")  # the single-statement trigger body
            cursor.execute("CALL mp()")
            cursor.execute("SELECT id FROM m ORDER BY id")
            assert [row[0] for row in cursor.fetchall()] == [1, 2, 4, 6]
    finally:
        connection.close()


@pytest.mark.parametrize("body", [
    b"LOCK TABLES envsync_schema_history WRITE;\n",
    b"SELECT 1;\nUPDATE `envsync_schema_history` SET state = 'success';\n",
    b"/*!40000 DELETE FROM app.ENVSYNC_SCHEMA_HISTORY */;\n",
])
def test_scripts_must_not_touch_the_history_table(body: bytes) -> None:
    with pytest.raises(ScriptError, match=r"V1__x.sql: statement \d \(line \d\): envsync_schema_history "
                                          "belongs to envsync"):
        load_script("V1__x.sql", body)
    assert load_script("V1__x.sql", b"SELECT 'envsync_schema_history';").statements  # a string
