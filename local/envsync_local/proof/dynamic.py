"""The dynamic permission proof: every call recorded during a launch and sync cycle, evaluated.

Input: the stand-in's call record (`envsync_local.call_recorder`) and the deployed world — the
roles' policies and boundaries, key policies, bucket policies, which key encrypts which
parameter, secret, bucket, topic and state machine — read back from the stand-in. Each call
made by the product (Sceptre as the deployer, the Lambda functions as their roles, the engine as
the upstream's source-reader, CloudFormation as the execution role) is evaluated with `authorize`,
together with the KMS calls the service makes on the caller's behalf (an SSE-KMS PutObject asks
for a data key; a SecureString read decrypts through SSM...). Calls of the local harness
(session names in HARNESS_SESSIONS) are counted, not judged: they stand for people and tests.

Calls are scoped by stack attempt: a call made during a stack create that rolled back (a
failed first create, retried) belongs to that attempt (`attempted_calls`), see `evaluate_calls`.
"""

from __future__ import annotations

import json
import re
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Set, Tuple

from envsync_tools.proof.handler_permissions import KEY_PROPERTIES, arn_for, namespace, parent_arn
from envsync_tools.proof.policy import Principal, Request, Verdict, authorize
from envsync_tools.proof.static import resource_calls

REGION = "us-east-1"
HARNESS_SESSIONS = {"envsync-local", "test", "tests", "e2e"}


@dataclass
class World:
    """The deployed policies and encryption settings, per ARN."""

    roles: Dict[str, Principal] = field(default_factory=dict)          # role ARN -> principal
    trust: Dict[str, Any] = field(default_factory=dict)                # role ARN -> trust policy
    key_policies: Dict[str, Any] = field(default_factory=dict)         # key ARN -> policy
    key_ids: Dict[str, str] = field(default_factory=dict)              # key id / alias -> key ARN
    bucket_policies: Dict[str, Any] = field(default_factory=dict)      # bucket -> policy
    encryption: Dict[str, str] = field(default_factory=dict)           # resource ARN -> key ARN
    endpoints: Dict[Tuple[str, str], Any] = field(default_factory=dict)  # (account, service) -> policy
    env_accounts: Dict[str, str] = field(default_factory=dict)         # env name -> account id

    def key_arn(self, key: Optional[str]) -> Optional[str]:
        if not key:
            return None
        return key if key.startswith("arn:aws:kms:") and ":key/" in key else self.key_ids.get(key, key)


@dataclass(frozen=True)
class Judged:
    caller: str
    action: str
    resource: str
    verdict: Verdict
    why: str

    def __str__(self) -> str:
        return f"{self.caller} {self.action} on {self.resource} ({self.why}): {self.verdict.reason}"


@dataclass
class Report:
    recorded: int = 0
    harness: int = 0
    evaluated: int = 0
    denied: List[Judged] = field(default_factory=list)
    by_caller: Counter = field(default_factory=Counter)
    judged_actions: Set[Tuple[str, str]] = field(default_factory=set)  # (caller, action) judged
    # Judgments of rolled-back attempts whose caller makes the same action in the judged set.
    rolled_back: int = 0

    def summary(self) -> str:
        left = (f", {self.rolled_back} of rolled-back first creates left to their retry's same calls"
                if self.rolled_back else "")
        return (f"permission proof: {self.recorded} calls recorded, {self.evaluated} evaluated "
                f"({self.harness} harness calls and calls with the operator's own credentials not judged{left}), "
                f"{len(self.denied)} denied")


def read_calls(path: Path, limit: Optional[int] = None, start: int = 0) -> List[Dict[str, Any]]:
    """The recorded calls from line `start` (0: the first) up to line `limit` (None: the last)."""
    lines = path.read_text(encoding="utf-8").splitlines() if path.exists() else []
    return [json.loads(line) for line in lines[start:limit]]


# ---- what a call is about --------------------------------------------------------------------

def _arn(service: str, account: str, rest: str) -> str:
    return f"arn:aws:{service}:{REGION}:{account}:{rest}"


