"""The offline sync cycle README command 1 runs after launching the stacks.

1. bootstrap the sync users in every env (each env's bootstrap Lambda, from its secrets);
2. upload the sample migrations to dev's bucket; the dev application writes its reference data;
3. run the deployed state machine for dev, then staging (pulling from dev through dev's
   source-reader role), then prod (pulling from staging);
4. print a status table per env;
5. show a blocked promotion: a migration that fails in staging stops there, prod is untouched,
   the failure is on the SNS topic and staging's SyncFailures alarm is in ALARM.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List, Optional

import boto3
import pymysql

from envsync.approval.answer import APPROVAL_SUBJECT
from envsync_local import inbox
from envsync_local.cloudwatch_emulation import evaluate_alarms
from envsync_local.orchestrate import SyncRun, run_sync, stored_run
from envsync_local.paths import PROJECT_ROOT

SAMPLES = PROJECT_ROOT / "local" / "samples"
FAILING_VERSION = "4"  # local/samples/failing: the script step [5] makes fail in staging
MIGRATIONS_PREFIX = "migrations/"


@dataclass
class EnvHandle:
    """One env as the cycle sees it: its account session, stack outputs and local database."""

    name: str
    session: boto3.Session
    endpoint_url: str
    db_host: str
    db_port: int
    ca_bundle: str
    database: str
    outputs: Dict[str, str] = field(default_factory=dict)
    inbox_url: Optional[str] = None
    executions_dir: Optional[Path] = None  # runs are executions of the stand-in's Step Functions

    def client(self, service: str) -> Any:
        return self.session.client(service, endpoint_url=self.endpoint_url)

    @property
    def state_dir(self) -> Optional[Path]:
        """The stand-ins' state directory (the executions' parent), where the mailboxes are."""
        return self.executions_dir.parent if self.executions_dir else None

    def app_connection(self, **extra: Any) -> pymysql.Connection:
        """The env's application (the stand-in's admin), e.g. dev editing its reference data."""
        return pymysql.connect(host=self.db_host, port=self.db_port, user="root", password="",
                               database=self.database, ssl={"ca": self.ca_bundle}, autocommit=True, **extra)

    @property
    def runtime_env(self) -> Dict[str, str]:
        """What differs between a Lambda container and this machine: the stand-ins' CA."""
        return {"ENVSYNC_CA_BUNDLE": self.ca_bundle}


def stack_outputs(handle: EnvHandle) -> Dict[str, str]:
    outputs: Dict[str, str] = {}
    for stack in handle.client("cloudformation").describe_stacks()["Stacks"]:
        if stack["StackName"].startswith(f"envsync-{handle.name}-"):
            outputs.update({o["OutputKey"]: o["OutputValue"] for o in stack.get("Outputs", [])})
    return outputs


def subscribe_inbox(handle: EnvHandle) -> str:
    """An SQS queue subscribed to the env's topics, so local mode can show what was sent."""
    return inbox.subscribe(handle)


def inbox_messages(handle: EnvHandle) -> List[Dict[str, Any]]:
    """What the env's topics sent since the last look (kept in its mailbox: envsync_local.inbox)."""
    return inbox.drain(handle)


SYNC_SECRET_OUTPUTS = ("WriterSecretArn", "ReaderSecretArn")


def sync_user_secrets(handle: EnvHandle) -> List[str]:
    """The env's sync-user secrets (writer; reader where a downstream reads from the env)."""
    return [handle.outputs[key] for key in SYNC_SECRET_OUTPUTS if handle.outputs.get(key)]


def log_in_as_sync_users(handle: EnvHandle) -> List[str]:
    """Each sync user logs in with its secret's current version; returns the user names."""
    secrets = handle.client("secretsmanager")
    users = []
    for arn in sync_user_secrets(handle):
        value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
        connection = pymysql.connect(host=handle.db_host, port=handle.db_port, user=value["username"],
                                     password=value["password"], ssl={"ca": handle.ca_bundle})
        connection.close()
        users.append(str(value["username"]))
    return users


