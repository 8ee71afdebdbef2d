"""AWS::StepFunctions::StateMachine: moto's model, plus the definition properties it ignores.

moto reads only `DefinitionString`. CloudFormation also takes `Definition` (an object),
`DefinitionS3Location` (a file in S3) and `DefinitionSubstitutions` (`${Name}` placeholders
replaced at deploy time), plus `LoggingConfiguration`, `TracingConfiguration` and
`EncryptionConfiguration`. Without them the stored definition is empty or still holds the
placeholders, and nothing can run it. The definition is resolved here, then moto's backend
(the one the Step Functions API uses) stores it.
"""

from __future__ import annotations

import json
import re
from typing import Any, Dict

from moto.core.common_models import CloudFormationModel
from moto.s3.models import s3_backends
from moto.stepfunctions.models import StateMachine, cfn_to_api_tags, stepfunctions_backends

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
