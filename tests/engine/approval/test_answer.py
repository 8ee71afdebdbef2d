"""envsync approve/reject: which run waits, and which one a person means."""

from __future__ import annotations

import datetime
import json

import pytest

from envsync.approval.answer import GateError, WaitingRun, _waiting_task, choose, machine_arn_of, waiting_fields

T0 = datetime.datetime(2026, 12, 1, tzinfo=datetime.timezone.utc)


def run(run_id: str, digest: str, minutes: int = 0) -> WaitingRun:
    return WaitingRun(execution_arn=f"arn:aws:states:us-east-1:3:execution:envsync-prod-sync:{run_id}",
                      run_id=run_id, started=T0 + datetime.timedelta(minutes=minutes), token=f"t-{run_id}",
                      digest=digest, message="...")


def scheduled(parameters: dict) -> dict:
    return {"type": "TaskScheduled", "taskScheduledEventDetails": {
        "resourceType": "sns", "resource": "publish.waitForTaskToken", "parameters": json.dumps(parameters)}}


def test_the_waiting_task_is_the_newest_approval_publish_without_an_outcome():
    waiting = {"Message": "plan", "MessageAttributes": {"envsync_task_token": {"StringValue": "tok"}}}
    assert _waiting_task([scheduled(waiting), {"type": "ChoiceStateEntered"}]) == waiting
    # answered already (newest first): nothing waits
    assert _waiting_task([{"type": "TaskSucceeded"}, scheduled(waiting)]) is None
    # a plain publish (the failure notice) is not a wait
    plain = {"type": "TaskScheduled", "taskScheduledEventDetails": {"resource": "publish", "parameters": "{}"}}
    assert _waiting_task([plain]) is None


def test_choose_names_the_run_or_refuses_clearly():
    one, other = run("r1", "aaaa1111"), run("r2", "bbbb2222", minutes=5)
    assert choose([one], "prod", None, None) is one
    assert choose([other, one], "prod", "r1", None) is one
    assert choose([one], "prod", None, "aaaa") is one  # the digest's first characters, as read
    with pytest.raises(GateError, match="no run waits for an approval"):
        choose([], "prod", None, None)
    with pytest.raises(GateError, match=r"2 runs wait for an approval: r2 .* Name one with --run"):
        choose([other, one], "prod", None, None)
    with pytest.raises(GateError, match=r"run r9 does not wait for an approval \(waiting: r1\)"):
        choose([one], "prod", "r9", None)
    with pytest.raises(GateError, match="the plan changed since the message you read"):
        choose([one], "prod", "r1", "bbbb")


def test_the_wait_is_read_from_the_plan_steps_invocation_or_an_older_runs_publish():
    # the token is in the task's parameters (the run's history), never in a message
    invocation = {"FunctionName": "arn:aws:lambda:us-east-1:3:function:envsync-prod-plan",
                  "Payload": {"ask": True, "token": "tok", "approval": {"digest": "d1", "message": "plan"}}}
    assert waiting_fields(invocation) == {"token": "tok", "digest": "d1", "message": "plan"}
    lambda_wait = {"type": "TaskScheduled", "taskScheduledEventDetails": {
        "resourceType": "lambda", "resource": "invoke.waitForTaskToken", "parameters": json.dumps(invocation)}}
    assert _waiting_task([lambda_wait]) == invocation
    # a run started by the definition before (token and digest as message attributes)
    legacy = {"Message": "plan", "MessageAttributes": {"envsync_task_token": {"StringValue": "tok"},
                                                       "envsync_plan_digest": {"StringValue": "d1"}}}
    assert waiting_fields(legacy) == {"token": "tok", "digest": "d1", "message": "plan"}


def test_a_runs_machine_is_named_by_its_execution_arn():
    assert machine_arn_of("arn:aws:states:us-east-1:3:execution:envsync-prod-sync:run-1") == \
        "arn:aws:states:us-east-1:3:stateMachine:envsync-prod-sync"
    for not_a_run in ("", "run-1", "arn:aws:states:us-east-1:3:stateMachine:envsync-prod-sync"):
        assert machine_arn_of(not_a_run) is None
