"""AWS::SecretsManager::Secret, ::RotationSchedule and ::SecretTargetAttachment.

moto 5.2.5 has the Secrets Manager API but no CloudFormation model for these types. Secrets
are created in moto's Secrets Manager backend (so `get_secret_value`/`describe_secret` see
them), with `GenerateSecretString` honoured through the backend's own password generator.
"""

from __future__ import annotations

import json
import re
import time
from typing import Any, Dict, Optional

from moto.core.common_models import CloudFormationModel
from moto.secretsmanager.models import FakeSecret, SecretsManagerBackend, secretsmanager_backends

from envsync_local.cfn_models.stack_engine import ResourceFailed

DEFAULT_PASSWORD_LENGTH = 32
RATE_IN_DAYS = re.compile(r"^rate\((\d+) days?\)$")
SECONDS_PER_DAY = 86400


def _backend(account_id: str, region_name: str) -> SecretsManagerBackend:
    return secretsmanager_backends[account_id][region_name]


def _as_bool(value: Any) -> bool:
    return str(value).lower() == "true" if isinstance(value, str) else bool(value)


def generate_secret_string(backend: SecretsManagerBackend, spec: Dict[str, Any]) -> str:
    """The value CloudFormation generates for `GenerateSecretString`."""
    password = json.loads(backend.get_random_password(
        password_length=int(spec.get("PasswordLength", DEFAULT_PASSWORD_LENGTH)),
        exclude_characters=spec.get("ExcludeCharacters", ""),
        exclude_numbers=_as_bool(spec.get("ExcludeNumbers", False)),
        exclude_punctuation=_as_bool(spec.get("ExcludePunctuation", False)),
        exclude_uppercase=_as_bool(spec.get("ExcludeUppercase", False)),
        exclude_lowercase=_as_bool(spec.get("ExcludeLowercase", False)),
        include_space=_as_bool(spec.get("IncludeSpace", False)),
        require_each_included_type=_as_bool(spec.get("RequireEachIncludedType", True)),
    ))["RandomPassword"]
    template = spec.get("SecretStringTemplate")
    key = spec.get("GenerateStringKey")
    if bool(template) != bool(key):
        raise ValueError("GenerateSecretString needs both SecretStringTemplate and GenerateStringKey, or neither")
    if not template:
        return password
    document = json.loads(template)
    if not isinstance(document, dict):
        raise ValueError("SecretStringTemplate must be a JSON object")
    document[key] = password
    return json.dumps(document)


def _find_secret(backend: SecretsManagerBackend, secret_id: str) -> Optional[FakeSecret]:
    try:
        secret = backend.describe_secret(secret_id)
    except Exception:  # moto's SecretNotFoundException
        return None
    return secret if isinstance(secret, FakeSecret) else None


class Secret(CloudFormationModel):
    """AWS::SecretsManager::Secret. Ref and GetAtt Id are the ARN."""

    def __init__(self, secret: FakeSecret, properties: Dict[str, Any]):
        self.secret = secret
        self.properties = properties

    @staticmethod
    def cloudformation_name_type() -> str:
        return "Name"

    @staticmethod
    def cloudformation_type() -> str:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-secretsmanager-secret.html
        return "AWS::SecretsManager::Secret"

    @property
    def physical_resource_id(self) -> str:
        return self.secret.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return attr == "Id"

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name == "Id":
            return self.secret.arn
        raise UnformattedGetAttTemplateException()

    def is_created(self) -> bool:
        return True

    @staticmethod
    def _value(backend: SecretsManagerBackend, properties: Dict[str, Any], logical_id: Optional[str]) -> str:
        if "SecretString" in properties and "GenerateSecretString" in properties:
            raise ResourceFailed(logical_id, Secret.cloudformation_type(),
                                 "SecretString and GenerateSecretString are mutually exclusive")
        if "SecretString" in properties:
            return str(properties["SecretString"])
        try:
            return generate_secret_string(backend, properties.get("GenerateSecretString") or {})
        except ValueError as error:
            raise ResourceFailed(logical_id, Secret.cloudformation_type(), str(error)) from None

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> Secret:
        properties = cloudformation_json["Properties"]
        backend = _backend(account_id, region_name)
        name = properties.get("Name", resource_name)
        if _find_secret(backend, name) is not None:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(),
                                 f"The operation failed because the secret {name} already exists.")
        backend.create_secret(
            name=name,
            secret_string=cls._value(backend, properties, kwargs.get("LogicalId")),
            secret_binary=None,
            description=properties.get("Description"),
            tags=properties.get("Tags"),
            kms_key_id=properties.get("KmsKeyId"),
            client_request_token=None,
            replica_regions=properties.get("ReplicaRegions") or [],
            force_overwrite=False,
        )
        return cls(backend.secrets[name], properties)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: Secret, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> Secret:
        properties = cloudformation_json["Properties"]
        old = original_resource.properties
        backend = _backend(account_id, region_name)
        if properties.get("Name", original_resource.secret.name) != original_resource.secret.name:
            replacement = cls.create_from_cloudformation_json(
                new_resource_name, cloudformation_json, account_id, region_name)
            original_resource.delete(account_id, region_name)
            return replacement
        secret = original_resource.secret
        secret.update(description=properties.get("Description"), tags=properties.get("Tags"),
                      kms_key_id=properties.get("KmsKeyId"), last_changed_date=int(time.time()))
        value_changed = any(old.get(key) != properties.get(key)
                            for key in ("SecretString", "GenerateSecretString"))
        if value_changed:
            backend.put_secret_value(secret.arn, cls._value(backend, properties, None), None,
                                     None, ["AWSCURRENT"])
        original_resource.properties = properties
        return original_resource

    def delete(self, account_id: str, region_name: str) -> None:
        # CloudFormation deletes a stack's secrets without a recovery window. By name: moto
        # answers a forced delete of an ARN it does not know (a secret its rotation stored
        # again) with success and deletes nothing.
        secret = _find_secret(_backend(account_id, region_name), self.secret.name)
        _backend(account_id, region_name).delete_secret(
            secret.arn if secret is not None else self.secret.arn, recovery_window_in_days=None,
            force_delete_without_recovery=True)

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        _backend(account_id, region_name).delete_secret(
            resource_name, recovery_window_in_days=None, force_delete_without_recovery=True)


