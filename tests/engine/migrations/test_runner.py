"""The runner never reports success for work that did not happen (real MariaDB, TLS stand-ins).

Each test is a script the `mariadb` client runs one way and an earlier runner reported another:
an open transaction, autocommit turned off, LOCK TABLES, a version alias, a killed session.
"""

from __future__ import annotations

import hashlib
import threading
import time
from pathlib import Path
from typing import Dict

import pytest

from envsync.migrations import history, migrate
from envsync.migrations.migrate import DirectorySource, UpstreamHistorySource
from tests.engine.conftest import EnvDB, write_scripts
from tests.engine.conftest import history_rows as rows
from tests.engine.migrations.test_migrate import run

TABLE = {"V1__a.sql": "CREATE TABLE a (id INT PRIMARY KEY);\n"}


def apply_scripts(env: EnvDB, folder: Path) -> migrate.MigrationResult:
    return run(env, DirectorySource(str(folder), env.name))


def test_transaction_left_open_fails_and_records_nothing_rolled_back(
    chain: Dict[str, EnvDB], tmp_path: Path
) -> None:
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {
        **TABLE,
        "V2__open.sql": "INSERT INTO a VALUES (1);\nSTART TRANSACTION;\nINSERT INTO a VALUES (2);\n",
        "V3__later.sql": "CREATE TABLE later (id INT);\n",
    })
    result = apply_scripts(dev, folder)
    assert result.status == "failed"
    assert result.error.startswith("dev: V2__open.sql statement 2 (line 2) opened a transaction that "
                                   "the script never commits")
    assert "statements 2-3 (from line 2) ran in a transaction that was rolled back" in result.error
    assert dev.query("SELECT id FROM a") == [(1,)]
    v2 = next(r for r in rows(dev) if r.version == "2")
    assert (v2.state, v2.statements_applied) == ("failed", 1)  # statement 1 only: it is durable
    assert "later" not in {t for (t,) in dev.query("SHOW TABLES")}


def test_committed_transaction_is_recorded_when_it_commits(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {
        **TABLE,
        "V2__tx.sql": "START TRANSACTION;\nINSERT INTO a VALUES (1);\nINSERT INTO a VALUES (2);\nCOMMIT;\n"
                      "BEGIN;\nINSERT INTO a VALUES (3);\nCREATE TABLE b (id INT);\n",  # DDL commits
    })
    assert apply_scripts(dev, folder).status == "applied"
    assert dev.query("SELECT id FROM a ORDER BY id") == [(1,), (2,), (3,)]
    assert [(r.state, r.statements_applied) for r in rows(dev)] == [("success", 1), ("success", 7)]


def test_failure_inside_a_transaction_rolls_it_back_and_says_so(
    chain: Dict[str, EnvDB], tmp_path: Path
) -> None:
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {
        **TABLE, "V2__dup.sql": "START TRANSACTION;\nINSERT INTO a VALUES (1);\nINSERT INTO a VALUES (1);\n"})
    result = apply_scripts(dev, folder)
    assert result.status == "failed"
    assert result.error.startswith("dev: V2__dup.sql statement 3 (line 3): [1062] Duplicate entry")
    assert result.error.endswith("statements 1-3 (from line 1) ran in a transaction that was rolled back")
    assert dev.query("SELECT COUNT(*) FROM a") == [(0,)]
    assert rows(dev)[1].statements_applied == 0


def test_autocommit_turned_off_fails_the_script(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {
        **TABLE, "V2__ac.sql": "INSERT INTO a VALUES (1);\nSET autocommit = 0;\nINSERT INTO a VALUES (2);\n"})
    result = apply_scripts(dev, folder)
    assert result.status == "failed"
    assert "dev: V2__ac.sql statement 2 (line 2) turned autocommit off" in result.error
    assert dev.query("SELECT id FROM a") == [(1,)]
    assert (rows(dev)[1].state, rows(dev)[1].statements_applied) == ("failed", 1)


