"""Custom::SecureStringParameter through a stack: the real handler from the function's deployed
zip runs with the function's role in the stack's account, and SSM holds the result."""

from __future__ import annotations

import io
import json
import zipfile
from typing import Any, Dict

import pytest

from tests.local.conftest import DEV, Account

LAMBDA_CODE = "lambda_code/envsync"


def deployment_zip(project_root) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        # The handler and every engine module it imports, nothing else: the zip is the function.
        for name in ("__init__.py", "errors.py", "lambdas/__init__.py", "lambdas/cfn_response.py",
                     "lambdas/secure_parameter.py"):
            archive.write(project_root / LAMBDA_CODE / name, f"envsync/{name}")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def code_bucket(dev: Account, project_root) -> str:
    s3 = dev.client("s3")
    s3.create_bucket(Bucket="envsync-dev-lambda-code")
    s3.put_object(Bucket="envsync-dev-lambda-code", Key="secure_parameter.zip",
                  Body=deployment_zip(project_root))
    return "envsync-dev-lambda-code"


def template(name: str, value: str, with_output: bool = True) -> Dict[str, Any]:
    resources = {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*",
                                                    "Principal": {"AWS": "*"}, "Resource": "*"}]}}},
        "WriterRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": "envsync-dev-parameter-writer",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole"}]},
            },
        },
        "WriterFunction": {
            "Type": "AWS::Lambda::Function",
            "Properties": {
                "FunctionName": "envsync-dev-secure-parameter",
                "Runtime": "python3.9",
                "Handler": "envsync.lambdas.secure_parameter.handler",
                "Role": {"Fn::GetAtt": ["WriterRole", "Arn"]},
                "Timeout": 60,
                "Code": {"S3Bucket": "envsync-dev-lambda-code", "S3Key": "secure_parameter.zip"},
            },
        },
        "ConnectionString": {
            "Type": "Custom::SecureStringParameter",
            "Properties": {
                "ServiceToken": {"Fn::GetAtt": ["WriterFunction", "Arn"]},
                "Name": name,
                "Value": value,
                "KeyId": {"Fn::GetAtt": ["Key", "Arn"]},
                "Description": "envsync dev connection string",
            },
        },
    }
    outputs = {"ParameterName": {"Value": {"Ref": "ConnectionString"}},
               "Version": {"Value": {"Fn::GetAtt": ["ConnectionString", "Version"]}},
               "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}}
    return {"Resources": resources, "Outputs": outputs if with_output else {}}


def test_secure_string_parameter_lifecycle(dev: Account, code_bucket):
    value = "mysql://envsync_sync@127.0.0.1:3306/app?tls=true"
    stack = dev.create("envsync-params", template("/envsync/dev/connection", value))
    assert stack["StackStatus"] == "CREATE_COMPLETE", dev.failure_reasons("envsync-params")
    outputs = dev.outputs(stack)
    assert outputs["ParameterName"] == "/envsync/dev/connection" and outputs["Version"] == "1"
    ssm = dev.client("ssm")
    parameter = ssm.get_parameter(Name="/envsync/dev/connection", WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString" and parameter["Value"] == value
    assert parameter["ARN"].startswith(f"arn:aws:ssm:us-east-1:{DEV}:")  # the stack's account
    described = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Values": ["/envsync/dev/connection"]}])["Parameters"][0]
    assert described["KeyId"] == outputs["KeyArn"]

    # Same name: overwritten in place.
    changed = value.replace("3306", "3307")
    stack = dev.update("envsync-params", template("/envsync/dev/connection", changed))
    assert stack["StackStatus"] == "UPDATE_COMPLETE", dev.failure_reasons("envsync-params")
    assert ssm.get_parameter(Name="/envsync/dev/connection", WithDecryption=True)["Parameter"][
        "Value"] == changed
    # New name: replacement, the old parameter is deleted.
    stack = dev.update("envsync-params", template("/envsync/dev/connection-v2", changed))
    assert stack["StackStatus"] == "UPDATE_COMPLETE", dev.failure_reasons("envsync-params")
    names = [p["Name"] for p in ssm.describe_parameters()["Parameters"]]
    assert "/envsync/dev/connection-v2" in names and "/envsync/dev/connection" not in names

    dev.delete("envsync-params")
    assert not [p for p in ssm.describe_parameters()["Parameters"] if p["Name"].startswith("/envsync/dev/")]


def test_handler_failure_fails_the_stack_with_its_reason(dev: Account, code_bucket):
    value = json.dumps({"host": "127.0.0.1", "password": "not-here"})
    stack = dev.create("envsync-params-bad", template("/envsync/dev/bad", value))
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = dev.failure_reasons("envsync-params-bad")
    assert "Received response status [FAILED]" in reasons and "contains a \"password\" key" in reasons
    assert "not-here" not in reasons
    # Rolled back: function and role are gone, nothing was written.
    assert dev.client("lambda").list_functions()["Functions"] == []
    with pytest.raises(dev.client("ssm").exceptions.ParameterNotFound):
        dev.client("ssm").get_parameter(Name="/envsync/dev/bad")
    dev.delete("envsync-params-bad")


def test_service_token_of_another_account_is_not_found(staging: Account, code_bucket):
    stack = staging.create("envsync-params-x", {"Resources": {"P": {
        "Type": "Custom::SecureStringParameter",
        "Properties": {"ServiceToken": f"arn:aws:lambda:us-east-1:{DEV}:function:envsync-dev-secure-parameter",
                       "Name": "/envsync/staging/x", "Value": "v", "KeyId": "k"}}}})
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    assert "no such function in account 222222222222" in staging.failure_reasons("envsync-params-x")
    staging.delete("envsync-params-x")