def rotation_days(rules: Dict[str, Any]) -> int:
    """AutomaticallyAfterDays, or the days of a `rate(N days)` ScheduleExpression (else 0)."""
    if "AutomaticallyAfterDays" in rules:
        return int(rules["AutomaticallyAfterDays"])
    match = RATE_IN_DAYS.match(str(rules.get("ScheduleExpression", "")).strip())
    return int(match.group(1)) if match else 0


class RotationSchedule(CloudFormationModel):
    """AWS::SecretsManager::RotationSchedule: rotation enabled and its rules, on the secret.

    A RotationLambdaARN's function runs its four steps when RotateSecret is called (see
    `rotate_with_function`); a HostedRotationLambda is recorded as the function CloudFormation
    would deploy (`RotationLambdaName` in the stack's account).
    """

    def __init__(self, secret: FakeSecret, properties: Dict[str, Any]):
        self.secret = secret
        self.properties = properties

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-secretsmanager-rotationschedule.html
        return "AWS::SecretsManager::RotationSchedule"

    @property
    def physical_resource_id(self) -> str:
        return self.secret.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    def is_created(self) -> bool:
        return True

    @staticmethod
    def _apply(secret: FakeSecret, properties: Dict[str, Any], account_id: str,
               region_name: str, logical_id: Optional[str]) -> None:
        hosted = properties.get("HostedRotationLambda")
        lambda_arn = properties.get("RotationLambdaARN")
        if bool(hosted) == bool(lambda_arn):
            raise ResourceFailed(logical_id, RotationSchedule.cloudformation_type(),
                                 "specify exactly one of RotationLambdaARN and HostedRotationLambda")
        if hosted:
            if "RotationType" not in hosted:
                raise ResourceFailed(logical_id, RotationSchedule.cloudformation_type(),
                                     "HostedRotationLambda needs RotationType")
            function_name = hosted.get("RotationLambdaName") or f"SecretsManager{hosted['RotationType']}"
            lambda_arn = f"arn:aws:lambda:{region_name}:{account_id}:function:{function_name}"
        rules = properties.get("RotationRules") or {}
        days = rotation_days(rules)
        secret.rotation_requested = True
        secret.rotation_enabled = True
        secret.rotation_lambda_arn = lambda_arn
        secret.auto_rotate_after_days = days
        secret.next_rotation_date = int(time.time()) + days * SECONDS_PER_DAY if days else None
        # Kept for readers of the model (moto's DescribeSecret shows AutomaticallyAfterDays).
        secret.rotation_rules = dict(rules)  # type: ignore[attr-defined]
        secret.hosted_rotation_lambda = dict(hosted) if hosted else None  # type: ignore[attr-defined]

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> RotationSchedule:
        properties = cloudformation_json["Properties"]
        secret = _find_secret(_backend(account_id, region_name), properties["SecretId"])
        if secret is None:
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(),
                                 f"Secrets Manager can't find the specified secret {properties['SecretId']}")
        cls._apply(secret, properties, account_id, region_name, kwargs.get("LogicalId"))
        return cls(secret, properties)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: RotationSchedule, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> RotationSchedule:
        properties = cloudformation_json["Properties"]
        secret = _find_secret(_backend(account_id, region_name), properties["SecretId"])
        if secret is None:
            raise ResourceFailed(None, cls.cloudformation_type(),
                                 f"Secrets Manager can't find the specified secret {properties['SecretId']}")
        if secret is not original_resource.secret:
            original_resource.delete(account_id, region_name)
        cls._apply(secret, properties, account_id, region_name, None)
        return cls(secret, properties)

    def delete(self, account_id: str, region_name: str) -> None:
        # The secret may already be gone (deleted by the same stack).
        if _find_secret(_backend(account_id, region_name), self.secret.arn) is not None:
            self.secret.rotation_enabled = False

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        secret = _find_secret(_backend(account_id, region_name), resource_name)
        if secret is not None:
            secret.rotation_enabled = False


