"""envsync's CloudFormation models on the moto server: create through a template, read back
through the service API, update, delete. Accounts: dev (mapped to the machine's MariaDB),
staging (mapped to a closed port), prod (not mapped)."""

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
        "dev": {"account_id": DEV, "host": "127.0.0.1", "port": machine_mariadb["port"]},
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


# --- Secrets Manager -------------------------------------------------------------------------

def secret_template(description: str, days: int) -> Dict[str, Any]:
    return {
        "Resources": {
            "SyncUserSecret": {
                "Type": "AWS::SecretsManager::Secret",
                "Properties": {
                    "Name": "envsync/dev/sync-user",
                    "Description": description,
                    "KmsKeyId": "alias/envsync/dev",
                    "GenerateSecretString": {
                        "SecretStringTemplate": json.dumps({"username": "envsync_sync"}),
                        "GenerateStringKey": "password",
                        "PasswordLength": 40,
                        "ExcludeCharacters": "\"@/\\'",
                    },
                },
            },
            "PlainSecret": {
                "Type": "AWS::SecretsManager::Secret",
                "Properties": {"GenerateSecretString": {"PasswordLength": 12, "ExcludePunctuation": True}},
            },
            "SyncUserRotation": {
                "Type": "AWS::SecretsManager::RotationSchedule",
                "Properties": {
                    "SecretId": {"Ref": "SyncUserSecret"},
                    "HostedRotationLambda": {"RotationType": "MySQLSingleUser",
                                             "RotationLambdaName": "envsync-dev-rotate-sync"},
                    "RotationRules": {"ScheduleExpression": f"rate({days} days)"},
                },
            },
        },
        "Outputs": {
            "SecretArn": {"Value": {"Ref": "SyncUserSecret"}},
            "SecretId": {"Value": {"Fn::GetAtt": ["SyncUserSecret", "Id"]}},
            "PlainArn": {"Value": {"Ref": "PlainSecret"}},
        },
    }


def test_secret_generated_rotated_updated_deleted(dev: Account):
    stack = dev.create("envsync-secrets", secret_template("sync user", 30))
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    outputs = dev.outputs(stack)
    assert outputs["SecretArn"].startswith(f"arn:aws:secretsmanager:us-east-1:{DEV}:secret:envsync/dev/sync-user-")
    assert outputs["SecretId"] == outputs["SecretArn"]
    sm = dev.client("secretsmanager")
    value = json.loads(sm.get_secret_value(SecretId=outputs["SecretArn"])["SecretString"])
    assert value["username"] == "envsync_sync"
    assert len(value["password"]) == 40 and not set("\"@/\\'") & set(value["password"])
    plain = sm.get_secret_value(SecretId=outputs["PlainArn"])["SecretString"]
    assert len(plain) == 12 and plain.isalnum()
    described = sm.describe_secret(SecretId="envsync/dev/sync-user")
    assert described["KmsKeyId"] == "alias/envsync/dev"
    assert described["RotationEnabled"] is True
    assert described["RotationRules"]["AutomaticallyAfterDays"] == 30
    assert described["RotationLambdaARN"].endswith(f":{DEV}:function:envsync-dev-rotate-sync")

    stack = dev.update("envsync-secrets", secret_template("sync user (rotated weekly)", 7))
    assert stack["StackStatus"] == "UPDATE_COMPLETE"
    described = sm.describe_secret(SecretId="envsync/dev/sync-user")
    assert described["Description"] == "sync user (rotated weekly)"
    assert described["RotationRules"]["AutomaticallyAfterDays"] == 7
    # The value is not regenerated when only the description changes.
    assert json.loads(sm.get_secret_value(SecretId=outputs["SecretArn"])["SecretString"]) == value

    dev.delete("envsync-secrets")
    names = [s["Name"] for s in sm.list_secrets()["SecretList"]]
    assert "envsync/dev/sync-user" not in names and not any("PlainSecret" in n for n in names)