def rotate_sync_users(handle: EnvHandle) -> List[str]:
    """Rotate every sync-user secret of the env now (the rotation function runs its four steps)."""
    secrets = handle.client("secretsmanager")
    for arn in sync_user_secrets(handle):
        secrets.rotate_secret(SecretId=arn, RotateImmediately=True)
    return log_in_as_sync_users(handle)


def upload_migrations(handle: EnvHandle, folder: Path) -> List[str]:
    s3 = handle.client("s3")
    names = []
    for script in sorted(folder.glob("V*__*.sql")):
        s3.put_object(Bucket=handle.outputs["MigrationBucketName"], Key=MIGRATIONS_PREFIX + script.name,
                      Body=script.read_bytes())
        names.append(script.name)
    return names


def run_sql_file(handle: EnvHandle, path: Path, **values: str) -> None:
    text = path.read_text()
    for key, value in values.items():
        text = text.replace("{" + key + "}", value)
    with handle.app_connection() as connection, connection.cursor() as cursor:
        for statement in (part.strip() for part in text.split(";\n")):
            if statement and not all(line.startswith("--") for line in statement.splitlines()):
                cursor.execute(statement)


def sync(handle: EnvHandle) -> SyncRun:
    return run_sync(handle.session, handle.endpoint_url, handle.name, handle.runtime_env,
                    execution_input={"trigger": "local"}, executions_dir=handle.executions_dir)


def answer_approval(handle: EnvHandle, run: SyncRun, decision: str = "approve", reason: str = "",
                    timeout: float = 600) -> Dict[str, Any]:
    """What a person does with a run that waits: read the plan on the topic, then run
    `envsync approve` (or `reject`) — the real CLI, through the env's approver role. Returns
    the message, the CLI's output, and the run as it ended."""
    assert run.execution_arn and handle.executions_dir, "the run must be an execution of the stand-in"
    messages = [m for m in inbox_messages(handle) if m["subject"] == APPROVAL_SUBJECT]
    command = [sys.executable, "-m", "envsync.cli.main", "--json", decision, "--env", handle.name,
               "--run", run.execution_arn.rsplit(":", 1)[-1], "--wait", str(timeout)]
    if decision == "reject":
        command += ["--reason", reason or "not now"]
    environment = dict(os.environ, ENVSYNC_LOCAL_DIR=str(handle.executions_dir.parent))
    answered = subprocess.run(command, capture_output=True, text=True, env=environment,
                              cwd=PROJECT_ROOT, timeout=timeout + 60, check=False)
    if answered.returncode not in (0, 1):
        raise RuntimeError(f"envsync {decision} --env {handle.name} failed: {answered.stdout} {answered.stderr}")
    ended = stored_run(handle.executions_dir, run.execution_arn) or run
    ended.alarms = evaluate_alarms(handle.session, handle.endpoint_url, prefix=f"envsync-{handle.name}")
    return {"message": messages[-1]["message"] if messages else None, "cli": json.loads(answered.stdout),
            "run": ended}


def run_id(run: SyncRun) -> str:
    return (run.execution_arn or "").rsplit(":", 1)[-1] or "-"


def waiting_text(handle: EnvHandle, run: SyncRun) -> str:
    """A run that waits for a person: the message its topic carried, the plan's digest and the
    two commands that answer it."""
    from envsync.approval.answer import answer_commands, waiting_fields

    waiting = run.execution.waiting or {}
    wait = waiting_fields(waiting.get("parameters") or {})  # the token stays out of what is printed
    digest = wait["digest"]
    lines = [f"{handle.name}: run {run_id(run)} waits for a person's approval (state {waiting.get('state')}); "
             f"the message on {handle.name}'s topic reads:"]
    lines += [f"  | {line}" for line in wait["message"].splitlines()]
    lines += ["", f"plan digest: {digest}", "answer it with one of:"]
    lines += [f"  {command}" for command in answer_commands(handle.name, run_id(run), digest)]
    return "\n".join(lines)