def resource_of(call: Dict[str, Any], world: World) -> str:
    """The ARN IAM evaluates a recorded call against ("*" where the action has no resource)."""
    params, account, action = call.get("params", {}), call["account"], call["action"]
    service = action.split(":")[0]
    if service == "s3":
        return call.get("resource") or "*"
    if service == "ssm" and "Name" in params:
        return _arn("ssm", account, f"parameter{params['Name']}")
    if service == "secretsmanager" and "SecretId" in params:
        secret = str(params["SecretId"])
        return secret if secret.startswith("arn:") else world.encryption.get(f"secret-name:{secret}", "*")
    if service == "kms" and "KeyId" in params:
        return world.key_arn(str(params["KeyId"])) or "*"
    if service == "sts" and "RoleArn" in params:
        return str(params["RoleArn"])
    if service == "iam" and "RoleName" in params:
        return f"arn:aws:iam::{account}:role/{params['RoleName']}"
    if service == "sns":
        return str(params.get("TopicArn") or params.get("TargetArn") or "*")
    if service == "states":
        return str(params.get("stateMachineArn") or params.get("executionArn") or "*")
    if service == "lambda" and "FunctionName" in params:
        name = str(params["FunctionName"])
        return name if name.startswith("arn:") else _arn("lambda", account, f"function:{name}")
    if service == "logs" and "logGroupName" in params:
        stream = params.get("logStreamName")
        suffix = f":log-stream:{stream}" if stream else ""
        return _arn("logs", account, f"log-group:{params['logGroupName']}{suffix}")
    if service == "cloudformation" and "StackName" in params:
        name = str(params["StackName"])
        return name if name.startswith("arn:") else _arn("cloudformation", account, f"stack/{name}/*")
    return "*"


TASK_ANSWERS = ("states:SendTaskSuccess", "states:SendTaskFailure")
# Calls AWS answers without an authorization check ("No permissions are required").
UNAUTHORIZED_ACTIONS = {"sts:GetCallerIdentity"}


def machine_of_execution(arn: str) -> str:
    """arn:aws:states:R:A:execution:MACHINE:RUN -> the state machine's ARN."""
    parts = arn.split(":")
    return ":".join([*parts[:5], "stateMachine", parts[6]]) if len(parts) >= 8 and parts[5] == "execution" else arn


def implied_calls(call: Dict[str, Any], resource: str, world: World) -> List[Tuple[str, str, Dict[str, str], str]]:
    """(action, resource, context, why) a service makes on the caller's behalf for this call."""
    action, account = call["action"], call["account"]
    implied: List[Tuple[str, str, Dict[str, str], str]] = []

    def kms(actions: Iterable[str], via: str, key: Optional[str], extra: Optional[Dict[str, str]] = None) -> None:
        if key:
            context = {"kms:ViaService": f"{via}.{REGION}.amazonaws.com", "kms:CallerAccount": account,
                       **(extra or {})}
            implied.extend((a, key, context, f"{action} on {resource}") for a in actions)

    if action in ("ssm:GetParameter", "ssm:GetParameters") and call["params"].get("WithDecryption") in (True, "true"):
        kms(["kms:Decrypt"], "ssm", world.encryption.get(resource))
    if action == "ssm:PutParameter" and call["params"].get("Type") == "SecureString":
        kms(["kms:Encrypt"], "ssm", world.key_arn(call["params"].get("KeyId")))
    if action == "secretsmanager:GetSecretValue":
        kms(["kms:Decrypt"], "secretsmanager", world.encryption.get(resource))
    if action in ("s3:GetObject", "s3:PutObject") and call.get("method") != "HEAD":  # HeadObject decrypts nothing
        bucket = resource.split(":::", 1)[-1].split("/", 1)[0]
        context = {"kms:EncryptionContext:aws:s3:arn": f"arn:aws:s3:::{bucket}"}
        kms(["kms:Decrypt"] if action == "s3:GetObject" else ["kms:GenerateDataKey"], "s3",
            world.encryption.get(f"arn:aws:s3:::{bucket}"), context)
    if action == "sns:Publish":
        kms(["kms:GenerateDataKey", "kms:Decrypt"], "sns", world.encryption.get(resource))
    if action in ("states:StartExecution", "states:StartSyncExecution", *TASK_ANSWERS):
        kms(["kms:GenerateDataKey"], "states", world.encryption.get(resource),
            {"kms:EncryptionContext:aws:states:stateMachineArn": resource})
    if action in ("states:DescribeExecution", "states:GetExecutionHistory"):
        machine = machine_of_execution(resource)
        kms(["kms:Decrypt"], "states", world.encryption.get(machine),
            {"kms:EncryptionContext:aws:states:stateMachineArn": machine})
    if action in ("cloudformation:CreateStack", "cloudformation:UpdateStack") and call["params"].get("RoleARN"):
        implied.append(("iam:PassRole", str(call["params"]["RoleARN"]),
                        {"iam:PassedToService": "cloudformation.amazonaws.com"}, f"{action} {resource}"))
    return implied


# ---- judging ----------------------------------------------------------------------------------------

def vpc_account(call: Dict[str, Any], world: World) -> Optional[str]:
    """The account whose VPC a call leaves from: a Lambda function's (a role Lambda assumes),
    or the env whose sync assumed an upstream role (session `envsync-<env>-from-<upstream>`);
    None outside a VPC."""
    session = str(call.get("session") or "")
    role = str(call.get("role_arn") or "")
    if role and "lambda.amazonaws.com" in json.dumps(world.trust.get(role, {})):
        return role.split(":")[4]  # every envsync function runs in its env's VPC
    match = re.match(r"^envsync-([a-z0-9-]+?)-from-[a-z0-9-]+$", session)
    return world.env_accounts.get(match.group(1)) if match else None


