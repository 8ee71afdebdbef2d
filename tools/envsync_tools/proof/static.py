"""The static permission proof: one env's rendered stacks against the roles that deploy them.

Input is what the templates say once parameters and Conditions are evaluated (resources whose
values may still hold `Ref`/`Fn::GetAtt` of other resources). Those are made concrete here
the way CloudFormation would name them (`<stack>-<LogicalId>-<suffix>` for generated names),
so a grant scoped to `envsync-*` ARNs is checked against the ARN the resource will really have.

Checked (each a `Finding` when it fails):
1. the execution role covers the handler permissions of every resource (handler_permissions),
   including the nested stack a hosted rotation expands into;
2. every KMS key policy admits each principal that encrypts with the key — services (logs,
   CloudWatch alarms) and the roles services act for (the state machine's role, the schedule);
3. the deployer covers what Sceptre and our resolvers call with it;
4. each handler permission on every resource the action is authorised on (resource_types):
   a cluster's option and parameter groups, RDS's default ones where the template names none.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Mapping, Optional, Sequence, Tuple

from envsync_tools.proof.handler_permissions import (
    OPERATIONS,
    PARENT_PROPERTY,
    REGION,
    SERVICE_PREFIX,
    STACK_ID_SUFFIX,
    VIA_SERVICE,
    arn_for,
    named_keys,
    named_roles,
    namespace,
    parent_arn,
    required_permissions,
)
from envsync_tools.proof.policy import Principal, Request, Verdict, authorize
from envsync_tools.proof.resource_types import related_arns, related_calls

ROTATION_PUBLISHER = "297356227824"  # the Secrets Manager rotation applications in SAR
TRANSFORM_ARN = "arn:aws:cloudformation:{region}:aws:transform/{name}"


@dataclass(frozen=True)
class Call:
    """One call a principal must be allowed to make, and why the proof asks."""

    action: str
    resource: str
    context: Mapping[str, Any] = field(default_factory=dict)
    why: str = ""
    key_arn: Optional[str] = None  # the call uses this KMS key: its key policy is asked too


@dataclass(frozen=True)
class Finding:
    env: str
    caller: str
    call: Call
    verdict: Verdict

    def __str__(self) -> str:
        context = f" {dict(self.call.context)}" if self.call.context else ""
        return (f"[{self.env}] {self.caller} may not {self.call.action} on {self.call.resource}{context} "
                f"({self.call.why}): {self.verdict.reason}")


@dataclass
class Stack:
    """One evaluated stack: its CloudFormation name, resources and template-level facts."""

    name: str
    resources: Dict[str, Dict[str, Any]]
    transform: Sequence[str] = ()


# ---- naming resources as CloudFormation would ----------------------------------------------

def generated_name(stack: str, logical_id: str, limit: int = 64) -> str:
    """The name CloudFormation gives an unnamed resource (STACK_ID_SUFFIX for its random part)."""
    return f"{stack}-{logical_id}-{STACK_ID_SUFFIX}"[:limit]


NAME_PROPERTY = {
    "AWS::IAM::Role": "RoleName", "AWS::Lambda::Function": "FunctionName", "AWS::SNS::Topic": "TopicName",
    "AWS::StepFunctions::StateMachine": "StateMachineName", "AWS::Events::Rule": "Name",
    "AWS::S3::Bucket": "BucketName", "AWS::Logs::LogGroup": "LogGroupName", "AWS::SecretsManager::Secret": "Name",
    "AWS::CloudWatch::Alarm": "AlarmName", "AWS::IAM::ManagedPolicy": "ManagedPolicyName",
    "AWS::RDS::DBCluster": "DBClusterIdentifier", "AWS::RDS::DBInstance": "DBInstanceIdentifier",
    "AWS::RDS::DBSubnetGroup": "DBSubnetGroupName", "AWS::CloudWatch::Dashboard": "DashboardName",
}


class Namer:
    """ARNs and Ref values of one stack's resources, in one account."""

    def __init__(self, stack: Stack, account: str):
        self.stack = stack
        self.account = account

    def name(self, logical_id: str) -> str:
        resource = self.stack.resources[logical_id]
        prop = NAME_PROPERTY.get(resource["Type"])
        value = (resource.get("Properties") or {}).get(prop) if prop else None
        value = self.concrete(value) if value is not None else None
        return value if isinstance(value, str) and value else generated_name(self.stack.name, logical_id)

    def arn(self, logical_id: str) -> str:
        kind = self.stack.resources[logical_id]["Type"]
        parent = self._parent_arn(kind, self.stack.resources[logical_id].get("Properties") or {})
        if parent:
            return parent
        return arn_for(kind, self.name(logical_id), self.account)

    def _parent_arn(self, kind: str, properties: Mapping[str, Any]) -> Optional[str]:
        if kind not in PARENT_PROPERTY:
            return None
        return parent_arn(kind, self.concrete(dict(properties)), self.account)

    def ref(self, logical_id: str) -> str:
        kind = self.stack.resources[logical_id]["Type"]
        # (A key's Ref is its id; the proof names it by ARN, the same key to IAM and KMS.)
        if kind in ("AWS::SNS::Topic", "AWS::StepFunctions::StateMachine", "AWS::SecretsManager::Secret",
                    "AWS::IAM::ManagedPolicy", "AWS::KMS::Key"):
            return self.arn(logical_id)
        return self.name(logical_id)

    def concrete(self, value: Any) -> Any:
        """`value` with Ref/GetAtt/Sub/Join/Select of resources replaced by their names and ARNs."""
        if isinstance(value, list):
            return [self.concrete(item) for item in value]
        if isinstance(value, str) and "${" in value:
            return self._sub(value)  # a Fn::Sub the template evaluator could resolve only in part
        if not isinstance(value, dict):
            return value
        if len(value) == 1:
            (function, argument), = value.items()
            if function == "Ref" and argument in self.stack.resources:
                return self.ref(argument)
            if function == "Fn::GetAtt":
                logical, attribute = argument if isinstance(argument, list) else argument.split(".", 1)
                if logical in self.stack.resources:
                    return self.arn(logical) if attribute.endswith("Arn") else f"{self.name(logical)}.{attribute}"
            if function == "Fn::Sub":
                return self._sub(argument)
            if function == "Fn::Join":
                separator, items = argument
                parts = self.concrete(items)
                if isinstance(parts, list) and all(isinstance(p, str) for p in parts):
                    return separator.join(parts)
            if function == "Fn::Select":
                index, items = argument
                items = self.concrete(items)
                if isinstance(items, list):
                    return items[int(index)]
        return {key: self.concrete(item) for key, item in value.items()}

    def _sub(self, argument: Any) -> Any:
        template, variables = (argument, {}) if isinstance(argument, str) else argument
        variables = {k: self.concrete(v) for k, v in variables.items()}

        def replace(match: re.Match[str]) -> str:
            name = match.group(1)
            if name in variables and isinstance(variables[name], str):
                return variables[name]
            logical, _, attribute = name.partition(".")
            if logical in self.stack.resources:
                return self.arn(logical) if attribute.endswith("Arn") else (
                    self.ref(logical) if not attribute else f"{self.name(logical)}.{attribute}")
            pseudo = {"AWS::AccountId": self.account, "AWS::Region": REGION, "AWS::Partition": "aws"}
            return pseudo.get(name, match.group(0))

        return re.sub(r"\$\{([^}!]+)\}", replace, template)