def outcome_text(handle: EnvHandle, run: SyncRun) -> str:
    """What `envsync-local run ENV` prints: the wait and its answers, or how the run ended."""
    if run.execution.status == "RUNNING" and run.execution.waiting:
        return waiting_text(handle, run)
    return (f"{handle.name}: run {run_id(run)} {run.execution.status} in {run.seconds:.1f}s\n"
            + format_status([env_status(handle, run)]))


@dataclass
class EnvStatus:
    env: str
    execution: str
    schema_version: str
    pending: Optional[int]
    drift: Optional[int]
    rows_synced: Optional[int]
    lag_seconds: Optional[float]
    alarms: Dict[str, str]
    error: Optional[str] = None


def history_states(handle: EnvHandle) -> Dict[str, str]:
    """version -> state of the env's history table (empty before the first run)."""
    with handle.app_connection() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                       "AND TABLE_NAME = 'envsync_schema_history'")
        if not cursor.fetchone()[0]:
            return {}
        cursor.execute("SELECT version, state FROM envsync_schema_history")
        return dict(cursor.fetchall())


def history_summary(handle: EnvHandle) -> str:
    rows = list(history_states(handle).items())
    if not rows:
        return "-"
    applied = sorted((tuple(int(p) for p in v.split(".")), v) for v, state in rows if state == "success")
    failed = [v for v, state in rows if state in ("failed", "running")]
    summary = f"V{applied[-1][1]}" if applied else "-"
    return summary + (f" (V{', V'.join(failed)} failed)" if failed else "")


def env_status(handle: EnvHandle, run: SyncRun) -> EnvStatus:
    results = {record["function"].rsplit("-", 1)[-1]: record for record in run.invocations}
    plan = results.get("plan", {}).get("result") or {}
    migrated = results.get("migrate", {}).get("result") or {}
    drift = results.get("drift", {}).get("result") or {}
    refdata = results.get("refdata", {}).get("result") or {}
    rows = sum(r.get("result", {}).get("rows_changed", 0) for r in run.invocations
               if r["function"].endswith("-refdata") and isinstance(r.get("result"), dict))
    error = None
    if run.execution.status != "SUCCEEDED":
        failing = next((r for r in reversed(run.invocations) if "error" in r), None)
        error = f"{failing['function']}: {failing['message']}" if failing else run.execution.cause
    return EnvStatus(
        env=handle.name,
        execution=run.execution.status,
        schema_version=history_summary(handle),
        # After the run: what migrate left pending, or what plan saw when migrate did not finish.
        pending=len(migrated["pending"]) if "pending" in migrated else (
            len(plan["pending"]) if "pending" in plan else None),
        drift=drift.get("drift_count"),
        rows_synced=rows if "refdata" in results and "skipped" not in refdata else None,
        lag_seconds=refdata.get("replication_lag_seconds"),
        alarms=run.alarms,
        error=error,
    )


def format_status(statuses: List[EnvStatus]) -> str:
    header = f"{'env':<8} {'run':<10} {'schema':<22} {'pending':>7} {'drift':>5} {'rows':>5} {'lag s':>6}  alarms"
    lines = [header, "-" * len(header)]

    def show(value: Any) -> str:
        return "-" if value is None else (f"{value:.1f}" if isinstance(value, float) else str(value))

    for status in statuses:
        alarms = ", ".join(f"{name.split('-', 2)[-1]}={state}" for name, state in sorted(status.alarms.items()))
        lines.append(f"{status.env:<8} {status.execution:<10} {status.schema_version:<22} {show(status.pending):>7} "
                     f"{show(status.drift):>5} {show(status.rows_synced):>5} {show(status.lag_seconds):>6}  {alarms}")
        if status.error:
            lines.append(f"{'':<8} error: {status.error[:160]}")
    return "\n".join(lines)


