"""AWS::StepFunctions::StateMachine: moto's model, plus the definition properties it ignores.

moto reads only `DefinitionString`. CloudFormation also takes `Definition` (an object),
`DefinitionS3Location` (a file in S3) and `DefinitionSubstitutions` (`${Name}` placeholders
replaced at deploy time), plus `LoggingConfiguration`, `TracingConfiguration` and
`EncryptionConfiguration`. Without them the stored definition is empty or still holds the
placeholders, and nothing can run it. The definition is resolved here, then moto's backend
(the one the Step Functions API uses) stores it.

`install_executions` makes the API's executions and task tokens real (see there).
"""

from __future__ import annotations

import datetime
import json
import os
import re
import subprocess
import time
from pathlib import Path
from typing import Any, Dict, Optional

from moto.core.common_models import CloudFormationModel
from moto.core.exceptions import AWSError
from moto.core.responses import ActionResult, EmptyResult
from moto.s3.models import s3_backends
from moto.stepfunctions.models import StateMachine, StepFunctionBackend, cfn_to_api_tags, stepfunctions_backends
from moto.stepfunctions.responses import StepFunctionResponse

from envsync_local import executions
from envsync_local.cfn_models.stack_engine import ResourceFailed

_PLACEHOLDER = re.compile(r"\$\{([A-Za-z0-9_.:-]+)\}")


def resolve_definition(properties: Dict[str, Any], account_id: str) -> str:
    """The definition text CloudFormation would hand to CreateStateMachine."""
    if "Definition" in properties:
        text = json.dumps(properties["Definition"])
    elif "DefinitionS3Location" in properties:
        location = properties["DefinitionS3Location"]
        bucket = s3_backends[account_id]["aws"].get_bucket(location["Bucket"])
        text = bucket.keys[location["Key"]].value.decode()
    else:
        text = properties.get("DefinitionString", "")
    substitutions = {key: str(value) for key, value in properties.get("DefinitionSubstitutions", {}).items()}
    return _PLACEHOLDER.sub(lambda match: substitutions.get(match.group(1), match.group(0)), text)


