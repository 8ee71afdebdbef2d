"""The aurora stack as each env gets it (rendered by Sceptre, Conditions evaluated per env)."""

from __future__ import annotations

import json
import re

import pytest

from envsync_sceptre.config.stackvalues import ALLOWED_INSTANCE_CLASSES
from tests.chain import chain

ENVS = chain()  # config/config.yaml envs:, upstream first


@pytest.fixture(params=ENVS)
def aurora(request, env_stacks):
    return request.param, env_stacks.evaluated(f"{request.param}/aurora"), env_stacks


def cluster_of(evaluated):
    (name, cluster), = evaluated.of_type("AWS::RDS::DBCluster").items()
    return name, cluster


def test_cluster_is_aurora_mysql_57_in_the_private_subnets(aurora):
    env, evaluated, stacks = aurora
    _, cluster = cluster_of(evaluated)
    props = cluster["Properties"]
    assert props["Engine"] == "aurora-mysql"
    assert re.match(r"^5\.7\.mysql_aurora\.2\.12\.\d+$", props["EngineVersion"])
    assert props["EngineLifecycleSupport"] in (
        "open-source-rds-extended-support", "open-source-rds-extended-support-disabled")
    assert evaluated.template["Parameters"]["EngineLifecycleSupport"]["Default"]
    (subnet_group,) = evaluated.of_type("AWS::RDS::DBSubnetGroup").values()
    # The two private subnets, wired from this env's network stack output.
    assert subnet_group["Properties"]["SubnetIds"] == evaluated.parameters["PrivateSubnetIds"]
    assert len(subnet_group["Properties"]["SubnetIds"]) == 2
    assert stacks.raw_parameters(f"{env}/aurora")["PrivateSubnetIds"].argument == (
        f"{env}/network.yaml::PrivateSubnetIds")
    assert props["DBSubnetGroupName"] == {"Ref": "DbSubnetGroup"}
    assert props["VpcSecurityGroupIds"] == [evaluated.parameters["DbSecurityGroupId"]]


def test_parameter_group_requires_tls_and_utf8mb4(aurora):
    _, evaluated, _ = aurora
    (group,) = evaluated.of_type("AWS::RDS::DBClusterParameterGroup").values()
    props = group["Properties"]
    assert props["Family"] == "aurora-mysql5.7"
    assert props["Parameters"]["require_secure_transport"] == "ON"
    assert props["Parameters"]["character_set_server"] == "utf8mb4"
    assert props["Parameters"]["collation_server"].startswith("utf8mb4_")
    _, cluster = cluster_of(evaluated)
    assert cluster["Properties"]["DBClusterParameterGroupName"] == {"Ref": "ClusterParameterGroup"}


def test_encrypted_with_the_env_key_and_7_day_backups(aurora):
    env, evaluated, stacks = aurora
    _, cluster = cluster_of(evaluated)
    props = cluster["Properties"]
    env_key = evaluated.parameters["KmsKeyArn"]
    assert stacks.raw_parameters(f"{env}/aurora")["KmsKeyArn"].argument == f"{env}/kms.yaml::KeyArn"
    assert env_key.split(":")[4] == stacks.account(env)
    assert props["StorageEncrypted"] is True
    assert props["KmsKeyId"] == env_key
    assert props["BackupRetentionPeriod"] == 7
    assert evaluated.template["Parameters"]["BackupRetentionDays"]["AllowedValues"] == [7]
    assert re.match(r"^\d\d:\d\d-\d\d:\d\d$", props["PreferredBackupWindow"])
    assert re.match(r"^[a-z]{3}:\d\d:\d\d-[a-z]{3}:\d\d:\d\d$", props["PreferredMaintenanceWindow"])
    assert props["CopyTagsToSnapshot"] is True


