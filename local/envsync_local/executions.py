"""The stand-in's Step Functions executions: one JSON file each, shared by the two processes.

The ASL interpreter (stepfunctions.py) runs an execution in the process that starts it: the
cycle, or the resumer the stand-in spawns when a task token is answered. moto's Step Functions
API, in the moto server process, serves what these files hold (cfn_models/stepfunctions.py):
ListExecutions, DescribeExecution and GetExecutionHistory show the real status and events, and
SendTaskSuccess/SendTaskFailure record the decision for the token an execution waits on and
start the resumer, so the run continues after the call returns, as it does in AWS. Files, not
memory: a run that waits for a person outlives `envsync-local` and the command that answers it.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import os
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

# How ASL resources appear in TaskScheduled events (resourceType, resource).
_SERVICE_RESOURCE = "arn:aws:states:::"


def _path(directory: Path, execution_arn: str) -> Path:
    return directory / (hashlib.sha256(execution_arn.encode()).hexdigest()[:32] + ".json")


def save(directory: Path, record: Dict[str, Any]) -> None:
    """Write atomically: the other process may read at any moment."""
    directory.mkdir(parents=True, exist_ok=True)
    target = _path(directory, record["executionArn"])
    temporary = target.with_suffix(f".{os.getpid()}.tmp")
    temporary.write_text(json.dumps(record, default=str))
    temporary.replace(target)


def load(directory: Path, execution_arn: str) -> Optional[Dict[str, Any]]:
    try:
        return json.loads(_path(directory, execution_arn).read_text())
    except FileNotFoundError:
        return None


def records(directory: Path) -> Iterator[Dict[str, Any]]:
    for path in sorted(directory.glob("*.json")) if directory.is_dir() else []:
        yield json.loads(path.read_text())


def waiting_on(directory: Path, token: str) -> Optional[Dict[str, Any]]:
    """The execution whose task waits for `token` (and has no decision yet), if any."""
    for record in records(directory):
        waiting = (record.get("execution") or {}).get("waiting") or {}
        if waiting.get("token") == token and not record.get("decision"):
            return record
    return None


def _timestamp(seconds: float) -> datetime.datetime:
    return datetime.datetime.fromtimestamp(seconds, datetime.timezone.utc)


def history_events(record: Dict[str, Any]) -> List[Dict[str, Any]]:
    """The execution's events in GetExecutionHistory's shape, for the kinds the stand-in
    records: ExecutionStarted, <Type>StateEntered, TaskScheduled (with the rendered parameters,
    the task token among them, as AWS shows them), TaskSucceeded/TaskFailed, and the end."""
    execution = record.get("execution") or {}
    started = float(record["startDate"])
    events: List[Dict[str, Any]] = [{
        "type": "ExecutionStarted",
        "executionStartedEventDetails": {"input": json.dumps(record.get("input")),
                                         "roleArn": record.get("roleArn", "")},
    }]
    for entry in execution.get("history") or []:
        kind = entry.get("type")
        if kind == "TaskScheduled":
            resource = str(entry["resource"])
            service, _, action = resource[len(_SERVICE_RESOURCE):].partition(":") if resource.startswith(
                _SERVICE_RESOURCE) else ("lambda", "", resource)
            details: Dict[str, Any] = {"resourceType": service, "resource": action or resource,
                                       "region": record.get("region", "us-east-1"),
                                       "parameters": json.dumps(entry.get("parameters"))}
            if entry.get("timeout_seconds") is not None:
                details["timeoutInSeconds"] = int(entry["timeout_seconds"])
            events.append({"type": "TaskScheduled", "taskScheduledEventDetails": details})
        elif kind == "TaskSucceeded":
            events.append({"type": "TaskSucceeded", "stateName": entry.get("state")})
        elif kind == "Caught":  # a task's failure, with its error and cause as AWS records them
            events.append({"type": "TaskFailed", "stateName": entry.get("state"), "taskFailedEventDetails": {
                "error": entry.get("error") or "", "cause": entry.get("cause") or ""}})
        elif kind == "TaskFailed":
            continue  # the interpreter's note before its Catch: the Caught entry is the event
        elif kind and "state" in entry:
            events.append({"type": f"{kind}StateEntered", "stateEnteredEventDetails": {"name": entry["state"]}})
    status = execution.get("status")
    if status == "SUCCEEDED":
        events.append({"type": "ExecutionSucceeded",
                       "executionSucceededEventDetails": {"output": json.dumps(execution.get("output"))}})
    elif status == "ABORTED":
        events.append({"type": "ExecutionAborted", "executionAbortedEventDetails": {
            "error": execution.get("error") or "", "cause": execution.get("cause") or ""}})
    elif status == "FAILED":
        events.append({"type": "ExecutionFailed", "executionFailedEventDetails": {
            "error": execution.get("error") or "", "cause": execution.get("cause") or ""}})
    stamp = _timestamp(float(record.get("stopDate") or started))
    for number, event in enumerate(events, start=1):
        event.update(id=number, previousEventId=number - 1, timestamp=_timestamp(started) if number == 1 else stamp)
    return events
