"""Records every AWS API call that reaches the stand-in, with its caller (runs in the moto server).

The permission proof (`envsync_local.proof.dynamic`) evaluates the record afterwards against the
deployed policies; this module only writes facts, one JSON object per line:
- `"kind": "api"`: the IAM action moto derived for the request, the calling account, the access
  key's role and session (moto's STS knows which role each key was issued for), moto's resource
  for S3, and the request's identifying parameters (names and ARNs only: values that can hold
  secrets — SecretString, Value, Body, Plaintext... — are never written);
- `"kind": "cfn"`: a resource CloudFormation created or updated, with the stack's execution
  role (`RoleARN` of CreateStack), its physical ARN, and the properties its handler
  permissions depend on (`handler_permissions.permission_properties`: keys, roles, boundary...).
  CloudFormation's own calls for it are the execution role's;
- `"kind": "attempt"`: a stack's create ended (its stack id and status: ROLLBACK_COMPLETE or
  ROLLBACK_FAILED is a rolled-back attempt); `"kind": "attempt-key"`: an access key minted
  while that create ran (a custom resource's function role), so the calls made with it belong
  to that attempt. `cfn` records carry their attempt's stack id. The proof scopes calls by
  attempt (`envsync_local.proof.dynamic`).

Hooked at moto's one seam for request authorisation (`ActionAuthenticatorMixin`) and its
CloudFormation resource parser; upstream moto has no request-listener API that would remove
these two wrappers.
"""

from __future__ import annotations

import contextvars
import functools
import json
import threading
from pathlib import Path
from typing import Any, Callable, Dict, Optional
from urllib.parse import parse_qs, urlparse

from envsync_tools.proof.handler_permissions import permission_properties

# Parameters that identify what a call is about. Nothing else is recorded.
IDENTIFYING = {
    "Name", "Names", "SecretId", "KeyId", "RoleArn", "RoleSessionName", "TopicArn", "TargetArn",
    "stateMachineArn", "executionArn", "FunctionName", "logGroupName", "logStreamName",
    "LogGroupName", "StackName", "RoleARN", "Namespace", "WithDecryption", "Type", "AlarmNames",
    "ParameterName", "ResourceId", "Bucket", "Key", "VersionId", "ChangeSetName", "Filters",
    "ExternalId",  # sts:ExternalId, which the source-reader's trust policy checks
}
_lock = threading.Lock()
# The stack id whose create runs in this thread: what is made meanwhile belongs to that attempt.
_attempt: contextvars.ContextVar[Optional[str]] = contextvars.ContextVar("envsync_stack_attempt", default=None)
TOKEN_ACTIONS = {"states:SendTaskSuccess", "states:SendTaskFailure", "states:SendTaskHeartbeat"}


def _machine_of_token(executions_dir: Path, handler: Any) -> str:
    from envsync_local import executions

    try:
        token = json.loads(handler.body).get("taskToken", "")
    except (TypeError, ValueError):
        return "*"
    record = executions.waiting_on(executions_dir, str(token))
    return str(record["stateMachineArn"]) if record else "*"


def _params(handler: Any) -> Dict[str, Any]:
    found: Dict[str, Any] = {}
    for key, values in (getattr(handler, "querystring", None) or {}).items():
        if key in IDENTIFYING or key.startswith("Names.member"):
            found[key] = values[0] if isinstance(values, list) and len(values) == 1 else values
    body = getattr(handler, "body", None)
    if isinstance(body, (bytes, str)) and body[:1] in (b"{", "{"):
        try:
            document = json.loads(body)
        except ValueError:
            document = {}
        if isinstance(document, dict):
            found.update({k: v for k, v in document.items() if k in IDENTIFYING})
    return found


def _caller(account: str, access_key: str) -> Dict[str, Optional[str]]:
    from moto.sts.models import sts_backends

    for partition in ("aws",):
        assumed = sts_backends[account][partition].get_assumed_role_from_access_key(access_key)
        if assumed is not None:
            return {"role_arn": assumed.role_arn, "session": assumed.session_name}
    return {"role_arn": None, "session": None}


def _write(path: Path, record: Dict[str, Any]) -> None:
    line = json.dumps(record, default=str, sort_keys=True)
    with _lock, open(path, "a", encoding="utf-8") as log:
        log.write(line + "\n")


