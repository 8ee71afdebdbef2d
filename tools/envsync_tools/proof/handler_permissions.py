"""What CloudFormation calls as the execution role to create, update or delete a resource.

The CloudFormation resource schemas (cfn-lint ships them) list each handler's permissions.
They also list permissions for optional features a template may not use (an S3 bucket's
replication, a function's code signing...), so the proof counts, per resource (docs/ARCHITECTURE.md §5):
- the permissions of the resource's own service,
- `iam:PassRole` when the resource names a role,
- `kms:*` permissions when the resource names a KMS key,
- the other services' permissions of a feature the resource uses (FEATURE_PERMISSIONS: a
  function's code read from S3, a cluster's managed master secret...).
A custom resource (`Custom::*`) is one `lambda:InvokeFunction` on its ServiceToken.
cfn-lint is imported lazily: the moto server's venv does not have it.
"""

from __future__ import annotations

import functools
from typing import Any, Dict, List, Mapping, Optional, Tuple

REGION = "us-east-1"
# Stands for the id part of an ARN a name does not give (a key id, a stack id).
STACK_ID_SUFFIX = "ABCDEFGHIJ12"
OPERATIONS = ("create", "update", "delete")

# The IAM prefix of each CloudFormation service namespace envsync uses.
SERVICE_PREFIX = {
    "CloudFormation": "cloudformation", "CloudWatch": "cloudwatch", "EC2": "ec2", "Events": "events",
    "IAM": "iam", "KMS": "kms", "Lambda": "lambda", "Logs": "logs", "RDS": "rds", "S3": "s3",
    "SecretsManager": "secretsmanager", "SNS": "sns", "SSM": "ssm", "StepFunctions": "states",
}
# The service through which a resource of each namespace uses its KMS key (kms:ViaService).
VIA_SERVICE = {"RDS": "rds", "S3": "s3", "SNS": "sns", "SecretsManager": "secretsmanager", "Lambda": "lambda",
               "StepFunctions": "states", "SSM": "ssm", "Logs": "logs"}
KEY_PROPERTIES = ("KmsKeyId", "KmsKeyArn", "KMSMasterKeyID", "KmsMasterKeyId", "PerformanceInsightsKMSKeyId",
                  "MasterSecretKmsKeyArn")
ROLE_SUFFIXES = ("Role", "RoleArn", "RoleARN")


# Permissions of other services a resource's handler calls because of a feature the resource
# uses, as the schema lists them: (type, property that turns the feature on) -> permissions.
FEATURE_PERMISSIONS = {
    ("AWS::RDS::DBCluster", "ManageMasterUserPassword"): ("secretsmanager:CreateSecret", "secretsmanager:TagResource"),
    ("AWS::RDS::DBInstance", "DBClusterIdentifier"): ("ec2:DescribeSecurityGroups", "ec2:DescribeSubnets",
                                                      "ec2:DescribeVpcs", "ec2:DescribeAvailabilityZones"),
    ("AWS::Lambda::Function", "Code"): ("s3:GetObject",),
    ("AWS::Lambda::Function", "VpcConfig"): ("ec2:DescribeNetworkInterfaces", "ec2:DescribeSecurityGroups",
                                             "ec2:DescribeSubnets", "ec2:DescribeVpcs"),
    ("AWS::EC2::FlowLog", "LogGroupName"): ("logs:CreateLogDelivery", "logs:DeleteLogDelivery"),
}


# Resources that act on another one are authorised on that one's ARN: type -> its property.
PARENT_PROPERTY = {
    "AWS::S3::BucketPolicy": "Bucket",
    "AWS::SecretsManager::SecretTargetAttachment": "SecretId",
    "AWS::SecretsManager::RotationSchedule": "SecretId",
    "AWS::Lambda::Permission": "FunctionName",
}


def parent_arn(resource_type: str, properties: Mapping[str, Any], account: str) -> Optional[str]:
    """The ARN a sub-resource (a bucket's policy, a secret's rotation) is authorised on."""
    value = properties.get(PARENT_PROPERTY.get(resource_type, ""))
    if not isinstance(value, str) or not value:
        return None
    if resource_type == "AWS::S3::BucketPolicy":
        return f"arn:aws:s3:::{value}"
    if resource_type == "AWS::Lambda::Permission" and not value.startswith("arn:"):
        return f"arn:aws:lambda:{REGION}:{account}:function:{value}"
    return value


