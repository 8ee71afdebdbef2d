"""The static permission proof over one rendered project (docs/ARCHITECTURE.md §5, the static half).

Builds the proof's inputs from `EnvStacks` (`project`: every stack of every env, parameters and
Conditions evaluated): the execution and deployer roles and the key policy as the bootstrap
and kms stacks define them for that env, each stack's resources, the resolvers Sceptre runs
for it. The checks themselves are `envsync_tools.proof.static`.
"""

from __future__ import annotations

import dataclasses
from typing import Any, Dict, List, Optional, Tuple

from envsync_tools.proof.assume import launch_plan
from envsync_tools.proof.cfn_eval import as_list
from envsync_tools.proof.must_stay_denied import ALLOW_ALL, must_stay_denied
from envsync_tools.proof.project import EnvStacks, fake_output
from envsync_tools.proof.static import (
    Call,
    Finding,
    Namer,
    Principal,
    Stack,
    execution_role_calls,
    key_user_calls,
    prove,
    resolver_calls,
    role_principal,
    sceptre_calls,
)

# Launched by the account's admin role: the roles and boundary (before the deployer and
# execution role exist), and a gated env's state machine (CI's roles may not touch it).
ADMIN_STACKS = ("bootstrap", "gate")


def proof_stack(env_stacks: EnvStacks, name: str) -> Stack:
    evaluated = env_stacks.evaluated(name)
    transform = [t for t in as_list(evaluated.template.get("Transform")) if t]
    return Stack(env_stacks.stacks[name].external_name, evaluated.resources, transform)


def declared_resolver_calls(env_stacks: EnvStacks, name: str) -> List[Dict[str, Any]]:
    """What the stack's resolvers say they call as its sceptre_role (built-in !stack_output too)."""
    calls: List[Dict[str, Any]] = []
    env = name.split("/")[0]
    account = env_stacks.account(env)
    for value in env_stacks.raw_parameters(name).values():
        if hasattr(value, "required_calls"):
            calls.extend(value.required_calls())
        elif type(value).__name__ == "StackOutput":
            other = str(value.argument).split("::")[0].replace(".yaml", "")
            external = env_stacks.stacks[other].external_name
            calls.append({"action": "cloudformation:DescribeStacks",
                          "resource": f"arn:aws:cloudformation:us-east-1:{account}:stack/{external}/*"})
    return calls


def env_key_policies(env_stacks: EnvStacks, env: str) -> Dict[str, Any]:
    """The env's keys (the env key; the signing key in the source env) by ARN, as the other
    stacks name them (the kms stack's outputs) and as the kms stack names them."""
    account = env_stacks.account(env)
    kms = proof_stack(env_stacks, f"{env}/kms")
    namer = Namer(kms, account)
    policies: Dict[str, Any] = {}
    for logical_id, output in (("EnvKey", "KeyArn"), ("SigningKey", "SigningKeyArn")):
        if logical_id in kms.resources:
            policy = namer.concrete(kms.resources[logical_id]["Properties"]["KeyPolicy"])
            policies[fake_output(output, env, account)] = policy
            policies[namer.arn(logical_id)] = policy
    return policies


def with_gate(env_stacks: EnvStacks, stack: Stack, name: str) -> Stack:
    """The sync stack with its env's gate stack, if any: the machine there runs as the role here."""
    gate = name.replace("/sync", "/gate")
    if not name.endswith("/sync") or gate not in env_stacks.rendered:
        return stack
    return Stack(stack.name, {**stack.resources, **proof_stack(env_stacks, gate).resources}, stack.transform)


def break_glass_of(call: Call, key_policies: Dict[str, Any]) -> Optional[str]:
    """The one role a key's policy keeps `call` for (a Deny to every principal but
    aws:PrincipalArn X: prod's key), or None. CloudFormation's key handler makes such a call
    only when the template changes the key's policy or state, and that launch is made as X."""
    policy = key_policies.get(call.key_arn) if call.key_arn else None
    for statement in as_list((policy or {}).get("Statement") or []):
        exempt = (statement.get("Condition") or {}).get("ArnNotEquals", {}).get("aws:PrincipalArn")
        if statement.get("Effect") == "Deny" and exempt and call.action in as_list(statement["Action"]):
            return str(exempt)
    return None


def deployer_of(env_stacks: EnvStacks, env: str) -> Principal:
    return role_principal(proof_stack(env_stacks, f"{env}/bootstrap"), "DeployerRole", env_stacks.account(env))


