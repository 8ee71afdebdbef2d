"""The approval into prod, through the deployed state machines and the real `envsync` CLI.

Prod's config asks for a person (`approval: required`): a run with pending scripts publishes
the plan to prod's topic and waits on a task token; `envsync approve` (as prod's approver role)
lets it apply exactly that plan, `envsync reject` ends it with nothing applied and a notice,
and a plan that changed after the approval is refused. The approval binds reference rows by
content: rows of a table a promoted script reshapes, or rows that change after the plan the
person read, are not applied under it, and the next run asks for them. Runs after test_faults
(file order): the chain starts converged and is left converged.
"""

from __future__ import annotations

import json

import pytest

from envsync.lambdas.handlers import UNAPPROVED_SUBJECT
from envsync_local.cycle import answer_approval, inbox_messages, sync

from .helpers import HISTORY, assert_converged, customer_data, envsync_cli, history_row, query, upload_script

pytestmark = pytest.mark.launched

# Schema of its own: customer rows (checked unchanged by assert_converged) keep their shape.
V40 = ("-- e2e gate: a table prod does not have yet.\n"
       "CREATE TABLE gate_probe (id INT PRIMARY KEY, note VARCHAR(40) NULL);\n")
V41 = "-- e2e gate: drops a column again (destructive).\nALTER TABLE gate_probe DROP COLUMN note;\n"
V42 = "CREATE TABLE gate_audit (id INT PRIMARY KEY);\n"
V43 = "-- e2e gate: an allow-listed table changes shape.\nALTER TABLE currency ADD COLUMN sort_order SMALLINT NULL;\n"


def promote_to_prod_waiting(system, script: str, body: str):
    """The script goes into dev's bucket; dev and staging apply it; prod's run waits."""
    dev, staging, prod = system.handles
    upload_script(dev, script, body)
    for handle in (dev, staging):
        run = sync(handle)
        failed = [record for record in run.invocations if "error" in record]  # the failing step's notice
        assert run.execution.status == "SUCCEEDED", (handle.name, run.execution.error, failed)
    inbox_messages(prod)  # start from an empty inbox
    waiting = sync(prod)
    assert (waiting.execution.status, waiting.execution.waiting["state"]) == ("RUNNING", "WaitForApproval")
    return waiting


def test_the_launchs_first_cycle_paused_prod_and_the_approval_applied_the_plan(system):
    # Whichever cycle ran first on this launch (this suite's, or tests/local's before it) found
    # prod's first scripts pending: each row says who let it in, as the approver role.
    applied_by = dict(query(system["prod"], f"SELECT version, applied_by FROM {HISTORY} WHERE state = 'success'"))
    for version in ("1", "2", "3"):
        assert "approved by arn:aws:sts::333333333333:assumed-role/envsync-prod-approver/" in applied_by[version]
    approval = system.report.get("approval")
    if approval is not None:  # this suite's cycle was the first: it printed the pause and the answer
        assert approval["env"] == "prod" and approval["cli"]["run_status"] == "SUCCEEDED"
        printed = "\n".join(system.printed)
        assert "prod: waits for a person's approval" in printed and "$ envsync approve --env prod" in printed


