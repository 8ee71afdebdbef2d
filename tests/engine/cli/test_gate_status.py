"""`envsync status --env ENV` reports the approval gate as deployed: whether the env's machine
(DescribeStateMachine) has a state that waits for a person, and who may answer (the approver
role and whom it trusts), read from the moto stand-in as the CLI reads AWS."""

from __future__ import annotations

import json
from pathlib import Path

import boto3
import pytest

from envsync.cli.runs import Gate, read_gate, status_data, status_text, waiting_states

ASL = Path(__file__).resolve().parents[3] / "templates" / "statemachine" / "sync.asl.json"
ACCOUNT = "123456789012"  # moto's default account
APPROVERS = "arn:aws:iam::123456789012:role/envsync-approvers"


def deployed_definition(gated: bool) -> str:
    """The project's definition as CloudFormation deploys it (substituted); without the gate,
    the approval state becomes a Pass that lets every plan through."""
    definition = json.loads(ASL.read_text())
    if not gated:
        definition["States"]["WaitForApproval"] = {"Type": "Pass", "Next": "Migrate"}
    text = json.dumps(definition)
    for name in ("Validate", "Plan", "Migrate", "Refdata", "Drift"):
        text = text.replace(f"${{{name}FunctionArn}}", f"arn:aws:lambda:us-east-1:{ACCOUNT}:function:envsync-x-{name}")
    return text.replace("${SyncFailureTopicArn}", f"arn:aws:sns:us-east-1:{ACCOUNT}:envsync-x-sync")


@pytest.fixture
def clients(aws_env):
    stepfunctions = boto3.client("stepfunctions", region_name="us-east-1")
    iam = boto3.client("iam", region_name="us-east-1")
    machines = {}
    for env, gated in (("prod", True), ("qa", False)):
        machines[env] = stepfunctions.create_state_machine(
            name=f"envsync-{env}-sync", definition=deployed_definition(gated),
            roleArn=f"arn:aws:iam::{ACCOUNT}:role/envsync-{env}-sync-states")["stateMachineArn"]
    trust = {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Principal": {"AWS": APPROVERS}, "Action": "sts:AssumeRole"}]}
    iam.create_role(RoleName="envsync-prod-approver", AssumeRolePolicyDocument=json.dumps(trust))
    yield stepfunctions, iam, machines
    for arn in machines.values():
        stepfunctions.delete_state_machine(stateMachineArn=arn)
    iam.delete_role(RoleName="envsync-prod-approver")


def test_the_deployed_prod_machine_waits_for_a_person_and_says_who_answers(clients):
    stepfunctions, iam, machines = clients
    approver = f"arn:aws:iam::{ACCOUNT}:role/envsync-prod-approver"
    gate = read_gate(stepfunctions, iam, machines["prod"], approver, required=True)
    assert gate.waits == ["WaitForApproval"] and not gate.missing
    assert gate.approver_trusts == [APPROVERS]
    text = status_text("prod", [], None, now=_now(), gate=gate)
    assert text.splitlines()[1:3] == [
        "  approval gate: present (the deployed machine waits in WaitForApproval)",
        f"  answered by {approver} (assumable by {APPROVERS})"]
    assert status_data("prod", [], None, _now(), gate)["gate"]["waits_for_approval"] is True


def test_a_gated_env_whose_machine_does_not_wait_is_reported_missing(clients):
    stepfunctions, iam, machines = clients
    # qa's machine has no wait; its approver role was never created by the administrator
    gate = read_gate(stepfunctions, iam, machines["qa"], f"arn:aws:iam::{ACCOUNT}:role/envsync-qa-approver",
                     required=True)
    assert gate.waits == [] and gate.missing and gate.approver_trusts is None
    lines = status_text("qa", [], None, _now(), gate).splitlines()
    assert lines[1] == "  approval gate: MISSING: the deployed machine has no state that waits for a person"
    assert lines[2].endswith("envsync-qa-approver: not readable (the administrator's bootstrap stack creates it)")
    data = status_data("qa", [], None, _now(), gate)["gate"]
    assert data["required"] is True and data["waits_for_approval"] is False
    # an env that asks for no approval: no wait is what it should have
    # an env that asks for no approval: its machine may hold the state, its plan never waits there
    for waits in ([], ["WaitForApproval"]):
        ungated = Gate(machines["qa"], False, waits, "arn:aws:iam::1:role/envsync-qa-approver", None)
        assert not ungated.missing and ungated.text() == "  approval gate: none (this env's approval mode is none)"


def test_waiting_states_are_found_in_nested_branches_and_map_iterations():
    wait = {"Type": "Task", "Resource": "arn:aws:states:::sqs:sendMessage.waitForTaskToken", "End": True}
    definition = {"StartAt": "P", "States": {
        "P": {"Type": "Parallel", "Branches": [{"StartAt": "W", "States": {"W": wait}}], "Next": "M"},
        "M": {"Type": "Map", "ItemProcessor": {"StartAt": "V", "States": {"V": wait}}, "Next": "T"},
        "T": {"Type": "Task", "Resource": "arn:aws:states:::lambda:invoke", "End": True}}}
    assert waiting_states(definition) == ["W", "V"]
    assert waiting_states(json.loads(ASL.read_text())) == ["WaitForApproval"]


def _now():
    import datetime

    return datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)
