"""AWS::S3::Bucket: moto's model plus the bucket properties it ignores.

moto 5.2.5 applies `BucketEncryption` and `Tags` only; `VersioningConfiguration`,
`LifecycleConfiguration` and `PublicAccessBlockConfiguration` are dropped. This model lets
moto's `FakeBucket` create/update/delete the bucket, then applies those three through moto's
S3 backend (the same calls as PutBucketVersioning / PutBucketLifecycleConfiguration /
PutPublicAccessBlock), so `get_bucket_versioning` & co. see them.
"""

from __future__ import annotations

import json
from typing import Any, Dict, List

from moto.core.common_models import CloudFormationModel
from moto.s3.models import FakeBucket, S3Backend, s3_backends
from moto.utilities.utils import get_partition

from envsync_local.cfn_models.policy_conditions import statement_applies
from envsync_local.cfn_models.stack_engine import ResourceFailed
from envsync_local.cfn_models.stand_in import StandsInFor


def _backend(account_id: str, region_name: str) -> S3Backend:
    return s3_backends[account_id][get_partition(region_name)]


def _days(value: Any) -> str:
    return str(int(value))


def lifecycle_rule(rule: Dict[str, Any]) -> Dict[str, Any]:
    """One CloudFormation lifecycle Rule -> the API (PutBucketLifecycleConfiguration) shape."""
    api: Dict[str, Any] = {"Status": rule["Status"]}
    if "Id" in rule:
        api["ID"] = rule["Id"]
    tag_filters = rule.get("TagFilters") or []
    prefix = rule.get("Prefix", "")
    if len(tag_filters) > 1 or (tag_filters and prefix):
        api["Filter"] = {"And": {"Prefix": prefix, "Tag": [
            {"Key": t["Key"], "Value": t["Value"]} for t in tag_filters]}}
    elif tag_filters:
        api["Filter"] = {"Tag": {"Key": tag_filters[0]["Key"], "Value": tag_filters[0]["Value"]}}
    else:
        api["Filter"] = {"Prefix": prefix}
    expiration: Dict[str, Any] = {}
    if "ExpirationInDays" in rule:
        expiration["Days"] = _days(rule["ExpirationInDays"])
    if "ExpirationDate" in rule:
        expiration["Date"] = rule["ExpirationDate"]
    if "ExpiredObjectDeleteMarker" in rule:
        expiration["ExpiredObjectDeleteMarker"] = str(rule["ExpiredObjectDeleteMarker"]).lower()
    if expiration:
        api["Expiration"] = expiration
    noncurrent = rule.get("NoncurrentVersionExpiration")
    if noncurrent:
        api["NoncurrentVersionExpiration"] = {"NoncurrentDays": _days(noncurrent["NoncurrentDays"])}
        if "NewerNoncurrentVersions" in noncurrent:
            api["NoncurrentVersionExpiration"]["NewerNoncurrentVersions"] = str(
                noncurrent["NewerNoncurrentVersions"])
    elif "NoncurrentVersionExpirationInDays" in rule:
        api["NoncurrentVersionExpiration"] = {
            "NoncurrentDays": _days(rule["NoncurrentVersionExpirationInDays"])}
    abort = rule.get("AbortIncompleteMultipartUpload")
    if abort:
        api["AbortIncompleteMultipartUpload"] = {"DaysAfterInitiation": _days(abort["DaysAfterInitiation"])}
    transitions: List[Dict[str, Any]] = list(rule.get("Transitions") or [])
    if "Transition" in rule:
        transitions.append(rule["Transition"])
    if transitions:
        api["Transition"] = [
            {key: (str(value) if key != "StorageClass" else value)
             for key, value in (("Days", t.get("TransitionInDays")), ("Date", t.get("TransitionDate")),
                                ("StorageClass", t["StorageClass"])) if value is not None}
            for t in transitions
        ]
    return api


def apply_configuration(backend: S3Backend, bucket_name: str, properties: Dict[str, Any]) -> None:
    """Versioning, lifecycle and public access block, as declared (absent = removed)."""
    versioning = properties.get("VersioningConfiguration")
    bucket = backend.get_bucket(bucket_name)
    if versioning:
        backend.put_bucket_versioning(bucket_name, versioning["Status"])
    elif bucket.versioning_status == "Enabled":
        # Removing the property suspends versioning; it cannot return to "never enabled".
        backend.put_bucket_versioning(bucket_name, "Suspended")
    lifecycle = properties.get("LifecycleConfiguration")
    if lifecycle and lifecycle.get("Rules"):
        backend.put_bucket_lifecycle_configuration(
            bucket_name, [lifecycle_rule(rule) for rule in lifecycle["Rules"]])
    elif bucket.rules:
        backend.delete_bucket_lifecycle(bucket_name)
    public_access = properties.get("PublicAccessBlockConfiguration")
    if public_access:
        backend.put_public_access_block(bucket_name, {
            key: str(public_access.get(key, False)).lower()
            for key in ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy",
                        "RestrictPublicBuckets")
        })
    elif bucket.public_access_block is not None:
        backend.delete_public_access_block(bucket_name)


