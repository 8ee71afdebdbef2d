"""`envsync approve` / `envsync reject`: answer the run of an env's state machine that waits for a person.

A run that needs approval (approval.py) waits in the state `WaitForApproval`
(`lambda:invoke.waitForTaskToken`): the plan step, called with the task token and the plan's
gate, publishes the message to the env's topic, without the token (every subscriber reads the
topic). The token is kept only in the run's `TaskScheduled` event, with the message a person
read and the plan's digest, so this module finds the waiting runs with ListExecutions and
GetExecutionHistory, and answers with SendTaskSuccess or SendTaskFailure. Only the env's
approver role may call those (templates/sync.yaml.j2). At most one run waits per env: the plan
step of a newer run stops an older waiting one, or ends as superseded when its plan already
waits (handlers._one_waiting_run).

What an approval sends becomes the run's `$.approval`: the digest the person approved (the
migrate step applies only the plan with that digest), who approved (the caller's ARN, as STS
reports it) and when. Step Functions keeps it in the execution's history; the migrate step logs it.
"""

from __future__ import annotations

import datetime
import json
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from envsync.errors import EnvsyncError

WAIT_STATE = "WaitForApproval"
TOKEN_ATTRIBUTE = "envsync_task_token"  # noqa: S105 (a message attribute's name, in runs before the Payload)
DIGEST_ATTRIBUTE = "envsync_plan_digest"
REJECTED = "EnvsyncApprovalRejected"
SUPERSEDED = "EnvsyncSuperseded"  # a waiting run stopped because a newer plan waits instead
APPROVAL_SUBJECT = "envsync: approval needed"


class GateError(EnvsyncError, RuntimeError):
    """No run waits, several do and none was named, or the digest does not match."""


@dataclass(frozen=True)
class WaitingRun:
    execution_arn: str
    run_id: str
    started: datetime.datetime
    token: str
    digest: str
    message: str


def state_machine_arn(account_id: str, env: str, region: str, partition: str = "aws") -> str:
    """The env's sync state machine (named envsync-<env>-sync by the sync stack)."""
    return f"arn:{partition}:states:{region}:{account_id}:stateMachine:envsync-{env}-sync"


def machine_arn_of(execution_arn: str) -> Optional[str]:
    """arn:…:execution:<machine>:<run> -> arn:…:stateMachine:<machine>; None for anything else."""
    parts = execution_arn.split(":")
    if len(parts) != 8 or parts[0] != "arn" or parts[5] != "execution":
        return None
    return ":".join([*parts[:5], "stateMachine", parts[6]])


def _waiting_task(events: List[Dict[str, Any]]) -> Optional[Dict[str, Any]]:
    """The parameters of the approval task the run waits on, from its history (newest first):
    a TaskScheduled of the approval publish with no task outcome after it."""
    for event in events:
        kind = event.get("type", "")
        if kind in ("TaskSucceeded", "TaskFailed", "TaskTimedOut", "TaskSubmitFailed", "TaskStartFailed"):
            return None
        details = event.get("taskScheduledEventDetails")
        if kind == "TaskScheduled" and details and str(details.get("resource", "")).endswith(".waitForTaskToken"):
            return json.loads(details.get("parameters") or "{}")
    return None


def waiting_runs(stepfunctions: Any, machine_arn: str) -> List[WaitingRun]:
    """Every RUNNING execution of the machine that waits for a person, newest first."""
    runs = []
    paginator = stepfunctions.get_paginator("list_executions")
    for page in paginator.paginate(stateMachineArn=machine_arn, statusFilter="RUNNING"):
        for execution in page["executions"]:
            events = stepfunctions.get_execution_history(executionArn=execution["executionArn"],
                                                         reverseOrder=True, maxResults=100)["events"]
            parameters = _waiting_task(events)
            if not parameters:
                continue
            runs.append(WaitingRun(execution_arn=execution["executionArn"], run_id=execution["name"],
                                   started=execution["startDate"], **waiting_fields(parameters)))
    return sorted(runs, key=lambda run: run.started, reverse=True)


def waiting_fields(parameters: Dict[str, Any]) -> Dict[str, str]:
    """token, digest and message of the wait: the plan step's invocation (`Payload`: the token
    and the plan's gate), or in runs started before it, the topic publish that carried them."""
    payload = parameters.get("Payload")
    if isinstance(payload, dict):
        gate = payload.get("approval") or {}
        return {"token": str(payload.get("token", "")), "digest": str(gate.get("digest", "")),
                "message": str(gate.get("message", ""))}
    attributes = parameters.get("MessageAttributes") or {}
    return {"token": str((attributes.get(TOKEN_ATTRIBUTE) or {}).get("StringValue", "")),
            "digest": str((attributes.get(DIGEST_ATTRIBUTE) or {}).get("StringValue", "")),
            "message": str(parameters.get("Message", ""))}


def choose(runs: List[WaitingRun], env: str, run_id: Optional[str], digest: Optional[str]) -> WaitingRun:
    """The run to answer: the one named, else the only one waiting. With `digest` (what the
    person read in the message, or its first characters), the run's plan must be that one."""
    if run_id:
        named = [run for run in runs if run.run_id == run_id or run.execution_arn == run_id]
        if not named:
            waiting = ", ".join(run.run_id for run in runs) or "none"
            raise GateError(f"{env}: run {run_id} does not wait for an approval (waiting: {waiting})")
        chosen = named[0]
    elif len(runs) == 1:
        chosen = runs[0]
    elif not runs:
        raise GateError(f"{env}: no run waits for an approval")
    else:
        listed = "; ".join(f"{run.run_id} (digest {run.digest[:12]}…, started {run.started})" for run in runs)
        raise GateError(f"{env}: {len(runs)} runs wait for an approval: {listed}. Name one with --run")
    if digest and not chosen.digest.startswith(digest):
        raise GateError(f"{env}: run {chosen.run_id} waits with plan digest {chosen.digest}, not {digest}…: "
                        "the plan changed since the message you read; read the newer message")
    return chosen


def answer_commands(env: str, run_id: str, digest: str) -> List[str]:
    """The two commands that answer a waiting run, exactly as a person types them (the digest
    binds the approval to the plan they read)."""
    return [f"envsync approve --env {env} --run {run_id} --digest {digest[:12]}",
            f'envsync reject --env {env} --run {run_id} --reason "..."']


def approve(stepfunctions: Any, run: WaitingRun, approved_by: str) -> Dict[str, str]:
    """Resume the run with this approval (what its migrate step checks and logs)."""
    approval = {"digest": run.digest, "approved_by": approved_by,
                "approved_at": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds")}
    stepfunctions.send_task_success(taskToken=run.token, output=json.dumps(approval))
    return approval


def reject(stepfunctions: Any, run: WaitingRun, rejected_by: str, reason: str) -> str:
    """Fail the run's approval task: the run notifies the topic and ends; nothing is applied."""
    cause = f"rejected by {rejected_by}: {reason}"[:32768]
    stepfunctions.send_task_failure(taskToken=run.token, error=REJECTED, cause=cause)
    return cause


def wait_for_end(stepfunctions: Any, execution_arn: str, timeout_seconds: float,
                 poll_seconds: float = 1.0) -> Dict[str, Any]:
    """DescribeExecution until the run leaves RUNNING (or the timeout passes: still RUNNING)."""
    deadline = time.monotonic() + timeout_seconds
    while True:
        described = stepfunctions.describe_execution(executionArn=execution_arn)
        if described["status"] != "RUNNING" or time.monotonic() >= deadline:
            return described
        time.sleep(poll_seconds)