def test_lock_tables_does_not_break_the_history_write(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {
        **TABLE,
        "V2__lock.sql": "LOCK TABLES a WRITE;\nINSERT INTO a VALUES (1);\nUNLOCK TABLES;\n",
        "V3__lock_left.sql": "LOCK TABLES a READ;\nSELECT COUNT(*) FROM a;\n",
        "V4__after.sql": "INSERT INTO a VALUES (2);\n",  # runs unlocked: V3's lock ended with V3
    })
    result = apply_scripts(dev, folder)
    assert result.status == "applied", result.error
    assert [(r.version, r.state) for r in rows(dev)] == [
        ("1", "success"), ("2", "success"), ("3", "success"), ("4", "success")]
    assert dev.query("SELECT id FROM a ORDER BY id") == [(1,), (2,)]


def test_version_alias_resumes_its_own_row(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    """V1.0 fails, is repaired, then renamed V1: one row, found and finished."""
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {"V1.0__x.sql": "CREATE TABLE a (id INT);\nSELECT nope FROM a;\n"})
    assert apply_scripts(dev, folder).status == "failed"
    assert [r.version for r in rows(dev)] == ["1"]  # stored in canonical form
    # a row an older release stored under its spelling is still found and healed
    dev.query(f"UPDATE {history.TABLE} SET version = '1.0'")
    connection = dev.connect()
    assert "resumes at statement 2" in migrate.repair(connection, schema=dev.database, version="1")
    (folder / "V1.0__x.sql").unlink()
    write_scripts(folder, {"V1__x.sql": "CREATE TABLE a (id INT);\nSELECT id FROM a;\n"})
    assert apply_scripts(dev, folder).status == "applied"
    assert [(r.version, r.state, r.statements_applied) for r in rows(dev)] == [("1", "success", 2)]


def test_history_write_that_changes_no_row_fails_loudly(chain: Dict[str, EnvDB]) -> None:
    connection = chain["dev"].connect()
    history.ensure_table(connection)
    with pytest.raises(history.HistoryWriteError, match=r"statement 3 of version 9 changed 0 rows, not 1"):
        history.record_progress(connection, "9", 3)


def test_killed_session_says_so_and_leaves_the_statement_in_doubt(
    chain: Dict[str, EnvDB], tmp_path: Path
) -> None:
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {**TABLE, "V2__slow.sql": "INSERT INTO a VALUES (1);\nDO SLEEP(30);\n"})

    def kill_the_sleeper() -> None:
        for _ in range(200):
            sleeping = dev.query("SELECT id FROM information_schema.processlist WHERE info = 'DO SLEEP(30)'")
            if sleeping:
                dev.query(f"KILL CONNECTION {sleeping[0][0]}")
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_sleeper)
    killer.start()
    result = apply_scripts(dev, folder)
    killer.join()
    assert result.status == "failed"
    assert result.error.startswith("dev: V2__slow.sql statement 2 (line 2): lost the connection to the "
                                   "database ([2013]")
    assert "Run `envsync status`" in result.error
    v2 = rows(dev)[1]
    assert (v2.state, v2.statements_applied) == ("running", 1)  # in doubt until a human says
    assert "lost the connection" in v2.error_text
    refused = apply_scripts(dev, folder)
    assert refused.status == "refused" and refused.issues[0].kind == "in_doubt"


