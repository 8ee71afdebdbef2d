"""Run an env's deployed sync state machine offline.

The definition is read back from the env's Step Functions (what the sync stack deployed, so
it cannot drift from it) and walked by the ASL interpreter. Lambda tasks run the deployed
function's real handler (lambda_runner); SNS tasks publish to moto's SNS; after every Lambda
invocation its output is shipped to CloudWatch Logs and its EMF metrics to CloudWatch; each
finished execution puts Step Functions' AWS/States metrics, and the env's alarms are evaluated,
as AWS would do.

With an executions directory, the run is also an execution of the stand-in's Step Functions
(StartExecution, then its file in envsync_local.executions): a run that waits for a task token
shows as RUNNING to the API, and `resume_sync` continues it once the token is answered.
"""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import boto3

from envsync.aws import new_session
from envsync_local import executions
from envsync_local.cloudwatch_emulation import evaluate_alarms, publish_execution, publish_invocation
from envsync_local.lambda_runner import LambdaInvocationError, invoke
from envsync_local.stepfunctions import Execution, StateMachine, StatesError

LAMBDA_INVOKE = "arn:aws:states:::lambda:invoke"
SNS_PUBLISH = "arn:aws:states:::sns:publish"


class OrchestrationError(RuntimeError):
    """The env has no deployed state machine (or it cannot be read)."""


@dataclass
class SyncRun:
    env: str
    execution: Execution
    seconds: float
    invocations: List[Dict[str, Any]] = field(default_factory=list)
    alarms: Dict[str, str] = field(default_factory=dict)
    execution_arn: Optional[str] = None  # when it ran as an execution of the stand-in's API


class TaskRunner:
    """Executes the Task states of one env's machine against the stand-ins."""

    def __init__(self, session: boto3.Session, endpoint_url: str, runtime_env: Dict[str, str],
                 lambda_timeout: Optional[float] = None):
        self.session = session
        self.endpoint_url = endpoint_url
        self.runtime_env = runtime_env
        self.lambda_timeout = lambda_timeout
        self.invocations: List[Dict[str, Any]] = []
        self._local = threading.local()
        self._lock = threading.Lock()

    @property
    def _session(self) -> boto3.Session:
        """The session, or in a Map iteration's thread a copy of it: a boto3 Session is not
        thread-safe (its clients are), and a Map runs iterations at once."""
        if threading.current_thread() is threading.main_thread():
            return self.session
        if getattr(self._local, "session", None) is None:
            with self._lock:
                frozen = self.session.get_credentials().get_frozen_credentials()
                self._local.session = new_session(
                    aws_access_key_id=frozen.access_key, aws_secret_access_key=frozen.secret_key,
                    aws_session_token=frozen.token, region_name=self.session.region_name)
        return self._local.session

    def __call__(self, resource: str, payload: Any) -> Any:
        if resource.startswith(LAMBDA_INVOKE):
            return {"Payload": self._lambda(payload["FunctionName"], payload.get("Payload")), "StatusCode": 200}
        if resource.startswith("arn:aws:lambda:"):
            return self._lambda(resource, payload)
        if resource.startswith(SNS_PUBLISH):
            sns = self._session.client("sns", endpoint_url=self.endpoint_url)
            arguments = {key: payload[key] for key in ("TopicArn", "Message", "Subject", "MessageAttributes")
                         if key in payload}
            if not isinstance(arguments.get("Message"), str):
                arguments["Message"] = json.dumps(arguments.get("Message"))
            return {"MessageId": sns.publish(**arguments)["MessageId"]}
        raise StatesError("States.Runtime", f"resource {resource} is not supported offline")

    def _lambda(self, function: str, event: Any) -> Any:
        record: Dict[str, Any] = {"function": function.rsplit(":", 1)[-1], "event": event}
        self.invocations.append(record)
        try:
            outcome = invoke(self._session, self.endpoint_url, function, event, self.runtime_env,
                             timeout=self.lambda_timeout)
        except LambdaInvocationError as err:
            record.update(error=err.error_type, message=err.message)
            if err.function_name:
                publish_invocation(self._session, self.endpoint_url, err.function_name, err.logs)
            raise StatesError(err.error_type, err.message) from err
        record.update(result=outcome.result, seconds=round(outcome.duration_s, 2))
        publish_invocation(self._session, self.endpoint_url, outcome.function_name, outcome.logs)
        return outcome.result