def resource_account(resource: str) -> Optional[str]:
    """The account that owns `resource` (aws:ResourceAccount): the ARN's account, or for an
    envsync bucket the account its name ends with; None when the call names no resource."""
    if resource.startswith("arn:aws:s3:::"):
        match = re.search(r"-(\d{12})$", resource.split(":::", 1)[1].split("/", 1)[0])
        return match.group(1) if match else None
    parts = resource.split(":")
    return parts[4] if len(parts) > 5 and re.fullmatch(r"\d{12}", parts[4]) else None


def _decide(principal: Principal, action: str, resource: str, context: Dict[str, str], world: World,
            endpoint_policy: Any = None) -> Verdict:
    if action in UNAUTHORIZED_ACTIONS:
        return Verdict("Allow", f"AWS does not authorize {action}")
    request = Request(action, resource, context=context)
    if endpoint_policy is not None:
        principal_account = {"aws:PrincipalAccount": principal.account or ""}
        owner = resource_account(resource)
        if owner:
            principal_account["aws:ResourceAccount"] = owner
        through = authorize(Principal(principal.arn, service=True),
                            Request(action, resource, context={**context, **principal_account}),
                            endpoint_policy=endpoint_policy)
        if not through.allowed:
            return Verdict("Deny", f"VPC endpoint: {through.reason}")
    if action.startswith("kms:") and ":key/" in resource:
        policy = world.key_policies.get(resource, {"Statement": []})
        return authorize(principal, request, key_policy=policy, resource_account=resource.split(":")[4])
    if action.startswith("s3:") and resource.startswith("arn:aws:s3:::"):
        bucket = resource.split(":::", 1)[1].split("/", 1)[0]
        return authorize(principal, request, resource_policy=world.bucket_policies.get(bucket),
                         resource_account=principal.account, )
    if action == "sts:AssumeRole":
        trust = world.trust.get(resource)
        if trust is None:
            return Verdict("Deny", f"no role {resource} in the deployed world")
        return authorize(principal, request, resource_policy=trust, resource_account=resource.split(":")[4])
    return authorize(principal, request)


ROLLED_BACK = ("ROLLBACK_COMPLETE", "ROLLBACK_FAILED")


def attempted_calls(calls: List[Dict[str, Any]]) -> Set[int]:
    """Positions (in `calls`) of the calls made during a stack create that rolled back: its
    CloudFormation records, and the API calls made with an access key minted while it ran
    (a custom resource's function role). The record's `attempt` and `attempt-key` lines say which."""
    rolled_back = {call["stack_id"] for call in calls
                   if call.get("kind") == "attempt" and call.get("status") in ROLLED_BACK}
    keys = {call["access_key"] for call in calls
            if call.get("kind") == "attempt-key" and call.get("stack_id") in rolled_back}
    return {index for index, call in enumerate(calls)
            if (call.get("kind") == "cfn" and call.get("stack_id") in rolled_back)
            or (call.get("kind") == "api" and call.get("access_key") in keys)}


def evaluate_calls(calls: List[Dict[str, Any]], world: World,
                   external_principals: Callable[[Dict[str, Any]], Optional[Principal]]) -> Report:
    """Judge every product call. `external_principals` names callers outside the project's
    roles (the CI principal behind the base credentials, the Lambda service) or None to skip.

    A call of a rolled-back attempt named resources and ran under policies that the rollback
    deleted and the retry made again under other ARNs (a secret's suffix, a key id): judged
    against the world deployed at the end, it is denied for a resource that no longer exists.
    The world of the attempt is gone, so such a call is not judged when its retry makes the
    same action as the same caller (that call is judged, against what the retry deployed), and
    is counted (`Report.rolled_back`). A judgment of a rolled-back attempt that the retry never
    repeats (a rollback's own Delete calls) is judged against the end's world like any other:
    nothing the retry does not vouch for escapes the proof."""
    report = Report()
    clusters: Dict[str, str] = {}  # cluster identifier -> engine version, as recorded
    in_rolled_back = attempted_calls(calls)
    of_rolled_back: List[Judged] = []
    for index, call in enumerate(calls):
        if call.get("kind") not in ("api", "cfn"):
            continue
        report.recorded += 1
        if call["kind"] == "cfn" and call.get("type") == "AWS::RDS::DBCluster":
            # Its instances run its engine version (they may state none).
            properties = call.get("properties") or {}
            clusters[str(call.get("physical_id"))] = str(properties.get("EngineVersion"))
        judged = (_judge_cfn(call, world, clusters) if call["kind"] == "cfn"
                  else _judge_api(call, world, external_principals))
        if judged is None:
            report.harness += 1
        elif index in in_rolled_back:
            of_rolled_back.extend(judged)
        else:
            _count(report, judged)
    repeated = set(report.judged_actions)
    report.rolled_back = sum(1 for item in of_rolled_back if (item.caller, item.action) in repeated)
    _count(report, [item for item in of_rolled_back if (item.caller, item.action) not in repeated])
    return report