# ---- who calls what ------------------------------------------------------------------------------

def _role_policies(resource: Mapping[str, Any]) -> List[Mapping[str, Any]]:
    return [policy["PolicyDocument"] for policy in (resource.get("Properties") or {}).get("Policies", [])]


def role_principal(stack: Stack, logical_id: str, account: str,
                   boundaries: Optional[Mapping[str, Any]] = None) -> Principal:
    """A role as the template defines it; `boundaries` maps a boundary ARN to its document
    (a boundary the proof does not know allows nothing)."""
    namer = Namer(stack, account)
    resource = namer.concrete(stack.resources[logical_id])
    boundary = (resource.get("Properties") or {}).get("PermissionsBoundary")
    document = (boundaries or {}).get(boundary, {"Statement": []}) if boundary else None
    return Principal(arn=namer.arn(logical_id), identity_policies=_role_policies(resource), boundary=document)


def key_context(via: str, account: str) -> Dict[str, str]:
    return {"kms:ViaService": f"{via}.{REGION}.amazonaws.com", "kms:CallerAccount": account}


def _key_admin_calls(permission: str, kind: str, properties: Mapping[str, Any], arn: str, account: str,
                     why: str) -> List[Call]:
    """Calls on a key itself (no service in between): authorised by IAM and by the key's own
    policy. An alias call is authorised on the alias and on its target key (AWS KMS docs,
    "Controlling access to aliases")."""
    context = {"kms:CallerAccount": account}
    if permission == "kms:CreateKey":
        return [Call(permission, "*", why=why)]  # no key, no key policy yet
    if kind == "AWS::KMS::Key":
        return [Call(permission, arn, context, why, key_arn=arn)]
    alias = f"arn:aws:kms:{REGION}:{account}:{properties.get('AliasName')}"
    target = str(properties.get("TargetKeyId"))
    return [Call(permission, alias, why=why), Call(permission, target, context, why, key_arn=target)]