def deployed_machine(session: boto3.Session, endpoint_url: str, env: str) -> Dict[str, Any]:
    """The env's state machine as DescribeStateMachine returns it (definition as text)."""
    stepfunctions = session.client("stepfunctions", endpoint_url=endpoint_url)
    machines = [m for m in stepfunctions.list_state_machines()["stateMachines"]
                if m["name"].startswith(f"envsync-{env}")]
    if len(machines) != 1:
        raise OrchestrationError(f"expected one envsync-{env}* state machine in the {env} account, "
                                 f"found {[m['name'] for m in machines]}; is the sync stack launched?")
    return stepfunctions.describe_state_machine(stateMachineArn=machines[0]["stateMachineArn"])


def deployed_definition(session: boto3.Session, endpoint_url: str, env: str) -> Dict[str, Any]:
    return json.loads(deployed_machine(session, endpoint_url, env)["definition"])


def run_sync(session: boto3.Session, endpoint_url: str, env: str, runtime_env: Dict[str, str],
             execution_input: Optional[Dict[str, Any]] = None,
             lambda_timeout: Optional[float] = None, executions_dir: Optional[Path] = None) -> SyncRun:
    """One execution of env's state machine; alarms evaluated afterwards. With `executions_dir`
    it is started through the Step Functions API and kept there (it may wait for a token)."""
    started = time.monotonic()
    runner = TaskRunner(session, endpoint_url, runtime_env, lambda_timeout)
    machine_description = deployed_machine(session, endpoint_url, env)
    definition = json.loads(machine_description["definition"])
    name = f"local-{env}-{int(time.time() * 1000)}"
    record: Optional[Dict[str, Any]] = None
    if executions_dir is not None:
        stepfunctions = session.client("stepfunctions", endpoint_url=endpoint_url)
        arn = stepfunctions.start_execution(stateMachineArn=machine_description["stateMachineArn"], name=name,
                                            input=json.dumps(execution_input or {}))["executionArn"]
        record = {"executionArn": arn, "stateMachineArn": machine_description["stateMachineArn"], "name": name,
                  "env": env, "region": "us-east-1", "roleArn": machine_description.get("roleArn", ""),
                  "startDate": time.time(), "input": execution_input or {}, "definition": definition,
                  "runtime_env": runtime_env, "invocations": []}
        executions.save(executions_dir, {**record, "execution": Execution(status="RUNNING").to_dict()})
    execution = StateMachine(definition, runner).run(execution_input or {}, name=name,
                                                     state_machine_arn=machine_description["stateMachineArn"])
    if record is not None and executions_dir is not None:
        _save(executions_dir, record, execution, runner.invocations)
    if execution.status != "RUNNING":
        publish_execution(session, endpoint_url, machine_description["stateMachineArn"], execution.status,
                          time.monotonic() - started)
    alarms = evaluate_alarms(session, endpoint_url, prefix=f"envsync-{env}")
    return SyncRun(env, execution, time.monotonic() - started, runner.invocations, alarms,
                   record["executionArn"] if record else None)


def _save(directory: Path, record: Dict[str, Any], execution: Execution, invocations: List[Dict[str, Any]]) -> None:
    record = {**record, "execution": execution.to_dict(), "decision": None,
              "invocations": [*record.get("invocations", []), *invocations]}
    if execution.status != "RUNNING":
        record["stopDate"] = time.time()
    executions.save(directory, record)


def resume_sync(session: boto3.Session, endpoint_url: str, executions_dir: Path, execution_arn: str,
                lambda_timeout: Optional[float] = None) -> SyncRun:
    """Continue a run whose task token was answered (the decision is in its file)."""
    started = time.monotonic()
    record = executions.load(executions_dir, execution_arn)
    if record is None or not record.get("decision"):
        raise OrchestrationError(f"{execution_arn}: no answered task token to resume with")
    runner = TaskRunner(session, endpoint_url, record.get("runtime_env") or {}, lambda_timeout)
    machine = StateMachine(record["definition"], runner)
    execution = machine.resume(Execution.from_dict(record["execution"]), record["decision"])
    _save(executions_dir, record, execution, runner.invocations)
    if execution.status != "RUNNING":
        publish_execution(session, endpoint_url, record["stateMachineArn"], execution.status,
                          time.time() - float(record["startDate"]))
    env = record["env"]
    alarms = evaluate_alarms(session, endpoint_url, prefix=f"envsync-{env}")
    return SyncRun(env, execution, time.monotonic() - started,
                   [*record.get("invocations", []), *runner.invocations], alarms, execution_arn)


def stored_run(executions_dir: Path, execution_arn: str) -> Optional[SyncRun]:
    """A finished run as its file holds it (the cycle reads a resumed run back)."""
    record = executions.load(executions_dir, execution_arn)
    if record is None:
        return None
    execution = Execution.from_dict(record["execution"])
    seconds = float(record.get("stopDate") or time.time()) - float(record["startDate"])
    return SyncRun(record["env"], execution, seconds, list(record.get("invocations") or []),
                   execution_arn=execution_arn)