def test_master_password_generated_and_rotated_by_secrets_manager(aurora):
    _, evaluated, _ = aurora
    _, cluster = cluster_of(evaluated)
    props = cluster["Properties"]
    assert props["ManageMasterUserPassword"] is True
    assert props["MasterUserSecret"]["KmsKeyId"] == evaluated.parameters["KmsKeyArn"]
    assert "MasterUserPassword" not in props
    assert set(props["EnableCloudwatchLogsExports"]) >= {"audit", "error", "slowquery"}
    assert props["EnableIAMDatabaseAuthentication"] is True


def test_prod_is_protected_and_has_a_reader(aurora):
    env, evaluated, _ = aurora
    name, cluster = cluster_of(evaluated)
    instances = evaluated.of_type("AWS::RDS::DBInstance")
    assert cluster["DeletionPolicy"] == "Snapshot" and cluster["UpdateReplacePolicy"] == "Snapshot"
    if env == "prod":
        assert cluster["Properties"]["DeletionProtection"] is True
        assert len(instances) == 2
        assert sorted(i["Properties"]["PromotionTier"] for i in instances.values()) == [0, 1]
    else:
        assert cluster["Properties"]["DeletionProtection"] is False
        assert len(instances) == 1
    for instance in instances.values():
        props = instance["Properties"]
        assert props["DBClusterIdentifier"] == {"Ref": name}
        assert props["PubliclyAccessible"] is False
        assert props["DBInstanceClass"] in ALLOWED_INSTANCE_CLASSES
        if props.get("EnablePerformanceInsights"):
            assert props["PerformanceInsightsKMSKeyId"] == evaluated.parameters["KmsKeyArn"]


def test_instance_class_cannot_go_below_r5_large(env_stacks):
    allowed = env_stacks.rendered["prod/aurora"]["Parameters"]["DbInstanceClass"]["AllowedValues"]
    assert allowed[0] == "db.r5.large"
    assert tuple(allowed) == ALLOWED_INSTANCE_CLASSES
    for instance_class in allowed:
        family, size = instance_class.split(".")[1:]
        assert family in ("r5", "r6g") and size != "medium" and not size.startswith(("small", "micro"))


def test_sync_user_secrets_generated_encrypted_and_rotated(aurora):
    env, evaluated, _ = aurora
    secrets = evaluated.of_type("AWS::SecretsManager::Secret")
    users = {json.loads(s["Properties"]["GenerateSecretString"]["SecretStringTemplate"])["username"]
             for s in secrets.values()}
    # The read-only user exists where a downstream env reads: dev and staging, never prod.
    assert users == ({"envsync_writer"} if env == "prod" else {"envsync_writer", "envsync_reader"})
    rotations = evaluated.of_type("AWS::SecretsManager::RotationSchedule")
    assert {r["Properties"]["SecretId"]["Ref"] for r in rotations.values()} == set(secrets)
    for secret in secrets.values():
        props = secret["Properties"]
        assert props["KmsKeyId"] == evaluated.parameters["KmsKeyArn"]
        assert props["GenerateSecretString"]["GenerateStringKey"] == "password"
        assert props["GenerateSecretString"]["PasswordLength"] >= 32
    for rotation in rotations.values():
        # Our own single-user rotation function, after the users exist.
        assert rotation["Properties"]["RotationLambdaARN"] == {"Fn::GetAtt": ["RotationFunction", "Arn"]}
        assert {"SyncUsers", "RotationPermission"} <= set(rotation["DependsOn"])
        assert re.match(r"^rate\(\d+ days\)$", rotation["Properties"]["RotationRules"]["ScheduleExpression"])
    assert "Transform" not in evaluated.template  # no hosted rotation, no nested stack
    function = evaluated.props("RotationFunction")
    assert function["Handler"] == "envsync.credentials.rotation.handler"
    assert function["VpcConfig"]["SecurityGroupIds"] == [evaluated.parameters["LambdaSecurityGroupId"]]
    permission = evaluated.props("RotationPermission")
    assert (permission["Principal"], permission["Action"]) == ("secretsmanager.amazonaws.com", "lambda:InvokeFunction")


