"""envsync's CloudFormation models on the moto server: create through a template, read back
through the service API, update, delete. Accounts: dev (mapped to the machine's MariaDB),
staging (mapped to a closed port), prod (not mapped)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Dict, Iterator

import boto3
import pytest

from envsync_local.mariadb import free_port
from envsync_local.moto_server import MotoServer, MotoServerError
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


# --- RDS --------------------------------------------------------------------------------------

def cluster_template(retention: int, with_reader: bool = False) -> Dict[str, Any]:
    resources: Dict[str, Any] = {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*",
                                                    "Principal": {"AWS": "*"}, "Resource": "*"}]}}},
        "ParameterGroup": {
            "Type": "AWS::RDS::DBClusterParameterGroup",
            "Properties": {"Description": "envsync TLS", "Family": "aurora-mysql5.7",
                           "Parameters": {"require_secure_transport": "ON", "binlog_format": "ROW"}},
        },
        "Cluster": {
            "Type": "AWS::RDS::DBCluster",
            "Properties": {
                "DBClusterIdentifier": "envsync-dev",
                "Engine": "aurora-mysql",
                "EngineVersion": "5.7.mysql_aurora.2.12.2",
                "EngineLifecycleSupport": "open-source-rds-extended-support",
                "MasterUsername": "envsync_admin",
                "ManageMasterUserPassword": True,
                "MasterUserSecret": {"KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]}},
                "StorageEncrypted": True,
                "KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]},
                "BackupRetentionPeriod": retention,
                "PreferredBackupWindow": "03:00-04:00",
                "PreferredMaintenanceWindow": "sun:05:00-sun:06:00",
                "DeletionProtection": False,
                "CopyTagsToSnapshot": True,
                "EnableIAMDatabaseAuthentication": True,
                "EnableCloudwatchLogsExports": ["error", "slowquery"],
                "DBClusterParameterGroupName": {"Ref": "ParameterGroup"},
                "VpcSecurityGroupIds": ["sg-12345678"],
            },
        },
        "Writer": {
            "Type": "AWS::RDS::DBInstance",
            "Properties": {"DBClusterIdentifier": {"Ref": "Cluster"}, "Engine": "aurora-mysql",
                           "DBInstanceClass": "db.r5.large", "DBInstanceIdentifier": "envsync-dev-1"},
        },
    }
    if with_reader:
        resources["Reader"] = {
            "Type": "AWS::RDS::DBInstance",
            "Properties": {"DBClusterIdentifier": {"Ref": "Cluster"}, "Engine": "aurora-mysql",
                           "DBInstanceClass": "db.r5.large", "DBInstanceIdentifier": "envsync-dev-2"},
        }
    return {
        "Resources": resources,
        "Outputs": {
            "Host": {"Value": {"Fn::GetAtt": ["Cluster", "Endpoint.Address"]}},
            "Port": {"Value": {"Fn::GetAtt": ["Cluster", "Endpoint.Port"]}},
            "ReaderHost": {"Value": {"Fn::GetAtt": ["Cluster", "ReadEndpoint.Address"]}},
            "Arn": {"Value": {"Fn::GetAtt": ["Cluster", "DBClusterArn"]}},
            "ResourceId": {"Value": {"Fn::GetAtt": ["Cluster", "DBClusterResourceId"]}},
            "MasterSecret": {"Value": {"Fn::GetAtt": ["Cluster", "MasterUserSecret.SecretArn"]}},
            "KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}},
            "WriterHost": {"Value": {"Fn::GetAtt": ["Writer", "Endpoint.Address"]}},
        },
    }


def test_cluster_maps_to_local_database_with_managed_secret(dev: Account, machine_mariadb):
    stack = dev.create("envsync-aurora", cluster_template(7))
    assert stack["StackStatus"] == "CREATE_COMPLETE", dev.failure_reasons("envsync-aurora")
    outputs = dev.outputs(stack)
    assert (outputs["Host"], outputs["Port"]) == ("127.0.0.1", str(machine_mariadb["port"]))
    assert outputs["ReaderHost"] == "127.0.0.1" and outputs["WriterHost"] == "127.0.0.1"
    assert outputs["Arn"] == f"arn:aws:rds:us-east-1:{DEV}:cluster:envsync-dev"
    assert outputs["ResourceId"].startswith("cluster-")

    rds = dev.client("rds")
    cluster = rds.describe_db_clusters(DBClusterIdentifier="envsync-dev")["DBClusters"][0]
    assert cluster["Endpoint"] == "127.0.0.1" and cluster["Port"] == machine_mariadb["port"]
    assert (cluster["Engine"], cluster["EngineVersion"]) == ("aurora-mysql", "5.7.mysql_aurora.2.12.2")
    assert cluster["StorageEncrypted"] is True and cluster["KmsKeyId"] == outputs["KeyArn"]
    assert cluster["BackupRetentionPeriod"] == 7
    assert cluster["PreferredBackupWindow"] == "03:00-04:00"
    assert cluster["PreferredMaintenanceWindow"] == "sun:05:00-sun:06:00"
    assert cluster["DeletionProtection"] is False and cluster["CopyTagsToSnapshot"] is True
    assert cluster["IAMDatabaseAuthenticationEnabled"] is True
    assert cluster["EnabledCloudwatchLogsExports"] == ["error", "slowquery"]
    assert cluster["DBClusterParameterGroup"] == cluster_parameter_group(rds)["DBClusterParameterGroupName"]
    assert [g["VpcSecurityGroupId"] for g in cluster["VpcSecurityGroups"]] == ["sg-12345678"]
    assert cluster["MasterUserSecret"]["SecretArn"] == outputs["MasterSecret"]
    assert [m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"]] == ["envsync-dev-1"]

    secret = json.loads(dev.client("secretsmanager").get_secret_value(
        SecretId=outputs["MasterSecret"])["SecretString"])
    assert secret["username"] == "envsync_admin" and len(secret["password"]) == 32
    instance = rds.describe_db_instances(DBInstanceIdentifier="envsync-dev-1")["DBInstances"][0]
    assert instance["DBClusterIdentifier"] == "envsync-dev"
    assert instance["Endpoint"] == {"Address": "127.0.0.1", "Port": machine_mariadb["port"],
                                    "HostedZoneId": instance["Endpoint"].get("HostedZoneId")} or \
        instance["Endpoint"]["Address"] == "127.0.0.1"
    params = {p["ParameterName"]: p["ParameterValue"] for p in rds.describe_db_cluster_parameters(
        DBClusterParameterGroupName=cluster["DBClusterParameterGroup"])["Parameters"]}
    assert params["require_secure_transport"] == "ON"

    stack = dev.update("envsync-aurora", cluster_template(14, with_reader=True))
    assert stack["StackStatus"] == "UPDATE_COMPLETE", dev.failure_reasons("envsync-aurora")
    cluster = rds.describe_db_clusters(DBClusterIdentifier="envsync-dev")["DBClusters"][0]
    assert cluster["BackupRetentionPeriod"] == 14
    assert sorted(m["DBInstanceIdentifier"] for m in cluster["DBClusterMembers"]) == [
        "envsync-dev-1", "envsync-dev-2"]

    dev.delete("envsync-aurora")
    assert rds.describe_db_clusters()["DBClusters"] == []
    assert rds.describe_db_instances()["DBInstances"] == []
    with pytest.raises(dev.client("secretsmanager").exceptions.ResourceNotFoundException):
        dev.client("secretsmanager").get_secret_value(SecretId=outputs["MasterSecret"])


def cluster_parameter_group(rds: Any) -> Dict[str, Any]:
    groups = rds.describe_db_cluster_parameter_groups()["DBClusterParameterGroups"]
    return next(g for g in groups if g["Description"] == "envsync TLS")


@pytest.mark.parametrize("who, reason", [
    ("prod", f"no local database is mapped to account {PROD}"),
    ("staging", "does not accept connections"),
])
def test_cluster_without_reachable_local_database_fails_clearly(request, who, reason):
    account: Account = request.getfixturevalue(who)
    stack = account.create("envsync-aurora-bad", cluster_template(7))
    assert stack["StackStatus"] == "ROLLBACK_COMPLETE"
    reasons = account.failure_reasons("envsync-aurora-bad")
    assert reason in reasons and "[Cluster]" in reasons
    events = account.client("cloudformation").describe_stack_events(
        StackName="envsync-aurora-bad")["StackEvents"]
    assert any(e["LogicalResourceId"] == "Cluster" and e["ResourceStatus"] == "CREATE_FAILED"
               for e in events)
    # Rolled back: the parameter group made before the cluster is gone again.
    assert account.client("rds").describe_db_cluster_parameter_groups()["DBClusterParameterGroups"] == [] \
        or all(g["Description"] != "envsync TLS" for g in account.client("rds")
               .describe_db_cluster_parameter_groups()["DBClusterParameterGroups"])
    account.delete("envsync-aurora-bad")


def test_bad_endpoint_map_stops_the_server_at_start(tmp_path: Path):
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({"qa": {"account_id": "12345", "host": "127.0.0.1", "port": 1}}))
    with pytest.raises(MotoServerError, match="'qa': account_id '12345' is not 12 digits"):
        start_moto(free_port(), tmp_path / "moto.log", endpoints_file=endpoints, timeout=30)
