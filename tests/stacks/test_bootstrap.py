"""Bootstrap stack per env: the deployer is trusted by one principal; the execution role may
assume exactly the upstream's peering accepter role for this env, and nothing in dev."""

from __future__ import annotations

from envsync_tools.proof.cfn_eval import as_list, statements
from tests.chain import chain, upstream_of


def assumable(evaluated) -> list:
    role = evaluated.props("CfnExecutionRole")
    return [resource for policy in role["Policies"] for statement in statements(policy["PolicyDocument"])
            if "sts:AssumeRole" in as_list(statement["Action"]) for resource in as_list(statement["Resource"])]


def test_execution_role_assumes_only_the_upstream_accepter(env_stacks):
    for env in chain():
        evaluated = env_stacks.evaluated(f"{env}/bootstrap")
        upstream = upstream_of(env)
        expected = [f"arn:aws:iam::{env_stacks.account(upstream)}:role/envsync-{upstream}-peering-accepter-{env}"] \
            if upstream else []
        assert [str(resource) for resource in assumable(evaluated)] == expected, env


def test_deployer_trusts_one_explicit_principal(env_stacks):
    for env in chain():
        trust = env_stacks.evaluated(f"{env}/bootstrap").props("DeployerRole")["AssumeRolePolicyDocument"]
        (statement,) = statements(trust)
        assert statement["Principal"] == {"AWS": "arn:aws:iam::123456789012:role/envsync-ci"}


def test_only_prod_denies_the_deployer_key_deletion(env_stacks):
    for env in chain():
        policy = env_stacks.evaluated(f"{env}/kms").props("EnvKey")["KeyPolicy"]
        denied = [s for s in statements(policy) if s["Effect"] == "Deny"]
        assert bool(denied) == env_stacks.envs[env].is_prod, env


def test_every_role_of_every_stack_carries_the_bootstrap_boundary(env_stacks):
    for name in env_stacks.rendered:
        env, stack = name.split("/")
        if stack == "bootstrap":
            continue
        boundary = f"arn:aws:iam::{env_stacks.account(env)}:policy/envsync-boundary"
        for logical_id, role in env_stacks.evaluated(name).of_type("AWS::IAM::Role").items():
            assert role["Properties"].get("PermissionsBoundary") == boundary, f"{name} {logical_id}"
