"""Custom::SecureStringParameter handler against moto's SSM and KMS (the moto server fixture)."""

from __future__ import annotations

import json
import logging
import threading
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Dict, Iterator, List

import boto3
import pytest

from envsync.lambdas import secure_parameter
from envsync.lambdas.secure_parameter import RequestError, contains_password, parse_request

CONNECTION = "mysql://envsync_sync@db.internal:3306/app?tls=true&secret=arn:aws:secretsmanager:x"


class Responses:
    """A ResponseURL: collects the bodies the handler PUTs."""

    def __init__(self) -> None:
        bodies: List[Dict[str, Any]] = []

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                assert self.headers.get("Content-Type", "") == ""
                bodies.append(json.loads(self.rfile.read(int(self.headers["Content-Length"]))))
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.bodies = bodies
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        threading.Thread(target=self.server.serve_forever, daemon=True).start()
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}/response"


@pytest.fixture
def responses() -> Iterator[Responses]:
    receiver = Responses()
    yield receiver
    receiver.server.shutdown()
    receiver.server.server_close()


@pytest.fixture
def ssm(aws_env: Dict[str, str]) -> Any:
    return boto3.client("ssm", region_name="us-east-1")


@pytest.fixture
def key_id(aws_env: Dict[str, str]) -> str:
    return boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]


def event(responses: Responses, request_type: str, name: str, value: str, key_id: str,
          **extra: Any) -> Dict[str, Any]:
    return {
        "RequestType": request_type, "ResponseURL": responses.url,
        "StackId": "arn:aws:cloudformation:us-east-1:123456789012:stack/envsync-dev-aurora/1",
        "RequestId": f"req-{request_type}", "LogicalResourceId": "ConnectionString",
        "ResourceType": "Custom::SecureStringParameter",
        "ResourceProperties": {"ServiceToken": "arn:aws:lambda:us-east-1:123456789012:function:f",
                               "Name": name, "Value": value, "KeyId": key_id,
                               "Description": "envsync dev connection string"},
        **extra,
    }


def test_create_update_rename_delete_round_trip(ssm, key_id, responses, caplog):
    caplog.set_level(logging.INFO, logger="envsync.lambdas.secure_parameter")
    name = "/envsync/dev/t1/connection"
    body = secure_parameter.handler(event(responses, "Create", name, CONNECTION, key_id), None)
    assert responses.bodies == [body]
    assert body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == name
    assert (body["RequestId"], body["LogicalResourceId"]) == ("req-Create", "ConnectionString")
    assert body["StackId"].endswith("envsync-dev-aurora/1") and body["Data"]["Version"] == "1"
    parameter = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert parameter["Type"] == "SecureString" and parameter["Value"] == CONNECTION
    assert ssm.get_parameter(Name=name)["Parameter"]["Value"] != CONNECTION  # encrypted at rest
    described = ssm.describe_parameters(
        ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]
    assert described["KeyId"] == key_id and described["Tier"] == "Standard"
    assert described["Description"] == "envsync dev connection string"

    changed = CONNECTION.replace("3306", "3307")
    body = secure_parameter.handler(event(responses, "Update", name, changed, key_id,
                                          PhysicalResourceId=name), None)
    assert body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == name
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == changed

    renamed = "/envsync/dev/t1/connection-v2"
    body = secure_parameter.handler(event(responses, "Update", renamed, changed, key_id,
                                          PhysicalResourceId=name,
                                          OldResourceProperties={"Name": name, "KeyId": key_id}), None)
    # Replacement: the new parameter is the new physical id; the old one stays until
    # CloudFormation sends Delete for it.
    assert body["PhysicalResourceId"] == renamed
    assert ssm.get_parameter(Name=renamed, WithDecryption=True)["Parameter"]["Value"] == changed
    assert ssm.get_parameter(Name=name)["Parameter"]

    for physical in (name, renamed, renamed):  # deleting a missing parameter is fine
        body = secure_parameter.handler(event(responses, "Delete", physical, changed, key_id,
                                              PhysicalResourceId=physical), None)
        assert body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == physical
    assert ssm.describe_parameters(
        ParameterFilters=[{"Key": "Path", "Values": ["/envsync/dev/t1"]}])["Parameters"] == []
    assert CONNECTION not in caplog.text and changed not in caplog.text
    assert name in caplog.text