class ConfiguredBucket(StandsInFor, CloudFormationModel):
    """AWS::S3::Bucket (moto's FakeBucket, with versioning/lifecycle/public access block)."""

    moto_model = FakeBucket

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> FakeBucket:
        name = cloudformation_json.get("Properties", {}).get("BucketName", resource_name)
        if name in _backend(account_id, region_name).buckets:
            # CloudFormation's handler says so for any existing bucket (S3's BucketAlreadyExists
            # is for another account's; a bucket of this account would be taken over silently).
            raise ResourceFailed(kwargs.get("LogicalId"), cls.cloudformation_type(), f"{name} already exists")
        bucket = FakeBucket.create_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name, **kwargs)
        apply_configuration(_backend(account_id, region_name), bucket.name,
                            cloudformation_json.get("Properties", {}))
        return bucket

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: FakeBucket, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> FakeBucket:
        properties = cloudformation_json["Properties"]
        if "BucketName" not in properties or properties["BucketName"] == original_resource.name:
            # moto's update re-tags by properties["BucketName"]; give it the bucket's name.
            properties = {**properties, "BucketName": original_resource.name}
            cloudformation_json = {**cloudformation_json, "Properties": properties}
        bucket = FakeBucket.update_from_cloudformation_json(
            original_resource, new_resource_name, cloudformation_json, account_id, region_name)
        apply_configuration(_backend(account_id, region_name), bucket.name, properties)
        return bucket

    @classmethod
    def delete_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str,
    ) -> None:
        FakeBucket.delete_from_cloudformation_json(
            resource_name, cloudformation_json, account_id, region_name)


class BucketPolicy(CloudFormationModel):
    """AWS::S3::BucketPolicy (moto 5.2.5 has no model): PutBucketPolicy / DeleteBucketPolicy."""

    def __init__(self, bucket_name: str, document: Any):
        self.bucket_name = bucket_name
        self.document = document

    @property
    def physical_resource_id(self) -> str:
        return self.bucket_name

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @staticmethod
    def cloudformation_type() -> str:
        # https://docs.aws.amazon.com/AWSCloudFormation/latest/UserGuide/aws-resource-s3-bucketpolicy.html
        return "AWS::S3::BucketPolicy"

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return False

    def is_created(self) -> bool:
        return True

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> BucketPolicy:
        properties = cloudformation_json["Properties"]
        bucket_name = getattr(properties["Bucket"], "name", properties["Bucket"])
        document = properties["PolicyDocument"]
        text = document if isinstance(document, str) else json.dumps(document)
        _backend(account_id, region_name).put_bucket_policy(bucket_name, text.encode("utf-8"))
        return cls(bucket_name, document)

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: BucketPolicy, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> BucketPolicy:
        properties = cloudformation_json["Properties"]
        if getattr(properties["Bucket"], "name", properties["Bucket"]) != original_resource.bucket_name:
            original_resource.delete(account_id, region_name)
        return cls.create_from_cloudformation_json(
            new_resource_name, cloudformation_json, account_id, region_name)

    def delete(self, account_id: str, region_name: str) -> None:
        backend = _backend(account_id, region_name)
        if self.bucket_name in backend.buckets:
            backend.delete_bucket_policy(self.bucket_name)


# --- bucket policy conditions ------------------------------------------------------------------
# moto evaluates a bucket policy for object requests but ignores conditions it cannot evaluate
# (all but StringEquals), so `Deny s3:* if aws:SecureTransport = false` -- the TLS-only policy
# every bucket of ours has -- denies every request. This evaluates the common condition
# operators against the request context of the API endpoint moto stands in for (HTTPS);
# a statement applies only when all of its conditions hold, unknown keys never hold.

def _get_permission(self: FakeBucket, action: str, resource: str) -> Any:
    from moto.iam.access_control import IAMPolicy, PermissionResult

    if self.policy is None:
        return PermissionResult.NEUTRAL
    document = json.loads(self.policy.decode())
    statements = document.get("Statement", [])
    statements = statements if isinstance(statements, list) else [statements]
    applicable = [{k: v for k, v in s.items() if k != "Condition"} for s in statements
                  if statement_applies(s)]
    return IAMPolicy(json.dumps({**document, "Statement": applicable})).is_action_permitted(
        action, resource)


def install() -> None:
    """Evaluate bucket policy conditions (idempotent)."""
    if getattr(FakeBucket, "_envsync_policy_conditions", False):
        return
    FakeBucket.get_permission = _get_permission  # type: ignore[method-assign]
    FakeBucket._envsync_policy_conditions = True  # type: ignore[attr-defined]
