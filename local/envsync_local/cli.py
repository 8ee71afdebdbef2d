"""`envsync-local`: run the three envs offline on one machine.

    envsync-local up       start the stand-ins, launch every env with real `sceptre launch`,
                           then run the sync cycle (see envsync_local.cycle); after a `down`
                           the whole system starts over (moto's state is in memory only)
    envsync-local sync     run the sync cycle again
    envsync-local run ENV  run one env's deployed state machine once and print how it ended; a
                           gated env (prod) stops at the approval: the message, digest, commands
    envsync-local inbox ENV  what the env's SNS topics published, newest first, by run
    envsync-local status   what runs, and each env's stacks and outputs
                           (--html FILE: each env's dashboard as a static page with charts)
    envsync-local down     stop exactly what `up` started (by pid); --wipe deletes the state
    envsync-local cost     each env's monthly AWS estimate (config/ x tools/envsync_tools/prices.yaml)

The stand-ins: a moto server (AWS, one simulated account per env) and one MariaDB server per
env (the env's Aurora cluster). Everything lives under the state directory (.local/).
"""

from __future__ import annotations

import argparse
import contextlib
import datetime
import io
import json
import os
import shlex
import shutil
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

import boto3

from envsync.aws import new_session
from envsync.cli.main import quiet_when_the_reader_leaves
from envsync_local import inbox
from envsync_local.cycle import (
    EnvHandle,
    demo_outcome_problems,
    inbox_messages,
    outcome_text,
    run_cycle,
    subscribe_inbox,
    sync,
)
from envsync_local.cycle import stack_outputs as cycle_stack_outputs
from envsync_local.mariadb import REPLICA_HOST, MariaDBError, MariaDBInstance
from envsync_local.moto_server import LOCAL_CREDENTIALS, MotoServer, MotoServerError
from envsync_local.moto_server import start as start_moto
from envsync_local.paths import project_dir, state_dir, tool
from envsync_local.process import is_alive
from envsync_sceptre.config.envconfig import (
    EnvConfig,
    EnvConfigError,
    lifecycle_warnings,
    load_envs,
    promotion_order,
    read_shared_values,
)
from envsync_sceptre.packaging.package import CA_BUNDLE_DIR_ENV
from envsync_tools.cost import CostError, format_report

DEFAULT_MOTO_PORT = 5599
DEFAULT_DB_PORT_BASE = 33061
# What `envsync-local up` fails the first create of every stack at when moto starts, unless
# told otherwise (--fail-first-create, --no-failed-create): its last resource (failed_create).
DEFAULT_FAIL_FIRST_CREATE = "last"


class LocalModeError(RuntimeError):
    """Local mode cannot start or run; the message says what to do."""


class RetryFailed(LocalModeError):
    """The relaunch of a stack whose first create rolled back failed: a finding, not a crash."""


