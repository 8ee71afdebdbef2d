"""Offline Lambda invocation: the function's deployed package, environment, role account and timeout."""

from __future__ import annotations

import importlib.util
import io
import zipfile
from pathlib import Path

import boto3
import pytest

from envsync_local.lambda_runner import LambdaInvocationError, invoke
from envsync_sceptre.packaging.package import build_package

ACCOUNT = "444444444444"
SAMPLE_HANDLERS = Path(__file__).with_name("sample_handlers.py")


def package_of(entries: dict) -> bytes:
    code = io.BytesIO()
    with zipfile.ZipFile(code, "w") as archive:
        for name, body in entries.items():
            archive.writestr(name, body)
    return code.getvalue()


@pytest.fixture
def account_session(aws_env, moto_server):
    sts = boto3.client("sts")
    credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{ACCOUNT}:role/admin", RoleSessionName="test")["Credentials"]
    session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                            aws_secret_access_key=credentials["SecretAccessKey"],
                            aws_session_token=credentials["SessionToken"], region_name="us-east-1")
    iam = session.client("iam")
    role_arn = iam.create_role(RoleName="fn-role", AssumeRolePolicyDocument="{}")["Role"]["Arn"]
    code = package_of({"sample_handlers.py": SAMPLE_HANDLERS.read_bytes()})
    functions = session.client("lambda")
    for name, timeout in (("whoami", 30), ("fail", 30), ("slow", 1)):
        functions.create_function(
            FunctionName=name, Runtime="python3.9", Role=role_arn, Timeout=timeout,
            Handler=f"sample_handlers.{name}", Code={"ZipFile": code},
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


def test_runs_the_deployed_package_not_the_source_tree(account_session, moto_server, project_root, tmp_path):
    """The engine's package without pymysql fails offline as in AWS, although this process
    (and the repository) has pymysql; the same package complete gets past its imports."""
    assert importlib.util.find_spec("pymysql") is not None
    certs = tmp_path / "certs"
    certs.mkdir()
    (certs / "ca.pem").write_text("placeholder: the handlers fail before they connect\n")
    complete = zipfile.ZipFile(io.BytesIO(build_package(project_root / "lambda_code", ca_dir=certs)))
    entries = {name: complete.read(name) for name in complete.namelist()}
    assert any(name.startswith("pymysql/") for name in entries)
    without_pymysql = {name: body for name, body in entries.items() if not name.startswith("pymysql/")}
    functions = account_session.client("lambda")
    role_arn = account_session.client("iam").get_role(RoleName="fn-role")["Role"]["Arn"]
    for name, package in (("complete", entries), ("broken", without_pymysql)):
        functions.create_function(FunctionName=name, Runtime="python3.9", Role=role_arn, Timeout=30,
                                  Handler="envsync.lambdas.handlers.drift_handler",
                                  Code={"ZipFile": package_of(package)})
    try:
        with pytest.raises(LambdaInvocationError) as broken:
            invoke(account_session, moto_server.endpoint_url, "broken", {})
        assert broken.value.error_type == "ModuleNotFoundError"
        assert "pymysql" in broken.value.message
        # Complete, the handler runs and reports its own error (no env configured here).
        ran = invoke(account_session, moto_server.endpoint_url, "complete", {})
        assert ran.result["status"] == "failed" and "ENVSYNC_ENV is not" in ran.result["error"], ran.result
    finally:
        for name in ("complete", "broken"):
            functions.delete_function(FunctionName=name)
