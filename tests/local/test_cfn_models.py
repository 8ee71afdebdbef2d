"""envsync's CloudFormation models on the moto server: create through a template, read back
through the service API, update, delete. Accounts: dev (mapped to the machine's MariaDB),
staging (mapped to a closed port), prod (not mapped)."""

from __future__ import annotations

import json
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator

import pymysql
import pytest

from envsync_local.mariadb import free_port
from envsync_local.moto_server import MotoServerError
from envsync_local.moto_server import start as start_moto
from tests.local.conftest import DEV, PROD, Account

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


def dashboard_template(body: str) -> Dict[str, Any]:
    return {"Resources": {"Dashboard": {"Type": "AWS::CloudWatch::Dashboard",
                                        "Properties": {"DashboardName": "envsync-dev", "DashboardBody": body}}},
            "Outputs": {"Name": {"Value": {"Ref": "Dashboard"}}}}


def metric_widget(title: str) -> Dict[str, Any]:
    return {"type": "metric", "width": 12, "height": 6, "properties": {
        "title": title, "region": "us-east-1", "metrics": [["envsync", "RowsChanged", "Env", "dev"]]}}


def test_dashboard_read_back_update_delete_and_bad_bodies_refused(dev: Account):
    stack = dev.create("envsync-dashboard", dashboard_template(json.dumps({"widgets": [metric_widget("a")]})))
    assert dev.outputs(stack)["Name"] == "envsync-dev"
    cw = dev.client("cloudwatch")
    assert json.loads(cw.get_dashboard(DashboardName="envsync-dev")["DashboardBody"])["widgets"][0][
        "properties"]["title"] == "a"
    dev.update("envsync-dashboard", dashboard_template(json.dumps({"widgets": [metric_widget("b")]})))
    assert '"title": "b"' in cw.get_dashboard(DashboardName="envsync-dev")["DashboardBody"]
    dev.delete("envsync-dashboard")
    assert cw.list_dashboards()["DashboardEntries"] == []
    # What PutDashboard refuses, the stand-in refuses too (moto alone stores any string).
    for body, reason in (('{"widgets": [', "not valid JSON"), ('{"start": "-PT3H"}', "widgets array"),
                         (json.dumps({"widgets": [{"type": "metric", "properties": {"metrics": []}}]}),
                          "needs a region")):
        failed = dev.create("envsync-dashboard-bad", dashboard_template(body))
        assert failed["StackStatus"] == "ROLLBACK_COMPLETE"
        assert reason in dev.failure_reasons("envsync-dashboard-bad")
        dev.delete("envsync-dashboard-bad")


# --- RDS --------------------------------------------------------------------------------------

MASTER = f"cfnm_{uuid.uuid4().hex[:8]}"  # a user and database on the machine's shared MariaDB