def other_account_calls(env_stacks: EnvStacks, declared: List[Dict[str, Any]], why: str,
                        ) -> List[Tuple[str, Call]]:
    """Resolver calls made as another env's deployer (`role`, `env`): a KMS call on an alias is
    authorised on the key the alias names (its kms stack's output)."""
    calls = []
    for item in declared:
        other = item["env"]
        resource = str(item["resource"])
        key = fake_output("SigningKeyArn", other, env_stacks.account(other)) if ":alias/" in resource else None
        context = {"aws:PrincipalArn": str(item["role"])}
        calls.append((other, Call(item["action"], key or resource, context, f"{why} as {item['role']}", key)))
    return calls


def static_findings(env_stacks: EnvStacks, env: str) -> List[Finding]:
    account = env_stacks.account(env)
    bootstrap = proof_stack(env_stacks, f"{env}/bootstrap")
    execution_role = role_principal(bootstrap, "CfnExecutionRole", account)
    deployer = role_principal(bootstrap, "DeployerRole", account)
    key_arn = fake_output("KeyArn", env, account)
    key_policies = env_key_policies(env_stacks, env)
    boundary = Namer(bootstrap, account).concrete(bootstrap.resources["PermissionsBoundary"])
    boundaries = {f"arn:aws:iam::{account}:policy/envsync-boundary": boundary["Properties"]["PolicyDocument"]}
    findings: List[Finding] = []
    for name in sorted(env_stacks.rendered):
        stack_env, short = name.split("/")
        if stack_env != env or short in ADMIN_STACKS:
            continue
        stack = proof_stack(env_stacks, name)
        for call in execution_role_calls(stack, account, key_arn):
            glass = break_glass_of(call, key_policies)
            if glass:  # an administrator's role: all of IAM, the key policy decides
                call = dataclasses.replace(call, why=f"{call.why}, launched as {glass}")
            caller = Principal(glass, identity_policies=[ALLOW_ALL]) if glass else execution_role
            findings += prove(env, caller, [call], key_policies)
        declared = declared_resolver_calls(env_stacks, name)
        deployer_calls = sceptre_calls(stack, account, execution_role.arn)
        deployer_calls += resolver_calls(stack, [d for d in declared if "role" not in d], key_arn, account)
        findings += prove(env, deployer, deployer_calls, key_policies)
        for other, call in other_account_calls(env_stacks, [d for d in declared if "role" in d],
                                               f"resolver of {stack.name}"):
            findings += prove(env, deployer_of(env_stacks, other), [call], env_key_policies(env_stacks, other))
        approver = role_principal(bootstrap, "ApproverRole", account, boundaries)
        for principal, call in key_user_calls(with_gate(env_stacks, stack, name), account, boundaries,
                                              answerers=[approver]):
            findings += prove(env, principal, [call], key_policies)
    return findings


# ---- who launches what: `sceptre launch <env>` runs as CI, never as the admin role -----------

def admin_role_uses(env_stacks: EnvStacks, env: str, admin_role: str) -> List[str]:
    """Where `sceptre launch <env>` would act as `admin_role`: a launched stack's sceptre_role,
    or an output read (Sceptre reads `!stack_output` with the read stack's own role; our
    resolvers name theirs)."""
    uses = []
    for stack in launch_plan(env_stacks, env):
        if stack.sceptre_role == admin_role:
            uses.append(f"{stack.name} is launched as {admin_role}")
        for key, value in env_stacks.raw_parameters(stack.name).items():
            if type(value).__name__ == "StackOutput":
                read = env_stacks.stacks[str(value.argument).split("::")[0].replace(".yaml", "")]
                if read.sceptre_role == admin_role:
                    uses.append(f"{stack.name} reads {value.argument} ({key}) as {admin_role}")
            elif hasattr(value, "required_calls"):
                uses += [f"{stack.name} resolves {key} as {admin_role}"
                         for call in value.required_calls() if call.get("role") == admin_role]
    return uses


# ---- what CI's roles must never be able to do ---------------

def escalation_findings(env_stacks: EnvStacks, env: str) -> List[str]:
    """Each call of the must-stay-denied list (`must_stay_denied.yaml`) allowed in `env`, as
    `<caller> may <action> on <resource>` (or `endpoint <id> admits ...`). Entries marked
    `open` are left out: their reason is in the list."""
    return [str(leak) for leak in must_stay_denied(env_stacks, env).leaks]
