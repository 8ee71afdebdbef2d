"""Custom resource types whose Lambda handler runs locally instead of in a Lambda container.

moto's generic `CustomModel` invokes the function through Docker and waits for a response
that never comes without it. A type registered here (`Custom::SecureStringParameter`,
`Custom::SyncUsers`) finds the ServiceToken's function in moto's Lambda backend and runs its real handler with the
CloudFormation custom-resource event, in a child process of this interpreter (the bootstrap
shared with the offline Lambda invoker, envsync_local.lambda_package):

- the function's deployment package (the zip moto copied from Code.S3Bucket/S3Key when the
  function was created, as Lambda does), unpacked once by its SHA-256, with only the
  runtime's SDK beside it; a function without a package fails;
- the function's environment variables, the region, and credentials of the function's role
  in the stack's account (moto's STS `AssumeRole`, as Lambda does), pointed at this server;
- the function's Timeout (then the resource fails, instead of CloudFormation's 1-hour wait).

A child process, not a thread: the environment and credentials are per invocation, while
this server's `os.environ` is shared by all its request threads. The response is PUT to a
one-shot HTTP listener (the pre-signed S3 URL of real CloudFormation); FAILED fails the
resource with the handler's Reason; Data answers `Fn::GetAtt`.
"""

from __future__ import annotations

import json
import os
import subprocess
import threading
import uuid
from http.server import BaseHTTPRequestHandler, HTTPServer
from typing import Any, Dict, Optional

from moto import settings
from moto.awslambda.models import LambdaFunction
from moto.awslambda.utils import get_backend as get_lambda_backend
from moto.core.common_models import CloudFormationModel
from moto.sts.models import sts_backends
from moto.utilities.utils import get_partition

from envsync_local import lambda_package
from envsync_local.cfn_models.stack_engine import ResourceFailed
from envsync_local.lambda_bootstrap import RESULT_MARKER

MAX_TIMEOUT_SECONDS = 300
OUTPUT_TAIL = 1500