def cluster_template(retention: int, with_reader: bool = False,
                     engine_version: str = "5.7.mysql_aurora.2.12.2") -> Dict[str, Any]:
    resources: Dict[str, Any] = {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*",
                                                    "Principal": {"AWS": "*"}, "Resource": "*"}]}}},
        "ParameterGroup": {
            "Type": "AWS::RDS::DBClusterParameterGroup",
            "Properties": {"Description": "envsync TLS", "Family": f"aurora-mysql{engine_version[:3]}",
                           "Parameters": {"require_secure_transport": "ON", "binlog_format": "ROW"}},
        },
        "Cluster": {
            "Type": "AWS::RDS::DBCluster",
            "Properties": {
                "DBClusterIdentifier": "envsync-dev",
                "Engine": "aurora-mysql",
                "EngineVersion": engine_version,
                "EngineLifecycleSupport": "open-source-rds-extended-support",
                "MasterUsername": MASTER,
                "DatabaseName": MASTER,
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
                           "DBInstanceClass": "db.r5.large", "DBInstanceIdentifier": "envsync-dev-1",
                           "MonitoringInterval": 60,
                           "MonitoringRoleArn": f"arn:aws:iam::{DEV}:role/envsync-dev-monitoring",
                           "EnablePerformanceInsights": True},
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


@pytest.fixture
def master_user_cleanup(machine_mariadb) -> Iterator[None]:
    yield
    with pymysql.connect(**machine_mariadb, autocommit=True) as root, root.cursor() as cursor:
        cursor.execute(f"DROP USER IF EXISTS `{MASTER}`@'%'")
        cursor.execute(f"DROP DATABASE IF EXISTS `{MASTER}`")


def test_cluster_maps_to_local_database_with_managed_secret(dev: Account, machine_mariadb,
                                                            master_user_cleanup):
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
    assert secret["username"] == MASTER and len(secret["password"]) == 32
    master_secret = dev.client("secretsmanager").describe_secret(SecretId=outputs["MasterSecret"])
    assert master_secret["KmsKeyId"] == outputs["KeyArn"]
    assert master_secret["RotationEnabled"] is True
    assert master_secret["RotationRules"]["AutomaticallyAfterDays"] == 7
    # As on a new Aurora cluster: the master user exists with that password, and DatabaseName.
    with pymysql.connect(host="127.0.0.1", port=machine_mariadb["port"], user=MASTER,
                         password=secret["password"], database=MASTER) as master, master.cursor() as cursor:
        cursor.execute("SELECT CURRENT_USER()")
        assert cursor.fetchone()[0] == f"{MASTER}@%"
    instance = rds.describe_db_instances(DBInstanceIdentifier="envsync-dev-1")["DBInstances"][0]
    assert instance["DBClusterIdentifier"] == "envsync-dev"
    assert instance["DBInstanceClass"] == "db.r5.large" and instance["MonitoringInterval"] == 60
    assert instance["PerformanceInsightsEnabled"] is True
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


def test_a_major_version_update_keeps_the_cluster_and_moves_its_instances(dev: Account, master_user_cleanup):
    """5.7 -> 8.0 as the aurora template does it: the cluster's EngineVersion, a parameter group
    of the new family; instances without a version of their own follow the cluster."""
    stack = dev.create("envsync-aurora", cluster_template(7, with_reader=True))
    assert stack["StackStatus"] == "CREATE_COMPLETE", dev.failure_reasons("envsync-aurora")
    rds = dev.client("rds")
    before = rds.describe_db_clusters(DBClusterIdentifier="envsync-dev")["DBClusters"][0]
    stack = dev.update("envsync-aurora", cluster_template(7, with_reader=True,
                                                          engine_version="8.0.mysql_aurora.3.10.3"))
    assert stack["StackStatus"] == "UPDATE_COMPLETE", dev.failure_reasons("envsync-aurora")
    after = rds.describe_db_clusters(DBClusterIdentifier="envsync-dev")["DBClusters"][0]
    assert after["DbClusterResourceId"] == before["DbClusterResourceId"]  # the same cluster
    assert after["EngineVersion"] == "8.0.mysql_aurora.3.10.3"
    group = cluster_parameter_group(rds)
    assert group["DBParameterGroupFamily"] == "aurora-mysql8.0"
    assert after["DBClusterParameterGroup"] == group["DBClusterParameterGroupName"] != before["DBClusterParameterGroup"]
    instances = rds.describe_db_instances()["DBInstances"]
    assert sorted((i["DBInstanceIdentifier"], i["EngineVersion"]) for i in instances) == [
        ("envsync-dev-1", "8.0.mysql_aurora.3.10.3"), ("envsync-dev-2", "8.0.mysql_aurora.3.10.3")]
    dev.delete("envsync-aurora")


def cluster_parameter_group(rds: Any) -> Dict[str, Any]:
    groups = rds.describe_db_cluster_parameter_groups()["DBClusterParameterGroups"]
    return next(g for g in groups if g["Description"] == "envsync TLS")


@pytest.mark.parametrize("who, reason", [
    ("prod", f"no local database is mapped to account {PROD}"),
    ("staging", "does not accept connections"),
])
@pytest.mark.standins  # its account fixture (by name) is on the models' moto server
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


@pytest.mark.standins  # starts a moto server
def test_bad_endpoint_map_stops_the_server_at_start(tmp_path: Path):
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({"qa": {"account_id": "12345", "host": "127.0.0.1", "port": 1}}))
    with pytest.raises(MotoServerError, match="'qa': account_id '12345' is not 12 digits"):
        start_moto(free_port(), tmp_path / "moto.log", endpoints_file=endpoints, timeout=30)


