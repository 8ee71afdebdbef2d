"""What an env's state machine runs tell an operator (`envsync status --env ENV`): whether the
deployed machine waits for a person and who may answer, the runs that wait, with the commands
that answer them, and why the last failed run failed.

Read through the Step Functions API (ListExecutions, GetExecutionHistory), what the env's
approver role may read. The failure is the failed task's error and cause as Step Functions
recorded them: the text the failure notice carried (a Lambda's notice names the script,
statement, line and error class), with any quoted server message reduced to its code, since
the server's own words can quote row values.
"""

from __future__ import annotations

import datetime
import json
from dataclasses import dataclass
from typing import Any, Dict, Iterable, List, Optional, Tuple

from envsync.approval import answer
from envsync.mysql.connection import scrub_server_text

ERROR_LIMIT = 400
# Where each failure event keeps its error and cause (Lambda tasks by ARN, service integrations).
FAILURE_DETAILS = {
    "TaskFailed": "taskFailedEventDetails",
    "TaskTimedOut": "taskTimedOutEventDetails",
    "LambdaFunctionFailed": "lambdaFunctionFailedEventDetails",
    "LambdaFunctionTimedOut": "lambdaFunctionTimedOutEventDetails",
    "ActivityFailed": "activityFailedEventDetails",
}


# A Task state whose integration ends so pauses until someone sends its token back (the approval).
WAIT_FOR_TASK_TOKEN = ".waitForTaskToken"  # noqa: S105 - an integration pattern, not a secret


def waiting_states(definition: Dict[str, Any]) -> List[str]:
    """Names of the states of an ASL definition that wait for a task token, nested ones
    (Parallel branches, Map iterators) included."""
    found: List[str] = []
    for name, state in (definition.get("States") or {}).items():
        if state.get("Type") == "Task" and str(state.get("Resource", "")).endswith(WAIT_FOR_TASK_TOKEN):
            found.append(name)
        for branch in [*state.get("Branches", []), state.get("ItemProcessor") or state.get("Iterator") or {}]:
            found += waiting_states(branch)
    return found


@dataclass(frozen=True)
class Gate:
    """The approval gate as deployed: the machine's waiting states and who may answer them."""

    machine_arn: str
    required: bool  # the env's approval mode asks for a person
    waits: List[str]
    approver_arn: str
    approver_trusts: Optional[List[str]]  # None: the role could not be read (missing or not allowed)

    @property
    def missing(self) -> bool:
        return self.required and not self.waits

    def text(self) -> str:
        if not self.required:  # its machine may hold the wait; its plan step never asks for it
            return "  approval gate: none (this env's approval mode is none)"
        line = (f"approval gate: present (the deployed machine waits in {', '.join(self.waits)})" if self.waits
                else "approval gate: MISSING: the deployed machine has no state that waits for a person")
        trusts = ", ".join(self.approver_trusts) if self.approver_trusts else "?"
        answer = (f"answered by {self.approver_arn} (assumable by {trusts})" if self.approver_trusts is not None
                  else f"answered by {self.approver_arn}: not readable (the administrator's bootstrap stack "
                       "creates it)")
        return f"  {line}\n  {answer}"

    def to_dict(self) -> Dict[str, Any]:
        return {"machine": self.machine_arn, "required": self.required, "waits_for_approval": bool(self.waits),
                "waiting_states": self.waits, "approver_role": self.approver_arn,
                "approver_trusts": self.approver_trusts}


def read_gate(stepfunctions: Any, iam: Any, machine_arn: str, approver_arn: str, required: bool) -> Gate:
    """The deployed definition (DescribeStateMachine) and the approver role's trust (GetRole)."""
    definition = json.loads(stepfunctions.describe_state_machine(stateMachineArn=machine_arn)["definition"])
    try:
        role = iam.get_role(RoleName=approver_arn.rsplit("/", 1)[-1])["Role"]
    except iam.exceptions.ClientError:
        trusts: Optional[List[str]] = None
    else:
        document = role["AssumeRolePolicyDocument"]
        document = json.loads(document) if isinstance(document, str) else document
        trusts = sorted({principal for statement in document.get("Statement", [])
                         if statement.get("Effect") == "Allow"
                         for principal in _as_list((statement.get("Principal") or {}).get("AWS"))})
    return Gate(machine_arn, required, waiting_states(definition), approver_arn, trusts)


def _as_list(value: Any) -> List[str]:
    return [value] if isinstance(value, str) else list(value or [])


@dataclass(frozen=True)
class FailedRun:
    run_id: str
    execution_arn: str
    stopped: datetime.datetime
    step: str
    error: str

    def to_dict(self) -> Dict[str, Any]:
        return {"run": self.run_id, "execution_arn": self.execution_arn, "stopped": self.stopped.isoformat(),
                "step": self.step, "error": self.error}


