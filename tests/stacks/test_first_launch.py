"""What a first `sceptre launch` into real accounts needs that moto does not check (issue 21):
a failed create can be retried, and no stack claims what AWS services own."""

from __future__ import annotations

from typing import Dict

import pytest

from envsync_tools.proof.driver import admin_role_uses, escalation_findings, launch_plan
from tests.chain import chain
from tests.conftest import parse_templates, render_project
from tests.stacks.conftest import EnvStacks, copy_project
from tests.stacks.test_permission_proof_catches import remove_lines, remove_statement, replace_text

ENVS = chain()  # config/config.yaml envs:, upstream first


def test_kept_resources_go_with_a_failed_create(rendered_templates: Dict[str, dict]):
    """`Retain` survives the rollback of a failed create too: a fixed-name bucket, log group,
    secret or parameter would then stop the retry at "already exists"."""
    kept = {}
    for name, template in rendered_templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            policy = resource.get("DeletionPolicy")
            assert policy != "Retain", f"{name}/{logical_id}: DeletionPolicy Retain (use RetainExceptOnCreate)"
            if policy == "RetainExceptOnCreate":
                assert resource.get("UpdateReplacePolicy") == "Retain", f"{name}/{logical_id}"
                kept.setdefault(name, set()).add(logical_id)
    # What outlives a stack: buckets and keys everywhere; prod's secrets, parameters and logs.
    for env in ENVS:
        assert {"ArtifactsBucket"} <= kept[f"{env}/artifacts"] and "EnvKey" in kept[f"{env}/kms"]
        assert "MigrationBucket" in kept[f"{env}/sync"]
    assert {"SyncWriterSecret", "WriterConnectionParameter", "ClusterAuditLogGroup",
            "SecureParameterLogGroup"} <= kept["prod/aurora"]
    assert "FlowLogGroup" in kept["prod/network"]
    assert "SyncWriterSecret" not in kept.get("dev/aurora", set())


@pytest.mark.parametrize("env", ENVS)
def test_no_stack_creates_the_log_group_rds_owns(rendered_templates: Dict[str, dict], env: str):
    """Enhanced Monitoring writes to `RDSOSMetrics`, one log group per account that RDS creates
    and owns: a stack creating it fails where it exists and deleting it removes it for every
    instance of the account."""
    for name, template in rendered_templates.items():
        if name.startswith(f"{env}/"):
            for logical_id, resource in template.get("Resources", {}).items():
                if resource["Type"] == "AWS::Logs::LogGroup":
                    assert resource["Properties"].get("LogGroupName") != "RDSOSMetrics", f"{name}/{logical_id}"


@pytest.mark.parametrize("upstream", ("dev", "staging"))
def test_peer_security_group_rule_waits_for_the_active_peering(env_stacks, upstream: str):
    """A rule naming the peer VPC's group needs an active peering: the downstream's Lambda
    group exists (its network stack) before its peering stack has created and accepted the
    connection, so the rule comes only with the connection id (that stack's output)."""
    from envsync_tools.proof.cfn_eval import Evaluated

    name = f"{upstream}/peering-downstream"
    values = env_stacks.parameter_values(name)
    assert values["PeeringConnectionId"] and values["PeerLambdaSecurityGroupId"]
    assert "DbIngressFromPeerMysql" in env_stacks.evaluated(name).resources
    before_peering = Evaluated(env_stacks.rendered[name], {**values, "PeeringConnectionId": ""},
                               env_stacks.account(upstream))
    assert "DbIngressFromPeerMysql" not in before_peering.resources


def test_the_env_launch_never_needs_the_admin_role(env_stacks):
    """`sceptre launch <env>` runs as the CI principal: the bootstrap stack (the account's
    administrator's) is skipped, and nothing launched reads an output as the admin role."""
    for env in ENVS:
        admin = env_stacks.stacks[f"{env}/bootstrap"].sceptre_role
        assert admin.endswith(":role/OrganizationAccountAccessRole")
        launched = {stack.name for stack in launch_plan(env_stacks, env)}
        assert f"{env}/kms" in launched and f"{env}/bootstrap" not in launched
        assert admin_role_uses(env_stacks, env, admin) == []


