"""The approval gate and prod's key stay out of CI's reach, and the proof says so when not.

The approver role and its trust are the administrator's (the bootstrap stack): CI's deployer
and execution role may not change them, and no role CI mints may answer a waiting run. Prod's
key may be disabled, deleted or re-policied only by the break-glass role; CloudFormation's key
handler makes those calls only in a launch that changes them, made as that role. Each case
reintroduces an old grant on a copy of the project and expects the proof to name the call,
the caller and the grant (or the refusal) that decides it.
"""

from __future__ import annotations

import json

import pytest

from envsync_tools.proof.cfn_eval import statements
from envsync_tools.proof.driver import escalation_findings, static_findings
from tests.chain import chain
from tests.stacks.conftest import copy_project
from tests.stacks.test_permission_proof_catches import project_with, remove_lines, replace_text

ENVS = chain()
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


def allow_what_the_gate_denies(templates) -> None:
    """The execution role as it was: nothing keeps it from a gated env's machine."""
    replace_text(templates / "bootstrap.yaml", "                - Sid: NeverTheGatedMachineForStacks\n"
                                               "                  Effect: Deny\n",
                 "                - Sid: NeverTheGatedMachineForStacks\n                  Effect: Allow\n")


GATE_ESCALATIONS = {
    "the execution role may change the approver's trust": (
        lambda t: remove_lines(t / "bootstrap.yaml", APPROVER_DENY_LINE), "dev",
        ("role/envsync-cfn-exec may iam:UpdateAssumeRolePolicy on arn:aws:iam::111111111111:role/envsync-dev-approver",
        "allowed by EnvsyncRolesWithinBoundary")),
    "a role CI creates may answer a waiting run": (
        lambda t: replace_text(t / "bootstrap.yaml", "              - ec2:DescribeNetworkInterfaces\n",
                               "              - ec2:DescribeNetworkInterfaces\n"
                               "              - states:SendTaskSuccess\n"),
        "prod", ("role/envsync-prod-sync may states:SendTaskSuccess on *", "allowed by")),
    "the execution role may update prod's machine (the wait)": (
        allow_what_the_gate_denies,
        "prod", ("role/envsync-cfn-exec may states:UpdateStateMachine on "
                "arn:aws:states:us-east-1:333333333333:stateMachine:envsync-prod-sync ", "allowed by")),
    "the execution role may replace prod's machine by another name": (
        allow_what_the_gate_denies,
        "prod", "role/envsync-cfn-exec may states:CreateStateMachine on "
                "arn:aws:states:us-east-1:333333333333:stateMachine:envsync-prod-sync-without-the-wait"),
    "prod's key policy lets CI's execution role change it": (
        deny_only_the_deployer, "prod",
        "role/envsync-cfn-exec may kms:PutKeyPolicy on arn:aws:kms:us-east-1:333333333333:key/"),
    "prod's key may be disabled by any administrator of the account": (
        deny_only_the_deployer, "prod",
        "role/any may kms:DisableKey on arn:aws:kms:us-east-1:333333333333:key/"),
}


@pytest.mark.parametrize("case", sorted(GATE_ESCALATIONS))
def test_a_way_around_the_gate_or_the_key_is_caught(case, tmp_path):
    reintroduce, env, expected = GATE_ESCALATIONS[case]
    findings = escalation_findings(project_with(tmp_path, reintroduce), env)
    expected = (expected,) if isinstance(expected, str) else expected
    assert any(all(part in finding for part in expected) for finding in findings), findings


def test_prods_machine_is_the_gate_stacks_and_ci_cannot_deploy_it(env_stacks):
    """A gated env (approval not none) has the administrator's gate stack, and its sync stack
    (CI's) creates no machine; the other envs' sync stacks create their own."""
    for env in ENVS:
        gated = f"{env}/gate" in env_stacks.rendered
        assert gated == (env == "prod"), env
        machines = env_stacks.evaluated(f"{env}/sync").of_type("AWS::StepFunctions::StateMachine")
        assert bool(machines) != gated, env
        if gated:
            machine = env_stacks.evaluated(f"{env}/gate").props("SyncStateMachine")
            assert machine["StateMachineName"] == f"envsync-{env}-sync"
            assert env_stacks.stacks[f"{env}/gate"].ignore  # never part of `sceptre launch <env>`
            assert json.loads(machine["DefinitionString"])["States"]["WaitForApproval"]["Resource"].endswith(
                ".waitForTaskToken")


