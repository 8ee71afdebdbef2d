"""Migrations on three real MariaDB stand-ins (TLS): apply, promote, gate, validate, fail, repair."""

from __future__ import annotations

import os
import time
from pathlib import Path
from typing import Dict

import pytest

from envsync.migrations import history, migrate
from envsync.migrations.migrate import DirectorySource, UpstreamHistorySource
from envsync.migrations.scripts import ScriptError
from tests.engine.conftest import EnvDB, write_scripts
from tests.engine.conftest import history_rows as rows

BASE = {
    "V1__create_accounts.sql": (
        "-- accounts; the first table\n"
        "CREATE TABLE accounts (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL);\n"
        "INSERT INTO accounts VALUES (1, 'cash;main');\n"
    ),
    "V1.9__currencies.sql": "CREATE TABLE currencies (code CHAR(3) PRIMARY KEY);\n",
    "V1.10__add_currency.sql": (
        "ALTER TABLE accounts ADD COLUMN currency CHAR(3) NULL;\n"
        "DELIMITER $$\n"
        "CREATE PROCEDURE open_account(IN k BIGINT)\nBEGIN\n"
        "  INSERT INTO accounts (id, name) VALUES (k, 'new;');\nEND$$\n"
        "DELIMITER ;\n"
    ),
}
ONE_TABLE = {"V1__a.sql": "CREATE TABLE a (id INT);"}


def run(env: EnvDB, source: object, **kwargs: object) -> migrate.MigrationResult:
    connection, script_connection = env.connect(), env.connect()
    try:
        return migrate.apply(connection, source, schema=env.database,
                             script_connection=script_connection, env_name=env.name, **kwargs)
    finally:
        connection.close()
        script_connection.close()


def upstream(env: EnvDB) -> UpstreamHistorySource:
    return UpstreamHistorySource(env.connect(), env.name)


