"""Run a deployed Lambda function offline, as Lambda would: its package, its environment, its role.

moto stores functions but cannot run Python without Docker. Local mode reads the function's
configuration and code location from moto (GetFunction: Handler, Environment, Role, Timeout,
CodeSha256, Code.Location), downloads the deployed package once into a cache keyed by its
SHA-256, assumes the function's execution role (so the handler's AWS calls land in the
function's account with the role's identity), and runs the handler from the package, with only
the runtime's SDK beside it (envsync_local.lambda_package), in a fresh interpreter — a new
"container" per invocation, killed at the function's timeout exactly as Lambda would.

The child side is envsync_local.lambda_bootstrap.
"""

from __future__ import annotations

import base64
import hashlib
import json
import os
import subprocess
import time
import urllib.request
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, Optional

import boto3

from envsync_local import lambda_package
from envsync_local.lambda_bootstrap import RESULT_MARKER


class LambdaInvocationError(Exception):
    """The handler raised (errorType is the exception class, as Lambda reports it)."""

    def __init__(self, error_type: str, message: str, function_name: str = "", logs: str = ""):
        super().__init__(f"{error_type}: {message}")
        self.error_type = error_type
        self.message = message
        self.function_name = function_name
        self.logs = logs  # what the invocation printed before it failed (Lambda ships it too)

@dataclass
class Invocation:
    function_name: str
    result: Any
    duration_s: float
    logs: str

def _role_credentials(session: boto3.Session, endpoint_url: str, role_arn: str) -> Dict[str, str]:
    credentials = session.client("sts", endpoint_url=endpoint_url).assume_role(
        RoleArn=role_arn, RoleSessionName=f"lambda-{uuid.uuid4().hex[:8]}")["Credentials"]
    return {
        "AWS_ACCESS_KEY_ID": credentials["AccessKeyId"],
        "AWS_SECRET_ACCESS_KEY": credentials["SecretAccessKey"],
        "AWS_SESSION_TOKEN": credentials["SessionToken"],
    }

def deployed_package(described: Dict[str, Any], root: Path) -> Path:
    """The function's package unpacked: from the cache when its CodeSha256 is there, else
    downloaded from Code.Location and checked against CodeSha256."""
    sha256 = base64.b64decode(described["Configuration"]["CodeSha256"]).hex()
    cached = root / "packages" / sha256
    if cached.is_dir():
        return cached
    location = described.get("Code", {}).get("Location", "")
    if not location.startswith("http://127.0.0.1:"):
        raise lambda_package.PackageError(f"no downloadable package (Code.Location {location!r})")
    with urllib.request.urlopen(location, timeout=30) as response:  # noqa: S310 - the stand-in's own URL
        code = response.read()
    if hashlib.sha256(code).hexdigest() != sha256:
        raise lambda_package.PackageError("the downloaded package does not match CodeSha256")
    return lambda_package.unpack(code, root)


def invoke(session: boto3.Session, endpoint_url: str, function: str, event: Any,
           runtime_env: Optional[Dict[str, str]] = None, timeout: Optional[float] = None) -> Invocation:
    """Invoke `function` (name or ARN) of the session's account with `event`.

    runtime_env: what differs between the Lambda container and this machine (e.g. the CA
    bundle path of the local database stand-ins).
    """
    described = session.client("lambda", endpoint_url=endpoint_url).get_function(FunctionName=function)
    config = described["Configuration"]
    root = lambda_package.cache_root()
    try:
        package = deployed_package(described, root)
    except (lambda_package.PackageError, OSError) as err:
        raise LambdaInvocationError("Lambda.PackageError", f"{function}: {err}", config["FunctionName"]) from err
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        **lambda_package.process_env(package, root, config.get("Runtime", "")),
        "AWS_ENDPOINT_URL": endpoint_url,
        "AWS_REGION": session.region_name or "us-east-1",
        "AWS_DEFAULT_REGION": session.region_name or "us-east-1",
        "AWS_LAMBDA_FUNCTION_NAME": config["FunctionName"],
        "AWS_LAMBDA_FUNCTION_TIMEOUT": str(config.get("Timeout", 3)),
        "AWS_CONFIG_FILE": os.devnull,
        "AWS_SHARED_CREDENTIALS_FILE": os.devnull,
    }
    env.update(config.get("Environment", {}).get("Variables", {}))
    env.update(_role_credentials(session, endpoint_url, config["Role"]))
    env.update(runtime_env or {})
    limit = timeout if timeout is not None else float(config.get("Timeout", 3))
    started = time.monotonic()
    try:
        completed = subprocess.run(
            lambda_package.command(config["Handler"], config.get("Runtime", "")), cwd=package,
            input=json.dumps(event), capture_output=True, text=True, env=env, timeout=limit, check=False,
        )
    except subprocess.TimeoutExpired as err:
        printed = (err.stdout or b"").decode(errors="replace") if isinstance(err.stdout, bytes) else (err.stdout or "")
        raise LambdaInvocationError("States.Timeout", f"{function} timed out after {limit:.0f}s",
                                    config["FunctionName"], printed) from err
    duration = time.monotonic() - started
    lines = completed.stdout.rstrip().splitlines()
    logs = "\n".join(lines[:-1]) + completed.stderr
    if not lines or not lines[-1].startswith(RESULT_MARKER):
        raise LambdaInvocationError("Lambda.Unknown", f"{function} exited {completed.returncode}: "
                                    f"{completed.stderr.strip()[-1500:]}", config["FunctionName"],
                                    completed.stdout + completed.stderr)
    outcome = json.loads(lines[-1][len(RESULT_MARKER):])
    if "errorType" in outcome:
        raise LambdaInvocationError(outcome["errorType"], outcome["errorMessage"], config["FunctionName"], logs)
    return Invocation(config["FunctionName"], outcome["result"], duration, logs)