def test_reject_leaves_prod_untouched_and_notifies(system):
    customers = customer_data(system.handles)
    prod = system["prod"]
    waiting = promote_to_prod_waiting(system, "V40__gate_probe.sql", V40)
    answered = answer_approval(prod, waiting, decision="reject", reason="not during the freeze")
    message = answered["message"]  # what a person reads: scripts, checksums, how to answer; no rows
    for expected in ("envsync: prod waits for your approval before it applies 1 migration script",
                     "file V40__gate_probe.sql, 1 statement", "sha256 ", "Plan digest: ",
                     "envsync approve --env prod --run", "envsync reject --env prod --run"):
        assert expected in message, (expected, message)
    assert answered["run"].execution.status == "FAILED"
    assert history_row(prod, "40") is None, "a rejected plan must not touch prod"
    notices = inbox_messages(prod)
    failure = next(n["message"] for n in notices if n["subject"] == "envsync sync failed")
    # named fields only: the run, the machine, the error's name (a reason is free text)
    run_name = waiting.execution_arn.rsplit(":", 1)[-1]
    assert failure == f"envsync: run {run_name} of envsync-prod-sync failed: EnvsyncApprovalRejected"
    assert all(waiting.execution.waiting["token"] not in json.dumps(n) for n in notices)
    # the next run asks again; approved, it applies V40 and the chain converges
    again = sync(prod)
    approved = answer_approval(prod, again)
    assert approved["run"].execution.status == "SUCCEEDED", approved["run"].execution.cause
    assert history_row(prod, "40")["state"] == "success"
    assert_converged(system.handles, customers)


def test_a_plan_that_changed_after_approval_is_refused(system):
    customers = customer_data(system.handles)
    dev, staging, prod = system.handles
    waiting = promote_to_prod_waiting(system, "V41__drop_gate_probe_note.sql", V41)
    digest = waiting.execution.waiting["parameters"]["Payload"]["approval"]["digest"]
    # while prod waits, staging moves on: prod's plan is now V41 and V42
    upload_script(dev, "V42__gate_audit.sql", V42)
    for handle in (dev, staging):
        assert sync(handle).execution.status == "SUCCEEDED", handle.name
    answered = answer_approval(prod, waiting)  # approves the digest the person read: [V41]
    assert "[drop_column] V41__drop_gate_probe_note.sql statement 1 (line 2)" in answered["message"]
    assert answered["cli"]["digest"] == digest
    run = answered["run"]
    assert run.execution.status == "FAILED"
    refused = [record for record in run.invocations if "error" in record][-1]
    assert refused["function"] == "envsync-prod-migrate"
    assert "refused: the plan is not the approved one" in refused["message"]  # the notice's words
    assert history_row(prod, "41") is None and history_row(prod, "42") is None
    # the next run plans V41 + V42, asks again, and applies both once approved
    again = answer_approval(prod, sync(prod))
    assert again["run"].execution.status == "SUCCEEDED", again["run"].execution.cause
    assert [history_row(prod, v)["state"] for v in ("41", "42")] == ["success", "success"]
    assert_converged(system.handles, customers)


def _waiting_message(run) -> str:
    return run.execution.waiting["parameters"]["Payload"]["approval"]["message"]


def _name_in(handle, code: str) -> str:
    return query(handle, "SELECT name FROM currency WHERE code = %s", (code,))[0][0]


def _deferred_notice(prod) -> str:
    """The notice of the refdata step that left a table alone: table names, no row."""
    notices = [n["message"] for n in inbox_messages(prod) if n["subject"] == UNAPPROVED_SUBJECT]
    assert notices, "the refdata step must say that it left the table alone"
    return notices[-1]