CALLS_THE_ADMIN = {
    "the bootstrap stack is part of the env's launch": (
        lambda config: remove_lines(config / "dev" / "bootstrap.yaml", "ignore: true\n"),
        "dev/bootstrap is launched as arn:aws:iam::111111111111:role/OrganizationAccountAccessRole"),
    "the kms stack reads the deployer's ARN from the bootstrap stack": (
        lambda config: replace_text(
            config / "dev" / "kms.yaml",
            "arn:aws:iam::{{ stack_group_config.account_id }}:role/{{ stack_group_config.deployer_role_name }}",
            "!stack_output {{ stack_group_config.env }}/bootstrap.yaml::DeployerRoleArn"),
        "dev/kms reads dev/bootstrap.yaml::DeployerRoleArn (DeployerRoleArn) as "
        "arn:aws:iam::111111111111:role/OrganizationAccountAccessRole"),
}


@pytest.mark.parametrize("case", sorted(CALLS_THE_ADMIN))
def test_an_env_launch_that_needs_the_admin_role_is_caught(case, tmp_path):
    reintroduce, expected = CALLS_THE_ADMIN[case]
    project = copy_project(tmp_path)
    reintroduce(project / "config")
    stacks = EnvStacks({}, project)
    uses = admin_role_uses(stacks, "dev", stacks.stacks["dev/bootstrap"].sceptre_role)
    assert expected in uses, uses


@pytest.mark.parametrize("env", ENVS)
def test_ci_roles_cannot_change_the_bootstrap_roles_or_stack(env_stacks, env: str):
    assert escalation_findings(env_stacks, env) == []


def widen_iam_writes_to_every_envsync_role(templates) -> None:
    """The grants as they were: IAM writes on role/envsync-* (the deployer's and this role's
    names too), trust changes and deletes without the boundary."""
    bootstrap = templates / "bootstrap.yaml"
    remove_statement(bootstrap, "NeverTheBootstrapRoles")
    text = bootstrap.read_text().replace(":role/envsync-${Env}-*", ":role/envsync-*")
    bootstrap.write_text(text)


RESOURCE_ACCOUNT_OF_BUCKETS = ',\n' + " " * 47 + '"aws:ResourceAccount": ref("AWS::AccountId")}'

ESCALATIONS = {
    "the deployer may update the bootstrap stack": (
        lambda t: remove_statement(t / "bootstrap.yaml", "NeverChangeTheBootstrapStack"),
        "role/envsync-deployer may cloudformation:UpdateStack on "
        "arn:aws:cloudformation:us-east-1:111111111111:stack/envsync-dev-bootstrap/1"),
    "the execution role may change the deployer's trust": (
        widen_iam_writes_to_every_envsync_role,
        "role/envsync-cfn-exec may iam:UpdateAssumeRolePolicy on arn:aws:iam::111111111111:role/envsync-deployer"),
    "the execution role may change a role's trust without the boundary": (
        lambda t: replace_text(t / "bootstrap.yaml", "                  - iam:GetRole\n",
                               "                  - iam:GetRole\n                  - iam:UpdateAssumeRolePolicy\n"),
        "role/envsync-cfn-exec may iam:UpdateAssumeRolePolicy on arn:aws:iam::111111111111:role/envsync-dev-sync"),
    "the S3 endpoint admits any account's envsync-<env>-* bucket": (
        lambda t: replace_text(t / "network.py", RESOURCE_ACCOUNT_OF_BUCKETS, "}"),
        "endpoint S3Endpoint admits s3:GetObject on arn:aws:s3:::envsync-dev-migrations-999999999999/V1.sql"),
    "the boundary allows its actions on any resource": (
        lambda t: replace_text(t / "bootstrap.yaml", "\n              - secretsmanager:GetRandomPassword\n",
                               "\n              - secretsmanager:GetRandomPassword\n"
                               "              - secretsmanager:GetSecretValue\n              - s3:GetObject\n"),
        "role/envsync-dev-sync may s3:GetObject on arn:aws:s3:::customer-data-111111111111/rows.csv"),
}


@pytest.mark.parametrize("case", sorted(ESCALATIONS))
def test_an_escalation_path_is_caught(case, tmp_path):
    reintroduce, expected = ESCALATIONS[case]
    project = copy_project(tmp_path)
    reintroduce(project / "templates")
    stacks = EnvStacks(parse_templates(render_project(project)), project)
    findings = escalation_findings(stacks, "dev")
    assert any(expected in finding for finding in findings), findings