def test_sync_users_are_created_with_the_stack_from_their_secrets(aurora):
    env, evaluated, _ = aurora
    users = evaluated.resources["SyncUsers"]
    assert users["Type"] == "Custom::SyncUsers"
    props = users["Properties"]
    assert props["ServiceToken"] == {"Fn::GetAtt": ["SyncUsersFunction", "Arn"]}
    assert props["MasterSecretArn"] == {"Fn::GetAtt": ["Cluster", "MasterUserSecret.SecretArn"]}
    assert props["WriterSecretArn"] == {"Ref": "SyncWriterSecret"}
    assert props["ReaderSecretArn"] == ("" if env == "prod" else {"Ref": "SyncReaderSecret"})
    # Only the sync-users role reads the master secret.
    readers = [name for name, role in evaluated.of_type("AWS::IAM::Role").items()
               if "MasterUserSecret" in json.dumps(role["Properties"].get("Policies", []))]
    assert readers == ["SyncUsersRole"]


def test_connection_strings_are_cmk_secure_strings_without_passwords(aurora):
    env, evaluated, _ = aurora
    parameters = evaluated.of_type("Custom::SecureStringParameter")
    assert not evaluated.of_type("AWS::SSM::Parameter")
    expected = {f"/envsync/{env}/db/envsync_writer/connection"}
    if env != "prod":
        expected.add(f"/envsync/{env}/db/envsync_reader/connection")
    assert {p["Properties"]["Name"] for p in parameters.values()} == expected
    assert evaluated.props("SecureParameterFunction")["Handler"] == "envsync.lambdas.secure_parameter.handler"
    from tests.conftest import PROJECT_ROOT

    for function in evaluated.of_type("AWS::Lambda::Function").values():
        module, _, name = function["Properties"]["Handler"].rpartition(".")
        source = (PROJECT_ROOT / "lambda_code" / (module.replace(".", "/") + ".py")).read_text()
        assert f"\ndef {name}(" in source  # the handler the template names exists in the package
    for parameter in parameters.values():
        props = parameter["Properties"]
        assert props["KeyId"] == evaluated.parameters["KmsKeyArn"]
        assert props["ServiceToken"] == {"Fn::GetAtt": ["SecureParameterFunction", "Arn"]}
        pieces = props["Value"]["Fn::Join"][1]
        # Stand in the deploy-time pieces, then it must be the agreed JSON document.
        def stand_in(piece):
            if isinstance(piece, str):
                return piece
            if "Ref" in piece:
                return "arn:aws:secretsmanager:us-east-1:1:secret:x"
            return "3306" if piece["Fn::GetAtt"][1].endswith(".Port") else "db.example"

        text = "".join(stand_in(piece) for piece in pieces)
        document = json.loads(text)
        assert set(document) == {"host", "port", "database", "user", "secret_arn", "tls"}
        assert document["tls"] is True and document["port"] == 3306
        assert document["user"] in props["Name"]
        assert "password" not in text.lower()


def test_config_values_meet_the_template_constraints(env_stacks):
    """Every parameter each env passes satisfies AllowedValues / AllowedPattern / Min / Max."""
    for env in ENVS:
        for stack in ("aurora", "sync", "artifacts", "peering-upstream", "peering-downstream"):
            name = f"{env}/{stack}"
            if name not in env_stacks.rendered:
                continue
            declared = env_stacks.rendered[name]["Parameters"]
            for key, value in env_stacks.evaluated(name).parameters.items():
                spec = declared[key]
                text = ",".join(value) if isinstance(value, list) else str(value)
                if "AllowedValues" in spec:
                    assert text in [str(v) for v in spec["AllowedValues"]], (name, key, text)
                if "AllowedPattern" in spec:
                    assert re.match(spec["AllowedPattern"], text), (name, key, text)
                if "MaxValue" in spec:
                    assert float(text) <= float(spec["MaxValue"]), (name, key, text)
