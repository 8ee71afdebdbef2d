"""The moto server process that stands in for AWS (all three accounts, us-east-1).

`start()` runs in the deployer venv and spawns `python -m envsync_local.moto_server` with
the moto venv's interpreter; `main()` is that child: it registers envsync's CloudFormation
models on top of moto's own backends, then serves on 127.0.0.1.
"""

from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import subprocess
import sys
import time
import urllib.error
import urllib.request
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Optional

from envsync_local.paths import PROJECT_ROOT, moto_python
from envsync_local.process import failed_to_bind, is_alive, log_size, logged_since, terminate, wait_until_free

# Dummy credentials: moto accepts any, and they keep boto3 away from real ones.
LOCAL_CREDENTIALS = {
    "AWS_ACCESS_KEY_ID": "testing",
    "AWS_SECRET_ACCESS_KEY": "testing",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_REGION": "us-east-1",
}


# How long a start waits for a just-stopped server's port, and how often it tries to bind.
PORT_RELEASE_SECONDS = 5.0
BIND_ATTEMPTS = 3


class MotoServerError(RuntimeError):
    """The moto server could not be started or did not answer."""


@dataclass
class MotoServer:
    port: int
    pid: Optional[int] = None
    host: str = "127.0.0.1"

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def aws_env(self) -> Dict[str, str]:
        """Environment that points boto3 (and so Sceptre) at this server, never at AWS."""
        env = dict(LOCAL_CREDENTIALS)
        env["AWS_ENDPOINT_URL"] = self.endpoint_url
        # A stray profile or credentials file must not leak real credentials into local mode.
        env["AWS_CONFIG_FILE"] = os.devnull
        env["AWS_SHARED_CREDENTIALS_FILE"] = os.devnull
        return env

    def is_answering(self) -> bool:
        try:
            with urllib.request.urlopen(f"{self.endpoint_url}/moto-api/", timeout=1) as response:  # noqa: S310
                return response.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def reset(self) -> None:
        """Forget every resource in every account (moto's reset API)."""
        url = f"{self.endpoint_url}/moto-api/reset"
        request = urllib.request.Request(url, method="POST")  # noqa: S310 - http to our own server
        with urllib.request.urlopen(request, timeout=10):  # noqa: S310
            pass

    def stop(self, timeout: float = 10.0) -> None:
        if self.pid and is_alive(self.pid):
            terminate(self.pid, timeout, group=True)
            wait_until_free(self.host, self.port, PORT_RELEASE_SECONDS)  # a following start binds it


def start(port: int, log_path: Path, endpoints_file: Optional[Path] = None,
          timeout: float = 60.0, calls_file: Optional[Path] = None,
          executions_dir: Optional[Path] = None, fail_first_create: Optional[str] = None) -> MotoServer:
    """Spawn the moto server (with envsync's models) and wait until it answers.

    With `calls_file`, every API call and stack resource operation is recorded there for the
    permission proof (envsync_local.call_recorder). With `executions_dir`, Step Functions
    executions and task tokens are served from there (envsync_local.executions), and an
    answered token resumes its run with this interpreter. With `fail_first_create` (`last` or
    a logical id), the first create of every stack fails there and rolls back
    (envsync_local.cfn_models.failed_create).
    """
    server = MotoServer(port=port)
    if server.is_answering():
        raise MotoServerError(f"something already answers on {server.endpoint_url}")
    args = [moto_python(), "-m", "envsync_local.moto_server", "--port", str(port)]
    if endpoints_file:
        args += ["--endpoints", str(endpoints_file)]
    if calls_file:
        args += ["--calls", str(calls_file)]
    if executions_dir:
        args += ["--executions", str(executions_dir), "--resumer", sys.executable]
    if fail_first_create:
        args += ["--fail-first-create", fail_first_create]
    env = dict(os.environ)
    env.update(LOCAL_CREDENTIALS)
    env["PYTHONPATH"] = os.pathsep.join(
        filter(None, [str(PROJECT_ROOT / "local"), env.get("PYTHONPATH")])
    )
    log_path.parent.mkdir(parents=True, exist_ok=True)
    # A just-stopped server's port (`make stop`, then `make local`) may be held a moment longer,
    # or taken between the check and the bind: wait for it, and bind again when that was why.
    wait_until_free(server.host, port, PORT_RELEASE_SECONDS)
    for attempt in range(1, BIND_ATTEMPTS + 1):
        logged_from = log_size(log_path)
        with open(log_path, "ab") as log:
            process = subprocess.Popen(args, stdout=log, stderr=subprocess.STDOUT, env=env,
                                       start_new_session=True)
        server.pid = process.pid
        if _answering(server, process, timeout):
            return server
        said = logged_since(log_path, logged_from)
        if attempt < BIND_ATTEMPTS and failed_to_bind(said):
            wait_until_free(server.host, port, PORT_RELEASE_SECONDS)
            continue
        raise MotoServerError(f"moto server exited with {process.returncode}:\n{said[-2000:]}")
    raise AssertionError("unreachable: the last attempt returns or raises")