def run_cycle(handles: List[EnvHandle], print_line=print) -> Dict[str, Any]:
    """Steps 1-5 for handles ordered upstream first (dev, staging, prod). Returns a report."""
    started = time.monotonic()
    report: Dict[str, Any] = {"steps": []}
    for handle in handles:
        handle.outputs = stack_outputs(handle)
        handle.inbox_url = subscribe_inbox(handle)
    source, *downstream = handles
    report["chain"] = [handle.name for handle in handles]  # upstream first, as config/ orders it
    # What this cycle finds: its expectations are judged against it (a rerun starts where the
    # last cycle, or the operator, left each env).
    report["before"] = {handle.name: {"schema": history_summary(handle),
                                      "unfinished": sorted(v for v, state in history_states(handle).items()
                                                           if state != "success")}
                        for handle in handles}

    print_line("\n[1] sync users (created with each aurora stack) log in; then their passwords rotate")
    for handle in handles:
        users = log_in_as_sync_users(handle)
        rotate_sync_users(handle)
        print_line(f"    {handle.name}: {', '.join(users)} log in; rotated (single user), still log in")

    print_line(f"\n[2] sample migrations -> s3://{source.outputs['MigrationBucketName']}/{MIGRATIONS_PREFIX}")
    print_line("    " + ", ".join(upload_migrations(source, SAMPLES / "migrations")))

    print_line(f"\n[3] sync {source.name}, then " + ", then ".join(
        f"{handle.name} (pulls from {upstream.name})" for upstream, handle in zip(handles, downstream)))
    runs: Dict[str, SyncRun] = {}
    for handle in handles:
        runs[handle.name] = sync(handle)
        if runs[handle.name].execution.status == "RUNNING" and runs[handle.name].execution.waiting:
            print_line(f"    {handle.name}: waits for a person's approval; the plan on its topic reads:")
            answered = answer_approval(handle, runs[handle.name])
            for line in (answered["message"] or "(no message on the topic)").splitlines():
                print_line(f"      | {line}")
            print_line(f"    $ envsync approve --env {handle.name} --run {answered['cli']['run']}")
            cli = answered["cli"]
            print_line(f"      approved by {cli.get('approved_by')} -> run {cli.get('run_status')}")
            report["approval"] = {"env": handle.name, "message": answered["message"], "cli": answered["cli"]}
            runs[handle.name] = answered["run"]
        if handle is source and runs[handle.name].execution.status == "SUCCEEDED":
            # dev's application owns its reference data; customers exist in every env.
            with handle.app_connection() as connection, connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM currency")
                seeded = cursor.fetchone()[0] > 0
            if not seeded:
                run_sql_file(handle, SAMPLES / "reference_data.sql")
        if runs[handle.name].execution.status == "SUCCEEDED":
            with handle.app_connection() as connection, connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM customer_account")
                has_customers = cursor.fetchone()[0] > 0
            if not has_customers:
                run_sql_file(handle, SAMPLES / "customer_data.sql", env=handle.name)
        blocked_by = report["before"][handle.name]["unfinished"]
        still = (f" (blocked before this cycle by V{', V'.join(blocked_by)}: repair it, see README)"
                 if blocked_by and runs[handle.name].execution.status != "SUCCEEDED" else "")
        ran = runs[handle.name]
        print_line(f"    {handle.name}: {ran.execution.status} in {ran.seconds:.1f}s{still}")

    print_line("\n[4] status")
    statuses = [env_status(handle, runs[handle.name]) for handle in handles]
    print_line(format_status(statuses))
    report["status"] = statuses

    staging = downstream[0]  # the env after the source: staging in the shipped chain
    print_line(f"\n[5] blocked promotion: {staging.name} has a hand-made index ix_country_name (drift); "
               "V4 creates the same index")
    # The demo's failure can happen only where V4 is not applied yet (an operator who unblocked
    # staging applied it with the index it creates).
    report["demo_failure_expected"] = history_states(staging).get(FAILING_VERSION) != "success"
    if not report["demo_failure_expected"]:
        print_line(f"    {staging.name} already applied V{FAILING_VERSION} (unblocked since an earlier cycle): "
                   "nothing here can block it again")
    with staging.app_connection() as connection, connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.STATISTICS WHERE TABLE_SCHEMA = DATABASE() "
                       "AND TABLE_NAME = 'country' AND INDEX_NAME = 'ix_country_name'")
        if not cursor.fetchone()[0]:
            cursor.execute("CREATE INDEX ix_country_name ON country (name)")
    upload_migrations(source, SAMPLES / "failing")
    blocked = {handle.name: sync(handle) for handle in handles}
    statuses = [env_status(handle, blocked[handle.name]) for handle in handles]
    print_line(format_status(statuses))
    # Only what this cycle's staging run published: earlier runs' messages stay in the inbox.
    arrived = inbox_messages(staging)
    runs_of_staging = inbox.env_runs(staging.executions_dir, staging.name) if staging.executions_dir else []
    this_run = run_id(blocked[staging.name])
    notices = [m for m in inbox.mark_runs(arrived, runs_of_staging) if m["run"] in (this_run, None)] \
        if runs_of_staging else arrived
    for notice in notices:
        print_line(f"    SNS {staging.name}: {notice['subject']}: {str(notice['message'])[:140]}")
    if len(arrived) > len(notices):
        print_line(f"    ({len(arrived) - len(notices)} earlier message(s) of {staging.name}'s topic, from other "
                   f"runs: envsync-local inbox {staging.name})")
    report["blocked"] = statuses
    report["notices"] = notices
    report["seconds"] = time.monotonic() - started
    return report


