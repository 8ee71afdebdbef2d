"""What the fault and security tests share: database views, handler invocations, the CLI, moto's
IAM switch. Everything goes through the same edges the product uses (lambda_runner, the
deployed state machine, the `envsync` CLI, moto's APIs); nothing here patches the engine."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import threading
import time
import urllib.request
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import boto3
import pymysql

from envsync.drift.schemadiff import DEFAULT_IGNORE_TABLES
from envsync_local import lambda_package
from envsync_local.cli import assume_session
from envsync_local.cloudwatch_emulation import publish_invocation
from envsync_local.cycle import MIGRATIONS_PREFIX, EnvHandle
from envsync_local.lambda_runner import Invocation, LambdaInvocationError, invoke
from envsync_local.paths import PROJECT_ROOT

REFDATA_TABLES = ("currency", "country")
HISTORY = "envsync_schema_history"
CUSTOMER_TABLES = ("customer_account",)  # env-owned data: never synced, must never be lost


# ---------------------------------------------------------------- databases

def root(handle: EnvHandle, **extra: Any) -> pymysql.Connection:
    """The stand-in's admin (what a human operator would use to look)."""
    return handle.app_connection(**extra)


def query(handle: EnvHandle, sql: str, args: Sequence[Any] = ()) -> List[Tuple[Any, ...]]:
    with root(handle) as connection, connection.cursor() as cursor:
        cursor.execute(sql, args)
        return list(cursor.fetchall())


def rows(handle: EnvHandle, table: str) -> List[Tuple[Any, ...]]:
    """Every row of a table in primary-key order (the whole row set, for exact comparison)."""
    return query(handle, f"SELECT * FROM `{table}` ORDER BY 1")


def history(handle: EnvHandle) -> List[Dict[str, Any]]:
    result = query(handle, f"SELECT version, script_name, checksum, state, statements_applied, statement_count, "
                           f"error_text FROM {HISTORY} ORDER BY installed_rank")
    keys = ("version", "script_name", "checksum", "state", "statements_applied", "statement_count", "error_text")
    return [dict(zip(keys, row)) for row in result]


def history_row(handle: EnvHandle, version: str) -> Optional[Dict[str, Any]]:
    return next((row for row in history(handle) if row["version"] == version), None)