def test_rows_of_a_table_a_promoted_script_reshapes_wait_for_an_approval_that_lists_them(system):
    """A script reshapes currency while dev changes a currency row: the plan before the script
    cannot compare the rows, so its approval does not cover them; they are applied only under
    the next run's approval, whose message lists the row."""
    customers = customer_data(system.handles)
    dev, _, prod = system.handles
    was = _name_in(prod, "JPY")
    query(dev, "UPDATE currency SET name = 'Japanese Yen' WHERE code = 'JPY'")
    waiting = promote_to_prod_waiting(system, "V43__currency_sort_order.sql", V43)
    first = answer_approval(prod, waiting)
    message = first["message"]
    for expected in ("before it applies 1 migration script (1 statements) promoted from staging",
                     "file V43__currency_sort_order.sql, 1 statement",
                     "customer tables are never in the allow-list and never appear here",
                     "  currency: not compared now (its shape differs from the upstream's; a pending script may "
                     "change it): nothing of it is applied under this approval",
                     "  country: no change"):
        assert expected in message, (expected, message)
    assert "Japanese Yen" not in message and "customer_account" not in message
    assert first["run"].execution.status == "SUCCEEDED", first["run"].execution.cause
    assert history_row(prod, "43")["state"] == "success"  # the approved script ran
    assert _name_in(prod, "JPY") == was  # the rows nobody saw did not
    notice = _deferred_notice(prod)
    assert "the reference-data delta of currency is not the approved one" in notice and "Yen" not in notice

    # the next run lists the row, old -> new; prod stays as it is until that digest is approved
    again = sync(prod)
    assert (again.execution.status, again.execution.waiting["state"]) == ("RUNNING", "WaitForApproval")
    asked = _waiting_message(again)
    assert "  currency: +0 ~1 -0" in asked and f"    ~ code='JPY': name {was!r} -> 'Japanese Yen'" in asked, asked
    assert "Scripts: none pending." in asked
    assert _name_in(prod, "JPY") == was
    approved = answer_approval(prod, again)
    assert approved["cli"]["digest"] == again.execution.waiting["parameters"]["Payload"]["approval"]["digest"]
    assert approved["run"].execution.status == "SUCCEEDED", approved["run"].execution.cause
    assert _name_in(prod, "JPY") == "Japanese Yen"
    assert_converged(system.handles, customers)


def test_a_reference_row_changed_after_the_plan_a_person_approves_is_not_applied_and_asked_for_again(system):
    """The approval binds the rows the message showed: staging moves on while prod waits, so the
    delta at the apply is another one; nothing of the table is applied; the next run asks again."""
    customers = customer_data(system.handles)
    dev, staging, prod = system.handles
    was = _name_in(prod, "CHF")
    query(dev, "UPDATE currency SET name = 'Swiss franc (CHF)' WHERE code = 'CHF'")
    for handle in (dev, staging):
        assert sync(handle).execution.status == "SUCCEEDED", handle.name
    inbox_messages(prod)
    waiting = sync(prod)
    assert (waiting.execution.status, waiting.execution.waiting["state"]) == ("RUNNING", "WaitForApproval")
    read = _waiting_message(waiting)
    assert f"    ~ code='CHF': name {was!r} -> 'Swiss franc (CHF)'" in read, read
    # upstream moves on (same counts, another row image) before the approved run applies
    query(dev, "UPDATE currency SET name = 'Franc suisse' WHERE code = 'CHF'")
    for handle in (dev, staging):
        assert sync(handle).execution.status == "SUCCEEDED", handle.name
    answered = answer_approval(prod, waiting)
    assert answered["run"].execution.status == "SUCCEEDED", answered["run"].execution.cause
    assert _name_in(prod, "CHF") == was  # neither what was read nor what came after it
    assert "franc" not in _deferred_notice(prod).lower()

    again = sync(prod)
    assert f"    ~ code='CHF': name {was!r} -> 'Franc suisse'" in _waiting_message(again)
    assert answer_approval(prod, again)["run"].execution.status == "SUCCEEDED"
    assert _name_in(prod, "CHF") == "Franc suisse"
    assert_converged(system.handles, customers)


def test_status_reads_the_gate_from_the_deployed_machine_and_names_who_answers(system):
    """The approver role is the bootstrap stack's; status reads prod's deployed definition."""
    from envsync_sceptre.config.envconfig import read_shared_values
    from tests.conftest import PROJECT_ROOT

    approvers = read_shared_values(PROJECT_ROOT / "config")["approver_trusted_principal"]
    status = envsync_cli(system.state_dir, "status", "--env", "prod")
    assert "  approval gate: present (the deployed machine waits in WaitForApproval)" in status.stdout, status.stdout
    assert (f"  answered by arn:aws:iam::333333333333:role/envsync-prod-approver (assumable by {approvers})"
            in status.stdout), status.stdout
    dev = envsync_cli(system.state_dir, "status", "--env", "dev")
    assert "  approval gate: none (this env's approval mode is none)" in dev.stdout, dev.stdout
