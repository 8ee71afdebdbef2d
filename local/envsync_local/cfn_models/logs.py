"""AWS::Logs::LogGroup: moto's model, plus `KmsKeyId` and updates.

moto's model passes the properties to CreateLogGroup as keyword arguments, where the key
is read as `kmsKeyId`, so the template's `KmsKeyId` is dropped; and it has no update. Here
the key is passed under moto's name, and an update applies retention and key in place
(PutRetentionPolicy / AssociateKmsKey) or replaces the group when its name changes.
"""

from __future__ import annotations

from typing import Any, Dict

from moto.core.common_models import CloudFormationModel
from moto.logs.models import LogGroup, LogsBackend, logs_backends

from envsync_local.cfn_models.stand_in import StandsInFor


def _backend(account_id: str, region_name: str) -> LogsBackend:
    return logs_backends[account_id][region_name]


class EncryptedLogGroup(StandsInFor, CloudFormationModel):
    """AWS::Logs::LogGroup (moto's LogGroup, with KmsKeyId)."""

    moto_model = LogGroup

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> LogGroup:
        properties = dict(cloudformation_json["Properties"])
        if "KmsKeyId" in properties:
            properties["kmsKeyId"] = properties.pop("KmsKeyId")
        return LogGroup.create_from_cloudformation_json(
            resource_name, {**cloudformation_json, "Properties": properties}, account_id,
            region_name, **kwargs)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: LogGroup, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> LogGroup:
        properties = cloudformation_json["Properties"]
        if properties.get("LogGroupName", original_resource.name) != original_resource.name:
            replacement = cls.create_from_cloudformation_json(
                properties.get("LogGroupName", new_resource_name), cloudformation_json,
                account_id, region_name)
            original_resource.delete(account_id, region_name)
            return replacement
        original_resource.retention_in_days = properties.get("RetentionInDays")
        original_resource.kms_key_id = properties.get("KmsKeyId")
        return original_resource
