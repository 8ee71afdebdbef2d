"""Proof of origin end to end, on the launched stacks: every promoted row carries dev's
signature (dev's KMS signing key, verified downstream with the public key the launch read),
and a script body or checksum tampered with in staging's history is refused by prod's deployed
state machine: the run fails, its failure goes to prod's topic, nothing is applied in prod."""

from __future__ import annotations

import base64
import hashlib

import pytest

from envsync_local.cycle import inbox_messages, sync
from tests.e2e.helpers import (
    HISTORY,
    assert_converged,
    customer_data,
    envsync_cli,
    function_environment,
    history,
    history_row,
    query,
    result_of,
    run_handler,
    schema_model,
    upload_script,
)

V20 = "-- e2e: promoted with dev's proof of origin\nCREATE TABLE origin_probe (id INT PRIMARY KEY);\n"
EVIL = V20 + "CREATE TABLE origin_backdoor (id INT PRIMARY KEY);\n"


pytestmark = pytest.mark.launched


def proofs(handle) -> list:
    return query(handle, f"SELECT version, source_version_id, signing_key_id, signing_algorithm, origin_signature "
                         f"FROM {HISTORY} ORDER BY installed_rank")


def test_every_promoted_row_carries_devs_signature(system):
    dev, staging, prod = system.handles
    signing_key = system.launched.outputs("dev", "kms")["SigningKeyArn"]
    assert function_environment(dev, "migrate")["ENVSYNC_SIGNING_KEY_ARN"] == signing_key
    for handle in (staging, prod):
        variables = function_environment(handle, "migrate")
        assert "ENVSYNC_SIGNING_KEY_ARN" not in variables  # only the source env signs
        assert variables["ENVSYNC_ORIGIN_KEY_ARN"] == signing_key
        public_key = dev.client("kms").get_public_key(KeyId=signing_key)["PublicKey"]
        assert base64.b64decode(variables["ENVSYNC_ORIGIN_PUBLIC_KEY"]) == public_key
    dev_proofs = proofs(dev)
    assert dev_proofs and {row[2:4] for row in dev_proofs} == {(signing_key, "ECDSA_SHA_256")}
    assert all(row[1] and row[4] for row in dev_proofs)  # an S3 version id and a signature each
    # staging copied dev's proofs unchanged, prod staging's; prod has what staging applied.
    assert proofs(staging) == dev_proofs[:len(proofs(staging))]
    assert proofs(prod) == proofs(staging)[:len(proofs(prod))]


def converge(system) -> None:
    """The chain as test_faults.py's first test leaves it: the demo's blocked V4 repaired in
    staging (run alone, this file repairs it the same way)."""
    _dev, staging, prod = system.handles
    row = history_row(staging, "4")
    if row is None or row["state"] != "failed":
        return
    query(staging, "DROP INDEX ix_country_name ON country")
    assert envsync_cli(system.state_dir, "repair", "--env", "staging", "--version", "4").returncode == 0
    for handle in (staging, prod):
        assert result_of(run_handler(handle, "migrate"))["status"] == "done"


def test_a_tampered_row_in_staging_is_refused_by_prod_and_nothing_is_applied(system):
    converge(system)
    dev, staging, prod = system.handles
    customers = customer_data(system.handles)
    inbox_messages(prod)  # start from an empty inbox
    upload_script(dev, "V20__origin_probe.sql", V20)
    for handle in (dev, staging):
        assert [a["version"] for a in result_of(run_handler(handle, "migrate"))["applied"]] == ["20"]
    honest = query(staging, f"SELECT script_body, checksum FROM {HISTORY} WHERE version = '20'")[0]
    before = (history(prod), schema_model(prod))

    tamperings = {
        "the stored body does not match its checksum": ("script_body = %s", (EVIL.encode(),)),
        "dev's signature does not match": ("script_body = %s, checksum = %s",
                                           (EVIL.encode(), hashlib.sha256(EVIL.encode()).hexdigest())),
    }
    for reason, (assignments, values) in tamperings.items():
        query(staging, f"UPDATE {HISTORY} SET {assignments} WHERE version = '20'", values)
        run = sync(prod)  # prod's deployed state machine
        assert run.execution.status == "FAILED", (reason, run.execution)
        said = " ".join(str(i.get("message")) for i in run.invocations) + str(run.execution.cause)
        assert "staging history row V20__origin_probe.sql (version 20)" in said and reason in said, said
        assert (history(prod), schema_model(prod)) == before, "nothing may be applied in prod"
        sent = [m["message"] for m in inbox_messages(prod)]
        assert any("staging history row V20__origin_probe.sql (version 20)" in m and reason in m for m in sent), sent

    # The honest row is promoted again once staging's history is restored.
    query(staging, f"UPDATE {HISTORY} SET script_body = %s, checksum = %s WHERE version = '20'", honest)
    assert [a["version"] for a in result_of(run_handler(prod, "migrate"))["applied"]] == ["20"]
    tables = {row[0] for row in query(prod, "SHOW TABLES")}
    assert "origin_probe" in tables and "origin_backdoor" not in tables
    assert proofs(prod) == proofs(staging) == proofs(dev)
    assert_converged(system.handles, customers)