# The one alarm the demo expects: the failed promotion in the env after the source (prod's
# replica-lag alarm is OK: the stand-in's replica publishes its lag, see cfn_models.replica).
EXPECTED_ALARM = "sync-failures"


def demo_outcome_problems(report: Dict[str, Any]) -> List[str]:
    """Where a cycle's report differs from what this cycle should have done (empty: as expected),
    judged against what it found (`report["before"]`), so a rerun holds after any earlier cycle.

    Expected: every env's first sync succeeds, but an env that was blocked before the cycle
    stays blocked; prod's schema moves only through an approved run, which applies; in the
    blocked promotion dev succeeds and prod stays where it was; staging fails on V4's
    duplicate index and says so on its topic, unless it had applied V4 before step [5].
    """
    # The roles the demo gives the chain (config/'s order): the source authors, the env after it
    # is where step [5] fails, the last env is prod, gated by a person.
    source_env, blocked_env, *_, gated_env = report["chain"]
    before = report.get("before") or {}
    problems = [f"{status.env}: first sync {status.execution}: {status.error or ''}".rstrip(": ")
                for status in report.get("status", [])
                if status.execution != "SUCCEEDED" and not (before.get(status.env) or {}).get("unfinished")]
    first = {status.env: status for status in report.get("status", [])}
    approval = report.get("approval") or {}
    prod_moved = gated_env not in before or (
        gated_env in first and first[gated_env].schema_version != before[gated_env]["schema"])
    if approval and (approval.get("env") != gated_env or approval.get("cli", {}).get("run_status") != "SUCCEEDED"):
        problems.append(f"{gated_env}: the approved run did not apply its plan")
    elif not approval and prod_moved:
        problems.append(f"{gated_env}: the first sync should wait for an approval, then apply once approved")
    blocked = {status.env: status for status in report.get("blocked", [])}
    failing, prod = blocked.get(blocked_env), blocked.get(gated_env)
    if blocked.get(source_env) is None or blocked[source_env].execution != "SUCCEEDED":
        problems.append(f"{source_env}: the blocked-promotion run did not succeed")
    if report.get("demo_failure_expected", True):
        # The notice names the script and the error class (1061: duplicate key name), not the text.
        if failing is None or failing.execution != "FAILED" or "V4__index_country_name" not in (failing.error or ""):
            problems.append(f"{blocked_env}: expected to fail on V4's duplicate index ix_country_name")
        if not report.get("notices"):
            problems.append(f"{blocked_env}: no failure notice on its topic")
    if prod is None or (prod.env in first and prod.schema_version != first[prod.env].schema_version):
        problems.append(f"{gated_env}: must not move past a failure upstream")
    for status in list(blocked.values()):
        for alarm, state in (status.alarms or {}).items():
            short = alarm.split("-", 2)[-1]  # envsync-<env>-<what>
            if state == "ALARM" and (status.env, short) != (blocked_env, EXPECTED_ALARM):
                problems.append(f"{status.env}: alarm {alarm} is in ALARM")
    return problems