def _feature_calls(permission: str, properties: Mapping[str, Any], account: str, why: str,
                   bucket_key: Optional[str]) -> List[Call]:
    """A permission of another service, on what the feature names (see FEATURE_PERMISSIONS)."""
    if permission == "s3:GetObject":
        code = properties.get("Code") or {}
        bucket = f"arn:aws:s3:::{code.get('S3Bucket')}"
        calls = [Call(permission, f"{bucket}/{code.get('S3Key')}", why=f"{why}: fetch the code")]
        if bucket_key:  # the artifacts bucket encrypts with the env key
            context = {**key_context("s3", account), "kms:EncryptionContext:aws:s3:arn": bucket}
            calls.append(Call("kms:Decrypt", bucket_key, context, f"{why}: decrypt the code", bucket_key))
        return calls
    if permission.startswith("secretsmanager:"):  # RDS creates the managed master secret as the caller
        master = f"arn:aws:secretsmanager:{REGION}:{account}:secret:rds!cluster-{STACK_ID_SUFFIX}"
        return [Call(permission, master, why=why)]
    return [Call(permission, "*", why=why)]  # describe and log-delivery calls take no resource


def resource_calls(kind: str, operation: str, properties: Mapping[str, Any], arn: str, account: str,
                   bucket_key: Optional[str] = None, label: str = "",
                   cluster_versions: Optional[Mapping[str, str]] = None) -> List[Call]:
    """What CloudFormation calls as the execution role for `operation` on one resource, each on
    what it acts upon. Shared by the static proof (rendered templates) and the dynamic one
    (the resources the stand-in created); `properties` are resolved, `arn` the resource's.

    `bucket_key`: the KMS key the code bucket encrypts with (a function's code is read from it);
    `label`: how findings name the resource (`<stack>/<LogicalId>`); `cluster_versions`: the
    engine version of each cluster (by identifier), which its instances run."""
    why = f"{operation} {label or arn} ({kind})"
    calls: List[Call] = []
    related = related_arns(kind, properties, account, where=label or arn, cluster_versions=cluster_versions)
    for permission in required_permissions(kind, operation, properties):
        if kind.startswith("Custom::"):
            calls.append(Call(permission, str(properties.get("ServiceToken")), why=why))
        elif permission == "iam:PassRole":
            calls.extend(Call(permission, role, why=why) for role in named_roles(properties))
        elif kind in ("AWS::KMS::Key", "AWS::KMS::Alias"):
            calls.extend(_key_admin_calls(permission, kind, properties, arn, account, why))
        elif permission.startswith("kms:"):
            via = VIA_SERVICE.get(namespace(kind), namespace(kind).lower())
            context = key_context(via, account)
            if permission == "kms:CreateGrant":
                # The service creates the grant for the resource it manages.
                context["kms:GrantIsForAWSResource"] = "true"
            calls.extend(Call(permission, key, context, why, key_arn=key) for key in named_keys(properties))
        elif permission.split(":")[0] != SERVICE_PREFIX.get(namespace(kind)):
            calls.extend(_feature_calls(permission, properties, account, why, bucket_key))
        elif permission.startswith("iam:") and properties.get("PermissionsBoundary"):
            calls.append(Call(permission, arn, {"iam:PermissionsBoundary": properties["PermissionsBoundary"]}, why))
        else:
            calls.append(Call(permission, arn, why=why))
            # The other resources the action is authorised on (an option group, a parameter
            # group...), each needing the permission too.
            calls.extend(Call(permission, other, why=f"{why}: its {kind_} {other.split(f':{kind_}:', 1)[1]}")
                         for kind_, other in related_calls(permission, related))
    return calls


