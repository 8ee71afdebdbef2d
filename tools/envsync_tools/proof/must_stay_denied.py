"""What must stay denied: the reviewed list of calls (`must_stay_denied.yaml`) evaluated against
the rendered policies of each env.

The rest of the proof shows that every call a launch and a sync need is allowed; this shows
that the calls which would let CI or a stack's role escape its bounds are refused: changing
the bootstrap stack, its roles or the boundary, opening prod's key, reading prod's secrets or
tables, signing as anyone but the source env's sync role, and reaching through an endpoint
what is not the chain's. Each entry is expanded per env (placeholders, callers) into
requests; each request that `authorize` allows is a `Leak`.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Sequence, Tuple

import yaml

from envsync_tools.proof.policy import Principal, Request, Verdict, account_of, authorize
from envsync_tools.proof.project import EnvStacks, fake_output
from envsync_tools.proof.static import Namer, Stack, role_principal

LIST_PATH = Path(__file__).with_name("must_stay_denied.yaml")
OUTSIDE_ACCOUNT = "999999999999"
REGION = "us-east-1"
ALLOW_ALL = {"Statement": [{"Effect": "Allow", "Action": "*", "Resource": "*"}]}
SCOPES = ("all", "prod", "source", "gated")
FIELDS = {"caller", "except", "action", "resource", "in", "through", "context", "why", "open"}


class BadEntry(ValueError):
    """An entry of the list the proof cannot evaluate: said with its position."""


@dataclass(frozen=True)
class Check:
    """One request of one entry in one env."""

    env: str
    caller: str  # how the list names it, e.g. dev/deployer, dev/sync/SyncRole
    principal: Principal
    request: Request
    why: str
    through: Optional[str] = None
    open_reason: Optional[str] = None


@dataclass(frozen=True)
class Leak:
    check: Check
    verdict: Verdict

    def __str__(self) -> str:
        check = self.check
        request = check.request
        where = f"endpoint {check.through} admits {request.action} on {request.resource} for " \
                f"{check.principal.arn}" if check.through else \
                f"{check.principal.arn} may {request.action} on {request.resource}"
        return f"[{check.env}] {where} ({check.caller}; must stay denied: {check.why}) {self.verdict.reason}"


@dataclass
class DeniedReport:
    refused: int = 0
    leaks: List[Leak] = field(default_factory=list)
    open_leaks: List[Leak] = field(default_factory=list)  # allowed, and listed as open with a reason
    open_refused: List[Check] = field(default_factory=list)  # listed as open, but refused now


def load_list(path: Path = LIST_PATH) -> List[Dict[str, Any]]:
    entries = yaml.safe_load(path.read_text())
    if not isinstance(entries, list):
        raise BadEntry(f"{path}: a list of entries expected")
    for number, entry in enumerate(entries, 1):
        where = f"{path} entry {number}"
        if not isinstance(entry, dict):
            raise BadEntry(f"{where}: a mapping expected, got {entry!r}")
        missing = {"caller", "action", "resource", "why"} - set(entry)
        unknown = set(entry) - FIELDS
        if missing or unknown:
            raise BadEntry(f"{where}: missing {sorted(missing)}, unknown {sorted(unknown)}")
        if entry.get("in", "all") not in SCOPES:
            raise BadEntry(f"{where}: in is one of {', '.join(SCOPES)}, not {entry['in']!r}")
    return entries


def _listed(value: Any) -> List[str]:
    return [str(item) for item in value] if isinstance(value, list) else [str(value)]


class EnvPolicies:
    """One env's principals, keys and endpoints as the rendered stacks define them."""

    def __init__(self, env_stacks: EnvStacks, env: str):
        self.env_stacks = env_stacks
        self.env = env
        self.account = env_stacks.account(env)
        envs = env_stacks.envs
        self.source = next((name for name in envs if self._stack(name, "kms") and
                            "SigningKey" in self._stack(name, "kms").resources), env)
        bootstrap = self._stack(env, "bootstrap")
        namer = Namer(bootstrap, self.account)
        boundary = namer.concrete(bootstrap.resources["PermissionsBoundary"])["Properties"]["PolicyDocument"]
        self.boundary_arn = f"arn:aws:iam::{self.account}:policy/envsync-boundary"
        self.boundary = boundary
        self.roles: Dict[str, Principal] = {}
        for name in sorted(env_stacks.rendered):
            stack_env, short = name.split("/")
            if stack_env != env:
                continue
            stack = self._stack(env, short)
            for logical_id, resource in stack.resources.items():
                if resource["Type"] == "AWS::IAM::Role":
                    label = {"DeployerRole": "deployer", "CfnExecutionRole": "execution-role"}.get(
                        logical_id, f"{short}/{logical_id}") if short == "bootstrap" else f"{short}/{logical_id}"
                    self.roles[f"{env}/{label}"] = role_principal(stack, logical_id, self.account,
                                                                   {self.boundary_arn: boundary})
        self.values = {
            "env": env, "account": self.account, "region": REGION, "outside_account": OUTSIDE_ACCOUNT,
            "deployer_role": self.roles[f"{env}/deployer"].arn,
            "execution_role": self.roles[f"{env}/execution-role"].arn, "boundary": self.boundary_arn,
            "bootstrap_stack": f"arn:aws:cloudformation:{REGION}:{self.account}:stack/"
                               f"{env_stacks.stacks[f'{env}/bootstrap'].external_name}/1",
            "env_key": fake_output("KeyArn", env, self.account),
            "signing_key": fake_output("SigningKeyArn", self.source, env_stacks.account(self.source)),
            "source": self.source,
        }

    def _stack(self, env: str, short: str) -> Optional[Stack]:
        name = f"{env}/{short}"
        if name not in self.env_stacks.rendered:
            return None
        evaluated = self.env_stacks.evaluated(name)
        return Stack(self.env_stacks.stacks[name].external_name, evaluated.resources)

    def fill(self, text: str, where: str) -> str:
        try:
            return text.format(**self.values)
        except KeyError as err:
            raise BadEntry(f"{where}: unknown placeholder {err} in {text!r}") from err

    def callers(self, entry: Mapping[str, Any], where: str) -> List[Tuple[str, Principal]]:
        found: List[Tuple[str, Principal]] = []
        excluded = {self.fill(item, where) for item in _listed(entry.get("except", []))}
        for name in _listed(entry["caller"]):
            if name == "every-role":
                found += [(label, role) for label, role in self.roles.items() if label not in excluded]
            elif name == "any-role-under-the-boundary":
                found.append((name, Principal(f"arn:aws:iam::{self.account}:role/envsync-{self.env}-sync",
                                              identity_policies=[ALLOW_ALL], boundary=self.boundary)))
            elif name == "any-role-in-the-account":
                found.append((name, Principal(f"arn:aws:iam::{self.account}:role/any",
                                              identity_policies=[ALLOW_ALL])))
            elif name == "outside":
                found.append((name, Principal(f"arn:aws:iam::{OUTSIDE_ACCOUNT}:role/outsider",
                                              identity_policies=[ALLOW_ALL])))
            elif f"{self.env}/{name}" in self.roles:
                found.append((f"{self.env}/{name}", self.roles[f"{self.env}/{name}"]))
            else:
                raise BadEntry(f"{where}: no caller {name!r} in {self.env} (roles: {sorted(self.roles)})")
        return found

    def key_policy(self, resource: str) -> Optional[Mapping[str, Any]]:
        """The policy of a key of any env, by the ARN the other stacks name it with."""
        if ":kms:" not in resource:
            return None
        env = next((name for name, config in self.env_stacks.envs.items() if config.account_id == account_of(resource)),
                   None)
        kms = self._stack(env, "kms") if env else None
        if kms is None:
            return {"Statement": []}  # a key the proof does not know admits no one
        namer = Namer(kms, self.env_stacks.account(env))
        for logical_id, output in (("EnvKey", "KeyArn"), ("SigningKey", "SigningKeyArn")):
            if logical_id in kms.resources and fake_output(output, env, namer.account) == resource:
                return namer.concrete(kms.resources[logical_id]["Properties"]["KeyPolicy"])
        return {"Statement": []}

    def endpoint_policy(self, logical_id: str, where: str) -> Mapping[str, Any]:
        network = self._stack(self.env, "network")
        if network is None or logical_id not in network.resources:
            raise BadEntry(f"{where}: no endpoint {logical_id} in {self.env}/network")
        return Namer(network, self.account).concrete(network.resources[logical_id])["Properties"]["PolicyDocument"]