def _record_request(path: Path, handler: Any, resource: str) -> None:
    authorization = handler.headers.get("Authorization", "") or ""
    credential = authorization.split("Credential=", 1)[1].split(",", 1)[0] if "Credential=" in authorization else ""
    scope = credential.split("/")
    if len(scope) < 4:
        return  # an unsigned request (moto's own API)
    access_key, service = scope[0], scope[3]
    account = handler.current_account
    action = handler._get_action()
    record = {"kind": "api", "account": account, "service": service,
              "action": f"{service}:{action[0] if isinstance(action, list) else action}",
              "method": handler.method, "path": urlparse(handler.uri).path, "resource": resource,
              "params": _params(handler),
              "access_key": access_key, **_caller(account, access_key)}
    if service == "lambda" and "/functions/" in record["path"]:
        record["params"]["FunctionName"] = record["path"].split("/functions/", 1)[1].split("/")[0]
    if record["action"] in TOKEN_ACTIONS:
        # The token is a credential: record the state machine it belongs to instead (what IAM
        # evaluates SendTask* against), found among the stand-in's waiting executions.
        record["params"]["stateMachineArn"] = _machine_of_token(path.parent / "executions", handler)
    query = parse_qs(urlparse(handler.uri).query)
    if service == "s3" and "versionId" in query:
        record["params"]["VersionId"] = query["versionId"][0]
    if service == "s3" and "prefix" in query:  # a listing's s3:prefix condition key
        record["params"]["Prefix"] = query["prefix"][0]
    _write(path, record)


def _record_resource(path: Path, operation: str, logical_id: str, resource_json: Dict[str, Any],
                     resources_map: Any, account_id: str, region_name: str, resource: Any) -> None:
    from moto.cloudformation import parsing
    from moto.cloudformation.models import cloudformation_backends

    stack = cloudformation_backends[account_id][region_name].stacks.get(resources_map.stack_id)
    try:
        properties = parsing.clean_json(resource_json.get("Properties", {}), resources_map)
    except Exception:  # a property that cannot be resolved yet: record what the template says
        properties = resource_json.get("Properties", {})
    _write(path, {"kind": "cfn", "operation": operation, "account": account_id, "type": resource_json.get("Type"),
                  "logical_id": logical_id, "stack": getattr(stack, "name", None),
                  "stack_id": resources_map.stack_id,
                  "execution_role": getattr(stack, "role_arn", None),
                  "arn": getattr(resource, "arn", None) if resource is not None else None,
                  "physical_id": getattr(resource, "physical_resource_id", None) if resource is not None else None,
                  # only what the handler's permissions depend on: never a value that can hold a secret
                  "properties": permission_properties(properties) if isinstance(properties, dict) else {}})


def install(path: Path) -> None:
    """Record every request and every stack resource operation into `path` (JSON lines)."""
    from moto.cloudformation import parsing
    from moto.core.authorization import ActionAuthenticatorMixin

    path.parent.mkdir(parents=True, exist_ok=True)
    original = ActionAuthenticatorMixin._authenticate_and_authorize_action

    @functools.wraps(original)
    def authenticate_and_record(self: Any, iam_request_cls: type, resource: str = "*") -> None:
        try:
            _record_request(path, self, resource)
        except Exception as error:  # the record must never change the answer
            _write(path, {"kind": "error", "error": repr(error)})
        return original(self, iam_request_cls, resource)

    ActionAuthenticatorMixin._authenticate_and_authorize_action = authenticate_and_record

    def wrap(operation: str, function: Callable[..., Any]) -> Callable[..., Any]:
        @functools.wraps(function)
        def recorded(logical_id: str, resource_json: Dict[str, Any], resources_map: Any,
                     account_id: str, region_name: str) -> Any:
            resource = function(logical_id, resource_json, resources_map, account_id, region_name)
            if resource is not None or operation == "update":
                try:
                    _record_resource(path, operation, logical_id, resource_json, resources_map,
                                     account_id, region_name, resource)
                except Exception as error:
                    _write(path, {"kind": "error", "error": repr(error)})
            return resource

        return recorded

    parsing.parse_and_create_resource = wrap("create", parsing.parse_and_create_resource)
    parsing.parse_and_update_resource = wrap("update", parsing.parse_and_update_resource)
    _record_attempts(path)


def _record_attempts(path: Path) -> None:
    """Each stack create's outcome, and the access keys minted while it ran (installed after
    stack_engine and failed_create, so the outcome is the one after any rollback)."""
    from moto.cloudformation.models import Stack
    from moto.sts.models import STSBackend

    create_resources = Stack.create_resources

    @functools.wraps(create_resources)
    def create_recorded(self: Any) -> None:
        token = _attempt.set(self.stack_id)
        try:
            create_resources(self)
        finally:
            _attempt.reset(token)
            _write(path, {"kind": "attempt", "account": self.account_id, "stack": self.name,
                          "stack_id": self.stack_id, "status": self.status})

    Stack.create_resources = create_recorded  # type: ignore[method-assign]
    assume_role = STSBackend.assume_role

    @functools.wraps(assume_role)
    def assume_recorded(self: Any, *args: Any, **kwargs: Any) -> Any:
        role = assume_role(self, *args, **kwargs)
        attempt = _attempt.get()
        if attempt is not None:
            _write(path, {"kind": "attempt-key", "stack_id": attempt, "access_key": role.access_key_id})
        return role

    STSBackend.assume_role = assume_recorded  # type: ignore[method-assign]
