"""Run an env's deployed sync state machine offline.

The definition is read back from the env's Step Functions (what the sync stack deployed, so
it cannot drift from it) and walked by the ASL interpreter. Lambda tasks run the deployed
function's real handler (lambda_runner); SNS tasks publish to moto's SNS; after every Lambda
invocation its output is shipped to CloudWatch Logs and its EMF metrics to CloudWatch; each
execution puts Step Functions' AWS/States metrics, and the env's alarms are evaluated, as AWS
would do.
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional

import boto3

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


class TaskRunner:
    """Executes the Task states of one env's machine against the stand-ins."""

    def __init__(self, session: boto3.Session, endpoint_url: str, runtime_env: Dict[str, str],
                 lambda_timeout: Optional[float] = None):
        self.session = session
        self.endpoint_url = endpoint_url
        self.runtime_env = runtime_env
        self.lambda_timeout = lambda_timeout
        self.invocations: List[Dict[str, Any]] = []

    def __call__(self, resource: str, payload: Any) -> Any:
        if resource.startswith(LAMBDA_INVOKE):
            return {"Payload": self._lambda(payload["FunctionName"], payload.get("Payload")), "StatusCode": 200}
        if resource.startswith("arn:aws:lambda:"):
            return self._lambda(resource, payload)
        if resource.startswith(SNS_PUBLISH):
            sns = self.session.client("sns", endpoint_url=self.endpoint_url)
            arguments = {key: payload[key] for key in ("TopicArn", "Message", "Subject") if key in payload}
            if not isinstance(arguments.get("Message"), str):
                arguments["Message"] = json.dumps(arguments.get("Message"))
            return {"MessageId": sns.publish(**arguments)["MessageId"]}
        raise StatesError("States.Runtime", f"resource {resource} is not supported offline")

    def _lambda(self, function: str, event: Any) -> Any:
        record: Dict[str, Any] = {"function": function.rsplit(":", 1)[-1], "event": event}
        self.invocations.append(record)
        try:
            outcome = invoke(self.session, self.endpoint_url, function, event, self.runtime_env,
                             timeout=self.lambda_timeout)
        except LambdaInvocationError as err:
            record.update(error=err.error_type, message=err.message)
            if err.function_name:
                publish_invocation(self.session, self.endpoint_url, err.function_name, err.logs)
            raise StatesError(err.error_type, err.message) from err
        record.update(result=outcome.result, seconds=round(outcome.duration_s, 2))
        publish_invocation(self.session, self.endpoint_url, outcome.function_name, outcome.logs)
        return outcome.result


def deployed_machine_arn(session: boto3.Session, endpoint_url: str, env: str) -> str:
    stepfunctions = session.client("stepfunctions", endpoint_url=endpoint_url)
    machines = [m for m in stepfunctions.list_state_machines()["stateMachines"]
                if m["name"].startswith(f"envsync-{env}")]
    if len(machines) != 1:
        raise OrchestrationError(f"expected one envsync-{env}* state machine in the {env} account, "
                                 f"found {[m['name'] for m in machines]}; is the sync stack launched?")
    return str(machines[0]["stateMachineArn"])


def deployed_definition(session: boto3.Session, endpoint_url: str, env: str,
                        machine_arn: Optional[str] = None) -> Dict[str, Any]:
    stepfunctions = session.client("stepfunctions", endpoint_url=endpoint_url)
    described = stepfunctions.describe_state_machine(
        stateMachineArn=machine_arn or deployed_machine_arn(session, endpoint_url, env))
    return json.loads(described["definition"])


def run_sync(session: boto3.Session, endpoint_url: str, env: str, runtime_env: Dict[str, str],
             execution_input: Optional[Dict[str, Any]] = None,
             lambda_timeout: Optional[float] = None) -> SyncRun:
    """One execution of env's state machine; alarms evaluated afterwards."""
    started = time.monotonic()
    runner = TaskRunner(session, endpoint_url, runtime_env, lambda_timeout)
    machine_arn = deployed_machine_arn(session, endpoint_url, env)
    machine = StateMachine(deployed_definition(session, endpoint_url, env, machine_arn), runner)
    execution = machine.run(execution_input or {}, name=f"local-{env}-{int(time.time())}")
    publish_execution(session, endpoint_url, machine_arn, execution.status, time.monotonic() - started)
    alarms = evaluate_alarms(session, endpoint_url, prefix=f"envsync-{env}")
    return SyncRun(env, execution, time.monotonic() - started, runner.invocations, alarms)