def schema_model(handle: EnvHandle) -> Dict[str, List[Tuple[Any, ...]]]:
    """Tables, columns, indexes, foreign keys and routines of the app schema, as plain rows; the
    engine's own tables (history, refdata verification, break-glass audit) are left out as drift
    leaves them out: an env that pulls reference data has a verification table its source has not."""
    engine_tables = "', '".join(DEFAULT_IGNORE_TABLES)
    return {
        "columns": query(handle, "SELECT TABLE_NAME, COLUMN_NAME, COLUMN_TYPE, IS_NULLABLE, COLUMN_DEFAULT "
                                 "FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                                 f"AND TABLE_NAME NOT IN ('{engine_tables}') ORDER BY TABLE_NAME, ORDINAL_POSITION"),
        "indexes": query(handle, "SELECT TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX, COLUMN_NAME, NON_UNIQUE "
                                 "FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                                 f"AND TABLE_NAME NOT IN ('{engine_tables}') "
                                 "ORDER BY TABLE_NAME, INDEX_NAME, SEQ_IN_INDEX"),
        "foreign_keys": query(handle, "SELECT TABLE_NAME, CONSTRAINT_NAME, REFERENCED_TABLE_NAME "
                                      "FROM information_schema.REFERENTIAL_CONSTRAINTS "
                                      "WHERE CONSTRAINT_SCHEMA = DATABASE() ORDER BY 1, 2"),
        "routines": query(handle, "SELECT ROUTINE_NAME, ROUTINE_TYPE FROM information_schema.ROUTINES "
                                  "WHERE ROUTINE_SCHEMA = DATABASE() ORDER BY 1"),
    }


def customer_data(handles: Sequence[EnvHandle]) -> Dict[str, Dict[str, List[Tuple[Any, ...]]]]:
    return {h.name: {table: rows(h, table) for table in CUSTOMER_TABLES} for h in handles}


def refdata(handle: EnvHandle) -> Dict[str, List[Tuple[Any, ...]]]:
    return {table: rows(handle, table) for table in REFDATA_TABLES}


def assert_converged(handles: Sequence[EnvHandle], customers_before=None) -> None:
    """Nothing lost, nothing half-applied: the chain is identical where it must be.

    - no history row of any env is left running, failed or pending (repaired, not finished);
    - every env applied the same versions with the same checksums, in the same order;
    - the schemas are identical (columns, indexes, foreign keys, routines);
    - the reference tables hold exactly the same rows everywhere;
    - each env's own customer rows are what they were before the fault (never synced, never lost).
    """
    source = handles[0]
    expected_history = [(r["version"], r["checksum"]) for r in history(source)]
    for handle in handles:
        unfinished = [r for r in history(handle) if r["state"] != "success"]
        assert not unfinished, f"{handle.name}: unfinished history rows {unfinished}"
        assert [(r["version"], r["checksum"]) for r in history(handle)] == expected_history, handle.name
        assert schema_model(handle) == schema_model(source), f"{handle.name}: schema differs from {source.name}"
        assert refdata(handle) == refdata(source), f"{handle.name}: reference data differs from {source.name}"
    if customers_before is not None:
        assert customer_data(handles) == customers_before, "customer rows changed"


def wait_for_sessions_gone(handle: EnvHandle, user: str, timeout: float = 60.0) -> None:
    """Wait until `user` has no session left on the server: a killed client's statement keeps
    running server-side until the server notices the client is gone, and only then is its
    open transaction rolled back."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not query(handle, "SELECT ID FROM information_schema.PROCESSLIST WHERE USER = %s", (user,)):
            return
        time.sleep(0.2)
    raise AssertionError(f"{handle.name}: sessions of {user} still open after {timeout}s")


def sessions_running(handle: EnvHandle, info_like: str) -> List[Tuple[Any, ...]]:
    return query(handle, "SELECT ID, USER, STATE, INFO FROM information_schema.PROCESSLIST "
                         "WHERE INFO LIKE %s AND ID <> CONNECTION_ID()", (info_like,))


def wait_for_statement(handle: EnvHandle, info_like: str, timeout: float = 60.0) -> Tuple[Any, ...]:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        found = sessions_running(handle, info_like)
        if found:
            return found[0]
        time.sleep(0.1)
    raise AssertionError(f"{handle.name}: no session ran {info_like!r} within {timeout}s")


# ---------------------------------------------------------------- Lambda functions

def function_name(handle: EnvHandle, action: str) -> str:
    return f"envsync-{handle.name}-{action}"


def run_handler(handle: EnvHandle, action: str, event: Optional[Dict[str, Any]] = None,
                timeout: Optional[float] = None, session: Optional[boto3.Session] = None,
                ship_logs: bool = True) -> Any:
    """Invoke the deployed function as Lambda would (its env vars, its role; killed with SIGKILL
    at `timeout`). Returns the Invocation, or the LambdaInvocationError it raised. Its output
    goes to its CloudWatch log group, as in AWS (so the secret scan sees every invocation).

    A migrate or refdata apply in an env whose mode asks for a person (prod) carries the
    approval of the plan the plan step makes now, as the state machine hands it over after `envsync approve`: these
    tests are about the engine under faults; tests/e2e/test_prod_approval.py is about the gate."""
    session = session or handle.session
    applies = action == "migrate" or (action == "refdata" and (event or {}).get("mode") == "apply")
    if applies and "approval" not in (event or {}) and _approval_mode(handle) != "none":
        gate = result_of(run_handler(handle, "plan", session=session, ship_logs=ship_logs)).get("approval") or {}
        decision = {"digest": gate.get("digest", ""), "approved_by": "arn:aws:iam::e2e:role/approver",
                    "approved_at": "2026-01-01T00:00:00+00:00"}
        event = {**(event or {}), "approval": {**gate, "decision": decision}}
    try:
        outcome: Any = invoke(session, handle.endpoint_url, function_name(handle, action), event or {},
                              handle.runtime_env, timeout=timeout)
    except LambdaInvocationError as error:
        outcome = error
    if ship_logs:
        ship(handle, outcome)
    return outcome


def sync_approved(handle: EnvHandle) -> Any:
    """One run of the env's state machine; if it waits for a person (prod), approve it with the
    real CLI as the env's approver role, as an operator would, and return the run as it ended."""
    from envsync_local.cycle import answer_approval, sync

    run = sync(handle)
    if run.execution.status == "RUNNING" and run.execution.waiting:
        run = answer_approval(handle, run)["run"]
    return run


def _approval_mode(handle: EnvHandle) -> str:
    variables = handle.client("lambda").get_function_configuration(
        FunctionName=function_name(handle, "migrate"))["Environment"]["Variables"]
    return str(variables.get("ENVSYNC_APPROVAL_MODE", "none"))


def ship(handle: EnvHandle, outcome: Any) -> None:
    logs = outcome.logs
    name = outcome.function_name
    if name:
        publish_invocation(handle.session, handle.endpoint_url, name, logs)


def _runner_children() -> List[int]:
    """This process's children that run a Lambda handler (lambda_runner's child processes)."""
    found = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            parent = int((entry / "stat").read_text().rsplit(") ", 1)[1].split()[1])
            command = (entry / "cmdline").read_bytes()
        except (OSError, IndexError, ValueError):
            continue
        if parent == os.getpid() and lambda_package.BOOTSTRAP_MODULE.encode() in command:
            found.append(int(entry.name))
    return found


def kill_handler_inside(handle: EnvHandle, action: str, statement_like: str,
                        event: Optional[Dict[str, Any]] = None, wait: float = 120.0) -> Any:
    """Run the handler; once the server shows it executing `statement_like`, SIGKILL the
    handler's process (kill -9 of the sync process, right inside that statement)."""
    outcome: Dict[str, Any] = {}
    thread = threading.Thread(target=lambda: outcome.update(
        result=run_handler(handle, action, event, ship_logs=False)))
    thread.start()
    try:
        wait_for_statement(handle, statement_like, timeout=wait)
    finally:
        children = _runner_children()
        for pid in children:
            os.kill(pid, signal.SIGKILL)
        thread.join(60)
    assert len(children) == 1, f"expected one handler process, found {children}"
    ship(handle, outcome["result"])
    return outcome["result"]


def result_of(outcome: Any) -> Dict[str, Any]:
    assert isinstance(outcome, Invocation), f"invocation raised {outcome}"
    return outcome.result


def function_environment(handle: EnvHandle, action: str) -> Dict[str, str]:
    config = handle.client("lambda").get_function_configuration(FunctionName=function_name(handle, action))
    return dict(config["Environment"]["Variables"])


def set_function_environment(handle: EnvHandle, action: str, variables: Dict[str, str]) -> None:
    handle.client("lambda").update_function_configuration(
        FunctionName=function_name(handle, action), Environment={"Variables": variables})


@contextmanager
def function_environment_changed(handle: EnvHandle, action: str, **changes: Optional[str]) -> Iterator[None]:
    """The function's configuration with `changes` (None removes a variable), restored after."""
    original = function_environment(handle, action)
    changed = {k: v for k, v in {**original, **changes}.items() if v is not None}
    set_function_environment(handle, action, changed)
    try:
        yield
    finally:
        set_function_environment(handle, action, original)
    assert function_environment(handle, action) == original


# ---------------------------------------------------------------- S3 scripts, CLI, SNS

def upload_script(source: EnvHandle, name: str, body: str) -> None:
    source.client("s3").put_object(Bucket=source.outputs["MigrationBucketName"], Key=MIGRATIONS_PREFIX + name,
                                   Body=body.encode())


def envsync_cli(state_dir: Path, *args: str, program: str = "envsync") -> subprocess.CompletedProcess:
    """The operator's `envsync` CLI (or `envsync-local`) against the stand-ins of this launch."""
    env = {**os.environ, "ENVSYNC_LOCAL_DIR": str(state_dir)}
    return subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / program), *args], env=env,
                          capture_output=True, text=True, timeout=300, check=False)