class SecretTargetAttachment(CloudFormationModel):
    """AWS::SecretsManager::SecretTargetAttachment: the database's connection details in the secret."""

    def __init__(self, secret: FakeSecret, properties: Dict[str, Any]):
        self.secret = secret
        self.properties = properties

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-secretsmanager-secrettargetattachment.html
        return "AWS::SecretsManager::SecretTargetAttachment"

    @property
    def physical_resource_id(self) -> str:
        return self.secret.arn

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    def is_created(self) -> bool:
        return True

    @classmethod
    def _attach(cls, properties: Dict[str, Any], account_id: str, region_name: str,
                logical_id: Optional[str]) -> SecretTargetAttachment:
        from moto.rds.models import rds_backends

        backend = _backend(account_id, region_name)
        secret = _find_secret(backend, properties["SecretId"])
        if secret is None:
            raise ResourceFailed(logical_id, cls.cloudformation_type(),
                                 f"Secrets Manager can't find the specified secret {properties['SecretId']}")
        rds = rds_backends[account_id][region_name]
        target_id = str(properties["TargetId"]).lower()
        target_type = properties["TargetType"]
        if target_type == "AWS::RDS::DBCluster" and target_id in rds.clusters:
            cluster = rds.clusters[target_id]
            details = {"engine": "mysql" if cluster.engine.startswith("aurora") else cluster.engine,
                       "host": cluster.endpoint, "port": cluster.port,
                       "dbClusterIdentifier": cluster.db_cluster_identifier}
        elif target_type == "AWS::RDS::DBInstance" and target_id in rds.databases:
            instance = rds.databases[target_id]
            details = {"engine": instance.engine, "host": instance.address, "port": instance.port,
                       "dbInstanceIdentifier": instance.db_instance_identifier}
        else:
            raise ResourceFailed(logical_id, cls.cloudformation_type(),
                                 f"target {target_type} {properties['TargetId']} not found")
        current = json.loads(secret.secret_string or "{}")
        current.update(details)
        backend.put_secret_value(secret.arn, json.dumps(current), None, None, ["AWSCURRENT"])
        return cls(secret, properties)

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> SecretTargetAttachment:
        return cls._attach(cloudformation_json["Properties"], account_id, region_name,
                           kwargs.get("LogicalId"))

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: SecretTargetAttachment, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> SecretTargetAttachment:
        return cls._attach(cloudformation_json["Properties"], account_id, region_name, None)

    def delete(self, account_id: str, region_name: str) -> None:
        """Detaching leaves the secret's value as it is (as CloudFormation does)."""

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        """Nothing to undo."""


# ---- rotation -------------------------------------------------------------------------------
# moto's RotateSecret invokes the rotation function through its Lambda backend (a Docker
# container) and then promotes the pending version itself, whatever the function did. The
# stand-in runs the function's deployed code as Lambda would (custom_resources.run_function:
# the function's role, environment and package) for the four steps, and leaves the stages to
# the function, as Secrets Manager does. The upstream change: a pluggable Lambda invoker in moto.

ROTATION_STEPS = ("createSecret", "setSecret", "testSecret", "finishSecret")


class RotationFailed(RuntimeError):
    """A step of the rotation function failed; AWSCURRENT is what it was."""