def test_value_with_password_is_refused_and_never_logged(ssm, key_id, responses, caplog):
    caplog.set_level(logging.INFO, logger="envsync.lambdas.secure_parameter")
    value = json.dumps({"host": "db", "user": "sync", "Password": "hunter2-s3cret"})
    body = secure_parameter.handler(
        event(responses, "Create", "/envsync/dev/t2/connection", value, key_id), None)
    assert body["Status"] == "FAILED" and "password" in body["Reason"]
    assert body["PhysicalResourceId"] == "ConnectionString-failed"
    assert "hunter2" not in caplog.text and "hunter2" not in json.dumps(responses.bodies)
    with pytest.raises(ssm.exceptions.ParameterNotFound):
        ssm.get_parameter(Name="/envsync/dev/t2/connection")


@pytest.mark.parametrize("value, kind", [
    ("someone else's", "SecureString"),
    (CONNECTION, "String"),  # the same text, but readable without the key: not ours
    (CONNECTION.replace("3306", "3307"), "SecureString"),
])
def test_existing_parameter_is_not_taken_over(ssm, key_id, responses, value, kind):
    name = "/envsync/dev/t3/connection"
    ssm.put_parameter(Name=name, Value=value, Type=kind)
    body = secure_parameter.handler(event(responses, "Create", name, CONNECTION, key_id), None)
    assert body["Status"] == "FAILED" and "already exists with another type or value" in body["Reason"]
    assert value not in body["Reason"]
    parameter = ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]
    assert (parameter["Value"], parameter["Type"], parameter["Version"]) == (value, kind, 1)
    ssm.delete_parameter(Name=name)


def test_retained_parameter_with_exactly_this_value_is_adopted(ssm, key_id, responses):
    """A stack deleted with its parameter retained (prod), then launched again."""
    name = "/envsync/prod/t4/connection"
    other_key = boto3.client("kms", region_name="us-east-1").create_key()["KeyMetadata"]["Arn"]
    ssm.put_parameter(Name=name, Value=CONNECTION, Type="SecureString", KeyId=other_key)
    body = secure_parameter.handler(event(responses, "Create", name, CONNECTION, key_id), None)
    assert body["Status"] == "SUCCESS" and body["PhysicalResourceId"] == name
    assert body["Data"]["Version"] == "2"
    assert ssm.get_parameter(Name=name, WithDecryption=True)["Parameter"]["Value"] == CONNECTION
    described = ssm.describe_parameters(ParameterFilters=[{"Key": "Name", "Values": [name]}])["Parameters"][0]
    assert described["KeyId"] == key_id and described["Description"] == "envsync dev connection string"


def test_aws_error_is_reported_not_raised(ssm, key_id, responses):
    body = secure_parameter.handler(
        event(responses, "Create", "/aws/envsync/connection", CONNECTION, key_id), None)
    assert body["Status"] == "FAILED" and "reserved parameter name" in body["Reason"]


@pytest.mark.parametrize("value, has_password", [
    (CONNECTION, False),
    ('{"password": "x"}', True),
    ('{"db": {"PASSWORD": "x"}}', True),
    ('[{"user": "a"}, {"password": "b"}]', True),
    ('{"password_secret_arn": "arn:..."}', False),
    ("password=x", False),  # not JSON: a URL never carries one (the engine's format)
])
def test_contains_password(value, has_password):
    assert contains_password(value) is has_password


@pytest.mark.parametrize("properties, message", [
    ({"Value": "v", "KeyId": "k"}, "missing Name"),
    ({"Name": "relative", "Value": "v", "KeyId": "k"}, "must be a path"),
    ({"Name": "/a", "Value": "v"}, "missing KeyId"),
])
def test_bad_properties(properties, message):
    with pytest.raises(RequestError, match=message):
        parse_request({"RequestType": "Create", "ResourceProperties": properties})


def test_unknown_request_type():
    with pytest.raises(RequestError, match="unknown RequestType 'Poke'"):
        parse_request({"RequestType": "Poke"})