def test_rows_checksummed_over_raw_bytes_by_an_older_release_still_match(
    chain: Dict[str, EnvDB], tmp_path: Path
) -> None:
    """Before checksums were over normalised text, a CRLF script was stored raw: still the same script."""
    dev, staging = chain["dev"], chain["staging"]
    crlf = b"CREATE TABLE a (id INT);\r\nINSERT INTO a VALUES (1);\r\n"
    folder = tmp_path / "s"
    folder.mkdir()
    (folder / "V1__a.sql").write_bytes(crlf)
    assert apply_scripts(dev, folder).status == "applied"
    dev.query(f"UPDATE {history.TABLE} SET script_body = %s, checksum = %s",
              (crlf, hashlib.sha256(crlf).hexdigest()))  # what the older release wrote
    assert apply_scripts(dev, folder).status == "up_to_date"
    promoted = run(staging, UpstreamHistorySource(dev.connect(), "dev"))
    assert promoted.status == "applied", promoted.error
    assert rows(staging)[0].script_body == crlf.replace(b"\r\n", b"\n")
    dev.query(f"UPDATE {history.TABLE} SET script_body = 'DROP TABLE a;'")
    with pytest.raises(migrate.MigrationError, match="does not match its checksum"):
        run(staging, UpstreamHistorySource(dev.connect(), "dev"))


def test_one_session_for_both_roles_is_refused(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    connection = chain["dev"].connect()
    with pytest.raises(migrate.MigrationError, match="two sessions"):
        migrate.apply(connection, DirectorySource(str(write_scripts(tmp_path / "s", TABLE)), "dev"),
                      schema=chain["dev"].database, script_connection=connection)


def test_lost_history_session_says_what_ran_and_what_to_do(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {**TABLE, "V2__slow.sql": "INSERT INTO a VALUES (1);\nDO SLEEP(2);\n"})
    control, session = dev.connect(), dev.connect()

    def kill_the_control_session() -> None:
        for _ in range(200):
            if dev.query("SELECT id FROM information_schema.processlist WHERE info = 'DO SLEEP(2)'"):
                dev.query(f"KILL CONNECTION {control.thread_id()}")
                return
            time.sleep(0.05)

    killer = threading.Thread(target=kill_the_control_session)
    killer.start()
    try:
        with pytest.raises(migrate.MigrationError) as error:
            migrate.apply(control, DirectorySource(str(folder), "dev"), schema=dev.database,
                          script_connection=session, env_name="dev")
    finally:
        killer.join()
        session.close()
    assert str(error.value).startswith(
        "dev: V2__slow.sql statement 2 (line 2) took effect, but writing that to the history failed: "
        "lost the connection to the database")
    assert "run `envsync status` to see where dev stands" in str(error.value)
    assert [(r.version, r.state, r.statements_applied) for r in rows(dev)] == [
        ("1", "success", 1), ("2", "running", 1)]  # statement 2 is in doubt, as it should be


def test_unfinished_row_split_differently_now_is_refused_until_repaired(
    chain: Dict[str, EnvDB], tmp_path: Path
) -> None:
    """A run by an older splitter counted other statements: its resume point may point elsewhere."""
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {
        **TABLE, "V2__x.sql": "INSERT INTO a VALUES (1);\nINSERT INTO a VALUES (2);\nSELECT nope;\n"})
    assert apply_scripts(dev, folder).status == "failed"
    dev.query(f"UPDATE {history.TABLE} SET statement_count = 2 WHERE version = '2'")  # the old count
    refused = apply_scripts(dev, folder)
    assert [i.kind for i in refused.issues] == ["failed", "resplit"]
    assert "now splits into 3 statements" in refused.issues[1].message
    connection = dev.connect()
    with pytest.raises(migrate.MigrationError, match="between 0 and 3"):
        migrate.repair(connection, schema=dev.database, version="2", statements_applied=4)
    assert "resumes at statement 3 of 3" in migrate.repair(
        connection, schema=dev.database, version="2", statements_applied=2)
    write_scripts(folder, {"V2__x.sql": "INSERT INTO a VALUES (1);\nINSERT INTO a VALUES (2);\nSELECT 1;\n"})
    assert apply_scripts(dev, folder).status == "applied"
    assert dev.query("SELECT id FROM a ORDER BY id") == [(1,), (2,)]
    assert [(r.state, r.statements_applied, r.statement_count) for r in rows(dev)][1] == ("success", 3, 3)
