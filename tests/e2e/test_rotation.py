"""Credentials that survive rotation: the stand-in rotates for real (RotateSecret runs the
deployed rotation function's four steps, as its role, against the env's MariaDB), and the chain
keeps converging. Runs after the fault tests and before the secret scan (which also sees every
rotated-out password)."""

from __future__ import annotations

import json
import threading
from typing import Dict, List

import pymysql
import pytest
from botocore.exceptions import ClientError

from envsync_local.cloudwatch_emulation import evaluate_alarms
from envsync_local.cycle import log_in_as_sync_users, sync, sync_user_secrets

from .helpers import (
    assert_converged,
    customer_data,
    envsync_cli,
    history_row,
    query,
    result_of,
    root,
    run_handler,
    sync_approved,
)

pytestmark = pytest.mark.launched

ROUNDS = 3


@pytest.fixture(scope="module", autouse=True)
def unblocked(system):
    """Start from a converged chain: the cycle's demo leaves staging blocked at V4 (the fault
    tests repair it when they run first; alone, this module repairs it the same way)."""
    staging, prod = system["staging"], system["prod"]
    row = history_row(staging, "4")
    if row is not None and row["state"] == "failed":
        query(staging, "DROP INDEX ix_country_name ON country")
        repaired = envsync_cli(system.state_dir, "repair", "--env", "staging", "--version", "4")
        assert repaired.returncode == 0, repaired.stderr
        for handle in (staging, prod):
            assert result_of(run_handler(handle, "migrate"))["status"] == "done", handle.name


def current_values(handle) -> Dict[str, dict]:
    secrets = handle.client("secretsmanager")
    return {arn: json.loads(secrets.get_secret_value(SecretId=arn, VersionStage="AWSCURRENT")["SecretString"])
            for arn in sync_user_secrets(handle)}


def rotate(system, handle) -> List[str]:
    """RotateSecret on every sync secret of the env; the old passwords join the scanned ones."""
    secrets = handle.client("secretsmanager")
    before = current_values(handle)
    for arn in before:
        secrets.rotate_secret(SecretId=arn, RotateImmediately=True)
    after = current_values(handle)
    for arn, value in before.items():
        assert after[arn]["username"] == value["username"]  # single user: the name never changes
        assert after[arn]["password"] != value["password"], arn
        system.retired_passwords.append(value["password"])
    return [value["password"] for value in before.values()]


def refused(handle, username: str, password: str) -> bool:
    try:
        pymysql.connect(host=handle.db_host, port=handle.db_port, user=username, password=password,
                        ssl={"ca": handle.ca_bundle}).close()
    except pymysql.err.OperationalError as error:
        return error.args[0] == 1045
    return False


def test_three_rotations_of_every_sync_secret_each_followed_by_a_converging_cycle(system):
    dev = system["dev"]
    customers = customer_data(system.handles)
    ((iso2,),) = query(dev, "SELECT iso2 FROM country ORDER BY iso2 LIMIT 1")
    for round_number in range(1, ROUNDS + 1):
        for handle in system.handles:
            users = log_in_as_sync_users(handle)
            old_passwords = rotate(system, handle)
            assert log_in_as_sync_users(handle) == users  # the new AWSCURRENT logs in
            assert all(refused(handle, user, old) for user, old in zip(users, old_passwords))
        with root(dev) as connection, connection.cursor() as cursor:
            cursor.execute("UPDATE country SET name = %s WHERE iso2 = %s", (f"Renamed (rotation {round_number})", iso2))
        for handle in system.handles:  # dev -> staging -> prod through the deployed state machine
            run = sync_approved(handle)
            assert run.execution.status == "SUCCEEDED", (round_number, handle.name, run.execution.error)
        assert_converged(system.handles, customers)
        assert query(system["prod"], "SELECT name FROM country WHERE iso2 = %s", (iso2,)) == [
            (f"Renamed (rotation {round_number})",)]


def test_a_rotation_while_a_sync_runs_ends_cleanly_and_the_next_run_converges(system):
    dev, staging, _prod = system.handles
    customers = customer_data(system.handles)
    with root(dev) as connection, connection.cursor() as cursor:
        cursor.execute("UPDATE country SET name = CONCAT(name, ' (rotated mid-run)') ORDER BY iso2 LIMIT 1")
    outcome: Dict[str, object] = {}
    runner = threading.Thread(target=lambda: outcome.update(run=run_handler(staging, "refdata", {"mode": "apply"})))
    runner.start()
    rotate(system, staging)  # staging's writer (the run's target) ...
    rotate(system, dev)      # ... and dev's reader (its source), while it runs
    runner.join(timeout=120)
    assert not runner.is_alive()
    result = result_of(outcome["run"])
    assert result["status"] in ("done", "failed"), result  # finished, or failed cleanly with a reason
    for handle in system.handles[1:]:
        assert sync_approved(handle).execution.status == "SUCCEEDED", handle.name
    assert_converged(system.handles, customers)


def test_a_failed_rotation_keeps_the_current_password_and_raises_the_alarm(system):
    staging = system["staging"]
    arn = staging.outputs["WriterSecretArn"]
    current = current_values(staging)[arn]
    user = current["username"]
    # The account is locked: setSecret can log in neither with the current nor the pending password.
    query(staging, "ALTER USER %s@'%%' ACCOUNT LOCK", (user,))
    try:
        with pytest.raises(ClientError, match="failed at setSecret"):
            staging.client("secretsmanager").rotate_secret(SecretId=arn, RotateImmediately=True)
    finally:
        query(staging, "ALTER USER %s@'%%' ACCOUNT UNLOCK", (user,))
    assert current_values(staging)[arn] == current  # AWSCURRENT untouched, and it still logs in
    assert log_in_as_sync_users(staging)
    states = evaluate_alarms(staging.session, staging.endpoint_url, prefix="envsync-staging-rotation")
    assert states == {"envsync-staging-rotation-failures": "ALARM"}
    # A new rotation is refused while that one is incomplete, as in AWS ...
    secrets = staging.client("secretsmanager")
    with pytest.raises(ClientError, match="previous rotation isn't complete"):
        secrets.rotate_secret(SecretId=arn, RotateImmediately=True)
    # ... and Secrets Manager's reattempt of it (its own version) completes.
    (pending,) = [v["VersionId"] for v in secrets.list_secret_version_ids(SecretId=arn)["Versions"]
                  if v.get("VersionStages") == ["AWSPENDING"]]
    secrets.rotate_secret(SecretId=arn, ClientRequestToken=pending, RotateImmediately=True)
    rotated = current_values(staging)[arn]
    assert rotated["password"] != current["password"] and log_in_as_sync_users(staging)
    system.retired_passwords.append(current["password"])
    assert sync(staging).execution.status == "SUCCEEDED"
