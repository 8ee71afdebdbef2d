"""Faults against the whole offline system (issue 7). Each test injects one fault into a real
run — the deployed state machine or the deployed function run as Lambda runs it — checks the
error a human would see, recovers the way an operator would, and ends with "nothing lost,
nothing half-applied" (`assert_converged`: same history, schema and reference rows in every
env, no running/failed history row, each env's customer rows untouched).

Tests run in file order on one launched system; each starts converged (the first one repairs
the cycle's blocked promotion) and leaves it converged.

Kills are SIGKILL of the handler process that `lambda_runner.invoke` started (a Lambda
"container"). To kill *inside* a given statement, the test holds a lock that the statement
waits for, and sends the kill once the server shows the statement waiting.
"""

from __future__ import annotations

import re
import string
import threading
from typing import Any, Dict, List

import pytest

from envsync_local import lambda_runner
from envsync_local.cycle import inbox_messages, sync
from envsync_local.lambda_runner import LambdaInvocationError

from .helpers import (
    HISTORY,
    assert_converged,
    customer_data,
    envsync_cli,
    function_environment_changed,
    history,
    history_row,
    kill_handler_inside,
    query,
    refdata,
    repair_blocked_promotion,
    result_of,
    root,
    run_handler,
    schema_model,
    set_moto_auth,
    ship,
    upload_script,
    wait_for_sessions_gone,
    wait_for_statement,
)

pytestmark = pytest.mark.launched


def killed(outcome: Any) -> bool:
    return isinstance(outcome, LambdaInvocationError) and " exited -9" in outcome.message


