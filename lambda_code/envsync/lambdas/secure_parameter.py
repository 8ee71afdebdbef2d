"""Custom::SecureStringParameter: an SSM SecureString parameter encrypted with the env's CMK.

`AWS::SSM::Parameter` cannot create SecureString parameters, so the aurora stack declares
`Custom::SecureStringParameter` (ServiceToken = this function) with Name, Value, KeyId and an
optional Description. Create/Update put the parameter (Tier Standard, KMS key KeyId); a new
Name on update creates the new parameter and returns it as the new PhysicalResourceId, so
CloudFormation deletes the old one afterwards (replacement). Delete removes it (already gone
is fine). A create that finds the name taken adopts the parameter only when it is a
SecureString holding exactly this value (what a retained earlier stack of the same env left,
e.g. prod's after a delete and relaunch); any other parameter is refused, never overwritten.
The Value is a connection string: it must not hold a password (the password stays in Secrets
Manager), and it is never logged.

Runs on the Lambda Python 3.9 runtime with the standard library and boto3 only. The core
(`parse_request`, `apply`, `response_body`) is pure or takes the SSM client as an argument;
`handler` is the thin edge.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass
from typing import Any, Dict, Mapping, Optional

from envsync.errors import EnvsyncError
from envsync.lambdas.cfn_response import response_body, send_response

RESOURCE_TYPE = "Custom::SecureStringParameter"

logger = logging.getLogger("envsync.lambdas.secure_parameter")
logger.setLevel(logging.INFO)


class RequestError(EnvsyncError, ValueError):
    """The request cannot be honoured; the reason goes back to CloudFormation."""


@dataclass(frozen=True)
class ParameterSpec:
    name: str
    value: str
    key_id: str
    description: str = ""


@dataclass(frozen=True)
class Request:
    request_type: str  # Create | Update | Delete
    physical_id: Optional[str]
    spec: Optional[ParameterSpec]  # None for Delete
    old_spec: Optional[ParameterSpec]


def contains_password(value: str) -> bool:
    """True when the value is JSON with a "password" key at any depth (any case)."""
    try:
        document = json.loads(value)
    except (TypeError, ValueError):
        return False

    def walk(node: Any) -> bool:
        if isinstance(node, dict):
            return any(str(key).lower() == "password" or walk(child) for key, child in node.items())
        if isinstance(node, list):
            return any(walk(child) for child in node)
        return False

    return walk(document)


def parse_spec(properties: Mapping[str, Any], where: str) -> ParameterSpec:
    missing = [key for key in ("Name", "Value", "KeyId") if not properties.get(key)]
    if missing:
        raise RequestError(f"{where}: missing {', '.join(missing)}")
    name, value = str(properties["Name"]), str(properties["Value"])
    if not name.startswith("/"):
        raise RequestError(f"{where}: Name {name!r} must be a path starting with '/'")
    if contains_password(value):
        raise RequestError(
            f"{where}: Value of {name} contains a \"password\" key; keep passwords in Secrets "
            "Manager and put the secret's ARN in the connection string instead")
    return ParameterSpec(name=name, value=value, key_id=str(properties["KeyId"]),
                         description=str(properties.get("Description", "")))


def parse_request(event: Mapping[str, Any]) -> Request:
    request_type = event.get("RequestType")
    if request_type not in ("Create", "Update", "Delete"):
        raise RequestError(f"unknown RequestType {request_type!r}")
    physical_id = event.get("PhysicalResourceId")
    if request_type == "Delete":
        return Request(request_type, physical_id, None, None)
    spec = parse_spec(event.get("ResourceProperties") or {}, "ResourceProperties")
    old_spec = None
    if request_type == "Update":
        old = event.get("OldResourceProperties") or {}
        old_spec = ParameterSpec(name=str(old.get("Name", physical_id)), value="",
                                 key_id=str(old.get("KeyId", "")))
    return Request(request_type, physical_id, spec, old_spec)


def holds_exactly(ssm: Any, spec: ParameterSpec) -> bool:
    """True when the existing parameter `spec.name` is a SecureString whose value is spec.value."""
    existing = ssm.get_parameter(Name=spec.name, WithDecryption=True)["Parameter"]
    return existing.get("Type") == "SecureString" and existing.get("Value") == spec.value


def apply(ssm: Any, request: Request) -> Dict[str, Any]:
    """Do the request with an SSM client; return PhysicalResourceId and Data."""
    if request.request_type == "Delete":
        if request.physical_id and request.physical_id.startswith("/"):
            try:
                ssm.delete_parameter(Name=request.physical_id)
            except ssm.exceptions.ParameterNotFound:
                pass
        return {"PhysicalResourceId": request.physical_id, "Data": {}}
    spec = request.spec
    assert spec is not None
    # Same name on update: overwrite in place. New name (or create): a new parameter, which
    # must not already exist (CloudFormation deletes the old one after a replacement).
    overwrite = request.request_type == "Update" and request.physical_id == spec.name
    kwargs: Dict[str, Any] = {"Name": spec.name, "Value": spec.value, "Type": "SecureString",
                              "KeyId": spec.key_id, "Overwrite": overwrite, "Tier": "Standard"}
    if spec.description:
        kwargs["Description"] = spec.description
    try:
        version = ssm.put_parameter(**kwargs)["Version"]
    except ssm.exceptions.ParameterAlreadyExists:
        if not holds_exactly(ssm, spec):
            raise RequestError(f"parameter {spec.name} already exists with another type or value "
                               "(not created by this stack); delete it or choose another Name") from None
        # Ours in all but the key and description: put them (a new version, same value).
        version = ssm.put_parameter(**{**kwargs, "Overwrite": True})["Version"]
    return {"PhysicalResourceId": spec.name,
            "Data": {"Name": spec.name, "Version": str(version), "KeyId": spec.key_id}}


def _log(message: str, event: Mapping[str, Any], **fields: Any) -> None:
    # Only identifiers: never the Value (a connection string) or the whole event.
    properties = event.get("ResourceProperties") or {}
    logger.info(json.dumps({
        "message": message, "request_type": event.get("RequestType"),
        "logical_resource_id": event.get("LogicalResourceId"), "request_id": event.get("RequestId"),
        "name": properties.get("Name"), "physical_resource_id": event.get("PhysicalResourceId"),
        **fields,
    }))


def handler(event: Dict[str, Any], context: Any, ssm: Any = None) -> Dict[str, Any]:
    """Lambda entry point: do the request, always answer CloudFormation."""
    _log("request", event)
    try:
        request = parse_request(event)
        if ssm is None:
            import boto3  # the Lambda runtime provides it

            ssm = boto3.client("ssm")
        result = apply(ssm, request)
        body = response_body(event, "SUCCESS", "", result["PhysicalResourceId"], result["Data"])
    except RequestError as error:
        body = response_body(event, "FAILED", str(error), event.get("PhysicalResourceId"))
    except Exception as error:  # report any AWS error to CloudFormation instead of hanging it
        body = response_body(event, "FAILED", f"{error.__class__.__name__}: {error}",
                             event.get("PhysicalResourceId"))
    _log("response", event, status=body["Status"], reason=body["Reason"],
         new_physical_resource_id=body["PhysicalResourceId"])
    send_response(event["ResponseURL"], body)
    return body