class LocalStack:
    """The stand-ins of one state directory: ports, pids and the files describing them."""

    def __init__(self, root: Path, envs: Dict[str, EnvConfig], moto_port: Optional[int] = None,
                 db_port_base: Optional[int] = None, db_ports: Optional[Dict[str, int]] = None,
                 fail_first_create: Optional[str] = None, default_fail_first_create: Optional[str] = None):
        self.root = root
        self.envs = envs
        self.order = promotion_order(envs)
        self.database = str(read_shared_values(project_dir() / "config").get("database_name", "appdb"))
        self.state_file = root / "state.json"
        state = json.loads(self.state_file.read_text()) if self.state_file.exists() else {}
        # The first line of the call record that the last `up` made: its proof judges from there.
        self.proof_from = int(state.get("proof_from", 0))
        # `last` or a logical id: the running moto fails the first create of every stack there;
        # what was asked for ("": none) applies when moto starts, else the default.
        self.fail_first_create: Optional[str] = state.get("fail_first_create")
        self.asked_fail_first_create = fail_first_create
        self.default_fail_first_create = default_fail_first_create
        # The figure of the launch that created the stacks (a later `up` that creates none says so).
        self.failed_create_figure: Optional[str] = state.get("failed_create_figure")
        self.moto = MotoServer(port=moto_port or int(state.get("moto_port", DEFAULT_MOTO_PORT)),
                               pid=state.get("moto_pid"))
        db_base = db_port_base or DEFAULT_DB_PORT_BASE
        ports = db_ports or ({} if db_port_base else state.get("db_ports", {}))
        self.databases = {
            name: MariaDBInstance(
                name=name,
                port=int(ports.get(name, db_base + index)),
                base_dir=root / "mariadb" / name,
                tls_dir=root / "tls",
                server_id=index + 1,
            )
            for index, name in enumerate(self.order)
        }
        # Where a cluster has a reader instance (prod), a replica of the env's server answers
        # its reader endpoint: same port on its own address, as Aurora's reader endpoint.
        self.replicas = {
            name: MariaDBInstance(
                name=f"{name}-reader",
                port=self.databases[name].port,
                base_dir=root / "mariadb" / f"{name}-reader",
                tls_dir=root / "tls",
                host=REPLICA_HOST,
                server_id=100 + index,
                read_only=True,
            )
            for index, name in enumerate(self.order) if envs[name].is_prod
        }

    def save(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.state_file.write_text(json.dumps({
            "moto_port": self.moto.port,
            "moto_pid": self.moto.pid,
            "db_ports": {name: db.port for name, db in self.databases.items()},
            "proof_from": self.proof_from,
            "fail_first_create": self.fail_first_create,
            "failed_create_figure": self.failed_create_figure,
        }, indent=2))

    @property
    def endpoints_file(self) -> Path:
        """Where each env's cluster endpoint points: read by the moto models at start."""
        return self.root / "endpoints.json"

    @property
    def envs_file(self) -> Path:
        """How the `envsync` CLI reaches each env's database by name in local mode."""
        return self.root / "envs.json"

    def write_descriptions(self) -> None:
        self.root.mkdir(parents=True, exist_ok=True)
        self.endpoints_file.write_text(json.dumps({
            name: {"account_id": self.envs[name].account_id, "host": db.host, "port": db.port,
                   "ca_bundle": str(db.ca_bundle), "admin_user": "root", "admin_password": "",
                   **({"reader_host": self.replicas[name].host} if name in self.replicas else {})}
            for name, db in self.databases.items()
        }, indent=2))
        self.envs_file.write_text(json.dumps({
            name: {
                "account_id": self.envs[name].account_id,
                "upstream": self.envs[name].upstream_env,  # the chain, as config/ says
                "host": db.host,
                "port": db.port,
                "database": self.database,
                "ca_bundle": str(db.ca_bundle),
                "users": {"root": {"user": "root", "password": ""}},
                # `envsync approve/reject --env NAME` answer through the env's approver role.
                "aws": {"endpoint_url": self.moto.endpoint_url, "region": "us-east-1",
                        "access_key_id": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                        "secret_access_key": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                        "approver_role_arn": f"arn:aws:iam::{self.envs[name].account_id}:role/envsync-{name}-approver",
                        # `envsync push --env NAME` uploads as the env's deployer, as CI does.
                        "uploader_role_arn": self.envs[name].sceptre_role},
            }
            for name, db in self.databases.items()
        }, indent=2))

    @property
    def executions_dir(self) -> Path:
        """The stand-in's Step Functions executions (envsync_local.executions)."""
        return self.root / "executions"

    @property
    def calls_file(self) -> Path:
        """Every AWS call the stand-in served, with its caller: the permission proof's input."""
        return self.root / "aws-calls.jsonl"

    @property
    def ca_bundle_dir(self) -> Path:
        """The stand-ins' CA certificate alone: what the Lambda package ships offline (no keys)."""
        return self.root / "ca-bundle"

    def write_ca_bundle(self) -> None:
        ca = next(iter(self.databases.values())).ca_bundle
        if ca is None:
            raise LocalModeError("the MariaDB stand-ins have no CA certificate")
        self.ca_bundle_dir.mkdir(parents=True, exist_ok=True)
        # Named as the RDS bundle is in a real package, so the package layout is the same.
        shutil.copyfile(ca, self.ca_bundle_dir / "rds-global-bundle.pem")

    def moto_running(self) -> bool:
        return bool(self.moto.pid) and is_alive(int(self.moto.pid)) and self.moto.is_answering()

    @property
    def servers(self) -> List[MariaDBInstance]:
        """Every MariaDB stand-in, sources before their replicas."""
        return [*self.databases.values(), *self.replicas.values()]

    def reset(self) -> None:
        """Start the system over: the databases and the call record go with moto's memory.

        moto keeps every account's state in memory only, so a moto that is not running has
        forgotten every stack, secret and user; databases kept from before would hold users,
        passwords and migration history that no stack describes any more.
        """
        for db in reversed(self.servers):
            db.wipe()
        self.calls_file.unlink(missing_ok=True)
        self.proof_from = 0
        self.failed_create_figure = None
        shutil.rmtree(self.executions_dir, ignore_errors=True)  # Step Functions runs lived in moto too

    def start(self) -> None:
        if not self.moto_running():
            self.reset()
            asked = self.asked_fail_first_create
            self.fail_first_create = (asked if asked is not None else self.default_fail_first_create) or None
        elif (self.asked_fail_first_create is not None
              and (self.asked_fail_first_create or None) != self.fail_first_create):
            raise LocalModeError(f"moto runs with --fail-first-create {self.fail_first_create or '(none)'}; "
                                 "`envsync-local down` first to start it with another")
        started: List[MariaDBInstance] = []
        try:
            for db in self.servers:
                was_running = db.is_running()
                db.start()
                if not was_running:
                    started.append(db)
        except BaseException:
            for db in reversed(started):  # one cannot start: leave none of this call's running
                db.stop()
            raise
        self.write_descriptions()
        self.write_ca_bundle()
        if not self.moto_running():
            self.moto = start_moto(self.moto.port, self.root / "moto.log", self.endpoints_file,
                                   calls_file=self.calls_file, executions_dir=self.executions_dir,
                                   fail_first_create=self.fail_first_create)
        self.save()

    def stop(self) -> None:
        self.moto.stop()
        for db in reversed(self.servers):
            db.stop()
        self.moto.pid = None
        self.save()


def sceptre(local: LocalStack, *args: str, capture: bool = False) -> subprocess.CompletedProcess:
    """Run the real Sceptre CLI against the stand-ins (AWS_ENDPOINT_URL points at moto)."""
    env = dict(os.environ)
    env.update(local_environment(local))
    env.pop("AWS_PROFILE", None)
    # Sceptre's CLI without its 4-second pauses between status reads (moto answers at once).
    return subprocess.run(
        [sys.executable, "-m", "envsync_local.sceptre_cli", "--dir", str(project_dir()), "--no-colour", *args],
        env=env, check=False, text=True, capture_output=capture,
    )


def stack_exists(local: LocalStack, env: str, stack: str) -> bool:
    cloudformation = env_session(local, local.envs[env]).client("cloudformation", endpoint_url=local.moto.endpoint_url)
    try:
        cloudformation.describe_stacks(StackName=f"envsync-{env}-{stack}")
    except cloudformation.exceptions.ClientError:
        return False
    return True


@dataclass
class FailedCreates:
    """Stacks whose first create rolled back (the stand-in's --fail-first-create), and the
    stacks launched: each rolled-back stack must be created by its relaunch."""

    rolled_back: Dict[str, str] = field(default_factory=dict)  # stack name: id of the rolled-back one
    launched: Set[str] = field(default_factory=set)
    # Stacks whose rollback stopped at a cluster's deletion protection (ROLLBACK_FAILED, as in
    # CloudFormation): relaunched after the step README's deploy section gives the administrator.
    by_hand: Set[str] = field(default_factory=set)
    # Stacks that existed before the launch: their first create was an earlier launch's.
    existed: Set[str] = field(default_factory=set)

    @property
    def created(self) -> Set[str]:
        return self.launched - self.existed

    def figure(self) -> Optional[str]:
        """The retries of the stacks this launch created, e.g. `23/23 stacks relaunched`
        (None: it created none)."""
        if not self.created:
            return None
        relaunched = set(self.rolled_back) & self.created
        figure = f"{len(relaunched)}/{len(self.created)} stacks relaunched"
        if self.by_hand:
            figure += f" ({', '.join(sorted(self.by_hand))} after its cluster's deletion protection was lifted by hand)"
        return figure

    def never_failed(self) -> List[str]:
        """Stacks this launch created whose first create did not roll back (with target
        `last` every stack's does: one that did not was never retried)."""
        return sorted(self.created - set(self.rolled_back))


def env_stacks(local: LocalStack, env: str) -> List[dict]:
    """The env's stacks in its account, as DescribeStacks gives them."""
    cloudformation = env_session(local, local.envs[env]).client("cloudformation", endpoint_url=local.moto.endpoint_url)
    return [stack for stack in cloudformation.describe_stacks()["Stacks"]
            if stack["StackName"].startswith(f"envsync-{env}-")]


def stack_statuses(local: LocalStack, env: str) -> Dict[str, str]:
    """The env's stacks, by name: their status."""
    return {stack["StackName"]: stack["StackStatus"] for stack in env_stacks(local, env)}


def creation_failures(local: LocalStack, env: str, stack: str) -> List[str]:
    """Why the stack's last create failed: each failed resource and its reason."""
    cloudformation = env_session(local, local.envs[env]).client("cloudformation", endpoint_url=local.moto.endpoint_url)
    events = cloudformation.describe_stack_events(StackName=stack)["StackEvents"]
    return [f"{event['LogicalResourceId']}: {event.get('ResourceStatusReason', '')}" for event in events
            if event["ResourceStatus"] == "CREATE_FAILED" and event["LogicalResourceId"] != stack]


def lift_cluster_protection(local: LocalStack, env: str, stack: Dict[str, Any], failed: FailedCreates) -> None:
    """A rollback that stopped at the env's protected Aurora cluster (RDS refuses to delete it,
    so CloudFormation's rollback fails): the administrator's recovery from README, i.e. lift the
    protection, then delete the stack (the relaunch creates both again, protected). Any other
    ROLLBACK_FAILED is the retry failing."""
    cloudformation = env_session(local, local.envs[env]).client("cloudformation", endpoint_url=local.moto.endpoint_url)
    reason = " ".join(event.get("ResourceStatusReason") or "" for event in cloudformation.describe_stack_events(
        StackName=stack["StackId"])["StackEvents"] if event["ResourceStatus"] == "ROLLBACK_FAILED")
    if "Cannot delete protected Cluster" not in reason or stack["StackName"] in failed.by_hand:
        raise LocalModeError(f"the rollback of {stack['StackName']} failed: {reason}")
    shared = read_shared_values(project_dir() / "config")
    admin = f"arn:aws:iam::{local.envs[env].account_id}:role/" \
            f"{shared.get('bootstrap_role_name', 'OrganizationAccountAccessRole')}"
    base = credentials_session({"AccessKeyId": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                "SecretAccessKey": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"], "SessionToken": None})
    rds = assume_session(base, local.moto.endpoint_url, admin).client("rds", endpoint_url=local.moto.endpoint_url)
    for cluster in rds.describe_db_clusters()["DBClusters"]:
        if cluster.get("DeletionProtection") and cluster["DBClusterIdentifier"] == f"envsync-{env}":
            print(f"\n>>> aws rds modify-db-cluster --db-cluster-identifier envsync-{env} --no-deletion-protection "
                  f"(as {admin}: {stack['StackName']} is ROLLBACK_FAILED)", flush=True)
            rds.modify_db_cluster(DBClusterIdentifier=f"envsync-{env}", DeletionProtection=False,
                                  ApplyImmediately=True)
    path = f"{env}/{stack['StackName'].removeprefix(f'envsync-{env}-')}.yaml"
    print(f"\n>>> sceptre delete -y {path}", flush=True)
    sceptre(local, "delete", "-y", path, capture=True)
    failed.by_hand.add(stack["StackName"])


def retry_after_rollback(local: LocalStack, command: str, path: str, failed: FailedCreates) -> bool:
    """After a failed `sceptre <command> <path>` under --fail-first-create: note the stacks whose
    first create rolled back and say whether to run it again (`sceptre launch` deletes a
    ROLLBACK_COMPLETE stack and creates it; the bootstrap stack's `create` needs the delete
    first, as its administrator would). A stack rolling back a second time (another stack id) is
    the retry failing; one the launch did not reach again is still waiting for its retry."""
    env = path.split("/")[0]
    stacks = env_stacks(local, env)
    stuck = [stack for stack in stacks if stack["StackStatus"] == "ROLLBACK_FAILED"]
    for stack in stuck:
        lift_cluster_protection(local, env, stack, failed)
    rolled_back = {stack["StackName"]: stack["StackId"] for stack in stacks
                   if stack["StackStatus"] == "ROLLBACK_COMPLETE" or stack in stuck}
    again = sorted(name for name, stack_id in rolled_back.items()
                   if failed.rolled_back.get(name, stack_id) != stack_id)
    if again:
        reasons = "; ".join(reason for name in again for reason in creation_failures(local, env, name))
        raise RetryFailed(f"the retry of a failed create failed: {', '.join(again)}: {reasons}")
    new = {name: stack_id for name, stack_id in rolled_back.items() if name not in failed.rolled_back}
    if not new:
        return False
    failed.rolled_back.update(new)
    if command == "create":
        print(f"\n>>> sceptre delete -y {path}  (its first create rolled back)", flush=True)
        sceptre(local, "delete", "-y", path, capture=True)
    return True


def launch_all(local: LocalStack, names: List[str], capture: bool = False,
               failed: Optional[FailedCreates] = None) -> Dict[str, str]:
    """Per env, upstream first: the account administrator's bootstrap stack (`sceptre create`,
    or `update` once it exists: `sceptre launch <env>` skips it), then `sceptre launch -y <env>`,
    then the administrator's gate stack where the env has one (the machine that waits for a
    person); then each upstream's accepter stack once more.

    The accepter side's return routes need the downstream's peering connection, which exists
    only once the downstream env is launched (see config/<env>/peering-downstream.yaml).
    Under --fail-first-create a launch that stopped at rolled-back stacks runs again (into
    `failed`, or a fresh FailedCreates). Returns each launch's output when capture is set.
    """
    failed = failed if failed is not None else FailedCreates()
    runs = []
    for name in names:
        failed.existed |= set(stack_statuses(local, name))
        bootstrap = "update" if stack_exists(local, name, "bootstrap") else "create"
        runs += [(bootstrap, f"{name}/bootstrap.yaml", f"{name} bootstrap"), ("launch", name, name)]
        if (project_dir() / "config" / name / "gate.yaml").is_file():
            gate = "update" if stack_exists(local, name, "gate") else "create"
            runs.append((gate, f"{name}/gate.yaml", f"{name} gate"))
    for name in names:
        upstream = local.envs[name].upstream_env
        if upstream and (upstream in names or stack_exists(local, upstream, "peering-downstream")):
            runs.append(("launch", f"{upstream}/peering-downstream.yaml", f"{name} return routes"))
    logs = launch_runs(local, runs, capture, failed)
    for name in names:
        failed.launched |= set(stack_statuses(local, name))
    return logs


def launch_runs(local: LocalStack, runs: List[Tuple[str, str, str]], capture: bool = False,
                failed: Optional[FailedCreates] = None) -> Dict[str, str]:
    """Each `sceptre <command> -y <path>` in turn (labelled in the logs), run again after a
    rollback of a first create under --fail-first-create; the first failure stops."""
    failed = failed if failed is not None else FailedCreates()
    logs: Dict[str, str] = {}
    for command, path, label in runs:
        while True:
            print(f"\n>>> sceptre {command} -y {path}", flush=True)
            result = sceptre(local, command, "-y", path, capture=capture)
            logs[label] = logs.get(label, "") + (result.stdout or "") + (result.stderr or "")
            if result.returncode == 0 or not (local.fail_first_create
                                              and retry_after_rollback(local, command, path, failed)):
                break
        if result.returncode != 0:
            raise LocalModeError(f"sceptre {command} {path} failed (exit {result.returncode}); "
                                 f"moto log: {local.root / 'moto.log'}\n{logs[label][-3000:]}")
    return logs


def credentials_session(credentials: Dict[str, Any]) -> boto3.Session:
    """A boto3 session from STS credentials (AssumeRole's `Credentials`)."""
    return new_session(aws_access_key_id=credentials["AccessKeyId"],
                       aws_secret_access_key=credentials["SecretAccessKey"],
                       aws_session_token=credentials["SessionToken"], region_name="us-east-1")


def assume_session(session: boto3.Session, endpoint_url: str, role_arn: str, external_id: Optional[str] = None,
                   name: str = "envsync-local") -> boto3.Session:
    """A session as `role_arn` (moto lands its calls in that role's account)."""
    arguments: Dict[str, Any] = {"RoleArn": role_arn, "RoleSessionName": name}
    if external_id:
        arguments["ExternalId"] = external_id
    sts = session.client("sts", endpoint_url=endpoint_url)
    return credentials_session(sts.assume_role(**arguments)["Credentials"])


def env_session(local: LocalStack, env: EnvConfig) -> boto3.Session:
    """A boto3 session in the env's simulated account, reached as in AWS: assume its deployer."""
    aws = local.moto.aws_env()
    base = new_session(aws_access_key_id=aws["AWS_ACCESS_KEY_ID"],
                       aws_secret_access_key=aws["AWS_SECRET_ACCESS_KEY"], region_name="us-east-1")
    return assume_session(base, local.moto.endpoint_url, env.sceptre_role)


def stack_outputs(local: LocalStack, env: EnvConfig) -> List[dict]:
    cloudformation = env_session(local, env).client("cloudformation", endpoint_url=local.moto.endpoint_url)
    stacks = cloudformation.describe_stacks()["Stacks"]
    return sorted(
        (stack for stack in stacks if stack["StackName"].startswith(f"envsync-{env.name}-")),
        key=lambda stack: stack.get("CreationTime", 0),
    )


def print_outputs(local: LocalStack) -> None:
    for name in local.order:
        env = local.envs[name]
        print(f"\n== {name} (account {env.account_id}, {env.vpc_cidr}) ==")
        for stack in stack_outputs(local, env):
            print(f"  {stack['StackName']}: {stack['StackStatus']}")
            for output in sorted(stack.get("Outputs", []), key=lambda item: item["OutputKey"]):
                print(f"      {output['OutputKey']:<26} {output['OutputValue']}")


def env_handle(local: LocalStack, name: str) -> EnvHandle:
    """The env's account session (as its deployer) and its local database."""
    return EnvHandle(name=name, session=env_session(local, local.envs[name]), endpoint_url=local.moto.endpoint_url,
                     db_host=local.databases[name].host, db_port=local.databases[name].port,
                     ca_bundle=str(local.databases[name].ca_bundle), database=local.database,
                     executions_dir=local.executions_dir)


def env_handles(local: LocalStack) -> List[EnvHandle]:
    """Each env's account session and local database, upstream first."""
    return [env_handle(local, name) for name in local.order]


def running_env(local: LocalStack, name: str) -> EnvHandle:
    """The handle of a launched env of the running stand-ins, its outputs read, its inbox subscribed."""
    if not local.moto_running():
        raise LocalModeError("the stand-ins are not running: run `envsync-local up` first")
    if name not in local.envs:
        raise LocalModeError(f"unknown env {name}; known: {', '.join(local.order)}")
    handle = env_handle(local, name)
    handle.outputs = cycle_stack_outputs(handle)
    handle.inbox_url = subscribe_inbox(handle)
    return handle


def command_run(local: LocalStack, name: str) -> int:
    """Run the env's deployed state machine once; a run that waits for a person is a success."""
    handle = running_env(local, name)
    run = sync(handle)
    print(outcome_text(handle, run))
    return 0 if run.execution.status == "SUCCEEDED" or run.execution.waiting else 1


def command_inbox(local: LocalStack, name: str, limit: Optional[int]) -> int:
    """What the env's topics published, newest first, each message marked by its run."""
    handle = running_env(local, name)
    inbox_messages(handle)  # move what arrived into the mailbox
    messages = inbox.mark_runs(inbox.read_mailbox(local.root, name), inbox.env_runs(local.executions_dir, name))
    print(inbox.format_inbox(name, messages, limit))
    return 0


def command_resume(local: LocalStack, execution_arn: str) -> int:
    """Continue a run whose task token was answered (the stand-in starts this, as AWS resumes)."""
    from envsync_local.executions import load
    from envsync_local.orchestrate import resume_sync

    record = load(local.executions_dir, execution_arn)
    if record is None:
        raise LocalModeError(f"no execution {execution_arn} in {local.executions_dir}")
    session = env_session(local, local.envs[record["env"]])
    run = resume_sync(session, local.moto.endpoint_url, local.executions_dir, execution_arn)
    print(f"resumed {execution_arn}: {run.execution.status} {run.execution.error or ''}".rstrip())
    return 0


def command_sync(local: LocalStack) -> int:
    if not local.moto_running():
        raise LocalModeError("the stand-ins are not running: run `envsync-local up` first")
    report = run_cycle(env_handles(local))
    print(f"\nsync cycle (steps 1-5) took {report['seconds']:.1f}s")
    problems = demo_outcome_problems(report)
    for problem in problems:
        print(f"    UNEXPECTED {problem}")
    return 1 if problems else 0


def recorded_calls(local: LocalStack) -> int:
    """How many calls the stand-in has recorded so far (lines of the call record)."""
    if not local.calls_file.exists():
        return 0
    with open(local.calls_file, "rb") as record:
        return sum(1 for _ in record)


def permission_proof(local: LocalStack, limit: Optional[int] = None,
                     adjust_world: Optional[Callable[[Any], None]] = None, start: int = 0) -> Any:
    """Evaluate the calls the stand-in recorded (from line `start` up to line `limit`) against
    the deployed policies.

    `adjust_world` may change the deployed policies before the evaluation (a test that removes a
    grant sees the proof fail)."""
    from envsync_local.proof.dynamic import evaluate_calls, read_calls
    from envsync_local.proof.world import external_principals, load_world

    shared = read_shared_values(project_dir() / "config")
    calls = read_calls(local.calls_file, limit, start)
    base = credentials_session({"AccessKeyId": LOCAL_CREDENTIALS["AWS_ACCESS_KEY_ID"],
                                "SecretAccessKey": LOCAL_CREDENTIALS["AWS_SECRET_ACCESS_KEY"],
                                "SessionToken": None})
    world = load_world(base, local.moto.endpoint_url, {n: e.account_id for n, e in local.envs.items()},
                       str(shared.get("bootstrap_role_name", "OrganizationAccountAccessRole")))
    if adjust_world:
        adjust_world(world)
    return evaluate_calls(calls, world, external_principals(str(shared["deployer_trusted_principal"]),
                                                            shared.get("approver_trusted_principal")))


def command_proof(local: LocalStack, everything: bool = False, figures: Optional[List[str]] = None) -> int:
    """Judge the calls of the last `up` (a person's calls between runs are not the product's),
    or with `everything` every call since moto started; `figures` of the launch join the line."""
    if not local.moto_running():
        raise LocalModeError("the stand-ins are not running: run `envsync-local up` first")
    start = 0 if everything else local.proof_from
    report = permission_proof(local, start=start)
    scope = "every call since moto started" if not start else \
        f"the calls of the last `envsync-local up` (from call {start + 1} of the record; --all: every call)"
    stay_denied = must_stay_denied_report()
    figures = [report.summary(), f"{stay_denied.refused} must-stay-denied refused", *(figures or [])]
    print(f"\n{', '.join(figures)}; judged: {scope}")
    for denied in report.denied:
        print(f"    DENIED {denied}")
    for leak in stay_denied.leaks:
        print(f"    MUST STAY DENIED, ALLOWED {leak}")
    return 1 if report.denied or stay_denied.leaks else 0


def must_stay_denied_report() -> Any:
    """The must-stay-denied list over the project's rendered stacks (what the launch deployed)."""
    from envsync_tools.proof.must_stay_denied import project_report
    from envsync_tools.proof.project import load_project

    with contextlib.redirect_stderr(io.StringIO()):  # the launch already showed config's warnings
        return project_report(load_project(project_dir()))


def command_up(local: LocalStack, envs: Optional[List[str]], with_sync: bool = True) -> int:
    started = time.monotonic()
    local.start()
    local.proof_from = recorded_calls(local)  # what this run does is what its proof judges
    local.save()
    print(f"moto (AWS stand-in): {local.moto.endpoint_url}")
    for db in local.servers:
        print(f"MariaDB for {db.name}: {db.host}:{db.port} (TLS required, CA {db.ca_bundle})")
    failed = FailedCreates()
    launch_all(local, envs or local.order, failed=failed)
    print_outputs(local)
    print(f"\nlaunched {', '.join(envs or local.order)} in {time.monotonic() - started:.1f}s")
    cycle = 0
    if with_sync and not envs:
        cycle = command_sync(local)
        print(f"whole run: {time.monotonic() - started:.1f}s")
    retries = failed_create_figure(local, failed)
    never_failed = failed.never_failed() if local.fail_first_create == DEFAULT_FAIL_FIRST_CREATE else []
    for stack in never_failed:
        print(f"    FIRST CREATE DID NOT FAIL {stack}: its retry was never tried")
    return max(cycle, 1 if never_failed else 0, command_proof(local, figures=[retries]))


def failed_create_figure(local: LocalStack, failed: FailedCreates) -> str:
    """The failed-create figure of this launch; a launch that created no stack (the stand-ins
    ran already) says so, with the figure of the launch that created them."""
    if not local.fail_first_create:
        return "failed-create retries: not run (moto started with no failing first create)"
    figure = failed.figure()
    if figure is not None:
        local.failed_create_figure = figure
        local.save()
        return f"failed-create retries: {figure}"
    first = local.failed_create_figure or "no figure recorded"
    return f"failed-create retries: not re-run, every stack exists (when created: {first})"


def local_environment(local: LocalStack) -> Dict[str, str]:
    """What `sceptre` (or the AWS CLI, boto3) needs to talk to the stand-ins instead of AWS."""
    env = dict(local.moto.aws_env())
    env[CA_BUNDLE_DIR_ENV] = str(local.ca_bundle_dir)
    env["ENVSYNC_LOCAL_DIR"] = str(local.root)
    return env


def command_env(local: LocalStack) -> int:
    """Print the exports for `eval "$(envsync-local env)"` (no profile, the local credentials)."""
    print("unset AWS_PROFILE AWS_SESSION_TOKEN")
    # sceptre, envsync and envsync-local from the project's venv, as a plain command
    print(f'export PATH={shlex.quote(str(Path(tool("sceptre")).parent))}:"$PATH"')
    for key, value in sorted(local_environment(local).items()):
        print(f"export {key}={shlex.quote(value)}")
    return 0


def command_diff(local: LocalStack, command_path: str) -> int:
    """`sceptre diff` against the stand-ins, only the changed lines per stack (exit 1 if any)."""
    from envsync_tools.stack_diff import print_diff

    if not local.moto_running():
        raise LocalModeError("the stand-ins are not running: run `envsync-local up` first")
    os.environ.update(local_environment(local))
    os.environ.pop("AWS_PROFILE", None)
    return print_diff(project_dir(), command_path)


def command_sceptre(local: LocalStack, args: List[str]) -> int:
    if not local.moto_running():
        raise LocalModeError("the stand-ins are not running: run `envsync-local up` first")
    return sceptre(local, *args).returncode


def command_status(local: LocalStack) -> int:
    print(f"state: {local.root}")
    print(f"moto {local.moto.endpoint_url}: {'running' if local.moto_running() else 'stopped'}")
    for db in local.servers:
        print(f"MariaDB {db.name} {db.host}:{db.port}: {'running' if db.is_running() else 'stopped'}")
    if local.moto_running():
        print_outputs(local)
    return 0


def command_status_page(local: LocalStack, path: Path, minutes: int, period: int) -> int:
    """Write each env's dashboard, drawn from the stand-in's CloudWatch, as one static page."""
    from envsync_tools.status_page import read_panel, render_html

    if not local.moto_running():
        raise LocalModeError("the stand-ins are not running: run `envsync-local up` first")
    end = datetime.datetime.now(datetime.timezone.utc)
    start = end - datetime.timedelta(minutes=minutes)
    endpoint = local.moto.endpoint_url
    panels = [read_panel(env_session(local, local.envs[name]).client("cloudwatch", endpoint_url=endpoint),
                         name, start, end, period) for name in local.order]
    path.write_text(render_html(panels, start, end, period), encoding="utf-8")
    alarms = sum(len(panel.alarms) for panel in panels)
    print(f"wrote {path}: {len(panels)} envs, {alarms} alarms, {sum(len(p.charts) for p in panels)} charts")
    return 0


def command_down(local: LocalStack, wipe: bool) -> int:
    local.stop()
    print("stopped moto and the MariaDB stand-ins")
    if wipe:
        shutil.rmtree(local.root, ignore_errors=True)
        print(f"wiped {local.root}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    """`envsync-local`'s command line (README's commands are checked against it)."""
    parser = argparse.ArgumentParser(prog="envsync-local", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--moto-port", type=int, help=f"moto server port (default {DEFAULT_MOTO_PORT})")
    parser.add_argument("--db-port-base", type=int,
                        help=f"first MariaDB port, one per env (default {DEFAULT_DB_PORT_BASE})")
    commands = parser.add_subparsers(dest="command", required=True)
    up = commands.add_parser("up", help="start the stand-ins and launch the envs")
    up.add_argument("envs", nargs="*", help="envs to launch (default: all, upstream first, then a sync cycle)")
    up.add_argument("--no-sync", action="store_true", help="launch only; skip the sync cycle")
    failing = up.add_mutually_exclusive_group()
    failing.add_argument("--fail-first-create", metavar="LOGICAL_ID|last",
                         default=os.environ.get("ENVSYNC_FAIL_FIRST_CREATE") or None,
                         help="when moto starts: the first create of every stack fails at this resource and "
                              "rolls back, and the launch retries it (default $ENVSYNC_FAIL_FIRST_CREATE, "
                              f"else {DEFAULT_FAIL_FIRST_CREATE})")
    failing.add_argument("--no-failed-create", action="store_true",
                         help="when moto starts: create every stack once, no failed first create "
                              "(a quicker launch; the proof's line says the retries were not run)")
    commands.add_parser("sync", help="run the sync cycle (bootstrap, samples, dev -> staging -> prod, status)")
    run = commands.add_parser("run", help="run one env's deployed state machine once and print how it ended "
                                           "(a gated env stops at the approval: the message and the commands)")
    run.add_argument("env", help="the env (dev, staging, prod)")
    inbox_parser = commands.add_parser("inbox", help="what the env's SNS topics published, newest first, by run")
    inbox_parser.add_argument("env", help="the env (dev, staging, prod)")
    inbox_parser.add_argument("--limit", type=int, default=20, help="show at most this many (default 20)")
    status = commands.add_parser("status", help="show the stand-ins and the stacks")
    status.add_argument("--html", type=Path, metavar="FILE",
                        help="write each env's dashboard (alarms, charts) as a static page instead")
    status.add_argument("--minutes", type=int, default=180, help="time window of the charts (default 180)")
    status.add_argument("--period", type=int, default=60, help="seconds per chart point (default 60)")
    proof = commands.add_parser("proof", help="evaluate the AWS calls of the last `up` against the deployed policies")
    proof.add_argument("--all", action="store_true", help="every call since moto started (people's calls too)")
    commands.add_parser("env", help='print the exports that point sceptre/boto3 at the stand-ins (eval "$(...)")')
    diff = commands.add_parser("diff", help="sceptre diff against the stand-ins, only the changed lines per stack "
                                            "(exit 1 when a stack differs)")
    diff.add_argument("path", help="an env (staging) or one stack (staging/sync.yaml)")
    run_sceptre = commands.add_parser("sceptre", help="run Sceptre against the stand-ins (sceptre diff ...)")
    run_sceptre.add_argument("sceptre_args", nargs=argparse.REMAINDER)
    resume = commands.add_parser("resume", help="continue a run whose task token was answered (the stand-in runs it)")
    resume.add_argument("execution_arn")
    cost = commands.add_parser("cost", help="each env's monthly AWS estimate from config/ and the price table")
    cost.add_argument("--markdown", action="store_true", help="as README's table")
    down = commands.add_parser("down", help="stop what `up` started")
    down.add_argument("--wipe", action="store_true", help="also delete the state directory")
    return parser


@quiet_when_the_reader_leaves
def main(argv: Optional[List[str]] = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        if args.command == "cost":
            print(format_report(markdown=args.markdown))
            return 0
        envs = load_envs(project_dir() / "config")
        asked = "" if getattr(args, "no_failed_create", False) else getattr(args, "fail_first_create", None)
        local = LocalStack(state_dir(), envs, args.moto_port, args.db_port_base, fail_first_create=asked,
                           default_fail_first_create=DEFAULT_FAIL_FIRST_CREATE)
        if args.command == "up":
            unknown = sorted(set(args.envs) - set(envs))
            # The dates the shipped runtime and engine stop being deployable, as at `sceptre launch`.
            for warning in lifecycle_warnings(project_dir() / "config"):
                print(f"envsync-local: {warning}", file=sys.stderr)
            if unknown:
                raise LocalModeError(f"unknown env(s) {', '.join(unknown)}; known: {', '.join(local.order)}")
            try:
                return command_up(local, args.envs, with_sync=not args.no_sync)
            except RetryFailed as err:  # what the failed-create retry is there to find
                print(f"envsync-local: FINDING {err}", file=sys.stderr)
                return 1
        if args.command == "sync":
            return command_sync(local)
        if args.command == "run":
            return command_run(local, args.env)
        if args.command == "inbox":
            return command_inbox(local, args.env, args.limit)
        if args.command == "status":
            if args.html:
                return command_status_page(local, args.html, args.minutes, args.period)
            return command_status(local)
        if args.command == "proof":
            return command_proof(local, everything=args.all)
        if args.command == "env":
            return command_env(local)
        if args.command == "sceptre":
            return command_sceptre(local, args.sceptre_args)
        if args.command == "diff":
            return command_diff(local, args.path)
        if args.command == "resume":
            return command_resume(local, args.execution_arn)
        return command_down(local, args.wipe)
    except (EnvConfigError, MariaDBError, MotoServerError, LocalModeError, CostError) as err:
        print(f"envsync-local: {err}", file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