# ---------------------------------------------------------------- moto IAM enforcement

def set_moto_auth(endpoint_url: str, enforce: bool) -> None:
    """moto server mode: enforce IAM on every request from now on (0), or never (inf)."""
    request = urllib.request.Request(f"{endpoint_url}/moto-api/reset-auth",  # noqa: S310 - local moto
                                     data=b"0" if enforce else b"inf", method="POST",
                                     headers={"Content-Type": "text/plain"})
    with urllib.request.urlopen(request, timeout=10) as response:  # noqa: S310 - our local moto server
        assert json.loads(response.read())["status"] == "ok"


@contextmanager
def iam_enforced(endpoint_url: str) -> Iterator[None]:
    set_moto_auth(endpoint_url, True)
    try:
        yield
    finally:
        set_moto_auth(endpoint_url, False)


def assume(session: boto3.Session, endpoint_url: str, role_arn: str, external_id: Optional[str] = None,
           name: str = "e2e") -> boto3.Session:
    return assume_session(session, endpoint_url, role_arn, external_id, name)


def repair_blocked_promotion(system: Any) -> subprocess.CompletedProcess:
    """The operator's fix for the cycle's blocked promotion (V4 tripped on a hand-made index in
    staging): drop the index, `envsync repair` V4, run staging's and prod's migrate. Returns the
    repair command's outcome."""
    staging, prod = system["staging"], system["prod"]
    query(staging, "DROP INDEX ix_country_name ON country")
    repaired = envsync_cli(system.state_dir, "repair", "--env", "staging", "--version", "4")
    assert repaired.returncode == 0, repaired.stderr
    for handle in (staging, prod):
        result = result_of(run_handler(handle, "migrate"))
        assert [a["version"] for a in result["applied"]] == ["4"], (handle.name, result)
    return repaired