class _ResponseListener:
    """Receives the one PUT a custom resource handler sends to its ResponseURL."""

    def __init__(self) -> None:
        received: Dict[str, Any] = {}

        class Handler(BaseHTTPRequestHandler):
            def do_PUT(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                received["body"] = json.loads(self.rfile.read(length) or b"{}")
                self.send_response(200)
                self.end_headers()

            def log_message(self, *args: Any) -> None:
                pass

        self.received = received
        self.server = HTTPServer(("127.0.0.1", 0), Handler)
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/cfn-response"

    def __enter__(self) -> _ResponseListener:
        self.thread.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.server.shutdown()
        self.server.server_close()


def _stringify(value: Any) -> Any:
    """CloudFormation hands custom resources every scalar property as a string."""
    if isinstance(value, dict):
        return {key: _stringify(child) for key, child in value.items()}
    if isinstance(value, list):
        return [_stringify(child) for child in value]
    if isinstance(value, bool):
        return "true" if value else "false"
    return value if isinstance(value, str) else str(value)


def _function_env(function: LambdaFunction, account_id: str, region_name: str) -> Dict[str, str]:
    role = sts_backends[account_id][get_partition(region_name)].assume_role(
        region_name=region_name, role_session_name=function.function_name,
        role_arn=function.role, policy="", duration=900, external_id="")
    env = {key: str(value) for key, value in (function.environment_vars or {}).items()}
    env.update({
        "AWS_ACCESS_KEY_ID": role.access_key_id,
        "AWS_SECRET_ACCESS_KEY": role.secret_access_key,
        "AWS_SESSION_TOKEN": role.session_token,
        "AWS_REGION": region_name,
        "AWS_DEFAULT_REGION": region_name,
        "AWS_ENDPOINT_URL": f"http://127.0.0.1:{settings.moto_server_port()}",
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
        "AWS_LAMBDA_FUNCTION_NAME": function.function_name,
        "AWS_LAMBDA_FUNCTION_MEMORY_SIZE": str(function.memory_size),
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(function.timeout),
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
    })
    return env


def run_function(function: LambdaFunction, event: Dict[str, Any], account_id: str,
                 region_name: str) -> subprocess.CompletedProcess[str]:
    """Run the function's handler on `event` in a child process, as Lambda would."""
    if not function.handler:
        raise RuntimeError(f"function {function.function_name} has no Handler")
    timeout = min(float(function.timeout or 3), MAX_TIMEOUT_SECONDS)
    root = lambda_package.cache_root()
    try:
        package = lambda_package.unpack(getattr(function, "code_bytes", b""), root)
    except lambda_package.PackageError as error:
        raise RuntimeError(f"function {function.function_name}: {error}") from None
    env = _function_env(function, account_id, region_name)
    env.update(lambda_package.process_env(package, root, str(getattr(function, "run_time", "") or "")))
    try:
        return subprocess.run(
            lambda_package.command(function.handler, str(getattr(function, "run_time", "") or "")), cwd=package,
            input=json.dumps(event), capture_output=True, text=True, env=env,
            timeout=timeout, check=False)
    except subprocess.TimeoutExpired:
        raise RuntimeError(f"function {function.function_name} timed out after {timeout:.0f} s") from None


def invoke_function(function: LambdaFunction, event: Dict[str, Any], account_id: str,
                    region_name: str) -> Any:
    """Run the handler; its result, or RuntimeError with the error as Lambda reports it."""
    result = run_function(function, event, account_id, region_name)
    last = (result.stdout or "").rstrip().splitlines()[-1:] or [""]
    if last[0].startswith(RESULT_MARKER):
        outcome = json.loads(last[0][len(RESULT_MARKER):])
        if "errorType" not in outcome:
            return outcome.get("result")
    raise RuntimeError(f"function {function.function_name} failed: {_failure(result)}")


def invoke_custom_resource_handler(function: LambdaFunction, event: Dict[str, Any],
                                   account_id: str, region_name: str) -> Dict[str, Any]:
    """Run the function's handler with `event`; return the response it PUT to ResponseURL."""
    with _ResponseListener() as listener:
        result = run_function(function, {**event, "ResponseURL": listener.url}, account_id, region_name)
        if "body" not in listener.received:
            raise RuntimeError(f"function {function.function_name} did not answer CloudFormation: "
                               f"{_failure(result)}")
        return listener.received["body"]


def _failure(result: subprocess.CompletedProcess[str]) -> str:
    """The handler's error as Lambda reports it, else the end of its output."""
    last = (result.stdout or "").rstrip().splitlines()[-1:] or [""]
    if last[0].startswith(RESULT_MARKER):
        outcome = json.loads(last[0][len(RESULT_MARKER):])
        if "errorType" in outcome:
            return f"{outcome['errorType']}: {outcome['errorMessage']}"
    return f"exit {result.returncode}: {(result.stderr or '')[-OUTPUT_TAIL:]}"


class LambdaBackedCustomResource:
    """Shared behaviour of the custom resource types below (each is its own model class)."""

    def __init__(self, logical_id: str, stack_id: str, resource_type: str,
                 properties: Dict[str, Any], physical_id: str, data: Dict[str, Any]):
        self.logical_id = logical_id
        self.stack_id = stack_id
        self.resource_type = resource_type
        self.properties = properties
        self.physical_id = physical_id
        self.data = data

    @property
    def physical_resource_id(self) -> str:
        return self.physical_id

    @staticmethod
    def cloudformation_name_type() -> str:
        return ""

    @classmethod
    def has_cfn_attr(cls, attr: str) -> bool:
        return True  # Data keys are known only once the handler answers

    def get_cfn_attribute(self, attribute_name: str) -> Any:
        from moto.cloudformation.exceptions import UnformattedGetAttTemplateException

        if attribute_name in self.data:
            return self.data[attribute_name]
        raise UnformattedGetAttTemplateException()

    def is_created(self) -> bool:
        return True

    @staticmethod
    def _request(request_type: str, logical_id: str, stack_id: str, resource_type: str,
                 properties: Dict[str, Any], account_id: str, region_name: str,
                 physical_id: Optional[str] = None,
                 old_properties: Optional[Dict[str, Any]] = None) -> Dict[str, Any]:
        service_token = properties.get("ServiceToken")
        if not service_token:
            raise ResourceFailed(logical_id, resource_type, "ServiceToken is required")
        try:
            function = get_lambda_backend(account_id, region_name).get_function(service_token)
        except Exception:
            raise ResourceFailed(logical_id, resource_type,
                                 f"ServiceToken {service_token}: no such function in account "
                                 f"{account_id} ({region_name})") from None
        event: Dict[str, Any] = {
            "RequestType": request_type,
            "ServiceToken": service_token,
            "StackId": stack_id,
            "RequestId": str(uuid.uuid4()),
            "LogicalResourceId": logical_id,
            "ResourceType": resource_type,
            "ResourceProperties": _stringify(properties),
        }
        if physical_id is not None:
            event["PhysicalResourceId"] = physical_id
        if old_properties is not None:
            event["OldResourceProperties"] = _stringify(old_properties)
        try:
            response = invoke_custom_resource_handler(function, event, account_id, region_name)
        except RuntimeError as error:
            raise ResourceFailed(logical_id, resource_type, str(error)) from None
        if response.get("Status") != "SUCCESS":
            raise ResourceFailed(logical_id, resource_type,
                                 f"Received response status [FAILED] from custom resource. "
                                 f"Message returned: {response.get('Reason') or '(none)'}")
        if response.get("RequestId") != event["RequestId"] or \
                response.get("LogicalResourceId") != logical_id:
            raise ResourceFailed(logical_id, resource_type,
                                 "custom resource response does not match the request")
        return response

    @classmethod
    def create_from_cloudformation_json(  # type: ignore[misc]
        cls, resource_name: str, cloudformation_json: Dict[str, Any], account_id: str,
        region_name: str, **kwargs: Any,
    ) -> Any:
        logical_id, stack_id = kwargs["LogicalId"], kwargs["StackId"]
        resource_type = kwargs.get("ResourceType", cls.cloudformation_type())  # type: ignore[attr-defined]
        properties = cloudformation_json["Properties"]
        response = cls._request("Create", logical_id, stack_id, resource_type, properties,
                                account_id, region_name)
        return cls(logical_id, stack_id, resource_type, properties,
                   response["PhysicalResourceId"], response.get("Data") or {})

    @classmethod
    def update_from_cloudformation_json(  # type: ignore[misc]
        cls, original_resource: LambdaBackedCustomResource, new_resource_name: str,
        cloudformation_json: Dict[str, Any], account_id: str, region_name: str,
    ) -> Any:
        old = original_resource
        properties = cloudformation_json["Properties"]
        response = cls._request("Update", old.logical_id, old.stack_id, old.resource_type,
                                properties, account_id, region_name, physical_id=old.physical_id,
                                old_properties=old.properties)
        updated = cls(old.logical_id, old.stack_id, old.resource_type, properties,
                      response["PhysicalResourceId"], response.get("Data") or {})
        if updated.physical_id != old.physical_id:
            # A new physical id means replacement: CloudFormation deletes the old resource
            # (with its old properties) once the update succeeded.
            old.delete(account_id, region_name)
        return updated

    def delete(self, account_id: str, region_name: str) -> None:
        self._request("Delete", self.logical_id, self.stack_id, self.resource_type,
                      self.properties, account_id, region_name, physical_id=self.physical_id)


class SecureStringParameter(LambdaBackedCustomResource, CloudFormationModel):
    """Custom::SecureStringParameter (lambda_code/envsync/lambdas/secure_parameter.py)."""

    @staticmethod
    def cloudformation_type() -> str:
        return "Custom::SecureStringParameter"


class SyncUsers(LambdaBackedCustomResource, CloudFormationModel):
    """Custom::SyncUsers (lambda_code/envsync/lambdas/sync_users.py)."""

    @staticmethod
    def cloudformation_type() -> str:
        return "Custom::SyncUsers"