def test_a_sync_stack_that_creates_prods_machine_again_is_refused(tmp_path):
    """CI's sync stack creating prod's machine itself (the old layout) is refused by the
    execution role's Deny, and the proof names the call."""
    stacks = project_with(tmp_path, lambda t: replace_text(t / "sync.yaml.j2",
                                                           ', condition="MachineInThisStack"', ""))
    findings = [str(finding) for finding in static_findings(stacks, "prod")]
    assert any("envsync-cfn-exec may not states:CreateStateMachine on "
               "arn:aws:states:us-east-1:333333333333:stateMachine:envsync-prod-sync" in finding
               and "explicit Deny NeverTheGatedMachineForStacks" in finding for finding in findings), \
        "\n".join(findings) or "no finding"


def test_a_break_glass_deny_that_exempts_no_one_locks_the_key_and_the_proof_says_so(tmp_path):
    """Without the exemption, no launch may change prod's key policy (nor delete a key a failed
    first create left): nobody could manage the key again."""
    stacks = project_with(tmp_path, lambda t: replace_text(t / "kms.yaml", BREAK_GLASS_EXEMPTION, ""))
    findings = [str(finding) for finding in static_findings(stacks, "prod")]
    assert any("may not kms:PutKeyPolicy on arn:aws:kms:us-east-1:333333333333:key/" in finding
               and "update envsync-prod-kms/EnvKey" in finding and "explicit Deny ProdKeyOnlyByBreakGlass" in finding
               for finding in findings), "\n".join(findings) or "no finding"


def test_an_env_that_waits_for_a_person_needs_its_gate_stack_and_only_it_has_one(tmp_path):
    from envsync_sceptre.config.configfile import EnvConfigError
    from envsync_sceptre.config.envconfig import load_envs

    project = copy_project(tmp_path)
    config = project / "config"
    with (config / "staging" / "config.yaml").open("a") as staging:
        staging.write("approval: destructive-only\n")
    (config / "prod" / "gate.yaml").rename(config / "dev" / "gate.yaml")
    with pytest.raises(EnvConfigError) as raised:
        load_envs(config)
    problems = raised.value.problems
    assert ("config/staging/config.yaml: approval 'destructive-only' needs config/staging/gate.yaml (the "
            "administrator's stack that holds the machine that waits for a person; copy config/prod/gate.yaml)"
            in problems), problems
    assert any(p.startswith("config/prod/config.yaml: approval 'required' needs config/prod/gate.yaml")
               for p in problems), problems
    assert ("config/config.yaml: approval 'none' makes config/dev/gate.yaml wrong: the sync stack creates the "
            "machine of an env that waits for no one" in problems), problems


def test_a_key_is_created_with_its_policy_and_changed_by_put_key_policy():
    """What CloudFormation's key handler calls (the kms resource provider's key handlers): the
    create gives CreateKey the policy and disables only a key created `Enabled: false`; an
    update puts a changed policy, so a prod key policy change is the break-glass role's launch."""
    from envsync_tools.proof.handler_permissions import required_permissions

    create = required_permissions("AWS::KMS::Key", "create", {"EnableKeyRotation": True})
    assert "kms:CreateKey" in create and not {"kms:PutKeyPolicy", "kms:DisableKey"} & set(create)
    assert "kms:DisableKey" in required_permissions("AWS::KMS::Key", "create", {"Enabled": False})
    assert {"kms:PutKeyPolicy", "kms:DisableKey"} <= set(required_permissions("AWS::KMS::Key", "update", {}))