def _answering(server: MotoServer, process: subprocess.Popen, timeout: float) -> bool:
    """True once the server answers, False when it exited; stopped and an error after timeout."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            return False
        if server.is_answering():
            return True
        time.sleep(0.2)
    server.stop()
    raise MotoServerError(f"moto server did not answer on {server.endpoint_url} in {timeout}s")


def main(argv: Optional[list] = None) -> None:
    parser = argparse.ArgumentParser(description="moto server with envsync's CloudFormation models")
    parser.add_argument("--port", type=int, required=True)
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--endpoints", type=Path,
                        help="JSON {env: {account_id, host, port}}: where each env's cluster is")
    parser.add_argument("--calls", type=Path, help="record every API call here (JSON lines)")
    parser.add_argument("--executions", type=Path, help="Step Functions executions live here")
    parser.add_argument("--resumer", help="interpreter that resumes a run whose task token was answered")
    parser.add_argument("--fail-first-create", metavar="LOGICAL_ID|last",
                        help="the first create of every stack fails at this resource and rolls back")
    args = parser.parse_args(argv)

    # AWS managed policies (e.g. AWSLambdaVPCAccessExecutionRole) must exist for
    # ManagedPolicyArns; moto loads them only when asked, before any backend is created.
    os.environ.setdefault("MOTO_IAM_LOAD_MANAGED_POLICIES", "true")
    # Handlers run by the custom resource models call back into this server.
    os.environ["MOTO_PORT"] = str(args.port)
    from moto.server import ThreadedMotoServer

    from envsync_local import cfn_models
    from envsync_local.cfn_models.endpoints import EndpointMapError

    try:
        endpoints = json.loads(args.endpoints.read_text()) if args.endpoints else {}
        cfn_models.register(endpoints)
    except (OSError, ValueError, EndpointMapError) as error:
        raise SystemExit(f"envsync moto server: bad --endpoints {args.endpoints}: {error}") from None

    if args.fail_first_create:
        from envsync_local.cfn_models import failed_create

        failed_create.install(args.fail_first_create)

    from envsync_local import moto_lambda

    moto_lambda.install(args.port)

    if args.executions:
        from envsync_local.cfn_models.stepfunctions import install_executions

        install_executions(args.executions, args.resumer or sys.executable, args.executions.parent / "resume.log")

    if args.calls:
        from envsync_local import call_recorder

        call_recorder.install(args.calls)

    # Why a stack failed (with the traceback) goes to the server log.
    logging.basicConfig(level=logging.WARNING, format="%(asctime)s %(name)s %(levelname)s %(message)s")
    server = ThreadedMotoServer(ip_address=args.host, port=args.port, verbose=False)
    server.start()
    stop = {"now": False}

    def _stop(*_: object) -> None:
        stop["now"] = True

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    while not stop["now"]:
        time.sleep(0.2)
    server.stop()


if __name__ == "__main__":
    main()