def applies(entry: Mapping[str, Any], policies: EnvPolicies) -> bool:
    scope = entry.get("in", "all")
    if scope == "prod":
        return policies.env_stacks.envs[policies.env].is_prod
    if scope == "source":
        return policies.env == policies.source
    if scope == "gated":  # an env whose runs wait for a person: its machine is the gate stack's
        return f"{policies.env}/gate" in policies.env_stacks.rendered
    return True


def checks(entries: Sequence[Mapping[str, Any]], policies: EnvPolicies) -> List[Check]:
    """Every request the list asks in this env."""
    found = []
    for number, entry in enumerate(entries, 1):
        where = f"{LIST_PATH.name} entry {number}"
        if not applies(entry, policies):
            continue
        context = {key: policies.fill(str(value), where) for key, value in (entry.get("context") or {}).items()}
        for label, principal in policies.callers(entry, where):
            for action in _listed(entry["action"]):
                for resource in _listed(entry["resource"]):
                    resource = policies.fill(resource, where)
                    asked = {"aws:PrincipalArn": principal.arn, "aws:PrincipalAccount": principal.account or "",
                             "aws:ResourceAccount": account_of(resource) or policies.account, **context}
                    found.append(Check(policies.env, label, principal, Request(action, resource, context=asked),
                                       str(entry["why"]).strip(), entry.get("through"), entry.get("open")))
    return found


def decide(check: Check, policies: EnvPolicies) -> Verdict:
    request = check.request
    key_policy = policies.key_policy(request.resource)
    endpoint = policies.endpoint_policy(check.through, f"{check.caller} {request.action}") if check.through else None
    key_account = account_of(request.resource) if key_policy is not None else None
    return authorize(check.principal, request, key_policy=key_policy, endpoint_policy=endpoint,
                     resource_account=key_account)


def must_stay_denied(env_stacks: EnvStacks, env: str, entries: Optional[Sequence[Mapping[str, Any]]] = None,
                     ) -> DeniedReport:
    """The list evaluated in `env`: how many requests are refused, and each one allowed."""
    policies = EnvPolicies(env_stacks, env)
    report = DeniedReport()
    for check in checks(load_list() if entries is None else entries, policies):
        verdict = decide(check, policies)
        if not verdict.allowed:
            report.refused += 1
            if check.open_reason:
                report.open_refused.append(check)
        elif check.open_reason:
            report.open_leaks.append(Leak(check, verdict))
        else:
            report.leaks.append(Leak(check, verdict))
    return report


def project_report(env_stacks: EnvStacks) -> DeniedReport:
    """The list over every env of the project, summed (the figure `envsync-local proof` prints)."""
    total = DeniedReport()
    for env in env_stacks.envs:
        report = must_stay_denied(env_stacks, env)
        total.refused += report.refused
        total.leaks += report.leaks
        total.open_leaks += report.open_leaks
        total.open_refused += report.open_refused
    return total
