"""A customer managed key from a template: policy, tags, rotation readable through KMS; update; delete."""

from __future__ import annotations

import json

import boto3

POLICY = {"Version": "2012-10-17", "Statement": [{
    "Sid": "Admin", "Effect": "Allow", "Principal": {"AWS": "arn:aws:iam::123456789012:root"},
    "Action": "kms:*", "Resource": "*"}]}


def template(description: str) -> str:
    return json.dumps({"Resources": {"Key": {"Type": "AWS::KMS::Key", "Properties": {
        "Description": description, "EnableKeyRotation": True, "PendingWindowInDays": 7,
        "KeyPolicy": POLICY, "Tags": [{"Key": "Env", "Value": "test"}]}}},
        "Outputs": {"Arn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}, "Id": {"Value": {"Ref": "Key"}}}})


def test_key_is_readable_updatable_and_deleted(aws_env):
    cloudformation, kms = boto3.client("cloudformation"), boto3.client("kms")
    cloudformation.create_stack(StackName="key", TemplateBody=template("first"))
    stack = cloudformation.describe_stacks(StackName="key")["Stacks"][0]
    outputs = {o["OutputKey"]: o["OutputValue"] for o in stack["Outputs"]}
    metadata = kms.describe_key(KeyId=outputs["Arn"])["KeyMetadata"]
    assert (metadata["Description"], metadata["KeyState"], metadata["KeyUsage"]) == ("first", "Enabled",
                                                                                      "ENCRYPT_DECRYPT")
    assert json.loads(kms.get_key_policy(KeyId=outputs["Id"], PolicyName="default")["Policy"]) == POLICY
    assert kms.get_key_rotation_status(KeyId=outputs["Id"])["KeyRotationEnabled"] is True
    assert kms.list_resource_tags(KeyId=outputs["Id"])["Tags"] == [{"TagKey": "Env", "TagValue": "test"}]

    cloudformation.update_stack(StackName="key", TemplateBody=template("second"))
    assert kms.describe_key(KeyId=outputs["Arn"])["KeyMetadata"]["Description"] == "second"
    cloudformation.delete_stack(StackName="key")
    assert outputs["Id"] not in {key["KeyId"] for key in kms.list_keys()["Keys"]}
