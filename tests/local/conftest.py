"""Fixtures for the CloudFormation model tests: a moto server with an endpoint map, and
boto3 clients per simulated account."""

from __future__ import annotations

import json
from typing import Any, Dict, Iterator

import boto3
import pytest

from envsync_local.mariadb import free_port
from envsync_local.moto_server import MotoServer
from envsync_local.moto_server import start as start_moto

DEV, STAGING, PROD = "111111111111", "222222222222", "333333333333"


@pytest.fixture(scope="session")
def closed_port() -> int:
    return free_port()


@pytest.fixture(scope="session")
def models_server(tmp_path_factory: pytest.TempPathFactory, machine_mariadb: Dict[str, Any],
                  closed_port: int) -> Iterator[MotoServer]:
    """A moto server whose endpoint map sends dev to the machine's MariaDB."""
    base = tmp_path_factory.mktemp("cfn_models")
    endpoints = base / "endpoints.json"
    endpoints.write_text(json.dumps({
        "dev": {"account_id": DEV, "host": "127.0.0.1", "port": machine_mariadb["port"],
                "admin_user": machine_mariadb["user"], "admin_password": machine_mariadb["password"]},
        "staging": {"account_id": STAGING, "host": "127.0.0.1", "port": closed_port},
    }))
    server = start_moto(free_port(), base / "moto.log", endpoints_file=endpoints)
    try:
        yield server
    finally:
        server.stop()


class Account:
    """boto3 clients in one simulated account (moto maps assumed-role keys to the account)."""

    def __init__(self, server: MotoServer, account_id: str):
        base = boto3.Session(aws_access_key_id="testing", aws_secret_access_key="testing",
                             region_name="us-east-1")
        sts = base.client("sts", endpoint_url=server.endpoint_url)
        credentials = sts.assume_role(RoleArn=f"arn:aws:iam::{account_id}:role/deployer",
                                      RoleSessionName="tests")["Credentials"]
        self.account_id = account_id
        self.endpoint_url = server.endpoint_url
        self.session = boto3.Session(
            aws_access_key_id=credentials["AccessKeyId"],
            aws_secret_access_key=credentials["SecretAccessKey"],
            aws_session_token=credentials["SessionToken"], region_name="us-east-1")

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    def create(self, name: str, template: Dict[str, Any], **parameters: str) -> Dict[str, Any]:
        cfn = self.client("cloudformation")
        cfn.create_stack(StackName=name, TemplateBody=json.dumps(template),
                         Parameters=[{"ParameterKey": k, "ParameterValue": v}
                                     for k, v in parameters.items()])
        return cfn.describe_stacks(StackName=name)["Stacks"][0]

    def update(self, name: str, template: Dict[str, Any], **parameters: str) -> Dict[str, Any]:
        cfn = self.client("cloudformation")
        cfn.update_stack(StackName=name, TemplateBody=json.dumps(template),
                         Parameters=[{"ParameterKey": k, "ParameterValue": v}
                                     for k, v in parameters.items()])
        return cfn.describe_stacks(StackName=name)["Stacks"][0]

    def delete(self, name: str) -> None:
        self.client("cloudformation").delete_stack(StackName=name)

    def outputs(self, stack: Dict[str, Any]) -> Dict[str, str]:
        return {o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])}

    def failure_reasons(self, name: str) -> str:
        events = self.client("cloudformation").describe_stack_events(StackName=name)["StackEvents"]
        return "\n".join(e.get("ResourceStatusReason") or "" for e in events)


@pytest.fixture(scope="session")
def dev(models_server: MotoServer) -> Account:
    return Account(models_server, DEV)


@pytest.fixture(scope="session")
def staging(models_server: MotoServer) -> Account:
    return Account(models_server, STAGING)


@pytest.fixture(scope="session")
def prod(models_server: MotoServer) -> Account:
    return Account(models_server, PROD)


@pytest.fixture(scope="session")
def cycle(launched):
    """README command 1's sync cycle, run once on the session's launched project (the first
    cycle it sees: test_cycle asserts a first run; the status page charts what it left)."""
    from envsync_local.cli import env_handles
    from envsync_local.cycle import run_cycle

    handles = env_handles(launched.local)
    printed = []
    report = run_cycle(handles, print_line=printed.append)
    return {handle.name: handle for handle in handles}, report, "\n".join(printed)
