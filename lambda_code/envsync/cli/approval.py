"""`envsync approve` / `envsync reject`: the approval from a shell (answer.py does the work).

The env's account is reached as its approver role: in local mode the stand-ins' envs.json names
the endpoint and the role (an env it does not name is an error), elsewhere the caller's own
credentials (a profile, SSO) are used, assuming `--role-arn` when given.
"""

from __future__ import annotations

import argparse
import json
import os
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from envsync.approval import answer


def aws_session(env: str, role_arn: Optional[str], envs_file: Optional[Path] = None,
                role_key: str = "approver_role_arn", purpose: str = "approve") -> Tuple[Any, Optional[str]]:
    """(boto3 session, endpoint URL) for the env's account: in local mode the stand-in that
    envs.json names for the env (as the role it names under `role_key`: the approver, or the
    uploader for `push`), and an env it does not name is an error, never the default
    credentials; elsewhere the caller's own credentials (a profile, SSO), as `role_arn` when given."""
    import boto3

    from envsync.cli.main import CliError, check_env, local_env_entry, local_envs_file, local_mode

    endpoint_url: Optional[str] = None
    path = envs_file or local_envs_file()
    check_env(env, envs_file=path)
    if local_mode(path):
        local = local_env_entry(env, path).get("aws")
        if not local:
            raise CliError(f"--env {env}: {path} names no AWS stand-in for it (restart envsync-local); "
                           "local mode never falls back to other credentials")
        endpoint_url = local["endpoint_url"]
        session = boto3.Session(aws_access_key_id=local["access_key_id"],
                                aws_secret_access_key=local["secret_access_key"], region_name=local["region"])
        role_arn = role_arn or local.get(role_key)
    else:
        session = boto3.Session()
    if role_arn:
        credentials = session.client("sts", endpoint_url=endpoint_url).assume_role(
            RoleArn=role_arn, RoleSessionName=f"envsync-{purpose}-{os.environ.get('USER', 'cli')}"[:64])["Credentials"]
        session = boto3.Session(aws_access_key_id=credentials["AccessKeyId"],
                                aws_secret_access_key=credentials["SecretAccessKey"],
                                aws_session_token=credentials["SessionToken"],
                                region_name=session.region_name or "us-east-1")
    return session, endpoint_url


def env_machine(env: str, role_arn: Optional[str], envs_file: Optional[Path] = None,
                ) -> Tuple[Any, str, Dict[str, Any], Any]:
    """(Step Functions client, the env's state machine ARN, the caller's identity, IAM client)."""
    session, endpoint_url = aws_session(env, role_arn, envs_file)
    identity = session.client("sts", endpoint_url=endpoint_url).get_caller_identity()
    machine = answer.state_machine_arn(identity["Account"], env, session.region_name or "us-east-1")
    return (session.client("stepfunctions", endpoint_url=endpoint_url), machine, identity,
            session.client("iam", endpoint_url=endpoint_url))


def runs_status(env: str, role_arn: Optional[str]) -> Optional[Tuple[str, Dict[str, Any]]]:
    """`envsync status --env ENV`'s runs part (runs.py): text and data; None when the env's
    account cannot be reached (no stand-in names it and no --role-arn was given)."""
    import datetime

    from envsync.cli import runs
    from envsync.cli.main import env_approval_mode, local_envs_file

    path = local_envs_file()
    local = json.loads(path.read_text()).get(env, {}).get("aws") if path.is_file() else None
    if not local and not role_arn:
        return None
    from botocore.exceptions import BotoCoreError, ClientError

    try:
        stepfunctions, machine, identity, iam = env_machine(env, role_arn, path)
        approver = f"arn:aws:iam::{identity['Account']}:role/envsync-{env}-approver"
        gate = runs.read_gate(stepfunctions, iam, machine, approver, required=env_approval_mode(env) != "none")
        waiting = answer.waiting_runs(stepfunctions, machine)
        failure = runs.last_failure(stepfunctions, machine)
    except (BotoCoreError, ClientError) as error:  # the history above stands; say what is missing
        said = runs.unreadable_text(env, error)
        return said, {"waiting": [], "last_failure": None, "gate": None, "error": said}
    now = datetime.datetime.now(datetime.timezone.utc)
    return runs.status_text(env, waiting, failure, now, gate), runs.status_data(env, waiting, failure, now, gate)


def cmd_decide(args: argparse.Namespace) -> int:
    """approve / reject: answer the env's run that waits for a person (answer.py)."""
    from envsync.cli.main import DIFFERENCES, OK, _emit

    stepfunctions, machine, identity, _ = env_machine(args.env, args.role_arn)
    run = answer.choose(answer.waiting_runs(stepfunctions, machine), args.env, args.run, args.digest)
    if args.command == "approve":
        decision: Dict[str, Any] = answer.approve(stepfunctions, run, identity["Arn"])
        said = f"approved plan {run.digest[:12]}… of run {run.run_id} as {identity['Arn']}"
    else:
        decision = {"rejected": answer.reject(stepfunctions, run, identity["Arn"], args.reason)}
        said = f"rejected run {run.run_id} ({args.reason}); it notifies the topic and applies nothing"
    if args.wait:
        described = answer.wait_for_end(stepfunctions, run.execution_arn, args.wait)
        decision["run_status"] = described["status"]
        said += f"\nrun {run.run_id}: {described['status']}" + (
            f" ({described.get('error')}: {described.get('cause', '')[:300]})" if described.get("error") else "")
    _emit(args, {"run": run.run_id, "execution_arn": run.execution_arn, **decision}, said)
    return OK if decision.get("run_status", "SUCCEEDED") in ("SUCCEEDED", "RUNNING") or args.command == "reject" \
        else DIFFERENCES


def add_commands(commands: Any) -> None:
    """The approve and reject subcommands of `envsync`."""
    for name, helptext in (("approve", "let the env's run that waits for a person apply its plan"),
                           ("reject", "stop the env's run that waits for a person; nothing is applied")):
        sub = commands.add_parser(name, help=helptext)
        sub.add_argument("--json", action="store_true", default=argparse.SUPPRESS)
        sub.add_argument("--env", required=True, help="the env whose run waits (e.g. prod)")
        sub.add_argument("--run", help="the run id from the message (required when several wait)")
        sub.add_argument("--digest", help="the plan digest from the message (or its first characters)")
        sub.add_argument("--role-arn", help="assume this role first (the env's envsync-<env>-approver)")
        sub.add_argument("--wait", type=float, default=0, metavar="SECONDS",
                         help="then wait up to SECONDS for the run to end and say how it ended")
        if name == "reject":
            sub.add_argument("--reason", required=True,
                             help="why (kept in the run's history; the topic says only: rejected)")
        sub.set_defaults(handler=cmd_decide)