def execution_role_calls(stack: Stack, account: str, bucket_key: Optional[str] = None) -> List[Call]:
    """What CloudFormation calls as the execution role to create, update and delete `stack`."""
    namer = Namer(stack, account)
    calls: List[Call] = []
    clusters = {namer.ref(logical_id): str(namer.concrete(raw).get("Properties", {}).get("EngineVersion"))
                for logical_id, raw in stack.resources.items() if raw["Type"] == "AWS::RDS::DBCluster"}
    for logical_id, raw in stack.resources.items():
        resource = namer.concrete(raw)
        kind, properties = resource["Type"], resource.get("Properties") or {}
        arn = namer.arn(logical_id)
        for operation in OPERATIONS:
            calls.extend(resource_calls(kind, operation, properties, arn, account, bucket_key,
                                        label=f"{stack.name}/{logical_id}", cluster_versions=clusters))
        hosted = properties.get("HostedRotationLambda")
        if kind == "AWS::SecretsManager::RotationSchedule" and hosted:
            calls.extend(_hosted_rotation_calls(stack, logical_id, hosted, account))
    return calls


def _hosted_rotation_calls(stack: Stack, logical_id: str, hosted: Mapping[str, Any], account: str) -> List[Call]:
    """The transform turns a HostedRotationLambda into a nested stack from the SAR application."""
    nested_name = generated_name(stack.name, f"{logical_id}RotationLambda")
    nested = Stack(nested_name, {
        "RotationLambdaRole": {"Type": "AWS::IAM::Role", "Properties": {}},
        "RotationLambda": {"Type": "AWS::Lambda::Function", "Properties": {
            "FunctionName": hosted.get("RotationLambdaName"),
            "Role": f"arn:aws:iam::{account}:role/{generated_name(nested_name, 'RotationLambdaRole')}"}},
        "RotationLambdaPermission": {"Type": "AWS::Lambda::Permission",
                                     "Properties": {"FunctionName": hosted.get("RotationLambdaName")}},
    })
    why = f"nested stack of {stack.name}/{logical_id} (hosted rotation)"
    # RotationType MySQLMultiUser is the application SecretsManagerRDSMySQLRotationMultiUser.
    engine, _, users = str(hosted.get("RotationType", "MySQLSingleUser")).partition("MySQL")
    application = (f"arn:aws:serverlessrepo:{REGION}:{ROTATION_PUBLISHER}:applications/"
                   f"SecretsManagerRDS{engine}MySQLRotation{users}")
    nested_arn = arn_for("AWS::CloudFormation::Stack", nested_name, account)
    calls = [Call(p, nested_arn, why=why) for op in OPERATIONS
             for p in required_permissions("AWS::CloudFormation::Stack", op, {})]
    calls += [Call(action, application, why=why) for action in
              ("serverlessrepo:GetApplication", "serverlessrepo:CreateCloudFormationTemplate",
               "serverlessrepo:GetCloudFormationTemplate")]
    calls += execution_role_calls(nested, account)
    return calls


