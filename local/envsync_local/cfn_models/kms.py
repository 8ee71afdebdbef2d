"""AWS::KMS::Key: moto's model stores the template's KeyPolicy as a dict (every later
DescribeKey then fails with HTTP 500 when moto checks the policy), expects tags as TagKey /
TagValue, ignores KeyUsage, KeySpec and PendingWindowInDays, and cannot update. (Delete stays
moto's: the key object deletes itself, at once rather than after the pending window.)

This model hands moto's KMS backend (the one the KMS API uses) what the API would get.
"""

from __future__ import annotations

from typing import Any, Dict

from moto.core.common_models import CloudFormationModel
from moto.kms.models import Key, KmsBackend, kms_backends

DEFAULT_PENDING_WINDOW_DAYS = 30  # CloudFormation's default


def _backend(account_id: str, region_name: str) -> KmsBackend:
    return kms_backends[account_id][region_name]


def _policy(properties: Dict[str, Any]) -> str:
    from envsync_local.cfn_models.iam import policy_json

    return policy_json(properties.get("KeyPolicy"))


def _true(value: Any) -> bool:
    return str(value).lower() == "true"


class KmsKey(CloudFormationModel):
    """Delegates to moto's Key; fixes the policy, tags, usage, spec and update."""

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        return Key.cloudformation_type()

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Arn"

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> Key:
        properties = cloudformation_json["Properties"]
        backend = _backend(account_id, region_name)
        key = backend.create_key(
            policy=_policy(properties),
            key_usage=properties.get("KeyUsage", "ENCRYPT_DECRYPT"),
            key_spec=properties.get("KeySpec", "SYMMETRIC_DEFAULT"),
            description=properties.get("Description", ""),
            tags=[{"TagKey": tag["Key"], "TagValue": tag["Value"]} for tag in properties.get("Tags", [])],
            multi_region=_true(properties.get("MultiRegion", False)),
        )
        key.key_rotation_status = _true(properties.get("EnableKeyRotation", False))
        key.enabled = _true(properties.get("Enabled", True))
        key.pending_window_in_days = int(properties.get("PendingWindowInDays", DEFAULT_PENDING_WINDOW_DAYS))
        return key

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Key, new_resource_name: str, cloudformation_json: Dict[str, Any],
        account_id: str, region_name: str,
    ) -> Key:
        properties = cloudformation_json["Properties"]
        backend = _backend(account_id, region_name)
        backend.put_key_policy(original_resource.id, _policy(properties))
        backend.update_key_description(original_resource.id, properties.get("Description", ""))
        original_resource.key_rotation_status = _true(properties.get("EnableKeyRotation", False))
        original_resource.enabled = _true(properties.get("Enabled", True))
        return original_resource