# --- CloudWatch -------------------------------------------------------------------------------

def alarm_template(threshold: int) -> Dict[str, Any]:
    return {
        "Resources": {
            "Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": "envsync-dev-alerts"}},
            "LagAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "AlarmName": "envsync-dev-replication-lag",
                    "AlarmDescription": "upstream changes older than 60 s still missing",
                    "Namespace": "envsync",
                    "MetricName": "ReplicationLagSeconds",
                    "Dimensions": [{"Name": "Env", "Value": "dev"}],
                    "Statistic": "Maximum",
                    "Period": 60,
                    "EvaluationPeriods": 1,
                    "Threshold": threshold,
                    "ComparisonOperator": "GreaterThanThreshold",
                    "TreatMissingData": "breaching",
                    "AlarmActions": [{"Ref": "Topic"}],
                    "OKActions": [{"Ref": "Topic"}],
                },
            },
            "ReplicaLagAlarm": {
                "Type": "AWS::CloudWatch::Alarm",
                "Properties": {
                    "ComparisonOperator": "GreaterThanThreshold",
                    "EvaluationPeriods": 1,
                    "Threshold": 60000,
                    "Metrics": [
                        {"Id": "lag", "ReturnData": False, "MetricStat": {
                            "Metric": {"Namespace": "AWS/RDS", "MetricName": "AuroraReplicaLagMaximum",
                                       "Dimensions": [{"Name": "DBClusterIdentifier", "Value": "c"}]},
                            "Period": 60, "Stat": "Maximum"}},
                        {"Id": "lag_ms", "Expression": "lag", "Label": "lag ms", "ReturnData": True},
                    ],
                },
            },
        },
        "Outputs": {"AlarmArn": {"Value": {"Fn::GetAtt": ["LagAlarm", "Arn"]}},
                    "MathAlarm": {"Value": {"Ref": "ReplicaLagAlarm"}}},
    }


def test_alarm_properties_read_back_update_delete(dev: Account):
    stack = dev.create("envsync-alarms", alarm_template(60))
    outputs = dev.outputs(stack)
    assert outputs["AlarmArn"] == f"arn:aws:cloudwatch:us-east-1:{DEV}:alarm:envsync-dev-replication-lag"
    cw = dev.client("cloudwatch")
    alarm = cw.describe_alarms(AlarmNames=["envsync-dev-replication-lag"])["MetricAlarms"][0]
    topic = f"arn:aws:sns:us-east-1:{DEV}:envsync-dev-alerts"
    assert alarm["Namespace"] == "envsync" and alarm["MetricName"] == "ReplicationLagSeconds"
    assert alarm["Dimensions"] == [{"Name": "Env", "Value": "dev"}]
    assert (alarm["Statistic"], alarm["Period"], alarm["EvaluationPeriods"]) == ("Maximum", 60, 1)
    assert alarm["Threshold"] == 60.0 and alarm["ComparisonOperator"] == "GreaterThanThreshold"
    assert alarm["TreatMissingData"] == "breaching"
    assert alarm["AlarmActions"] == [topic] and alarm["OKActions"] == [topic]
    math = cw.describe_alarms(AlarmNames=[outputs["MathAlarm"]])["MetricAlarms"][0]
    assert outputs["MathAlarm"].startswith("envsync-alarms-ReplicaLagAlarm-")
    by_id = {m["Id"]: m for m in math["Metrics"]}
    assert by_id["lag"]["MetricStat"]["Metric"]["MetricName"] == "AuroraReplicaLagMaximum"
    assert by_id["lag_ms"]["Expression"] == "lag"

    dev.update("envsync-alarms", alarm_template(120))
    alarm = cw.describe_alarms(AlarmNames=["envsync-dev-replication-lag"])["MetricAlarms"][0]
    assert alarm["Threshold"] == 120.0

    dev.delete("envsync-alarms")
    assert cw.describe_alarms()["MetricAlarms"] == []
