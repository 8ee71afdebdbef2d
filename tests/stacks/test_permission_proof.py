"""Static permission proof: every env's stacks can be deployed by the roles that deploy them.

moto accepts calls AWS refuses (execution-role handler permissions, key policies, nested
stacks), so these tests ask the policies themselves, per env, with Conditions evaluated.
"""

from __future__ import annotations

import pytest

from envsync_tools.proof.handler_permissions import required_permissions
from tests.stacks.permission_proof import static_findings

ENVS = ("dev", "staging", "prod")


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
