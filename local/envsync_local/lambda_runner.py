"""Run a deployed Lambda function offline, as Lambda would: its handler, its environment, its role.

moto stores functions but cannot run Python without Docker. Local mode reads the function's
configuration from moto (Handler, Environment, Role, Timeout), assumes its execution role (so
the handler's AWS calls land in the function's account with the role's identity), and runs the
handler from lambda_code in a fresh interpreter — a new "container" per invocation, killed
at the function's timeout exactly as Lambda would.

Child side: `python -m envsync_local.lambda_runner <module.function>` reads the event from
stdin and writes `{"result": ...}` or `{"errorType", "errorMessage"}` as the last stdout line.
"""

from __future__ import annotations

import importlib
import json
import os
import subprocess
import sys
import time
import uuid
from dataclasses import dataclass
from typing import Any, Dict, Optional

import boto3

from envsync_local.paths import PROJECT_ROOT

RESULT_MARKER = "__envsync_lambda_result__"

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

def invoke(session: boto3.Session, endpoint_url: str, function: str, event: Any,
           runtime_env: Optional[Dict[str, str]] = None, timeout: Optional[float] = None) -> Invocation:
    """Invoke `function` (name or ARN) of the session's account with `event`.

    runtime_env: what differs between the Lambda container and this machine (e.g. the CA
    bundle path of the local database stand-ins).
    """
    config = session.client("lambda", endpoint_url=endpoint_url).get_function_configuration(
        FunctionName=function)
    env = {
        "PATH": os.environ.get("PATH", "/usr/bin:/bin"),
        "PYTHONPATH": os.pathsep.join([str(PROJECT_ROOT / "lambda_code"), str(PROJECT_ROOT / "local"),
                                       str(PROJECT_ROOT)]),
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
            [sys.executable, "-m", "envsync_local.lambda_runner", config["Handler"]],
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

class _Context:
    """The parts of the Lambda context object handlers use."""

    def __init__(self, timeout_s: float):
        self.function_name = os.environ.get("AWS_LAMBDA_FUNCTION_NAME", "local")
        self.function_version = "$LATEST"
        self.invoked_function_arn = f"arn:aws:lambda:local:function:{self.function_name}"
        self.memory_limit_in_mb = 512
        self.aws_request_id = str(uuid.uuid4())
        self.log_group_name = f"/aws/lambda/{self.function_name}"
        self.log_stream_name = "local"
        self._deadline = time.monotonic() + timeout_s

    def get_remaining_time_in_millis(self) -> int:
        return max(0, int((self._deadline - time.monotonic()) * 1000))

def main() -> None:
    handler_path = sys.argv[1]
    module_name, _, function_name = handler_path.rpartition(".")
    event = json.loads(sys.stdin.read() or "null")
    context = _Context(float(os.environ.get("AWS_LAMBDA_FUNCTION_TIMEOUT", "3")))
    try:
        handler = getattr(importlib.import_module(module_name), function_name)
        outcome: Dict[str, Any] = {"result": handler(event, context)}
    except Exception as err:  # reported to the caller as Lambda reports it
        outcome = {"errorType": type(err).__name__, "errorMessage": str(err)}
    sys.stdout.flush()
    print(RESULT_MARKER + json.dumps(outcome, default=str))

if __name__ == "__main__":
    main()