def _record_lambda_error(function_name: str, account_id: str, region_name: str) -> None:
    """Lambda's own Errors metric for a failed invocation (the rotation alarm watches it)."""
    from moto.cloudwatch.models import cloudwatch_backends

    cloudwatch_backends[account_id][region_name].put_metric_data(
        "AWS/Lambda", [{"MetricName": "Errors", "Value": 1.0, "Unit": "Count",
                        "Dimensions": [{"Name": "FunctionName", "Value": function_name}]}])


def rotate_with_function(backend: SecretsManagerBackend, secret: FakeSecret, lambda_arn: str,
                         token: Optional[str]) -> str:
    """RotateSecret as AWS does it: a version staged AWSPENDING, then the function's four steps."""
    import uuid

    from moto.awslambda.utils import get_backend as get_lambda_backend
    from moto.secretsmanager.exceptions import InvalidRequestException, ResourceNotFoundException

    from envsync_local.cfn_models.custom_resources import invoke_function

    account_id, region_name = backend.account_id, backend.region_name
    try:
        function = get_lambda_backend(account_id, region_name).get_function(lambda_arn)
    except Exception:
        raise ResourceNotFoundException(f"Resource not found for ARN '{lambda_arn}'.") from None
    pending = [vid for vid, version in secret.versions.items()
               if "AWSPENDING" in version["version_stages"] and "AWSCURRENT" not in version["version_stages"]]
    if pending and token and token != pending[0]:
        raise InvalidRequestException("A previous rotation isn't complete. That rotation will be reattempted.")
    if pending:
        token = pending[0]  # an unfinished rotation is retried with its own version, as AWS does
    else:
        token = token or str(uuid.uuid4())
        secret.versions[token] = {"createdate": int(time.time()), "version_id": token,
                                  "version_stages": ["AWSPENDING"]}
    secret.rotation_lambda_arn = lambda_arn
    for step in ROTATION_STEPS:
        event = {"Step": step, "SecretId": secret.arn, "ClientRequestToken": token}
        try:
            invoke_function(function, event, account_id, region_name)
        except RuntimeError as error:
            _record_lambda_error(function.function_name, account_id, region_name)
            raise RotationFailed(f"rotation of {secret.name} failed at {step}: {error}") from None
    secret.last_rotation_date = int(time.time())
    return token


def install() -> None:
    """RotateSecret runs the rotation function's steps (idempotent)."""
    if getattr(SecretsManagerBackend, "_envsync_rotation", False):
        return
    original = SecretsManagerBackend.rotate_secret

    def rotate_secret(self: SecretsManagerBackend, secret_id: str, client_request_token: Optional[str] = None,
                      rotation_lambda_arn: Optional[str] = None, rotation_rules: Optional[Dict[str, Any]] = None,
                      rotate_immediately: bool = True) -> str:
        from moto.secretsmanager.exceptions import InvalidRequestException

        secret = _find_secret(self, secret_id)
        lambda_arn = rotation_lambda_arn or (secret.rotation_lambda_arn if secret is not None else None)
        if secret is None or not lambda_arn:
            return original(self, secret_id, client_request_token, rotation_lambda_arn, rotation_rules,
                            rotate_immediately)
        if rotation_rules:
            days = rotation_days(rotation_rules)
            secret.auto_rotate_after_days = days
            secret.next_rotation_date = int(time.time()) + days * SECONDS_PER_DAY if days else None
        secret.rotation_enabled = True
        if rotate_immediately:
            try:
                rotate_with_function(self, secret, lambda_arn, client_request_token)
            except RotationFailed as error:
                # AWS answers RotateSecret before the function runs; the stand-in runs it first
                # and says how it ended, so a caller (a test, envsync-local) sees the failure.
                raise InvalidRequestException(str(error)) from None
        return secret.to_short_dict()

    # moto moves the AWSCURRENT label but keeps serving the old version when GetSecretValue
    # names no stage (its default version); AWS serves whatever AWSCURRENT labels.
    moved = SecretsManagerBackend.update_secret_version_stage

    def update_secret_version_stage(self: SecretsManagerBackend, secret_id: str, version_stage: str,
                                    remove_from_version_id: str, move_to_version_id: str) -> Any:
        result = moved(self, secret_id, version_stage, remove_from_version_id, move_to_version_id)
        secret = _find_secret(self, secret_id)
        if version_stage == "AWSCURRENT" and move_to_version_id and secret is not None:
            secret.default_version_id = move_to_version_id
        return result

    SecretsManagerBackend.rotate_secret = rotate_secret  # type: ignore[method-assign]
    SecretsManagerBackend.update_secret_version_stage = update_secret_version_stage  # type: ignore[method-assign]
    SecretsManagerBackend._envsync_rotation = True  # type: ignore[attr-defined]
