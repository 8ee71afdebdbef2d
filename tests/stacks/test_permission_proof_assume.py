"""Who may assume what: the launch of each env as the CI principal, with only the rights the
README gives it, assumes roles whose trust policies admit it, and never the admin role."""

from __future__ import annotations

import pytest

from envsync_tools.proof.assume import (
    launch_assumptions,
    outside_principals,
    refused_approver_assumptions,
    refused_assumptions,
)
from tests.chain import chain
from tests.stacks.test_permission_proof_catches import project_with, remove_lines, replace_text

ENVS = chain()  # config/config.yaml envs:, upstream first
CI = "arn:aws:iam::123456789012:role/envsync-ci"


def test_the_principals_made_by_hand_get_only_sts_assume_role(env_stacks):
    outsiders = {outsider.name: outsider for outsider in outside_principals(env_stacks)}
    assert sorted(outsiders) == ["CI principal", "administrator", "approvers"]
    assert outsiders["CI principal"].arn == CI
    (statement,) = outsiders["CI principal"].policy["Statement"]
    assert statement["Action"] == "sts:AssumeRole"
    assert statement["Resource"] == [f"arn:aws:iam::{account}:role/envsync-deployer"
                                     for account in ("111111111111", "222222222222", "333333333333")]
    assert outsiders["approvers"].policy["Statement"][0]["Resource"][2] == \
        "arn:aws:iam::333333333333:role/envsync-prod-approver"


@pytest.mark.parametrize("env", ENVS)
def test_every_assume_role_of_the_launch_is_allowed_without_the_admin_role(env_stacks, env: str):
    steps = launch_assumptions(env_stacks, env, CI)
    roles = {step.role for step in steps}
    account = env_stacks.account(env)
    assert {f"arn:aws:iam::{account}:role/envsync-deployer", f"arn:aws:iam::{account}:role/envsync-cfn-exec"} <= roles
    assert not [role for role in roles if role.endswith("OrganizationAccountAccessRole")]
    refused = refused_assumptions(env_stacks, env)
    assert not refused, "\n".join(str(refusal) for refusal in refused)


def test_the_approvers_may_assume_each_approver_role(env_stacks):
    assert refused_approver_assumptions(env_stacks) == []



CAUGHT = {
    "the bootstrap stack is back in the env's launch": (
        lambda p: remove_lines(p / "config" / "dev" / "bootstrap.yaml", "ignore: true\n"),
        f"[dev] {CI} may not sts:AssumeRole on arn:aws:iam::111111111111:role/OrganizationAccountAccessRole "
        "(dev/bootstrap is launched as its sceptre_role)"),
    "the kms stack reads a bootstrap output": (
        lambda p: replace_text(
            p / "config" / "dev" / "kms.yaml",
            "arn:aws:iam::{{ stack_group_config.account_id }}:role/{{ stack_group_config.deployer_role_name }}",
            "!stack_output {{ stack_group_config.env }}/bootstrap.yaml::DeployerRoleArn"),
        f"[dev] {CI} may not sts:AssumeRole on arn:aws:iam::111111111111:role/OrganizationAccountAccessRole "
        "(dev/kms reads dev/bootstrap.yaml::DeployerRoleArn (DeployerRoleArn) with dev/bootstrap's role)"),
    "the deployer trusts its own account instead of the CI principal": (
        lambda p: replace_text(p / "templates" / "bootstrap.yaml", "              AWS: !Ref DeployerTrustedPrincipal\n",
                               '              AWS: !Sub "arn:${AWS::Partition}:iam::${AWS::AccountId}:root"\n'),
        f"[dev] {CI} may not sts:AssumeRole on arn:aws:iam::111111111111:role/envsync-deployer "
        "(dev/kms is launched as its sceptre_role): cross-account: resource policy does not allow it"),
}


@pytest.mark.parametrize("case", sorted(CAUGHT))
def test_a_launch_ci_cannot_make_is_caught(case, tmp_path):
    reintroduce, expected = CAUGHT[case]
    refused = [str(refusal) for refusal in refused_assumptions(project_with(tmp_path, reintroduce, "."), "dev")]
    assert any(expected in refusal for refusal in refused), "\n".join(refused) or "nothing refused"