def arn_for(resource_type: str, name: str, account: str, region: str = REGION) -> str:
    """The ARN IAM sees for a resource of `resource_type` with physical name `name`."""
    if name.startswith("arn:"):
        return name  # types whose physical id is their ARN (secrets, topics, state machines)
    acct = account
    arns = {
            "AWS::IAM::Role": f"arn:aws:iam::{acct}:role/{name}",
            "AWS::IAM::ManagedPolicy": f"arn:aws:iam::{acct}:policy/{name}",
            "AWS::Lambda::Function": f"arn:aws:lambda:{region}:{acct}:function:{name}",
            "AWS::SNS::Topic": f"arn:aws:sns:{region}:{acct}:{name}",
            "AWS::StepFunctions::StateMachine": f"arn:aws:states:{region}:{acct}:stateMachine:{name}",
            "AWS::Events::Rule": f"arn:aws:events:{region}:{acct}:rule/{name}",
            "AWS::S3::Bucket": f"arn:aws:s3:::{name}",
            "AWS::Logs::LogGroup": f"arn:aws:logs:{region}:{acct}:log-group:{name}:*",
            "AWS::SecretsManager::Secret": f"arn:aws:secretsmanager:{region}:{acct}:secret:{name}-AbCdEf",
            "AWS::CloudWatch::Alarm": f"arn:aws:cloudwatch:{region}:{acct}:alarm:{name}",
            "AWS::CloudWatch::Dashboard": f"arn:aws:cloudwatch::{acct}:dashboard/{name}",
            "AWS::KMS::Key": f"arn:aws:kms:{region}:{acct}:key/00000000-0000-4000-8000-{STACK_ID_SUFFIX.lower()}",
            "AWS::CloudFormation::Stack": f"arn:aws:cloudformation:{region}:{acct}:stack/{name}/{STACK_ID_SUFFIX}",
            # RDS lower-cases the names CloudFormation generates.
            "AWS::RDS::DBCluster": f"arn:aws:rds:{region}:{acct}:cluster:{name.lower()}",
            "AWS::RDS::DBInstance": f"arn:aws:rds:{region}:{acct}:db:{name.lower()}",
            "AWS::RDS::DBSubnetGroup": f"arn:aws:rds:{region}:{acct}:subgrp:{name.lower()}",
            "AWS::RDS::DBClusterParameterGroup": f"arn:aws:rds:{region}:{acct}:cluster-pg:{name.lower()}",
    }
    # Types whose ARN holds an id CloudFormation learns only on create: any of this account's.
    return arns.get(resource_type, f"arn:aws:{namespace(resource_type).lower()}:{region}:{acct}:*")


class UnknownResourceType(KeyError):
    """No schema for this type: the proof cannot say what CloudFormation needs for it."""


@functools.cache
def schema_handlers(resource_type: str) -> Mapping[str, Any]:
    from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

    try:
        schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema(REGION, resource_type)
    except Exception as error:  # cfn-lint raises its own ResourceNotFoundError
        raise UnknownResourceType(f"{resource_type}: no CloudFormation resource schema ({error})") from error
    return schema.schema.get("handlers") or {}


def namespace(resource_type: str) -> str:
    return resource_type.split("::")[1] if resource_type.startswith("AWS::") else ""


def _walk(value: Any, path: Tuple[str, ...] = ()) -> List[Tuple[Tuple[str, ...], Any]]:
    found: List[Tuple[Tuple[str, ...], Any]] = []
    if isinstance(value, dict):
        for key, item in value.items():
            found.append(((*path, key), item))
            found.extend(_walk(item, (*path, key)))
    elif isinstance(value, list):
        for item in value:
            found.extend(_walk(item, path))
    return found


def named_keys(properties: Mapping[str, Any]) -> List[str]:
    """The KMS keys a resource's properties name (plain strings only)."""
    return sorted({value for path, value in _walk(properties)
                   if path[-1] in KEY_PROPERTIES and isinstance(value, str) and value})