# What `sceptre launch`, `diff`, `status` and `delete` call for a stack (Sceptre 4.7's
# StackActions), all on the stack's own ARN; and the execution role it passes to CloudFormation.
SCEPTRE_STACK_ACTIONS = (
    "cloudformation:CreateStack", "cloudformation:UpdateStack", "cloudformation:DeleteStack",
    "cloudformation:DescribeStacks", "cloudformation:DescribeStackEvents",
    "cloudformation:DescribeStackResources", "cloudformation:GetTemplate",
    "cloudformation:CreateChangeSet", "cloudformation:DescribeChangeSet",
    "cloudformation:ExecuteChangeSet", "cloudformation:DeleteChangeSet",
    "cloudformation:GetTemplateSummary",  # sceptre diff
)


def sceptre_calls(stack: Stack, account: str, execution_role_arn: Optional[str]) -> List[Call]:
    arn = arn_for("AWS::CloudFormation::Stack", stack.name, account)
    calls = [Call(action, arn, why=f"sceptre on {stack.name}") for action in SCEPTRE_STACK_ACTIONS]
    if execution_role_arn:
        calls.append(Call("iam:PassRole", execution_role_arn,
                          {"iam:PassedToService": "cloudformation.amazonaws.com"},
                          f"sceptre creates {stack.name} with its execution role"))
    return calls + transform_calls(stack)


def resolver_calls(stack: Stack, declared: Iterable[Mapping[str, Any]], key_arn: str, account: str) -> List[Call]:
    """The calls our resolvers declare (`required_calls`), with the KMS use they imply."""
    calls = []
    for item in declared:
        why = f"resolver of {stack.name}"
        calls.append(Call(item["action"], item["resource"], why=why))
        bucket = item.get("encrypted_with_bucket_key")
        if bucket:
            context = {**key_context("s3", account), "kms:EncryptionContext:aws:s3:arn": bucket}
            calls.append(Call("kms:GenerateDataKey", key_arn, context, f"{why}: SSE-KMS upload to {bucket}",
                              key_arn))
    return calls


def transform_calls(stack: Stack) -> List[Call]:
    """A template with a Transform: the caller expands it with CreateChangeSet on the macro."""
    calls = []
    for name in stack.transform:
        macro = name.replace("AWS::", "")
        calls.append(Call("cloudformation:CreateChangeSet", TRANSFORM_ARN.format(region=REGION, name=macro),
                          why=f"{stack.name} declares Transform {name}"))
        if macro.startswith("SecretsManager"):
            calls.append(Call("cloudformation:CreateChangeSet",
                              TRANSFORM_ARN.format(region=REGION, name="Serverless-2016-10-31"),
                              why=f"{stack.name}: the {name} transform emits AWS::Serverless resources"))
    return calls


