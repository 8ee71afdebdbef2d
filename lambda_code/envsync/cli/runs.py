"""What an env's state machine runs tell an operator (`envsync status --env ENV`): the runs
that wait for a person, with the commands that answer them, and why the last failed run failed.

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
                now: datetime.datetime) -> str:
    """The runs part of `envsync status --env ENV`."""
    lines = [f"runs of envsync-{env}-sync:"]
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
                now: datetime.datetime) -> Dict[str, Any]:
    """The same for --json (never the task token)."""
    return {
        "waiting": [{"run": run.run_id, "execution_arn": run.execution_arn, "digest": run.digest,
                     "started": run.started.isoformat(), "age_seconds": int((now - run.started).total_seconds()),
                     "commands": answer.answer_commands(env, run.run_id, run.digest)} for run in waiting],
        "last_failure": failure.to_dict() if failure else None,
    }