def test_apply_dev_then_promote_to_staging_then_prod(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    scripts = DirectorySource(str(write_scripts(tmp_path / "s", BASE)), env_name="dev")
    dev, staging, prod = chain["dev"], chain["staging"], chain["prod"]

    plan_connection = dev.connect()
    plan = migrate.make_plan(plan_connection, scripts)
    assert [p.script.name for p in plan.pending] == [
        "V1__create_accounts.sql", "V1.9__currencies.sql", "V1.10__add_currency.sql"]
    assert dev.query("SHOW TABLES") == []  # plan applies nothing (not even the history table)

    result = run(dev, scripts)
    assert result.status == "applied" and len(result.applied) == 3
    assert run(dev, scripts).status == "up_to_date"

    assert run(staging, upstream(dev)).status == "applied"
    assert run(prod, upstream(staging)).status == "applied"
    dev_rows = [(r.version, r.checksum, r.state, r.statements_applied) for r in rows(dev)]
    for env in (staging, prod):
        assert [(r.version, r.checksum, r.state, r.statements_applied) for r in rows(env)] == dev_rows
        env.query("CALL open_account(7)")
        assert env.query("SELECT name FROM accounts ORDER BY id") == [("cash;main",), ("new;",)]
    assert {r.source_env for r in rows(staging)} == {"dev"}
    assert {r.source_env for r in rows(prod)} == {"staging"}
    assert rows(prod)[0].script_body == BASE["V1__create_accounts.sql"].encode()


def test_bad_sql_fails_names_statement_and_line_and_gate_holds(
    chain: Dict[str, EnvDB], tmp_path: Path
) -> None:
    folder = write_scripts(tmp_path / "s", {
        **BASE,
        "V2__broken.sql": "CREATE TABLE t2 (id INT PRIMARY KEY);\n\n-- next one is wrong\n"
                          "ALTER TABLE t2 ADD COLUMN oops INT NOT NULL DEFAULT;\nCREATE TABLE t3 (id INT);\n",
        "V3__later.sql": "CREATE TABLE later (id INT);\n",
    })
    dev, staging = chain["dev"], chain["staging"]
    result = run(dev, DirectorySource(str(folder), "dev"))
    assert result.status == "failed"
    assert result.error.startswith(
        "dev: V2__broken.sql statement 2 (line 4): [1064] You have an error in your SQL syntax")
    assert result.pending == ["V2__broken.sql", "V3__later.sql"]
    broken = next(r for r in rows(dev) if r.version == "2")
    assert (broken.state, broken.statements_applied, broken.success) == ("failed", 1, False)
    assert "statement 2 (line 4)" in broken.error_text
    tables = {t for (t,) in dev.query("SHOW TABLES")}
    assert "t2" in tables and "t3" not in tables and "later" not in tables

    # later versions wait: the next run refuses until repaired
    again = run(dev, DirectorySource(str(folder), "dev"))
    assert again.status == "refused" and again.issues[0].kind == "failed"

    # the gate: staging gets V1..V1.10 only; V2 (failed upstream) is withheld
    promoted = run(staging, upstream(dev))
    assert promoted.status == "applied"
    assert [r.version for r in rows(staging)] == ["1", "1.9", "1.10"]
    assert [w["version"] for w in promoted.withheld] == ["2"]  # V3 never reached dev history

    # fix the script (statement 1 unchanged, it already ran), repair, resume at statement 2
    (folder / "V2__broken.sql").write_text(
        "CREATE TABLE t2 (id INT PRIMARY KEY);\n\n-- fixed\nALTER TABLE t2 ADD COLUMN oops INT;\n"
        "CREATE TABLE t3 (id INT);\n")
    connection = dev.connect()
    message = migrate.repair(connection, schema=dev.database, version="2")
    assert "resumes at statement 2" in message
    assert run(dev, DirectorySource(str(folder), "dev")).status == "applied"
    assert [r.state for r in rows(dev)] == ["success"] * 5
    assert run(staging, upstream(dev)).status == "applied"
    assert [r.version for r in rows(staging)] == ["1", "1.9", "1.10", "2", "3"]


def test_unapplied_upstream_version_is_not_promoted(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev, staging, prod = chain["dev"], chain["staging"], chain["prod"]
    folder = write_scripts(tmp_path / "s", {"V1__a.sql": "CREATE TABLE a (id INT);"})
    run(dev, DirectorySource(str(folder), "dev"))
    run(staging, upstream(dev))
    write_scripts(folder, {"V2__b.sql": "CREATE TABLE b (id INT);"})  # in dev's source only
    assert run(staging, upstream(dev)).status == "up_to_date"
    assert run(dev, DirectorySource(str(folder), "dev")).status == "applied"
    assert run(prod, upstream(staging)).status == "applied"
    assert [r.version for r in rows(prod)] == ["1"]  # prod never sees what staging lacks


def test_tampered_and_missing_scripts_are_refused(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {"V1__a.sql": "CREATE TABLE a (id INT);",
                                            "V2__b.sql": "CREATE TABLE b (id INT);"})
    run(dev, DirectorySource(str(folder), "dev"))
    (folder / "V1__a.sql").write_text("CREATE TABLE a (id BIGINT);")
    write_scripts(folder, {"V3__c.sql": "CREATE TABLE c (id INT);"})
    result = run(dev, DirectorySource(str(folder), "dev"))
    assert result.status == "refused"
    assert [(i.kind, i.version) for i in result.issues] == [("checksum", "1")]
    assert result.error.startswith("dev: V1__a.sql was applied with checksum")
    assert "c" not in {t for (t,) in dev.query("SHOW TABLES")}

    (folder / "V1__a.sql").write_text("CREATE TABLE a (id INT);")
    (folder / "V2__b.sql").unlink()
    result = run(dev, DirectorySource(str(folder), "dev"))
    assert [(i.kind, i.version) for i in result.issues] == [("missing", "2")]

    write_scripts(folder, {"V2__b.sql": "CREATE TABLE b (id INT);", "V1.5__late.sql": "SELECT 1;"})
    result = run(dev, DirectorySource(str(folder), "dev"))
    assert [(i.kind, i.version) for i in result.issues] == [("out_of_order", "1.5")]


def test_missing_script_rule_follows_the_bucket_lifecycle(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    """An S3 object expires `retention_days` after its upload: only then may it be missing."""
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {"V1__a.sql": "CREATE TABLE a (id INT);"})
    uploaded = time.time() - 10 * 86400
    os.utime(folder / "V1__a.sql", (uploaded, uploaded))
    run(dev, DirectorySource(str(folder), "dev"))
    applied = rows(dev)
    assert abs(history._to_epoch(applied[0].source_uploaded_at) - uploaded) < 1
    gone = migrate.SourceView(scripts=[], retention_days=30)
    assert [i.kind for i in migrate.validate(applied, gone)] == ["missing"]  # uploaded 10 days ago
    later = time.time() + 21 * 86400
    assert migrate.validate(applied, gone, now=later) == []  # 31 days after upload: expired
    no_lifecycle = migrate.SourceView(scripts=[])
    assert [i.kind for i in migrate.validate(applied, no_lifecycle, now=later)] == ["missing"]


def test_downstream_only_version_is_drift(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev, staging = chain["dev"], chain["staging"]
    run(dev, DirectorySource(str(write_scripts(tmp_path / "d", ONE_TABLE)), "dev"))
    hotfix = write_scripts(tmp_path / "h", {"V1__a.sql": "CREATE TABLE a (id INT);",
                                            "V1.1__hotfix.sql": "CREATE INDEX ix ON a (id);"})
    run(staging, DirectorySource(str(hotfix), "staging"))
    result = run(staging, upstream(dev))
    assert result.status == "refused"
    assert [(i.kind, i.version) for i in result.issues] == [("drift", "1.1")]
    assert "schema drift" in result.issues[0].message


def test_corrupt_upstream_history_is_refused(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev, staging = chain["dev"], chain["staging"]
    run(dev, DirectorySource(str(write_scripts(tmp_path / "d", ONE_TABLE)), "dev"))
    dev.query(f"UPDATE {history.TABLE} SET script_body = 'DROP TABLE a;'")
    with pytest.raises(migrate.MigrationError, match="does not match its checksum"):
        run(staging, upstream(dev))


def test_deadline_stops_between_statements_and_resumes(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev = chain["dev"]
    two = "CREATE TABLE a (id INT);\nCREATE TABLE b (id INT);\n"
    folder = write_scripts(tmp_path / "s", {"V1__a.sql": two})
    result = run(dev, DirectorySource(str(folder), "dev"), deadline=time.monotonic() - 1)
    assert result.status == "continue"
    assert (rows(dev)[0].state, rows(dev)[0].statements_applied) == ("pending", 0)
    assert run(dev, DirectorySource(str(folder), "dev")).status == "applied"
    assert rows(dev)[0].state == "success"


def test_repair_of_an_attempt_that_ran_nothing_frees_the_version(
    chain: Dict[str, EnvDB], tmp_path: Path
) -> None:
    dev, staging = chain["dev"], chain["staging"]
    folder = write_scripts(tmp_path / "s", {"V1__a.sql": "CREATE TABLE a (id INT);",
                                            "V2__bad.sql": "CREATE TABLE a (id INT);"})
    assert run(dev, DirectorySource(str(folder), "dev")).status == "failed"
    (folder / "V2__bad.sql").unlink()  # withdrawn by its author
    write_scripts(folder, {"V3__c.sql": "CREATE TABLE c (id INT);"})
    connection = dev.connect()
    assert "removed from history" in migrate.repair(connection, schema=dev.database, version="2")
    assert run(dev, DirectorySource(str(folder), "dev")).status == "applied"
    assert [(r.version, r.state) for r in rows(dev)] == [("1", "success"), ("3", "success")]
    assert run(staging, upstream(dev)).status == "applied"
    assert [r.version for r in rows(staging)] == ["1", "3"]
    with pytest.raises(migrate.MigrationError, match="nothing to repair"):
        migrate.repair(connection, schema=dev.database, version="3")


@pytest.mark.parametrize("near_miss", ["V2__x.SQL", "v2__x.sql", "V2_x.sql"])
def test_directory_source_refuses_near_miss_names(tmp_path: Path, near_miss: str) -> None:
    folder = write_scripts(tmp_path / "s", {"V1__a.sql": "SELECT 1;", near_miss: "SELECT 2;",
                                            "README.md": "notes, not a script"})
    with pytest.raises(ScriptError, match=rf"{near_miss}: not a migration script name"):
        DirectorySource(str(folder), "dev").view()


def test_plan_names_the_file_whose_description_the_history_cannot_hold(
    chain: Dict[str, EnvDB], tmp_path: Path
) -> None:
    long_name = f"V1__{'x' * 201}.sql"
    folder = write_scripts(tmp_path / "s", {long_name: "SELECT 1;"})
    connection = chain["dev"].connect()
    with pytest.raises(ScriptError, match=rf"{long_name}: the description is 201 characters"):
        migrate.make_plan(connection, DirectorySource(str(folder), "dev"))


def test_notices_name_the_statement_and_error_class_never_the_row(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    """The server's text ("Duplicate entry 'IBAN-123' ...") stays in the history; what a
    notification carries (result.notice, Issue.notice) names where and which error only."""
    dev = chain["dev"]
    folder = write_scripts(tmp_path / "s", {"V1__dup.sql": "CREATE TABLE acct (iban VARCHAR(34) PRIMARY KEY);\n"
                                                           "INSERT INTO acct VALUES ('IBAN-123'), ('IBAN-123');\n"})
    source = migrate.DirectorySource(str(folder), env_name="dev")
    failed = run(dev, source)
    assert "Duplicate entry 'IBAN-123'" in (failed.error or "")
    assert failed.notice == ("dev: V1__dup.sql statement 2 (line 2): IntegrityError: MySQL error 1062 (DUP_ENTRY)")
    connection = dev.connect()
    try:
        [issue] = migrate.make_plan(connection, source).issues
    finally:
        connection.close()
    assert "IBAN-123" in issue.message and "IBAN-123" not in (issue.notice or "")
    assert issue.notice == (
        "V1__dup.sql statement 2 (line 2): MySQL error 1062 (DUP_ENTRY); later versions wait. Statements 1-1 "
        "took effect. Either fix statement 2 in the script and upload it again under the same name (statements "
        "1-1 unchanged), or fix the env, then run `envsync repair --version 1 --resolution not-applied` (the "
        "next run resumes at statement 2); or roll the script back: undo statements 1-1 by hand, fix or "
        "withdraw the script at the source, then run `envsync repair --version 1 --statements-applied 0`.")


def test_client_errors_keep_their_words_server_errors_lose_theirs() -> None:
    import pymysql

    from envsync.mysql.connection import server_error_notice

    lost = pymysql.err.OperationalError(2013, "Lost connection to MySQL server during query")
    assert server_error_notice(lost) == "(2013, 'Lost connection to MySQL server during query')"
    duplicate = pymysql.err.IntegrityError(1062, "Duplicate entry 'IBAN-123' for key 'PRIMARY'")
    assert server_error_notice(duplicate) == "IntegrityError: MySQL error 1062 (DUP_ENTRY)"
    assert server_error_notice(RuntimeError()) == "RuntimeError"