def index_exists(handle, table: str, index: str) -> bool:
    return bool(query(handle, "SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                              "AND TABLE_NAME = %s AND INDEX_NAME = %s", (table, index))[0][0])


def columns(handle, table: str) -> List[str]:
    return [row[0] for row in query(handle, "SELECT COLUMN_NAME FROM information_schema.COLUMNS "
                                            "WHERE TABLE_SCHEMA = DATABASE() AND TABLE_NAME = %s "
                                            "ORDER BY ORDINAL_POSITION", (table,))]


def migrate_everywhere(system, expect_applied: List[str]) -> None:
    for handle in system.handles:
        result = result_of(run_handler(handle, "migrate"))
        assert result["status"] == "done", (handle.name, result)
        assert [a["version"] for a in result["applied"]] == expect_applied, (handle.name, result)


def refdata_downstream(system, expect_rows: int) -> None:
    for handle in system.handles[1:]:
        result = result_of(run_handler(handle, "refdata", {"mode": "apply"}))
        assert result["status"] == "done" and result["rows_changed"] == expect_rows, (handle.name, result)


# ---------------------------------------------------------------- a failed migration (the cycle's demo)

def test_blocked_promotion_is_repaired_and_the_chain_converges(system):
    _dev, staging, prod = system.handles
    blocked = {status.env: status for status in system.report["blocked"]}
    assert blocked["staging"].execution == "FAILED"
    # the notice names the statement and error class; the server text stays in history and logs
    # the same notice whether V4 failed in this cycle (the exception's class) or in an earlier
    # one on the same launch (read back from the failed history row)
    assert re.search(r"V4__index_country_name\.sql statement 1 \(line 3\): (OperationalError: )?"
                     r"MySQL error 1061 \(DUP_KEYNAME\)", blocked["staging"].error), blocked["staging"].error
    assert "Duplicate key name" not in blocked["staging"].error
    assert history_row(staging, "4")["state"] == "failed"
    assert history_row(prod, "4") is None, "prod must not be touched past a failure upstream"
    customers = customer_data(system.handles)

    # The operator removes the hand-made index (the drift V4 tripped on), then repairs V4.
    repaired = repair_blocked_promotion(system)
    assert "V4__index_country_name.sql: removed from history" in repaired.stdout
    assert_converged(system.handles, customers)


# ---------------------------------------------------------------- kill -9 in each step

V5 = """-- e2e fault: statement 2 waits for a metadata lock the test holds, and is killed there.
CREATE TABLE fault_audit (id BIGINT NOT NULL AUTO_INCREMENT, note VARCHAR(80) NOT NULL, PRIMARY KEY (id)) ENGINE=InnoDB;
CREATE INDEX ix_customer_account_holder ON customer_account (holder_name);
ALTER TABLE fault_audit ADD COLUMN created_at DATETIME(6) NULL;
"""


def test_kill_9_inside_a_migration_statement_is_refused_as_in_doubt_until_repaired(system):
    dev = system["dev"]
    customers = customer_data(system.handles)
    upload_script(dev, "V5__audit_trail.sql", V5)

    # A reader of customer_account holds its metadata lock: statement 2 (CREATE INDEX) waits.
    blocker = root(dev)
    try:
        blocker.begin()
        with blocker.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM customer_account")
        outcome = kill_handler_inside(dev, "migrate", "CREATE INDEX ix_customer_account_holder%")
        assert killed(outcome), outcome
        waiting = wait_for_statement(dev, "CREATE INDEX ix_customer_account_holder%", timeout=1)
        assert "metadata lock" in (waiting[2] or ""), waiting
    finally:
        blocker.rollback()
        blocker.close()
    # The killed client's statement still completes on the server once the lock is free.
    wait_for_sessions_gone(dev, user="envsync_writer")
    row = history_row(dev, "5")
    assert (row["state"], row["statements_applied"]) == ("running", 1), row
    assert index_exists(dev, "customer_account", "ix_customer_account_holder")
    assert "created_at" not in columns(dev, "fault_audit")

    # The next run (the deployed state machine) refuses and names the statement in doubt.
    inbox_messages(dev)  # drop older notices
    run = sync(dev)
    assert run.execution.status == "FAILED"
    failure = run.invocations[-1]
    assert failure["function"] == "envsync-dev-validate"
    expected = "V5__audit_trail.sql statement 2 (line 3) is in doubt"
    assert expected in failure["message"] and "envsync repair --version 5" in failure["message"]
    assert any(expected in str(notice["message"]) for notice in inbox_messages(dev))
    assert run.alarms["envsync-dev-sync-failures"] == "ALARM"
    assert history_row(dev, "5")["statements_applied"] == 1 and "created_at" not in columns(dev, "fault_audit")

    # The operator saw the index exists: statement 2 took effect.
    repaired = envsync_cli(system.state_dir, "repair", "--env", "dev", "--version", "5", "--resolution", "applied")
    assert repaired.returncode == 0, repaired.stderr
    assert "resumes at statement 3 of 3" in repaired.stdout

    migrate_everywhere(system, ["5"])
    assert "created_at" in columns(system["prod"], "fault_audit")
    assert_converged(system.handles, customers)


def test_kill_9_inside_a_reference_data_transaction_leaves_the_target_unchanged(system):
    dev, staging, _prod = system.handles
    customers = customer_data(system.handles)
    new_codes = [a + b + c for a in "XYZ" for b in string.ascii_uppercase for c in string.ascii_uppercase]
    with root(dev) as connection, connection.cursor() as cursor:  # dev's application edits its data
        cursor.executemany("INSERT INTO currency (code, name, minor_units) VALUES (%s, %s, 2)",
                           [(code, f"Test currency {code}") for code in new_codes])
        cursor.execute("UPDATE currency SET name = 'Euro (EUR)' WHERE code = 'EUR'")
        cursor.execute("INSERT INTO country (iso2, name, region, currency_code) VALUES ('ZY', 'Zyland', 'TEST', 'XAA')")
    before = refdata(staging)

    # A gap lock on country 'ZY': the apply inserts the currencies, then waits at the country insert.
    blocker = root(staging)
    try:
        blocker.begin()
        with blocker.cursor() as cursor:
            cursor.execute("SELECT * FROM country WHERE iso2 = 'ZY' FOR UPDATE")
        outcome = kill_handler_inside(staging, "refdata", "INSERT INTO %country%", {"mode": "apply"})
        assert killed(outcome), outcome
        wait_for_statement(staging, "INSERT INTO %country%", timeout=1)  # still waiting server-side
    finally:
        blocker.rollback()
        blocker.close()
    wait_for_sessions_gone(staging, user="envsync_writer")
    assert refdata(staging) == before, "a killed reference-data apply must leave the target unchanged"

    refdata_downstream(system, expect_rows=len(new_codes) + 2)
    assert_converged(system.handles, customers)


@pytest.mark.parametrize("action", ["validate", "plan"])
def test_kill_9_during_a_read_only_step_changes_nothing(system, action):
    staging = system["staging"]
    customers = customer_data(system.handles)
    before = (history(staging), schema_model(staging), refdata(staging))
    blocker = root(staging)
    try:
        with blocker.cursor() as cursor:
            cursor.execute(f"LOCK TABLES {HISTORY} WRITE")
        outcome = kill_handler_inside(staging, action, f"%FROM%{HISTORY}%")
        assert killed(outcome), outcome
    finally:
        with blocker.cursor() as cursor:
            cursor.execute("UNLOCK TABLES")
        blocker.close()
    wait_for_sessions_gone(staging, user="envsync_writer")
    assert (history(staging), schema_model(staging), refdata(staging)) == before
    assert result_of(run_handler(staging, action))["status"] == "done"
    assert_converged(system.handles, customers)


# ---------------------------------------------------------------- two syncs at once

V6 = """-- e2e fault: two runs at once.
CREATE TABLE fault_fx_rate (pair CHAR(6) NOT NULL, rate DECIMAL(18, 8) NOT NULL, PRIMARY KEY (pair)) ENGINE=InnoDB;
CREATE INDEX ix_customer_account_opened ON customer_account (opened_at);
"""


def test_two_syncs_at_once_one_waits_or_fails_on_the_lock_and_nothing_is_applied_twice(system):
    dev, staging, prod = system.handles
    customers = customer_data(system.handles)
    upload_script(dev, "V6__fx_rates.sql", V6)
    new_codes = [f"W{b}{c}" for b in string.ascii_uppercase for c in string.ascii_uppercase]
    with root(dev) as connection, connection.cursor() as cursor:
        cursor.executemany("INSERT INTO currency (code, name) VALUES (%s, %s)", [(c, f"W {c}") for c in new_codes])

    # dev: run A holds the migration lock (blocked inside V6 statement 2); run B gives up on it.
    blocker = root(dev)
    outcomes: Dict[str, Any] = {}
    try:
        blocker.begin()
        with blocker.cursor() as cursor:
            cursor.execute("SELECT COUNT(*) FROM customer_account")
        first = threading.Thread(target=lambda: outcomes.update(a=run_handler(dev, "migrate")))
        first.start()
        wait_for_statement(dev, "CREATE INDEX ix_customer_account_opened%", timeout=60)
        second = result_of(run_handler(dev, "migrate", {"lock_timeout": 2}))
        assert second["status"] == "failed"
        assert "another envsync run holds the migration lock 'envsync:appdb'" in second["error"]
        assert "without applying anything" in second["error"]
        assert history_row(dev, "6")["state"] == "running"  # A's row, untouched by B
    finally:
        blocker.rollback()
        blocker.close()
    first.join(120)
    assert [a["version"] for a in result_of(outcomes["a"])["applied"]] == ["6"]

    # staging: two executions of the deployed state machine at the same moment.
    runs: Dict[int, Any] = {}
    threads = [threading.Thread(target=lambda i=i: runs.update({i: sync(staging)})) for i in (0, 1)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(300)
    migrated, rows_applied = [], 0
    for run in runs.values():
        by_function = {r["function"]: r for r in run.invocations}
        migrate = by_function.get("envsync-staging-migrate", {})
        if "result" in migrate:
            migrated += [a["version"] for a in migrate["result"]["applied"]]
        if run.execution.status == "SUCCEEDED":
            rows_applied += sum(r["result"]["rows_changed"] for r in run.invocations  # each group's apply
                                if r["function"] == "envsync-staging-refdata" and "rows_changed" in r["result"])
        else:  # the loser of a race reports it and applies nothing
            message = run.invocations[-1].get("message", "")
            assert "migration lock" in message or "MySQL error 1062 (DUP_ENTRY)" in message, message
    print("two staging executions:", [(run.execution.status, run.invocations[-1].get("message"))
                                      for run in runs.values()])
    assert migrated == ["6"], "V6 must be applied exactly once"
    assert [r["state"] for r in history(staging) if r["version"] == "6"] == ["success"]
    if any(run.execution.status != "SUCCEEDED" for run in runs.values()):
        rows_applied += result_of(run_handler(staging, "refdata", {"mode": "apply"}))["rows_changed"]
    assert rows_applied == len(new_codes), "each new row is applied exactly once"

    assert [a["version"] for a in result_of(run_handler(prod, "migrate"))["applied"]] == ["6"]
    assert result_of(run_handler(prod, "refdata", {"mode": "apply"}))["rows_changed"] == len(new_codes)
    assert_converged(system.handles, customers)


# ---------------------------------------------------------------- databases going away

def test_downstream_database_killed_mid_run_and_restarted(system):
    dev, staging, _prod = system.handles
    customers = customer_data(system.handles)
    database = system.launched.local.databases["staging"]
    with root(dev) as connection, connection.cursor() as cursor:
        cursor.executemany("INSERT INTO currency (code, name) VALUES (%s, %s)",
                           [(f"V{c}{d}", f"V {c}{d}") for c in "AB" for d in string.ascii_uppercase])
        cursor.execute("INSERT INTO country (iso2, name, region, currency_code) VALUES ('ZX', 'Zxland', 'TEST', 'VAA')")
    before = (history(staging), refdata(staging))

    blocker = root(staging)
    blocker.begin()
    with blocker.cursor() as cursor:
        cursor.execute("SELECT * FROM country WHERE iso2 = 'ZX' FOR UPDATE")
    runs: Dict[str, Any] = {}
    thread = threading.Thread(target=lambda: runs.update(first=sync(staging)))
    thread.start()
    try:
        wait_for_statement(staging, "INSERT INTO %country%", timeout=90)  # mid-transaction
        database.stop(hard=True)  # SIGKILL mariadbd
    finally:
        thread.join(120)
        blocker.close()
    first = runs["first"]
    assert first.execution.status == "FAILED"
    failure = first.invocations[-1]
    assert failure["function"] == "envsync-staging-refdata"
    said = failure["message"]
    assert "refdata failed in staging: (2013, " in said and "Lost connection" in said, failure

    down = sync(staging)  # while it is down: a clear error naming the env and where it was looked for
    assert down.execution.status == "FAILED"
    message = down.invocations[-1]["message"]
    assert f"cannot connect to envsync_writer@{database.host}:{database.port}/appdb (staging)" in message, message

    database.start()
    assert (history(staging), refdata(staging)) == before, "crash recovery must roll the open transaction back"
    refdata_downstream(system, expect_rows=2 * 26 + 1)
    assert_converged(system.handles, customers)


def test_upstream_database_unreachable(system):
    _dev, staging, _prod = system.handles
    customers = customer_data(system.handles)
    database = system.launched.local.databases["dev"]
    before = (history(staging), schema_model(staging), refdata(staging))
    database.stop(hard=True)
    try:
        run = sync(staging)
    finally:
        database.start()
    assert run.execution.status == "FAILED"
    message = run.invocations[-1]["message"]
    assert f"cannot connect to envsync_reader@{database.host}:{database.port}/appdb (dev)" in message, message
    assert (history(staging), schema_model(staging), refdata(staging)) == before
    assert result_of(run_handler(staging, "validate"))["status"] == "done"
    assert_converged(system.handles, customers)


# ---------------------------------------------------------------- AWS-side faults

def test_assume_role_denied_by_iam_leaves_the_downstream_untouched(system, monkeypatch):
    """moto enforces IAM only when asked (server-wide); it knows the resource of an STS
    AssumeRole call (the role ARN), so the sync role's identity policy is really evaluated.

    Enforcement starts when the function's "container" starts and ends when it is gone: the
    runner reads the function's configuration and takes the function role's credentials
    before (under enforcement moto fails the Lambda API's signature check, and cannot
    evaluate the Service-principal trust of the Lambda role)."""
    dev, staging, _prod = system.handles
    customers = customer_data(system.handles)
    before = (history(staging), schema_model(staging), refdata(staging))
    account = system.launched.envs["staging"].account_id
    wrong_role = dev.outputs["SyncRoleArn"]  # dev's own sync role: it may write dev
    take_credentials = lambda_runner._role_credentials

    def credentials_then_enforce(*args):
        credentials = take_credentials(*args)
        set_moto_auth(system.endpoint_url, True)
        return credentials

    monkeypatch.setattr(lambda_runner, "_role_credentials", credentials_then_enforce)
    with function_environment_changed(staging, "refdata", ENVSYNC_UPSTREAM_READER_ROLE_ARN=wrong_role):
        try:
            outcome = run_handler(staging, "refdata", {"mode": "apply"}, ship_logs=False)
        finally:
            set_moto_auth(system.endpoint_url, False)
        ship(staging, outcome)
    monkeypatch.undo()
    result = result_of(outcome)
    assert result["status"] == "failed"
    assert f"cannot assume {wrong_role}: AccessDenied" in result["error"], result["error"]
    assert f"arn:aws:sts::{account}:assumed-role/envsync-staging-sync/" in result["error"]
    assert "not authorized to perform: sts:AssumeRole" in result["error"]
    assert (history(staging), schema_model(staging), refdata(staging)) == before
    assert result_of(run_handler(staging, "refdata", {"mode": "apply"}))["status"] == "done"
    assert_converged(system.handles, customers)


V7 = """-- e2e fault: pending while an applied script is tampered with.
CREATE TABLE fault_note (id INT NOT NULL, body VARCHAR(200) NOT NULL, PRIMARY KEY (id)) ENGINE=InnoDB;
"""


def test_applied_migration_object_replaced_or_deleted_is_refused(system):
    dev = system["dev"]
    customers = customer_data(system.handles)
    s3 = dev.client("s3")
    bucket = dev.outputs["MigrationBucketName"]
    upload_script(dev, "V7__notes.sql", V7)
    before = (history(dev), schema_model(dev))

    original = s3.get_object(Bucket=bucket, Key="migrations/V1__reference_tables.sql")["Body"].read()
    upload_script(dev, "V1__reference_tables.sql", original.decode() + "\n-- an innocent-looking edit\n")
    refused = result_of(run_handler(dev, "migrate"))
    assert refused["status"] == "failed" and refused["migration_status"] == "refused"
    assert "V1__reference_tables.sql was applied with checksum" in refused["error"]
    assert "applied scripts must never change" in refused["error"]
    assert (history(dev), schema_model(dev)) == before, "V7 must wait while V1 is refused"
    upload_script(dev, "V1__reference_tables.sql", original.decode())

    s3.delete_object(Bucket=bucket, Key="migrations/V2__customer_accounts.sql")  # a delete marker
    refused = result_of(run_handler(dev, "migrate"))
    assert refused["status"] == "failed"
    assert "V2__customer_accounts.sql was applied but is missing from the source" in refused["error"]
    assert (history(dev), schema_model(dev)) == before
    # Undelete, as S3 versioning allows: remove the delete marker.
    versions = s3.list_object_versions(Bucket=bucket, Prefix="migrations/V2__customer_accounts.sql")
    (marker,) = [m for m in versions.get("DeleteMarkers", []) if m["IsLatest"]]
    s3.delete_object(Bucket=bucket, Key=marker["Key"], VersionId=marker["VersionId"])

    migrate_everywhere(system, ["7"])
    assert_converged(system.handles, customers)


@pytest.mark.parametrize("changes, expected", [
    ({"ENVSYNC_REFDATA_CONFIG": '{"tables": "currency"}'},
     "ENVSYNC_REFDATA_CONFIG: tables: expected a non-empty list of tables, got 'currency'"),
    ({"ENVSYNC_REFDATA_CONFIG": "tables: [currency]"}, "ENVSYNC_REFDATA_CONFIG is not a JSON object"),
    ({"ENVSYNC_CONNECTION_PARAMETER": None}, "ENVSYNC_CONNECTION_PARAMETER is not set"),
    ({"ENVSYNC_UPSTREAM_READER_ROLE_ARN": "envsync-dev-source-reader"},
     "ENVSYNC_UPSTREAM_READER_ROLE_ARN='envsync-dev-source-reader' is not an ARN"),
], ids=["refdata-config-shape", "refdata-config-not-json", "missing-connection-parameter", "role-not-an-arn"])
def test_bad_function_configuration_is_named_and_nothing_runs(system, changes, expected):
    dev, staging, _prod = system.handles
    customers = customer_data(system.handles)
    before = (history(staging), schema_model(staging), refdata(staging))
    with root(dev) as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE currency SET minor_units = 1 - minor_units WHERE code = 'XAB'")
    with function_environment_changed(staging, "refdata", **changes):
        result = result_of(run_handler(staging, "refdata", {"mode": "apply"}))
    assert result["status"] == "failed" and expected in result["error"], result
    assert (history(staging), schema_model(staging), refdata(staging)) == before
    refdata_downstream(system, expect_rows=1)
    assert_converged(system.handles, customers)
