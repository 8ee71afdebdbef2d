"""Who may assume what: the principals a user creates by hand, and every `sts:AssumeRole` of a
launch, evaluated against the trust policies the stacks render.

moto enforces no trust policy, so the launch itself cannot tell. The principals outside the
stacks get exactly the rights the README tells a user to give them (`outside_principals`):
- the CI principal (`deployer_trusted_principal`): `sts:AssumeRole` on each account's deployer;
- the administrator: `sts:AssumeRole` on each account's `bootstrap_role_name` role, to create
  the bootstrap stack (that role's trust is AWS Organizations', not the stacks');
- the approvers (`approver_trusted_principal`): `sts:AssumeRole` on each env's approver role.

`sceptre launch <env>` runs as the CI principal: every stack it launches is created with its
`sceptre_role` (iam_role in Sceptre before 4), every `!stack_output` is read with the read
stack's own role (Sceptre 4.7's StackOutput resolver), our resolvers assume the roles they
declare (`required_calls`), and CloudFormation assumes each stack's execution role. Each
assumption must be allowed by the assumer's policy and by the role's trust policy.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Dict, List, Mapping, Optional, Tuple

from envsync_tools.proof.policy import Principal, Request, Verdict, account_of, authorize
from envsync_tools.proof.project import EnvStacks
from envsync_tools.proof.static import Namer, Stack

CLOUDFORMATION = "cloudformation.amazonaws.com"


@dataclass(frozen=True)
class Outsider:
    """A principal the user creates by hand, with the one policy it needs."""

    name: str
    arn: str
    policy: Mapping[str, Any]
    why: str

    @property
    def principal(self) -> Principal:
        return Principal(self.arn, identity_policies=[self.policy])


@dataclass(frozen=True)
class Assumption:
    """One `sts:AssumeRole` a launch makes: who, which role, and why."""

    env: str
    assumer: str  # the assumer's ARN, or a service principal
    role: str
    why: str
    context: Tuple[Tuple[str, str], ...] = ()


@dataclass(frozen=True)
class Refusal:
    assumption: Assumption
    verdict: Verdict

    def __str__(self) -> str:
        step = self.assumption
        return f"[{step.env}] {step.assumer} may not sts:AssumeRole on {step.role} ({step.why}): {self.verdict.reason}"


def _assume_policy(roles: List[str], sid: str) -> Dict[str, Any]:
    return {"Version": "2012-10-17",
            "Statement": [{"Sid": sid, "Effect": "Allow", "Action": "sts:AssumeRole", "Resource": sorted(set(roles))}]}


def _parameter(env_stacks: EnvStacks, stack: str, name: str) -> Optional[str]:
    if stack not in env_stacks.stacks:
        return None
    value = env_stacks.parameter_values(stack).get(name)
    return str(value) if value else None


def outside_principals(env_stacks: EnvStacks) -> List[Outsider]:
    """The CI principal, the administrator and the approvers, each with the policy the README
    tells the user to give it (the ARNs are the ones config/ names)."""
    envs = sorted(env_stacks.envs)
    deployers, admins, approvers = [], [], []
    ci_arn = approvers_arn = None
    for env in envs:
        account = env_stacks.account(env)
        ci_arn = ci_arn or _parameter(env_stacks, f"{env}/bootstrap", "DeployerTrustedPrincipal")
        deployer = _parameter(env_stacks, f"{env}/bootstrap", "DeployerRoleName")
        deployers.append(f"arn:aws:iam::{account}:role/{deployer}")
        admins.append(env_stacks.stacks[f"{env}/bootstrap"].sceptre_role)
        trusted = _parameter(env_stacks, f"{env}/bootstrap", "ApproverTrustedPrincipal")
        if trusted:  # the approver role is the bootstrap stack's (the administrator's)
            approvers_arn = approvers_arn or trusted
            approvers.append(f"arn:aws:iam::{account}:role/envsync-{env}-approver")
    found = [Outsider("CI principal", str(ci_arn), _assume_policy(deployers, "AssumeEnvsyncDeployers"),
                      "runs `sceptre launch <env>` (deployer_trusted_principal)"),
             Outsider("administrator", "your own credentials", _assume_policy(admins, "BootstrapAccounts"),
                      "creates each account's bootstrap stack, and a gated env's gate stack (bootstrap_role_name)")]
    if approvers_arn:
        found.append(Outsider("approvers", approvers_arn, _assume_policy(approvers, "AnswerApprovals"),
                              "answer a run that waits (approver_trusted_principal)"))
    return found


def trust_policies(env_stacks: EnvStacks) -> Dict[str, Mapping[str, Any]]:
    """Every role the rendered stacks create, by ARN: its trust policy."""
    found: Dict[str, Mapping[str, Any]] = {}
    for name in sorted(env_stacks.rendered):
        account = env_stacks.account(name.split("/")[0])
        evaluated = env_stacks.evaluated(name)
        stack = Stack(env_stacks.stacks[name].external_name, evaluated.resources)
        namer = Namer(stack, account)
        for logical_id, resource in stack.resources.items():
            if resource["Type"] == "AWS::IAM::Role":
                document = namer.concrete(resource["Properties"]["AssumeRolePolicyDocument"])
                found[namer.arn(logical_id)] = document
    return found


def launch_plan(env_stacks: EnvStacks, env: str) -> List[Any]:
    """The stacks `sceptre launch <env>` creates or updates: the env's stacks and their
    dependencies, less those marked `ignore` (as Sceptre 4.7's launch skips them)."""
    todo = [stack for name, stack in env_stacks.stacks.items() if name.startswith(f"{env}/")]
    plan: Dict[str, Any] = {}
    while todo:
        stack = todo.pop()
        if stack.name not in plan and not stack.ignore:
            plan[stack.name] = stack
            todo.extend(stack.dependencies)
    return sorted(plan.values(), key=lambda stack: stack.name)


def launch_assumptions(env_stacks: EnvStacks, env: str, ci_arn: str) -> List[Assumption]:
    """Every role `sceptre launch <env>` assumes as the CI principal, and every execution role
    CloudFormation assumes for it."""
    found: List[Assumption] = []
    for stack in launch_plan(env_stacks, env):
        found.append(Assumption(env, ci_arn, stack.sceptre_role, f"{stack.name} is launched as its sceptre_role"))
        service_role = stack.cloudformation_service_role
        if service_role:
            found.append(Assumption(env, CLOUDFORMATION, service_role, f"CloudFormation creates {stack.name}",
                                    (("aws:SourceAccount", env_stacks.account(stack.name.split("/")[0])),)))
        for key, value in env_stacks.raw_parameters(stack.name).items():
            if type(value).__name__ == "StackOutput":
                read = env_stacks.stacks[str(value.argument).split("::")[0].replace(".yaml", "")]
                found.append(Assumption(env, ci_arn, read.sceptre_role,
                                        f"{stack.name} reads {value.argument} ({key}) with {read.name}'s role"))
            elif hasattr(value, "required_calls"):
                found += [Assumption(env, ci_arn, call["role"], f"{stack.name} resolves {key}")
                          for call in value.required_calls() if call.get("role")]
    return found


def refused_assumptions(env_stacks: EnvStacks, env: str) -> List[Refusal]:
    """Each assumption of the env's launch that AWS would refuse: the CI principal's own policy
    (as the README gives it) and the role's trust policy must both allow it."""
    ci = outside_principals(env_stacks)[0]
    trusts = trust_policies(env_stacks)
    refused = []
    for step in launch_assumptions(env_stacks, env, ci.arn):
        verdict = decide_assumption(step, ci, trusts)
        if not verdict.allowed:
            refused.append(Refusal(step, verdict))
    return refused


def decide_assumption(step: Assumption, outsider: Outsider, trusts: Mapping[str, Mapping[str, Any]]) -> Verdict:
    """The outsider (or CloudFormation, for an execution role) assuming `step.role`."""
    trust = trusts.get(step.role)
    if trust is None:
        return Verdict("Deny", "no stack CI launches creates this role: its trust is outside the proof")
    context = dict(step.context)
    if step.assumer == CLOUDFORMATION:
        assumer = Principal(CLOUDFORMATION, service=True)
    else:
        assumer = outsider.principal
        context["aws:PrincipalArn"] = outsider.arn
    request = Request("sts:AssumeRole", step.role, context=context)
    return authorize(assumer, request, resource_policy=trust, resource_account=account_of(step.role))


def refused_approver_assumptions(env_stacks: EnvStacks) -> List[Refusal]:
    """The approvers assume each env's approver role with the policy the README gives them."""
    outsiders = {outsider.name: outsider for outsider in outside_principals(env_stacks)}
    approvers = outsiders.get("approvers")
    if approvers is None:
        return []
    trusts = trust_policies(env_stacks)
    refused = []
    for role in approvers.policy["Statement"][0]["Resource"]:
        step = Assumption(role.split("/envsync-")[1].rsplit("-approver", 1)[0], approvers.arn, role,
                          "envsync approve --role-arn")
        verdict = decide_assumption(step, approvers, trusts)
        if not verdict.allowed:
            refused.append(Refusal(step, verdict))
    return refused
