"""AWS::IAM::Role: moto's model plus `ManagedPolicyArns` and real updates; AWS::IAM::ManagedPolicy
that its stack's deletion (or the rollback of a failed create) deletes.

moto 5.2.5 ignores `ManagedPolicyArns`, updates only the description, and cannot delete a
role that has managed policies attached. This model lets moto's `Role` create the role, then
attaches the managed policies through moto's IAM backend (AttachRolePolicy); an update
applies the trust policy, inline policies, managed policies, description and session
duration; delete detaches first. moto's managed policy has no delete at all: the policy
outlived its stack, and creating the stack again failed at "already exists" on its name;
CloudFormation detaches it from its roles, users and groups and deletes it.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

from moto.core.common_models import CloudFormationModel
from moto.iam.models import IAMBackend, ManagedPolicy, Role, iam_backends
from moto.utilities.utils import get_partition

from envsync_local.cfn_models.stand_in import StandsInFor


def _backend(account_id: str, region_name: str) -> IAMBackend:
    return iam_backends[account_id][get_partition(region_name)]


def _managed_policy_arns(properties: Dict[str, Any]) -> List[str]:
    return list(dict.fromkeys(properties.get("ManagedPolicyArns") or []))


def policy_json(document: Any) -> str:
    """An inline policy as IAM stores it: a JSON string.

    moto's CloudFormation keeps the template's dict, which its IAM API then returns as a Python
    repr (not JSON) and its IAM enforcement cannot evaluate (KeyError). A statement that is
    `!If [cond, stmt, !Ref AWS::NoValue]` arrives as None; CloudFormation drops it.
    """
    if isinstance(document, str):
        return document
    if isinstance(document, dict) and isinstance(document.get("Statement"), list):
        document = {**document, "Statement": [s for s in document["Statement"] if s is not None]}
    return json.dumps(document)


def sync_managed_policies(backend: IAMBackend, role: Role, wanted: List[str]) -> None:
    for arn in [arn for arn in role.managed_policies if arn not in wanted]:
        backend.detach_role_policy(arn, role.name)
    for arn in [arn for arn in wanted if arn not in role.managed_policies]:
        backend.attach_role_policy(arn, role.name)


class RoleWithManagedPolicies(StandsInFor, CloudFormationModel):
    """AWS::IAM::Role (moto's Role, with ManagedPolicyArns)."""

    moto_model = Role

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> Role:
        role = Role.create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs)
        for name, document in list(role.policies.items()):
            role.put_policy(name, policy_json(document))
        sync_managed_policies(_backend(account_id, region_name), role,
                              _managed_policy_arns(cloudformation_json["Properties"]))
        return role

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Role, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> Role:
        properties = cloudformation_json["Properties"]
        backend = _backend(account_id, region_name)
        if properties.get("RoleName", original_resource.name) != original_resource.name or \
                properties.get("Path", "/") != original_resource.path:
            replacement = cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name)
            cls.delete_from_cloudformation_json(original_resource.name, cloudformation_json,
                                                account_id, region_name)
            return replacement
        role = original_resource
        trust = properties["AssumeRolePolicyDocument"]
        backend.update_assume_role_policy(
            role.name, trust if isinstance(trust, str) else json.dumps(trust))
        backend.update_role(role.name, properties.get("Description", ""),
                            int(properties.get("MaxSessionDuration", 3600)))
        role.permissions_boundary_arn = properties.get("PermissionsBoundary") or None
        wanted_inline = {p["PolicyName"]: p["PolicyDocument"] for p in properties.get("Policies", [])}
        for name in [name for name in role.policies if name not in wanted_inline]:
            role.delete_policy(name)
        for name, document in wanted_inline.items():
            role.put_policy(name, policy_json(document))
        sync_managed_policies(backend, role, _managed_policy_arns(properties))
        return role

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        backend = _backend(account_id, region_name)
        role = next((r for r in backend.roles.values() if r.name == resource_name), None)
        if role is None:
            return
        sync_managed_policies(backend, role, [])
        Role.delete_from_cloudformation_json(resource_name, cloudformation_json, account_id,
                                             region_name)


class DeletableManagedPolicy(StandsInFor, CloudFormationModel):
    """AWS::IAM::ManagedPolicy (moto's ManagedPolicy, deleted with its stack)."""

    moto_model = ManagedPolicy

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> ManagedPolicy:
        return ManagedPolicy.create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        """`resource_name` is the policy's ARN (its physical id)."""
        backend = _backend(account_id, region_name)
        if resource_name not in backend.managed_policies:
            return
        for role in backend.roles.values():
            if resource_name in role.managed_policies:
                backend.detach_role_policy(resource_name, role.name)
        for user in backend.users.values():
            if resource_name in user.managed_policies:
                backend.detach_user_policy(resource_name, user.name)
        for group in backend.groups.values():
            if resource_name in group.managed_policies:
                backend.detach_group_policy(resource_name, group.name)
        backend.delete_policy(resource_name)