def _count(report: Report, judged: List[Judged]) -> None:
    for item in judged:
        report.evaluated += 1
        report.by_caller[item.caller] += 1
        report.judged_actions.add((item.caller, item.action))
        if not item.verdict.allowed:
            report.denied.append(item)


LAMBDA_SERVICE = Principal(arn="lambda.amazonaws.com", service=True)


def _judge_api(call: Dict[str, Any], world: World,
               external: Callable[[Dict[str, Any]], Optional[Principal]]) -> Optional[List[Judged]]:
    resource = resource_of(call, world)
    assumes = call["action"] == "sts:AssumeRole"
    if assumes and resource not in world.trust and ":role/envsync-" not in resource:
        return None  # the account admin's role (bootstrap): not a role the project defines
    if assumes and str(call["params"].get("RoleSessionName", "")).startswith("lambda-"):
        principal: Optional[Principal] = LAMBDA_SERVICE  # the local runner stands in for Lambda
    elif call.get("session") in HARNESS_SESSIONS:
        return None
    else:
        principal = world.roles.get(call.get("role_arn") or "") if call.get("role_arn") else None
        principal = principal or external(call)
    if principal is None:
        return None
    context = {}
    if not principal.service:  # AWS sets it on every request of a role
        context["aws:PrincipalArn"] = principal.arn
    if assumes:
        context["aws:PrincipalArn"] = principal.arn
        if principal.service:
            context["aws:SourceAccount"] = resource.split(":")[4]
        if call["params"].get("ExternalId") is not None:
            context["sts:ExternalId"] = str(call["params"]["ExternalId"])
    if call["action"] == "s3:ListBucket" and "Prefix" in call["params"]:
        context["s3:prefix"] = str(call["params"]["Prefix"])
    account = vpc_account(call, world)
    endpoint = world.endpoints.get((account, call.get("service", ""))) if account else None
    judged = [Judged(principal.arn, call["action"], resource,
                     _decide(principal, call["action"], resource, context, world, endpoint),
                     "API call" + (" through the VPC endpoint" if endpoint is not None else ""))]
    for action, target, implied_context, why in implied_calls(call, resource, world):
        judged.append(Judged(principal.arn, action, target,
                             _decide(principal, action, target, implied_context, world), why))
    return judged


KEY_NAMES = {*KEY_PROPERTIES, "TargetKeyId"}  # an alias names its key by TargetKeyId


def _with_key_arns(value: Any, world: World) -> Any:
    """Recorded properties with every named KMS key (an id or an alias) as its ARN."""
    if isinstance(value, dict):
        return {key: (world.key_arn(item) if key in KEY_NAMES and isinstance(item, str)
                      else _with_key_arns(item, world)) for key, item in value.items()}
    if isinstance(value, list):
        return [_with_key_arns(item, world) for item in value]
    return value


def _judge_cfn(call: Dict[str, Any], world: World, clusters: Dict[str, str]) -> Optional[List[Judged]]:
    role = call.get("execution_role")
    principal = world.roles.get(role or "")
    if principal is None:
        return None  # a stack created without an execution role: the admin's bootstrap stack
    kind, operation, account = call["type"], call["operation"], call["account"]
    properties = _with_key_arns(call.get("properties") or {}, world)
    physical = call.get("physical_id")
    if kind == "AWS::KMS::Key" and isinstance(physical, str):
        resource = world.key_arn(physical) or physical
    else:
        resource = (parent_arn(kind, properties, account)
                    or (call["arn"] if str(call.get("arn") or "").startswith("arn:") else None)
                    or (arn_for(kind, physical, account) if isinstance(physical, str) else None)
                    or f"arn:aws:{namespace(kind).lower()}:{REGION}:{account}:*")
    code_bucket = (properties.get("Code") or {}).get("S3Bucket")
    bucket_key = world.encryption.get(f"arn:aws:s3:::{code_bucket}") if code_bucket else None
    label = f"{call.get('stack')}/{call['logical_id']}"
    return [Judged(principal.arn, item.action, item.resource,
                   _decide(principal, item.action, item.resource, dict(item.context), world),
                   f"CloudFormation: {item.why}")
            for item in resource_calls(kind, operation, properties, resource, account, bucket_key, label,
                                       cluster_versions=clusters)]