# --- S3 and IAM -------------------------------------------------------------------------------

def bucket_template(lifecycle_days: int, versioning: str = "Enabled") -> Dict[str, Any]:
    return {"Resources": {"Bucket": {
        "Type": "AWS::S3::Bucket",
        "Properties": {
            "BucketName": "envsync-dev-migrations",
            "VersioningConfiguration": {"Status": versioning},
            "BucketEncryption": {"ServerSideEncryptionConfiguration": [{
                "ServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms",
                                                  "KMSMasterKeyID": "alias/envsync/dev"}}]},
            "PublicAccessBlockConfiguration": {"BlockPublicAcls": True, "IgnorePublicAcls": True,
                                               "BlockPublicPolicy": True, "RestrictPublicBuckets": True},
            "LifecycleConfiguration": {"Rules": [{
                "Id": "expire-scripts", "Status": "Enabled",
                "ExpirationInDays": lifecycle_days,
                "NoncurrentVersionExpiration": {"NoncurrentDays": lifecycle_days},
                "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 1},
            }]},
            "Tags": [{"Key": "Env", "Value": "dev"}],
        },
    }, "TlsOnly": {
        "Type": "AWS::S3::BucketPolicy",
        "Properties": {"Bucket": {"Ref": "Bucket"}, "PolicyDocument": {
            "Version": "2012-10-17", "Statement": [{
                "Sid": "TlsOnly", "Effect": "Deny", "Principal": "*", "Action": "s3:*",
                "Resource": ["arn:aws:s3:::envsync-dev-migrations",
                             "arn:aws:s3:::envsync-dev-migrations/*"],
                "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}},
    }}}


def test_bucket_versioning_lifecycle_public_access_block(dev: Account):
    dev.create("envsync-bucket", bucket_template(30))
    s3 = dev.client("s3")
    assert s3.get_bucket_versioning(Bucket="envsync-dev-migrations")["Status"] == "Enabled"
    rule = s3.get_bucket_lifecycle_configuration(Bucket="envsync-dev-migrations")["Rules"][0]
    assert rule["ID"] == "expire-scripts" and rule["Status"] == "Enabled"
    assert rule["Expiration"]["Days"] == 30
    assert rule["NoncurrentVersionExpiration"]["NoncurrentDays"] == 30
    assert rule["AbortIncompleteMultipartUpload"]["DaysAfterInitiation"] == 1
    block = s3.get_public_access_block(Bucket="envsync-dev-migrations")["PublicAccessBlockConfiguration"]
    assert all(block.values()) and len(block) == 4
    encryption = s3.get_bucket_encryption(Bucket="envsync-dev-migrations")
    default = encryption["ServerSideEncryptionConfiguration"]["Rules"][0]["ApplyServerSideEncryptionByDefault"]
    assert default == {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": "alias/envsync/dev"}
    policy = json.loads(s3.get_bucket_policy(Bucket="envsync-dev-migrations")["Policy"])
    assert policy["Statement"][0]["Sid"] == "TlsOnly"
    # The TLS-only deny does not apply to the (HTTPS) API moto stands in for.
    s3.put_object(Bucket="envsync-dev-migrations", Key="V1__init.sql", Body=b"CREATE TABLE t (id INT)")
    assert s3.get_object(Bucket="envsync-dev-migrations", Key="V1__init.sql")["Body"].read()
    for version in s3.list_object_versions(Bucket="envsync-dev-migrations")["Versions"]:
        s3.delete_object(Bucket="envsync-dev-migrations", Key=version["Key"], VersionId=version["VersionId"])

    dev.update("envsync-bucket", bucket_template(14, versioning="Suspended"))
    assert s3.get_bucket_versioning(Bucket="envsync-dev-migrations")["Status"] == "Suspended"
    rule = s3.get_bucket_lifecycle_configuration(Bucket="envsync-dev-migrations")["Rules"][0]
    assert rule["Expiration"]["Days"] == 14

    dev.delete("envsync-bucket")
    assert "envsync-dev-migrations" not in [b["Name"] for b in s3.list_buckets()["Buckets"]]


def role_template(managed: list) -> Dict[str, Any]:
    return {"Resources": {
        "ReadScripts": {
            "Type": "AWS::IAM::ManagedPolicy",
            "Properties": {"ManagedPolicyName": "envsync-dev-read-scripts", "PolicyDocument": {
                "Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::envsync-dev-migrations/*"}]}},
        },
        "SyncRole": {
            "Type": "AWS::IAM::Role",
            "Properties": {
                "RoleName": "envsync-dev-sync",
                "AssumeRolePolicyDocument": {"Version": "2012-10-17", "Statement": [{
                    "Effect": "Allow", "Principal": {"Service": "lambda.amazonaws.com"},
                    "Action": "sts:AssumeRole"}]},
                "ManagedPolicyArns": managed,
                "Policies": [{"PolicyName": "logs", "PolicyDocument": {
                    "Version": "2012-10-17", "Statement": [{
                        "Effect": "Allow", "Action": "logs:PutLogEvents",
                        "Resource": "arn:aws:logs:us-east-1:111111111111:log-group:/envsync/*"}]}}],
            },
        },
    }}


VPC_ACCESS = "arn:aws:iam::aws:policy/service-role/AWSLambdaVPCAccessExecutionRole"


def test_role_managed_policy_arns_attached_updated_detached(dev: Account):
    read_scripts = f"arn:aws:iam::{DEV}:policy/envsync-dev-read-scripts"
    dev.create("envsync-role", role_template([VPC_ACCESS, {"Ref": "ReadScripts"}]))
    iam = dev.client("iam")
    attached = iam.list_attached_role_policies(RoleName="envsync-dev-sync")["AttachedPolicies"]
    assert sorted(p["PolicyArn"] for p in attached) == sorted([VPC_ACCESS, read_scripts])
    assert iam.list_role_policies(RoleName="envsync-dev-sync")["PolicyNames"] == ["logs"]

    dev.update("envsync-role", role_template([{"Ref": "ReadScripts"}]))
    attached = iam.list_attached_role_policies(RoleName="envsync-dev-sync")["AttachedPolicies"]
    assert [p["PolicyArn"] for p in attached] == [read_scripts]

    dev.delete("envsync-role")
    assert "envsync-dev-sync" not in [r["RoleName"] for r in iam.list_roles()["Roles"]]


# --- EC2: routes and peering, across accounts --------------------------------------------------

def vpc_template(cidr: str) -> Dict[str, Any]:
    return {
        "Resources": {
            "Vpc": {"Type": "AWS::EC2::VPC", "Properties": {"CidrBlock": cidr}},
            "Subnet": {"Type": "AWS::EC2::Subnet", "Properties": {
                "VpcId": {"Ref": "Vpc"}, "CidrBlock": cidr.replace("0.0/16", "0.0/18"),
                "AvailabilityZone": "us-east-1a"}},
            "RouteTable": {"Type": "AWS::EC2::RouteTable", "Properties": {"VpcId": {"Ref": "Vpc"}}},
            "Association": {"Type": "AWS::EC2::SubnetRouteTableAssociation", "Properties": {
                "SubnetId": {"Ref": "Subnet"}, "RouteTableId": {"Ref": "RouteTable"}}},
            "S3Endpoint": {"Type": "AWS::EC2::VPCEndpoint", "Properties": {
                "VpcId": {"Ref": "Vpc"}, "ServiceName": "com.amazonaws.us-east-1.s3",
                "RouteTableIds": [{"Ref": "RouteTable"}]}},
            "DbGroup": {"Type": "AWS::EC2::SecurityGroup", "Properties": {
                "GroupDescription": "db", "VpcId": {"Ref": "Vpc"}}},
            "SubnetGroup": {"Type": "AWS::RDS::DBSubnetGroup", "Properties": {
                "DBSubnetGroupDescription": "private", "SubnetIds": [{"Ref": "Subnet"}]}},
        },
        "Outputs": {"VpcId": {"Value": {"Ref": "Vpc"}},
                    "RouteTableId": {"Value": {"Ref": "RouteTable"}},
                    "DbGroupId": {"Value": {"Fn::GetAtt": ["DbGroup", "GroupId"]}},
                    "SubnetGroupName": {"Value": {"Ref": "SubnetGroup"}}},
    }


def ingress_template(group_id: str, peer_cidr: str) -> Dict[str, Any]:
    return {"Resources": {"MysqlFromPeer": {"Type": "AWS::EC2::SecurityGroupIngress", "Properties": {
        "GroupId": group_id, "IpProtocol": "tcp", "FromPort": 3306, "ToPort": 3306,
        "CidrIp": peer_cidr, "Description": "MySQL from the downstream VPC"}}},
        "Outputs": {"RuleId": {"Value": {"Ref": "MysqlFromPeer"}}}}


def peering_template(peer_vpc: str, peer_cidr: str, peer_owner: str) -> Dict[str, Any]:
    return {"Parameters": {"VpcId": {"Type": "String"}, "RouteTableId": {"Type": "String"}},
            "Resources": {
                "Peering": {"Type": "AWS::EC2::VPCPeeringConnection", "Properties": {
                    "VpcId": {"Ref": "VpcId"}, "PeerVpcId": peer_vpc, "PeerOwnerId": peer_owner,
                    "PeerRoleArn": f"arn:aws:iam::{peer_owner}:role/envsync-peering-accepter"}},
                "RouteToPeer": {"Type": "AWS::EC2::Route", "Properties": {
                    "RouteTableId": {"Ref": "RouteTableId"}, "DestinationCidrBlock": peer_cidr,
                    "VpcPeeringConnectionId": {"Ref": "Peering"}}},
            },
            "Outputs": {"PeeringId": {"Value": {"Ref": "Peering"}}}}


def test_network_and_cross_account_peering_launch_delete_launch(staging: Account, prod: Account):
    for _attempt in range(2):
        requester = staging.outputs(staging.create("envsync-net", vpc_template("10.2.0.0/16")))
        accepter = prod.outputs(prod.create("envsync-net", vpc_template("10.3.0.0/16")))
        ec2 = staging.client("ec2")
        table = ec2.describe_route_tables(RouteTableIds=[requester["RouteTableId"]])["RouteTables"][0]
        assert [a.get("SubnetId", "")[:7] for a in table["Associations"]] == ["subnet-"]

        peering = staging.create("envsync-peering", peering_template(
            accepter["VpcId"], "10.3.0.0/16", prod.account_id),
            VpcId=requester["VpcId"], RouteTableId=requester["RouteTableId"])
        assert peering["StackStatus"] == "CREATE_COMPLETE", staging.failure_reasons("envsync-peering")
        pcx_id = staging.outputs(peering)["PeeringId"]
        pcx = prod.client("ec2").describe_vpc_peering_connections(
            VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"][0]
        assert pcx["Status"]["Code"] == "active"
        assert (pcx["RequesterVpcInfo"]["OwnerId"], pcx["AccepterVpcInfo"]["OwnerId"]) == (
            staging.account_id, prod.account_id)
        routes = ec2.describe_route_tables(RouteTableIds=[requester["RouteTableId"]])["RouteTables"][0]["Routes"]
        assert {"10.3.0.0/16": pcx_id} == {r["DestinationCidrBlock"]: r.get("VpcPeeringConnectionId")
                                           for r in routes if r.get("VpcPeeringConnectionId")}

        # A stack adding a rule to another stack's group: delete revokes it, relaunch works.
        for _round in range(2):
            rule = staging.create("envsync-ingress", ingress_template(requester["DbGroupId"], "10.3.0.0/16"))
            assert rule["StackStatus"] == "CREATE_COMPLETE", staging.failure_reasons("envsync-ingress")
            assert staging.outputs(rule)["RuleId"].startswith("sgr-")
            staging.delete("envsync-ingress")
            group = ec2.describe_security_groups(GroupIds=[requester["DbGroupId"]])["SecurityGroups"][0]
            assert group["IpPermissions"] == []
        assert requester["SubnetGroupName"].startswith("envsync-net-subnetgroup-")
        subnet_group = staging.client("rds").describe_db_subnet_groups(
            DBSubnetGroupName=requester["SubnetGroupName"])["DBSubnetGroups"][0]
        assert len(subnet_group["Subnets"]) == 1

        staging.delete("envsync-peering")
        staging.delete("envsync-net")
        prod.delete("envsync-net")
        for account in (staging, prod):
            cfn = account.client("cloudformation")
            left = [s["StackName"] for s in cfn.describe_stacks()["Stacks"]]
            assert left == [], [account.failure_reasons(name) for name in left]
        assert ec2.describe_vpc_peering_connections(
            VpcPeeringConnectionIds=[pcx_id])["VpcPeeringConnections"][0]["Status"]["Code"] == "deleted"
        assert not [v for v in ec2.describe_vpcs()["Vpcs"] if v["CidrBlock"] == "10.2.0.0/16"]
        assert not [t for t in ec2.describe_route_tables()["RouteTables"]
                    if t["RouteTableId"] == requester["RouteTableId"]]


def test_deletion_order_puts_dependents_first():
    from envsync_local.cfn_models.template_graph import deletion_order

    order = deletion_order({
        "Fn": {"Properties": {"Role": {"Fn::GetAtt": ["Role", "Arn"]}}},
        "Param": {"Properties": {"ServiceToken": {"Fn::Sub": "${Fn.Arn}"}, "Key": {"Ref": "Key"}}},
        "Role": {},
        "Key": {},
        "Alarm": {"DependsOn": "Param"},
    })
    assert order.index("Alarm") < order.index("Param") < order.index("Fn") < order.index("Role")
    assert order.index("Param") < order.index("Key")


YAML_CLUSTER = f"""
Resources:
  Cluster:
    Type: AWS::RDS::DBCluster
    Properties:
      Engine: aurora-mysql
      EngineVersion: 5.7.mysql_aurora.2.12.5
      MasterUsername: {MASTER}
      ManageMasterUserPassword: true
Outputs:
  Host:
    Value: !GetAtt Cluster.Endpoint.Address
  Port:
    Value: !GetAtt Cluster.Endpoint.Port
  MasterSecret:
    Value: !GetAtt Cluster.MasterUserSecret.SecretArn
"""


def test_yaml_getatt_with_dotted_attribute(dev: Account, machine_mariadb, master_user_cleanup):
    cfn = dev.client("cloudformation")
    cfn.create_stack(StackName="envsync-yaml", TemplateBody=YAML_CLUSTER)
    stack = cfn.describe_stacks(StackName="envsync-yaml")["Stacks"][0]
    outputs = dev.outputs(stack)
    assert (outputs["Host"], outputs["Port"]) == ("127.0.0.1", str(machine_mariadb["port"]))
    assert outputs["MasterSecret"].startswith(f"arn:aws:secretsmanager:us-east-1:{DEV}:secret:rds!cluster-")
    dev.delete("envsync-yaml")


@pytest.mark.parametrize("statement, applies", [
    ({"Effect": "Deny"}, True),
    ({"Condition": {"Bool": {"aws:SecureTransport": "false"}}}, False),
    ({"Condition": {"Bool": {"aws:SecureTransport": ["true"]}}}, True),
    ({"Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}}}, False),
    ({"Condition": {"BoolIfExists": {"aws:MultiFactorAuthPresent": "true"}}}, True),
])
def test_bucket_policy_statement_conditions(statement, applies):
    from envsync_local.cfn_models.policy_conditions import statement_applies

    assert statement_applies(statement) is applies


CONDITIONS = """
Parameters:
  IsProd: {Type: String}
Conditions:
  IsProd: !Equals [!Ref IsProd, "true"]
  HasReader: !Condition IsProd
  IsSourceEnv: !And [!Equals ["true", "true"], !Not [!Condition IsProd]]
Resources:
  Reader:
    Type: AWS::SNS::Topic
    Condition: HasReader
  SourceOnly:
    Type: AWS::SNS::Topic
    Condition: IsSourceEnv
Outputs:
  Made:
    Value: !If [HasReader, reader, source]
"""


@pytest.mark.parametrize("is_prod, made", [("true", "reader"), ("false", "source")])
def test_yaml_condition_short_forms(dev: Account, is_prod, made):
    cfn = dev.client("cloudformation")
    name = f"envsync-conditions-{is_prod}"
    cfn.create_stack(StackName=name, TemplateBody=CONDITIONS,
                     Parameters=[{"ParameterKey": "IsProd", "ParameterValue": is_prod}])
    stack = cfn.describe_stacks(StackName=name)["Stacks"][0]
    assert dev.outputs(stack)["Made"] == made
    resources = [r["LogicalResourceId"] for r in cfn.describe_stack_resources(StackName=name)["StackResources"]]
    assert resources == (["Reader"] if is_prod == "true" else ["SourceOnly"])
    dev.delete(name)


def log_group_template(retention: int) -> Dict[str, Any]:
    return {"Resources": {
        "Key": {"Type": "AWS::KMS::Key", "Properties": {"KeyPolicy": {
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:*",
                                                    "Principal": {"AWS": "*"}, "Resource": "*"}]}}},
        "Logs": {"Type": "AWS::Logs::LogGroup", "Properties": {
            "LogGroupName": "/aws/lambda/envsync-dev-sync", "RetentionInDays": retention,
            "KmsKeyId": {"Fn::GetAtt": ["Key", "Arn"]}}},
    }, "Outputs": {"KeyArn": {"Value": {"Fn::GetAtt": ["Key", "Arn"]}}}}


def test_log_group_kms_key_and_retention(dev: Account):
    stack = dev.create("envsync-logs", log_group_template(365))
    logs = dev.client("logs")
    group = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/envsync-dev-sync")["logGroups"][0]
    assert group["retentionInDays"] == 365 and group["kmsKeyId"] == dev.outputs(stack)["KeyArn"]
    dev.update("envsync-logs", log_group_template(731))
    group = logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/envsync-dev-sync")["logGroups"][0]
    assert group["retentionInDays"] == 731
    dev.delete("envsync-logs")
    assert logs.describe_log_groups(logGroupNamePrefix="/aws/lambda/envsync-dev-sync")["logGroups"] == []


def test_unchanged_update_is_no_update(dev: Account):
    template = {"Parameters": {"Days": {"Type": "Number", "Default": 30}, "Name": {"Type": "String"}},
                "Resources": {"Topic": {"Type": "AWS::SNS::Topic", "Properties": {"TopicName": {"Ref": "Name"}}}}}
    dev.create("envsync-noop", template, Days="30", Name="envsync-noop")
    cfn = dev.client("cloudformation")
    with pytest.raises(cfn.exceptions.ClientError, match="No updates are to be performed"):
        dev.update("envsync-noop", template, Days="30", Name="envsync-noop")
    assert dev.update("envsync-noop", template, Days="31", Name="envsync-noop")["StackStatus"] == "UPDATE_COMPLETE"
    dev.delete("envsync-noop")


def test_master_user_on_tls_stand_in(tmp_path: Path, mariadb_instances):
    """The launcher's mapping (admin user + CA bundle): the master user is created over TLS."""
    instance = mariadb_instances["dev"]
    endpoints = tmp_path / "endpoints.json"
    endpoints.write_text(json.dumps({"dev": {
        "account_id": DEV, "host": instance.host, "port": instance.port,
        "admin_user": "root", "admin_password": "", "ca_bundle": str(instance.ca_bundle)}}))
    server = start_moto(free_port(), tmp_path / "moto.log", endpoints_file=endpoints)
    try:
        dev = Account(server, DEV)
        cfn = dev.client("cloudformation")
        cfn.create_stack(StackName="envsync-tls", TemplateBody=YAML_CLUSTER.replace(
            "ManageMasterUserPassword: true", "ManageMasterUserPassword: true\n      DatabaseName: appdb"))
        stack = cfn.describe_stacks(StackName="envsync-tls")["Stacks"][0]
        assert stack["StackStatus"] == "CREATE_COMPLETE", dev.failure_reasons("envsync-tls")
        outputs = dev.outputs(stack)
        assert (outputs["Host"], outputs["Port"]) == (instance.host, str(instance.port))
        secret = json.loads(dev.client("secretsmanager").get_secret_value(
            SecretId=outputs["MasterSecret"])["SecretString"])
        with pymysql.connect(host=instance.host, port=instance.port, user=secret["username"],
                             password=secret["password"], database="appdb",
                             ssl={"ca": str(instance.ca_bundle)}) as master, master.cursor() as cursor:
            cursor.execute("SHOW SESSION STATUS LIKE 'Ssl_cipher'")
            assert cursor.fetchone()[1]
    finally:
        server.stop()


def retained_groups_template(dashboard_body: str) -> Dict[str, Any]:
    """Two fixed-name log groups (Retain, RetainExceptOnCreate), then a dashboard after them."""
    groups = {f"{policy}Logs": {"Type": "AWS::Logs::LogGroup", "DeletionPolicy": policy,
                                "Properties": {"LogGroupName": f"/envsync/dev/kept-{policy}"}}
              for policy in ("Retain", "RetainExceptOnCreate")}
    dashboard = dashboard_template(dashboard_body)["Resources"]["Dashboard"]
    return {"Resources": {**groups, "Dashboard": {**dashboard, "DependsOn": sorted(groups)}}}


def test_retain_except_on_create_goes_with_a_failed_create_and_stays_after_a_delete(dev: Account):
    logs = dev.client("logs")

    def groups() -> list:
        return sorted(g["logGroupName"] for g in logs.describe_log_groups(
            logGroupNamePrefix="/envsync/dev/kept-")["logGroups"])

    failed = dev.create("envsync-kept", retained_groups_template('{"widgets": ['))
    assert failed["StackStatus"] == "ROLLBACK_COMPLETE"
    # The rollback keeps only Retain: a retry would meet that one ("already exists").
    assert groups() == ["/envsync/dev/kept-Retain"]
    dev.delete("envsync-kept")
    logs.delete_log_group(logGroupName="/envsync/dev/kept-Retain")
    launched = dev.create("envsync-kept", retained_groups_template(json.dumps({"widgets": []})))
    assert launched["StackStatus"] == "CREATE_COMPLETE"
    dev.delete("envsync-kept")
    assert groups() == ["/envsync/dev/kept-Retain", "/envsync/dev/kept-RetainExceptOnCreate"]
    for name in groups():
        logs.delete_log_group(logGroupName=name)


def test_no_value_list_item_is_dropped(dev: Account):
    """`!If [Cond, statement, !Ref AWS::NoValue]` in a managed policy's statements (the
    bootstrap stack's boundary in the first env): CloudFormation drops the item."""
    statement = {"Effect": "Allow", "Action": "sns:Publish", "Resource": "*"}
    template = {
        "Parameters": {"Extra": {"Type": "String"}},
        "Conditions": {"HasExtra": {"Fn::Equals": [{"Ref": "Extra"}, "yes"]}},
        "Resources": {"Policy": {"Type": "AWS::IAM::ManagedPolicy", "Properties": {
            "ManagedPolicyName": "envsync-dev-novalue", "PolicyDocument": {"Version": "2012-10-17", "Statement": [
                statement, {"Fn::If": ["HasExtra", {**statement, "Action": "sns:ListTopics"},
                                       {"Ref": "AWS::NoValue"}]}]}}}},
        "Outputs": {"Arn": {"Value": {"Ref": "Policy"}}},
    }
    stack = dev.create("envsync-novalue", template, Extra="no")
    assert stack["StackStatus"] == "CREATE_COMPLETE"
    iam = dev.client("iam")
    arn = dev.outputs(stack)["Arn"]
    version = iam.get_policy(PolicyArn=arn)["Policy"]["DefaultVersionId"]
    document = iam.get_policy_version(PolicyArn=arn, VersionId=version)["PolicyVersion"]["Document"]
    assert document["Statement"] == [statement]
    dev.delete("envsync-novalue")