def _is_role_key(name: str) -> bool:
    return name.endswith(ROLE_SUFFIXES) and name != "RoleName"


def names_role(properties: Mapping[str, Any]) -> bool:
    return any(_is_role_key(path[-1]) for path, _ in _walk(properties))


def named_roles(properties: Mapping[str, Any]) -> List[str]:
    """The role ARNs a resource's properties name (what `iam:PassRole` is asked for)."""
    return sorted({value for path, value in _walk(properties)
                   if _is_role_key(path[-1]) and isinstance(value, str) and value.startswith("arn:aws:iam::")})


# The top-level properties the handler permissions above depend on (and nothing that can hold
# a secret value): what the stand-in records of each resource CloudFormation creates.
PERMISSION_PROPERTIES = {
    *KEY_PROPERTIES, "TargetKeyId", "AliasName", "PermissionsBoundary", "ServiceToken",
    "ManageMasterUserPassword", "MasterUserSecret", "EncryptionConfiguration", "BucketEncryption",
    "VpcConfig", "LogGroupName", "DBClusterIdentifier", "Targets", *PARENT_PROPERTY.values(),
    # the groups an RDS create is authorised on (named, or RDS's defaults for the engine)
    "Engine", "EngineVersion", "OptionGroupName", "DBParameterGroupName", "DBClusterParameterGroupName",
    "DBSubnetGroupName",
}


def permission_properties(properties: Mapping[str, Any]) -> Dict[str, Any]:
    """`properties` cut to what decides a handler's permissions (a function's Code only as its
    S3 location)."""
    kept = {key: value for key, value in properties.items()
            if key in PERMISSION_PROPERTIES or _is_role_key(key)}
    code = properties.get("Code")
    if isinstance(code, dict):
        kept["Code"] = {key: code[key] for key in ("S3Bucket", "S3Key") if key in code}
    return kept


def required_permissions(resource_type: str, operation: str, properties: Mapping[str, Any]) -> List[str]:
    """The handler permissions the execution role needs for `operation` on this resource."""
    if resource_type.startswith("Custom::"):
        return ["lambda:InvokeFunction"]
    handlers = schema_handlers(resource_type)
    if operation not in handlers:
        return []
    own = SERVICE_PREFIX.get(namespace(resource_type))
    # CloudFormation sets a boundary only when the template names one, and removes one only
    # when the template drops it (ours never do; the execution role is denied that).
    never = {"iam:DeleteRolePermissionsBoundary"}
    if not properties.get("PermissionsBoundary"):
        never.add("iam:PutRolePermissionsBoundary")
    # A key's create handler gives CreateKey the policy and disables the key only for
    # `Enabled: false` (the kms resource provider's key CreateHandler); an update calls
    # PutKeyPolicy only when the policy changes, which the proof cannot tell, so it asks.
    if resource_type == "AWS::KMS::Key" and operation == "create":
        never.add("kms:PutKeyPolicy")
        if str(properties.get("Enabled", True)).lower() != "false":
            never.add("kms:DisableKey")
    wants_key = bool(named_keys(properties))
    wants_role = names_role(properties)
    required = []
    for permission in handlers[operation].get("permissions", []):
        prefix = permission.split(":")[0]
        if permission in never:
            continue
        if prefix == own or (permission == "iam:PassRole" and wants_role) or (prefix == "kms" and wants_key):
            required.append(permission)
    listed = set(handlers[operation].get("permissions", []))
    for (kind, feature), permissions in FEATURE_PERMISSIONS.items():
        if kind == resource_type and properties.get(feature) and operation != "delete":
            required.extend(p for p in permissions if p in listed)
    return sorted(set(required))


def handler_permission_table(types: List[str]) -> Dict[str, Dict[str, List[str]]]:
    """{type: {operation: all schema permissions}}: for a report, unfiltered."""
    return {t: {op: list(schema_handlers(t).get(op, {}).get("permissions", [])) for op in OPERATIONS}
            for t in types if not t.startswith("Custom::")}
