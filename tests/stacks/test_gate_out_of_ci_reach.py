"""The approval gate and prod's key stay out of CI's reach, and the proof says so when not.

The approver role and its trust are the administrator's (the bootstrap stack): CI's deployer
and execution role may not change them, and no role CI mints may answer a waiting run. Prod's
key may be disabled, deleted or re-policied only by the break-glass role; CloudFormation's key
handler makes those calls only in a launch that changes them, made as that role. Each case
reintroduces an old grant on a copy of the project and expects the proof to name the call,
the caller and the grant (or the refusal) that decides it.
"""

from __future__ import annotations

import pytest

from tests.conftest import parse_templates, render_project
from tests.stacks.cfn_eval import statements
from tests.stacks.conftest import EnvStacks, copy_project
from tests.stacks.permission_proof import escalation_findings, static_findings
from tests.stacks.test_permission_proof_catches import remove_lines, replace_text

ENVS = ("dev", "staging", "prod")
APPROVER_DENY_LINE = "                  - !GetAtt ApproverRole.Arn\n"


def test_the_approver_role_is_the_administrators_and_only_prod_key_names_a_break_glass_role(env_stacks):
    for env in ENVS:
        assert "ApproverRole" in env_stacks.evaluated(f"{env}/bootstrap").resources, env
        assert not env_stacks.evaluated(f"{env}/sync").of_type("AWS::IAM::Role").get("ApproverRole"), env
        policy = env_stacks.evaluated(f"{env}/kms").props("EnvKey")["KeyPolicy"]
        (deny,) = [s for s in statements(policy) if s["Effect"] == "Deny"] or [None]
        if env != "prod":
            assert deny is None, env
            continue
        assert deny["Principal"] == "*"
        assert deny["Condition"] == {"ArnNotEquals": {
            "aws:PrincipalArn": "arn:aws:iam::333333333333:role/OrganizationAccountAccessRole"}}
        # the execution role creates the key with a policy that denies it PutKeyPolicy
        assert env_stacks.evaluated(f"{env}/kms").props("EnvKey")["BypassPolicyLockoutSafetyCheck"] is True


BREAK_GLASS_EXEMPTION = ("              Condition:\n                ArnNotEquals:\n"
                         "                  aws:PrincipalArn: !Ref BreakGlassRoleArn\n")


def deny_only_the_deployer(templates) -> None:
    """Prod's key policy as it was: the Deny names the deployer alone."""
    replace_text(templates / "kms.yaml", "              Principal: \"*\"\n              Action:\n"
                                         "                - kms:DisableKey\n",
                 "              Principal:\n                AWS: !Ref DeployerRoleArn\n              Action:\n"
                 "                - kms:DisableKey\n")
    replace_text(templates / "kms.yaml", BREAK_GLASS_EXEMPTION, "")


GATE_ESCALATIONS = {
    "the execution role may change the approver's trust": (
        lambda t: remove_lines(t / "bootstrap.yaml", APPROVER_DENY_LINE), "dev",
        "role/envsync-cfn-exec may iam:UpdateAssumeRolePolicy on arn:aws:iam::111111111111:role/envsync-dev-approver "
        "(allowed by EnvsyncRolesWithinBoundary)"),
    "a role CI creates may answer a waiting run": (
        lambda t: replace_text(t / "bootstrap.yaml", "              - ec2:DescribeNetworkInterfaces\n",
                               "              - ec2:DescribeNetworkInterfaces\n"
                               "              - states:SendTaskSuccess\n"),
        "prod", "role/envsync-prod-sync may states:SendTaskSuccess on * (allowed by"),
    "prod's key policy lets CI's execution role change it": (
        deny_only_the_deployer, "prod",
        "role/envsync-cfn-exec may kms:PutKeyPolicy on arn:aws:kms:us-east-1:333333333333:key/"),
    "prod's key may be disabled by any administrator of the account": (
        deny_only_the_deployer, "prod",
        "role/some-administrator may kms:DisableKey on arn:aws:kms:us-east-1:333333333333:key/"),
}


def reintroduced(tmp_path, reintroduce) -> EnvStacks:
    project = copy_project(tmp_path)
    reintroduce(project / "templates")
    return EnvStacks(parse_templates(render_project(project)), project)


@pytest.mark.parametrize("case", sorted(GATE_ESCALATIONS))
def test_a_way_around_the_gate_or_the_key_is_caught(case, tmp_path):
    reintroduce, env, expected = GATE_ESCALATIONS[case]
    findings = escalation_findings(reintroduced(tmp_path, reintroduce), env)
    assert any(expected in finding for finding in findings), findings


def test_a_break_glass_deny_that_exempts_no_one_locks_the_key_and_the_proof_says_so(tmp_path):
    """Without the exemption, no launch may change prod's key policy (nor delete a key a failed
    first create left): nobody could manage the key again."""
    stacks = reintroduced(tmp_path, lambda t: replace_text(t / "kms.yaml", BREAK_GLASS_EXEMPTION, ""))
    findings = [str(finding) for finding in static_findings(stacks, "prod")]
    assert any("may not kms:PutKeyPolicy on arn:aws:kms:us-east-1:333333333333:key/" in finding
               and "update envsync-prod-kms/EnvKey" in finding and "explicit Deny ProdKeyOnlyByBreakGlass" in finding
               for finding in findings), "\n".join(findings) or "no finding"