class StateMachineWithSubstitutions(CloudFormationModel):
    """Delegates to moto's StateMachine model with the resolved definition."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return StateMachine.cloudformation_name_type()

    @staticmethod
    def cloudformation_type() -> str:
        return StateMachine.cloudformation_type()

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return StateMachine.has_cfn_attr(attr) or attr == "Arn"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> StateMachine:
        properties = cloudformation_json["Properties"]
        try:
            definition = resolve_definition(properties, account_id)
        except (ValueError, KeyError) as error:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(), str(error)) from None
        backend = stepfunctions_backends[account_id][region_name]
        return backend.create_state_machine(
            properties.get("StateMachineName", resource_name), definition, properties.get("RoleArn", ""),
            tags=cfn_to_api_tags(properties.get("Tags", [])),
            loggingConfiguration=properties.get("LoggingConfiguration"),
            tracingConfiguration=properties.get("TracingConfiguration"),
            encryptionConfiguration=properties.get("EncryptionConfiguration"),
            sm_type=properties.get("StateMachineType"),
        )

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: StateMachine, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> StateMachine:
        properties = cloudformation_json["Properties"]
        name = properties.get("StateMachineName", original_resource.name)
        if name != original_resource.name:
            replacement = cls.create_from_cloudformation_json(name, cloudformation_json, account_id, region_name)
            stepfunctions_backends[account_id][region_name].delete_state_machine(original_resource.arn)
            return replacement
        stepfunctions_backends[account_id][region_name].update_state_machine(
            original_resource.arn, definition=resolve_definition(properties, account_id),
            role_arn=properties.get("RoleArn"),
            logging_configuration=properties.get("LoggingConfiguration"),
            tracing_configuration=properties.get("TracingConfiguration"),
            encryption_configuration=properties.get("EncryptionConfiguration"),
        )
        return original_resource

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> None:
        stepfunctions_backends[account_id][region_name].delete_state_machine(resource_name)


# ---- executions and task tokens (envsync_local.executions holds them) ---------------------------

class TaskDoesNotExist(AWSError):
    TYPE = "TaskDoesNotExist"
    STATUS = 400


class TaskTimedOut(AWSError):
    TYPE = "TaskTimedOut"
    STATUS = 400


def install_executions(directory: Path, resumer_python: str, log_path: Path) -> None:
    """Serve executions from `directory` and answer task tokens.

    moto 5.2.5 keeps an execution RUNNING for ever, returns a canned history, and makes
    SendTaskSuccess/SendTaskFailure no-ops (and drops SendTaskFailure's cause). Here the status,
    output and events come from the execution's file; answering the token an execution waits on
    records the decision and starts `envsync-local resume` for it, which continues the run.
    An unknown or answered token is TaskDoesNotExist, an expired one TaskTimedOut, as in AWS.
    """
    if getattr(StepFunctionBackend, "_envsync_executions", False):
        return
    StepFunctionBackend._envsync_executions = True  # type: ignore[attr-defined]
    original_describe = StepFunctionBackend.describe_execution
    original_list = StepFunctionBackend.list_executions
    original_history = StepFunctionBackend.get_execution_history
    original_stop = StepFunctionBackend.stop_execution

    def refreshed(execution: Any) -> Any:
        record = executions.load(directory, execution.execution_arn)
        state = (record or {}).get("execution") or {}
        if state.get("status") in ("SUCCEEDED", "FAILED", "ABORTED"):
            execution.status = state["status"]
            execution.stop_date = datetime.datetime.fromtimestamp(float(record["stopDate"]), datetime.timezone.utc)
            execution.output = json.dumps(state.get("output")) if state["status"] == "SUCCEEDED" else None
            execution.error, execution.cause = state.get("error"), state.get("cause")
        return execution

    def describe_execution(self: StepFunctionBackend, execution_arn: str) -> Any:
        return refreshed(original_describe(self, execution_arn))

    def list_executions(self: StepFunctionBackend, state_machine_arn: str, status_filter: Optional[str] = None,
                        **paging: Any) -> Any:
        for execution in self.describe_state_machine(state_machine_arn).executions:
            refreshed(execution)
        return original_list(self, state_machine_arn, status_filter=status_filter, **paging)

    def get_execution_history(self: StepFunctionBackend, execution_arn: str) -> Dict[str, Any]:
        record = executions.load(directory, execution_arn)
        if record is None:
            return original_history(self, execution_arn)
        return {"events": executions.history_events(record)}

    def stop_execution(self: StepFunctionBackend, execution_arn: str, error: Optional[str] = None,
                       cause: Optional[str] = None) -> Any:
        """StopExecution: the run ends ABORTED where it stands; its task token is void."""
        execution = original_stop(self, execution_arn)
        record = executions.load(directory, execution_arn)
        if record is not None and (record.get("execution") or {}).get("status") == "RUNNING":
            record["execution"] = {**record["execution"], "status": "ABORTED", "waiting": None,
                                   "error": error or "", "cause": cause or ""}
            record["stopDate"] = time.time()
            executions.save(directory, record)
        return refreshed(execution)

    def stop_execution_response(self: StepFunctionResponse) -> Any:
        execution = self.stepfunction_backend.stop_execution(
            self._get_param("executionArn"), error=self._get_param("error"), cause=self._get_param("cause"))
        return ActionResult({"stopDate": execution.stop_date})

    def answer(token: str, decision: Dict[str, Any]) -> None:
        record = executions.waiting_on(directory, token)
        if record is None:
            raise TaskDoesNotExist("Task does not exist anymore")
        deadline = record["execution"]["waiting"].get("deadline")
        if deadline is not None and time.time() > float(deadline):
            decision = {"error": "States.Timeout", "cause": "the task token was not answered in time"}
        record["decision"] = decision
        executions.save(directory, record)
        with open(log_path, "ab") as log:
            subprocess.Popen(
                [resumer_python, "-m", "envsync_local.cli", "resume", record["executionArn"]],
                stdout=log, stderr=subprocess.STDOUT, start_new_session=True,
                env=dict(os.environ, ENVSYNC_LOCAL_DIR=str(directory.parent)))
        if decision.get("error") == "States.Timeout":
            raise TaskTimedOut("Task Timed Out")

    def send_task_success(self: StepFunctionBackend, task_token: str, outcome: str) -> None:
        answer(task_token, {"output": outcome})

    def send_task_failure(self: StepFunctionBackend, task_token: str, error: Optional[str] = None,
                          cause: Optional[str] = None) -> None:
        answer(task_token, {"error": error or "", "cause": cause or ""})

    def send_task_failure_response(self: StepFunctionResponse) -> Any:
        self.stepfunction_backend.send_task_failure(self._get_param("taskToken"), error=self._get_param("error"),
                                                    cause=self._get_param("cause"))
        return EmptyResult()

    StepFunctionBackend.describe_execution = describe_execution
    StepFunctionBackend.list_executions = list_executions
    StepFunctionBackend.get_execution_history = get_execution_history
    StepFunctionBackend.send_task_success = send_task_success
    StepFunctionBackend.send_task_failure = send_task_failure
    StepFunctionResponse.send_task_failure = send_task_failure_response
    StepFunctionBackend.stop_execution = stop_execution
    StepFunctionResponse.stop_execution = stop_execution_response