def key_user_calls(stack: Stack, account: str, boundaries: Optional[Mapping[str, Any]] = None,
                   answerers: Sequence[Principal] = ()) -> List[Tuple[Principal, Call]]:
    """Principals that use a stack's KMS key at run time on a service's behalf. `answerers`:
    roles of another stack that answer the machines' task tokens (the bootstrap's approver)."""
    namer = Namer(stack, account)
    pairs: List[Tuple[Principal, Call]] = []
    for logical_id, raw in stack.resources.items():
        resource = namer.concrete(raw)
        kind, properties = resource["Type"], resource.get("Properties") or {}
        keys = named_keys(properties)
        if kind == "AWS::Logs::LogGroup":
            logs = Principal(f"logs.{REGION}.amazonaws.com", service=True)
            for key in keys:
                context = {"kms:EncryptionContext:aws:logs:arn":
                           f"arn:aws:logs:{REGION}:{account}:log-group:{namer.name(logical_id)}"}
                for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                    pairs.append((logs, Call(action, key, context, f"logs encrypts {namer.name(logical_id)}", key)))
        if kind == "AWS::StepFunctions::StateMachine":
            role_logical = _logical_of(stack, namer, properties.get("RoleArn"))
            machine = namer.arn(logical_id)
            for key in keys:
                context = {**key_context("states", account),
                           "kms:EncryptionContext:aws:states:stateMachineArn": machine}
                if role_logical:
                    role = role_principal(stack, role_logical, account, boundaries)
                    for action in ("kms:GenerateDataKey", "kms:Decrypt"):
                        pairs.append((role, Call(action, key, context, f"{machine} runs as {role.arn}", key)))
                own = [role_principal(stack, answerer, account, boundaries)
                       for answerer in _task_answerers(stack, namer, machine)]
                for principal in [*own, *answerers]:
                    for action in ("kms:Decrypt", "kms:GenerateDataKey"):
                        pairs.append((principal, Call(action, key, context,
                                                      f"{principal.arn} reads and answers {machine}'s runs", key)))
                for rule_logical, rule in stack.resources.items():
                    if rule["Type"] != "AWS::Events::Rule":
                        continue
                    for target in namer.concrete(rule).get("Properties", {}).get("Targets", []):
                        starter = _logical_of(stack, namer, target.get("RoleArn"))
                        if target.get("Arn") == machine and starter:
                            pairs.append((role_principal(stack, starter, account, boundaries),
                                          Call("kms:GenerateDataKey", key, context,
                                               f"{rule_logical} starts {machine}", key)))
        if kind == "AWS::Lambda::Function":
            # Proof of origin: the function signs what it applies with the source env's signing key.
            key = ((properties.get("Environment") or {}).get("Variables") or {}).get("ENVSYNC_SIGNING_KEY_ARN")
            role_logical = _logical_of(stack, namer, properties.get("Role"))
            if isinstance(key, str) and key and role_logical:
                signer = role_principal(stack, role_logical, account, boundaries)
                pairs.append((signer, Call("kms:Sign", key, {"aws:PrincipalArn": signer.arn},
                                           f"{namer.name(logical_id)} signs applied migrations", key)))
        if kind == "AWS::SNS::Topic":
            alarms = Principal("cloudwatch.amazonaws.com", service=True)
            for key in keys:
                pairs.append((alarms, Call("kms:GenerateDataKey", key, {"aws:SourceAccount": account},
                                           f"alarms publish to {namer.name(logical_id)}", key)))
    return pairs


def _task_answerers(stack: Stack, namer: Namer, machine: str) -> List[str]:
    """Roles of the stack that may answer the machine's task tokens (states:SendTaskSuccess, which
    has no resource-level permissions, so it is granted on "*" or, uselessly, on the machine): they
    read its encrypted history and encrypt their decision with its key."""
    found = []
    for logical_id, resource in stack.resources.items():
        if resource["Type"] != "AWS::IAM::Role":
            continue
        for policy in _role_policies(namer.concrete(resource)):
            for statement in policy.get("Statement", []):
                actions = statement.get("Action", [])
                resources = statement.get("Resource", [])
                actions = [actions] if isinstance(actions, str) else actions
                resources = [resources] if isinstance(resources, str) else resources
                if "states:SendTaskSuccess" in actions and (machine in resources or "*" in resources) \
                        and logical_id not in found:
                    found.append(logical_id)
    return found


def _logical_of(stack: Stack, namer: Namer, arn: Any) -> Optional[str]:
    for logical_id, resource in stack.resources.items():
        if resource["Type"] == "AWS::IAM::Role" and namer.arn(logical_id) == arn:
            return logical_id
    return None


# ---- the proof --------------------------------------------------------------------------------------

def prove(env: str, principal: Principal, calls: Iterable[Call],
          key_policies: Mapping[str, Mapping[str, Any]]) -> List[Finding]:
    findings = []
    for call in calls:
        key_policy = key_policies.get(call.key_arn) if call.key_arn else None
        if call.key_arn and key_policy is None:
            key_policy = {"Statement": []}  # a key the proof does not know admits no one
        request = Request(call.action, call.resource, context=dict(call.context))
        key_account = call.key_arn.split(":")[4] if call.key_arn else None
        verdict = authorize(principal, request, key_policy=key_policy, resource_account=key_account)
        if not verdict.allowed:
            findings.append(Finding(env, principal.arn, call, verdict))
    return findings
