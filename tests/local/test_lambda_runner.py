"""Offline Lambda invocation: the function's handler, environment, role account and timeout."""

from __future__ import annotations

import io
import zipfile

import boto3
import pytest

from envsync_local.lambda_runner import LambdaInvocationError, invoke

ACCOUNT = "444444444444"


@pytest.fixture
def account_session(aws_env, moto_server):
    sts = boto3.client("sts")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/admin", RoleSessionName="test")["Credentials"]
    session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"], region_name="us-east-1")
    iam = session.client("iam")
    role_arn = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        archive.writestr("placeholder.py", "")
    functions = session.client("lambda")
    for name, timeout in (("whoami", 30), ("fail", 30), ("slow", 1)):
        functions.create_function(
            FunctionName=name, Runtime="python3.9", Role=role_arn, Timeout=timeout,
            Handler=f"tests.local.sample_handlers.{name}", Code={"ZipFile": code.getvalue()},
            Environment={"Variables": {"SETTING": "from-the-function-config"}},
        )
    yield session
    for name in ("whoami", "fail", "slow"):
        functions.delete_function(FunctionName=name)
    iam.delete_role(RoleName="fn-role")


def test_runs_the_handler_in_the_functions_account_with_its_environment(account_session, moto_server):
    outcome = invoke(account_session, moto_server.endpoint_url, "whoami", {"n": 1})
    assert outcome.result["account"] == ACCOUNT
    assert outcome.result["setting"] == "from-the-function-config"
    assert outcome.result["echo"] == {"n": 1}
    assert 0 < outcome.result["remaining_ms"] <= 30_000


def test_handler_errors_carry_the_exception_type(account_session, moto_server):
    with pytest.raises(LambdaInvocationError) as caught:
        invoke(account_session, moto_server.endpoint_url, "fail", {"value": 7})
    assert (caught.value.error_type, caught.value.message) == ("ValueError", "bad input 7")


def test_the_function_timeout_kills_the_invocation(account_session, moto_server):
    with pytest.raises(LambdaInvocationError) as caught:
        invoke(account_session, moto_server.endpoint_url, "slow", {"seconds": 5})
    assert caught.value.error_type == "States.Timeout"