def error_text(error: str, cause: str) -> str:
    """One line: the error and its cause, a Lambda's stack trace left out, server text scrubbed."""
    try:
        document = json.loads(cause)
    except ValueError:
        document = None
    if isinstance(document, dict) and "errorMessage" in document:  # a Lambda's error, as AWS records it
        cause = str(document["errorMessage"])
    text = scrub_server_text(" ".join(f"{error}: {cause}".split()) if cause else error)
    return text if len(text) <= ERROR_LIMIT else text[:ERROR_LIMIT] + " …(cut)"


def failed_step(events: Iterable[Dict[str, Any]]) -> Optional[Tuple[str, str]]:
    """(state, error line) of the last task that failed, from a run's events oldest first: the
    state is the one entered before the failure event (AWS's failure events do not name it)."""
    entered, found = "", None
    for event in events:
        kind = str(event.get("type", ""))
        if kind.endswith("StateEntered"):
            entered = str((event.get("stateEnteredEventDetails") or {}).get("name", ""))
        elif kind in FAILURE_DETAILS:
            details = event.get(FAILURE_DETAILS[kind]) or {}
            found = (entered, error_text(str(details.get("error", "")), str(details.get("cause", ""))))
        elif kind == "ExecutionFailed" and found is None:
            details = event.get("executionFailedEventDetails") or {}
            found = (entered, error_text(str(details.get("error", "")), str(details.get("cause", ""))))
    return found


def last_failure(stepfunctions: Any, machine_arn: str) -> Optional[FailedRun]:
    """The newest FAILED run of the machine and the step that failed it; None when none failed."""
    failed = [execution for page in stepfunctions.get_paginator("list_executions").paginate(
        stateMachineArn=machine_arn, statusFilter="FAILED") for execution in page["executions"]]
    if not failed:
        return None
    newest = max(failed, key=lambda execution: execution.get("stopDate") or execution["startDate"])
    events = [event for page in stepfunctions.get_paginator("get_execution_history").paginate(
        executionArn=newest["executionArn"]) for event in page["events"]]
    step, error = failed_step(events) or ("", "no failure event in the run's history")
    return FailedRun(run_id=newest["name"], execution_arn=newest["executionArn"],
                     stopped=newest.get("stopDate") or newest["startDate"], step=step, error=error)


def unreadable_text(env: str, error: Exception) -> str:
    """One line for runs that could not be read: the machine, the AWS error's code and the
    call (a ClientError's message can name ARNs and policies: left out), or the endpoint."""
    response = getattr(error, "response", None)
    if isinstance(response, dict):
        code = (response.get("Error") or {}).get("Code", "error")
        cause = f"{code} on {getattr(error, 'operation_name', 'a call')}"
    else:
        cause = f"{type(error).__name__}" + (f" ({error.kwargs['endpoint_url']})"
                                             if "endpoint_url" in getattr(error, "kwargs", {}) else "")
    return f"runs of envsync-{env}-sync: could not read them ({cause}); the history above stands"


def age(moment: datetime.datetime, now: datetime.datetime) -> str:
    seconds = max(0, int((now - moment).total_seconds()))
    for unit, size in (("d", 86400), ("h", 3600), ("min", 60)):
        if seconds >= size:
            return f"{seconds // size} {unit}"
    return f"{seconds} s"


def status_text(env: str, waiting: List[answer.WaitingRun], failure: Optional[FailedRun],
                now: datetime.datetime, gate: Optional[Gate] = None) -> str:
    """The runs part of `envsync status --env ENV` (with the gate as deployed, when read)."""
    lines = [f"runs of envsync-{env}-sync:"] + ([gate.text()] if gate else [])
    if not waiting:
        lines.append("  no run waits for an approval")
    for run in waiting:
        lines.append(f"  WAITING for approval: run {run.run_id}, plan digest {run.digest[:12]}…, "
                     f"waiting {age(run.started, now)}")
        lines += [f"    {command}" for command in answer.answer_commands(env, run.run_id, run.digest)]
    if failure is None:
        lines.append("  no failed run")
    else:
        lines.append(f"  last failed run: {failure.run_id}, {age(failure.stopped, now)} ago, "
                     f"step {failure.step or '?'}: {failure.error}")
    return "\n".join(lines)


def status_data(env: str, waiting: List[answer.WaitingRun], failure: Optional[FailedRun],
                now: datetime.datetime, gate: Optional[Gate] = None) -> Dict[str, Any]:
    """The same for --json (never the task token)."""
    return {
        **({"gate": gate.to_dict()} if gate else {}),
        "waiting": [{"run": run.run_id, "execution_arn": run.execution_arn, "digest": run.digest,
                     "started": run.started.isoformat(), "age_seconds": int((now - run.started).total_seconds()),
                     "commands": answer.answer_commands(env, run.run_id, run.digest)} for run in waiting],
        "last_failure": failure.to_dict() if failure else None,
    }
