"""Lambda handlers: event in, dict out. Thin: configuration, connections, one engine call, log, metrics.

Contract (what the Step Functions state machine relies on)
- Every handler returns a JSON-able dict with "status" and "env":
  "done" (finished), "continue" (time budget used up; call again with the returned "cursor"),
  or "failed" (with "error": what, where and what to do).
- On "failed" the handler also increments SyncFailures, logs the error and publishes to
  ENVSYNC_SNS_TOPIC_ARN a notice built only from named fields the engine made (env, step,
  script, statement, line, table, error class: `failure_fields`), never a server's message,
  which can quote row values. It does not raise, so a Choice state on $.status routes the
  failure; an event with {"raise_on_failure": true} makes it raise `SyncFailed` (whose message
  is that notice) instead, for a Catch/Retry: the state machine then publishes nothing more.
- The time budget is the Lambda's remaining time minus a safety margin (`deadline`).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, List, Optional, Tuple

import pymysql

from envsync import approval, aws, lint
from envsync.approval import answer as approval_gate
from envsync.credentials import db_users
from envsync.errors import EnvsyncError
from envsync.lambdas.context import ConfigError, EnvContext, HandlerConfig
from envsync.migrations import migrate
from envsync.mysql.connection import server_error_notice
from envsync.mysql.lock import schema_lock, shared_schema_lock
from envsync.observability import emit_metrics, log_action, logger

SAFETY_MARGIN_SECONDS = 30.0
# The upstream is read by its read-only user (SELECT on the allow-listed tables and the history;
# SHOW VIEW and REFERENCES on the app schema, which show every table's definition but no row,
# db_users.py), which the server does not show triggers (need TRIGGER, a write
# privilege), routines (need mysql.proc / SHOW_ROUTINE) or view definitions (need SELECT on the
# view: listed per view as not compared) to. Those kinds are left out of the Lambda's drift comparison rather than
# reported as false drift; they only arrive through migrations, whose checksums the promotion
# gate compares. `envsync drift` with full-privilege users compares them too. Events, likewise,
# are shown only to users with the EVENT privilege.
READER_INVISIBLE_KINDS = ("trigger", "procedure", "function", "event")
DEFAULT_BUDGET_SECONDS = 270.0  # when called without a Lambda context (local mode)
UNAPPROVED_SUBJECT = "envsync: reference data waits for a new approval"


class SyncFailed(EnvsyncError, RuntimeError):
    """Raised instead of returning status failed when the event asks for it."""


def _deadline(context: Any) -> float:
    remaining = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        remaining = context.get_remaining_time_in_millis() / 1000.0 - SAFETY_MARGIN_SECONDS
    return time.monotonic() + max(1.0, remaining if remaining is not None else DEFAULT_BUDGET_SECONDS)


# The named fields a failure notice may carry, besides env and step. Each one is the engine's
# own: a script or table name from the plan or the allow-list, numbers, an error class, and a
# `detail` only from texts the engine declares data-free (validation notices, the messages of
# errors.EnvsyncError classes with `quotes_no_data`: names, hosts, configuration, what to do).
FAILURE_FIELDS = ("script", "statement", "line", "table", "error", "detail")
LOGGED_EVENT_EXCLUDES = ("cursor", "token")  # a task token is a credential: never in the logs


def failure_fields(action: str, env: str, result: Dict[str, Any]) -> Dict[str, Any]:
    """What SNS may say about a failed step: env, step and the result's named `failure` fields."""
    named = result.get("failure") or {}
    fields: Dict[str, Any] = {"env": env, "step": action}
    fields.update({key: named[key] for key in FAILURE_FIELDS if named.get(key) not in (None, "")})
    fields.setdefault("error", str(result.get("error_type") or "failed"))
    return fields


def failure_notice(fields: Dict[str, Any]) -> str:
    """The notice text, from the named fields only."""
    where = ""
    if fields.get("script"):
        where = f" at {fields['script']}"
        if fields.get("statement") is not None:
            where += f" statement {fields['statement']} (line {fields.get('line')})"
    if fields.get("table"):
        where += f" in table {fields['table']}"
    env = fields["env"]
    detail = f" — {fields['detail']}" if fields.get("detail") else ""
    return (f"envsync {fields['step']} failed in {env}{where}: {fields['error']}{detail}. The full error is in "
            f"{env}'s history and logs (envsync status --env {env})")


def _run(action: str, event: Optional[Dict[str, Any]], context: Any,
         body: Callable[[EnvContext, Dict[str, Any], float], Dict[str, Any]]) -> Dict[str, Any]:
    event = event or {}
    started = time.monotonic()
    env = "unknown"
    env_context: Optional[EnvContext] = None
    config: Optional[HandlerConfig] = None
    try:
        config = HandlerConfig.from_environ()
        env = config.env
        logger.append_keys(env=env, handler=action)
        log_action(f"{action} started", event={k: v for k, v in event.items() if k not in LOGGED_EVENT_EXCLUDES})
        env_context = EnvContext(config)
        result = body(env_context, event, _deadline(context))
    except Exception as error:  # every failure becomes a result the state machine can route
        result = {"status": "failed", "error": str(error), "error_type": type(error).__name__,
                  "failure": {"error": type(error).__name__}}
        if isinstance(error, pymysql.err.MySQLError):
            result["notice"] = result["failure"]["error"] = server_error_notice(error)
        elif isinstance(error, EnvsyncError) and error.quotes_no_data:
            result["failure"]["detail"] = error.message
    finally:
        if env_context is not None:
            env_context.close()
    result = {"env": env, "action": action, **result,
              "duration_ms": int((time.monotonic() - started) * 1000)}
    notice = None
    if result["status"] == "failed":
        notice = failure_notice(failure_fields(action, env, result))
        _report_failure(action, env, config, result, notice)
    elif config is not None:
        emit_metrics(env, SyncFailures=0)  # a steady series, so dashboards and alarms see runs
    log_action(f"{action} finished", result=result)
    if notice is not None and event.get("raise_on_failure"):
        raise SyncFailed(notice)
    return result


def _report_failure(action: str, env: str, config: Optional[HandlerConfig], result: Dict[str, Any],
                    notice: str) -> None:
    logger.error(f"{action} failed", extra={"action": f"{action} failed", "error": result.get("error")})
    try:
        emit_metrics(env, SyncFailures=1)
    except Exception as error:  # a metrics problem must not hide the sync failure
        logger.warning("metrics failed", extra={"error": str(error)})
    if config is not None and config.sns_topic_arn:
        try:
            aws.publish_failure(aws.client("sns"), config.sns_topic_arn, f"envsync {action} failed in {env}", notice)
        except Exception as error:
            logger.warning("SNS publish failed", extra={"error": str(error)})


# ---------------------------------------------------------------- migrations

def _migration_status(result: migrate.MigrationResult) -> str:
    return {"up_to_date": "done", "applied": "done", "continue": "continue"}.get(result.status, "failed")


def _migrate(ctx: EnvContext, event: Dict[str, Any], deadline: float) -> Dict[str, Any]:
    if event.get("sign_history"):
        return _sign_history(ctx, event)
    # Two sessions: the history and the lock must not depend on what a script does to its own.
    connection, script_connection = ctx.target_connections(2)
    source = ctx.script_source()
    result = migrate.apply(
        connection, source, schema=ctx.target_info.database if ctx.target_info else "",
        script_connection=script_connection, env_name=ctx.config.env,
        lock_timeout=int(event.get("lock_timeout", migrate.DEFAULT_LOCK_TIMEOUT)), deadline=deadline,
        log=lambda message, **fields: log_action(message, **fields),
        approval=approval.granted(event.get("approval")),  # the plan's gate and a person's decision
        approval_mode=ctx.config.approval_mode,
        signer=ctx.signer(),
    )
    if result.ok:  # a listed reference table a migration created becomes readable downstream
        db_users.refresh_reader_grants(connection, ctx.target_info.database if ctx.target_info else "")
    return {**result.to_dict(), "status": _migration_status(result), "migration_status": result.status}


def _sign_history(ctx: EnvContext, event: Dict[str, Any]) -> Dict[str, Any]:
    """The source env signs the rows it applied before proof of origin existed (origin.py)."""
    signer = ctx.signer()
    if signer is None:
        raise ConfigError(f"{ctx.config.env} pulls from {ctx.config.upstream_env}: only the source env signs; "
                          "a downstream env takes the proofs from its upstream on its next run")
    connection = ctx.target_connection()
    done = migrate.sign_history(connection, ctx.script_source(), signer,
                                schema=ctx.target_info.database if ctx.target_info else "",
                                lock_timeout=int(event.get("lock_timeout", migrate.DEFAULT_LOCK_TIMEOUT)))
    for name in done["signed"]:
        log_action("history row signed", script=name)
    if done["refused"]:
        return {"status": "failed", **done, "error": "; ".join(done["refused"]),
                "failure": {"error": "refused: not signed"}}
    return {"status": "done", **done}


def _plan(ctx: EnvContext, event: Dict[str, Any], deadline: float) -> Dict[str, Any]:
    """The plan, its destructive statements and, for an env that waits for a person
    (ENVSYNC_APPROVAL_MODE: required | destructive-only | none), the message, digest and
    timeout of the approval the state machine waits for. In such an env the reference-data
    changes the run would make count too: per allow-listed table the counts and the whole
    delta's digest (bound by the plan digest) and, in the message, the first rows old -> new. A
    table whose shape differs now (a pending script changes it) is not compared: nothing of it
    is approved, so the refdata step applies none of it and the next run asks for it."""
    if event.get("ask"):
        return _ask(ctx, event)
    run_arn = str(event.get("run_id", ""))  # the execution's ARN ($$.Execution.Id)
    target = ctx.target_connection()
    plan = migrate.make_plan(target, ctx.script_source())
    findings = lint.lint_plan(target, plan.pending)
    scripts = approval.approved_scripts(plan.pending)
    preview = _refdata_preview(ctx, deadline) if ctx.config.approval_mode != "none" else {}
    refdata_changes = approval.refdata_changes(preview)
    digest = approval.plan_digest(scripts, refdata_changes)
    required = approval.needs_approval(ctx.config.approval_mode, plan.pending, findings, refdata_changes)
    timeout = ctx.config.approval_timeout_seconds
    # `superseded` always present: a Choice on a missing path is a runtime error in AWS.
    gate: Dict[str, Any] = {"required": required, "superseded": False, "digest": digest, "scripts": scripts,
                            "timeout_seconds": timeout, "refdata": refdata_changes}
    if required:
        gate["message"] = approval.approval_message(
            env=ctx.config.env, upstream_env=ctx.config.upstream_env or "its bucket",
            run_id=run_arn.rsplit(":", 1)[-1], pending=plan.pending, findings=findings, digest=digest,
            timeout_seconds=timeout, refdata=approval.refdata_changes(preview, with_rows=True),
            refdata_listed=[t["table"] for t in preview.get("tables", [])],
            not_compared=approval.refdata_not_compared(preview))
        gate.update(_one_waiting_run(run_arn, digest))
    for finding in findings:
        log_action("destructive statement", kind=finding.kind, statement=finding.label, detail=finding.detail)
    return {"status": "done", **plan.to_dict(), "destructive": [f.to_dict() for f in findings],
            "approval": gate}


def _one_waiting_run(run_arn: str, digest: str) -> Dict[str, Any]:
    """At most one run of the env waits for a person (the schedule starts one every 15
    minutes): a run whose plan (digest) already waits in another run is `superseded` and ends
    without a message; runs that wait on another plan are stopped (they applied nothing), so
    this one's is the only message to answer. Nothing to check outside a Step Functions run."""
    machine = approval_gate.machine_arn_of(run_arn)
    if machine is None:
        return {"superseded": False}
    stepfunctions = aws.client("stepfunctions")
    others = [run for run in approval_gate.waiting_runs(stepfunctions, machine) if run.execution_arn != run_arn]
    kept = next((run for run in others if run.digest == digest), None)
    for run in others:
        if run is not kept:
            stepfunctions.stop_execution(executionArn=run.execution_arn, error=approval_gate.SUPERSEDED,
                                         cause=f"run {run_arn.rsplit(':', 1)[-1]} asks for plan {digest[:12]}… instead")
            log_action("waiting run stopped: a newer plan replaces it", run=run.run_id, digest=run.digest)
    if kept is not None:
        log_action("plan already waits in another run: superseded", waiting_run=kept.run_id, digest=digest)
        return {"superseded": True, "waiting_run": kept.run_id}
    return {"superseded": False}


def _ask(ctx: EnvContext, event: Dict[str, Any]) -> Dict[str, Any]:
    """WaitForApproval's call, while the run waits on the task token in the event: the plan's
    message goes to the topic. The token does not: the CLI reads it from the run's history."""
    gate = event.get("approval") or {}
    ctx.config.require("sns_topic_arn")
    aws.client("sns").publish(
        TopicArn=ctx.config.sns_topic_arn, Subject=approval_gate.APPROVAL_SUBJECT, Message=str(gate["message"]),
        MessageAttributes={approval_gate.DIGEST_ATTRIBUTE: {"DataType": "String", "StringValue": str(gate["digest"])}})
    log_action("approval asked", digest=gate["digest"])
    return {"status": "done", "asked": gate["digest"]}


def _refdata_preview(ctx: EnvContext, deadline: float) -> Dict[str, Any]:
    """What the refdata step would change (a dry run within this invocation's time, whole
    tables only: each one's delta digest is what an approval binds), or {}."""
    from envsync import refdata

    if not ctx.config.upstream_env or not ctx.config.refdata_config:
        return {}
    config = refdata.RefdataConfig.from_dict(ctx.config.refdata_config)
    return refdata.plan(ctx.upstream_connection(), ctx.target_connection(), config, deadline=deadline,
                        whole_tables=True).to_dict()


def _validate(ctx: EnvContext, event: Dict[str, Any], deadline: float) -> Dict[str, Any]:
    plan = migrate.make_plan(ctx.target_connection(), ctx.script_source())
    issues = [i.to_dict() for i in plan.issues]
    if issues:
        # A failed or in-doubt row's message quotes the server's error text: notify without it.
        return {"status": "failed", "issues": issues, "error": "; ".join(i["message"] for i in issues),
                "notice": "; ".join(i["notice"] for i in issues), "failure": migrate.issues_failure(plan)}
    return {"status": "done", "issues": [], "pending": [p.script.name for p in plan.pending]}


# ---------------------------------------------------------------- drift and reference data

def _drift(ctx: EnvContext, event: Dict[str, Any], deadline: float) -> Dict[str, Any]:
    from envsync.drift import introspect, schemadiff

    if not ctx.config.upstream_env:
        return {"status": "done", "skipped": f"{ctx.config.env} has no upstream to compare with"}
    upstream = ctx.upstream_connection()
    target = ctx.target_connection()
    report = schemadiff.diff(introspect.load_schema(upstream, ctx.upstream_info.database),
                             introspect.load_schema(target, ctx.target_info.database),
                             left_name=ctx.config.upstream_env, right_name=ctx.config.env,
                             ignore_kinds=READER_INVISIBLE_KINDS)
    emit_metrics(ctx.config.env, SchemaDriftCount=report.count)
    for line in report.lines():
        log_action("schema drift", difference=line)
    for line in report.not_compared_lines():
        log_action("schema drift not compared", item=line)
    return {"status": "done", "drift_count": report.count, "report": report.to_dict(),
            "not_compared": list(READER_INVISIBLE_KINDS)}


def _refdata(ctx: EnvContext, event: Dict[str, Any], deadline: float) -> Dict[str, Any]:
    from envsync import refdata

    if not ctx.config.upstream_env:  # no groups: the fan-out has nothing to run
        return {"status": "done", "skipped": f"{ctx.config.env} has no upstream to pull reference data from",
                "rows_changed": 0, "groups": [], "max_concurrency": 1}
    ctx.config.require("refdata_config")
    try:
        config = refdata.RefdataConfig.from_dict(ctx.config.refdata_config or {})
    except refdata.RefdataConfigError as error:  # say where the bad value lives
        raise ConfigError(f"ENVSYNC_REFDATA_CONFIG: {error}") from None
    if event.get("groups"):
        return _refdata_groups(ctx, config)
    group = event.get("group")  # one FK group of the fan-out (its Map iteration), or the whole list
    source = ctx.upstream_connection()  # the upstream first: an unreachable source stops here
    target = ctx.target_connection()
    force = bool(event.get("force"))  # lifts the mass-delete guard for this call (an intended mass delete)
    # An env that waits for a person changes reference rows only in a run a person approved,
    # as the migrate step applies scripts, and only the rows approved: without a decision (a
    # direct invocation) it compares first and refuses what would need a person; a decision
    # must be for the plan's digest, and each table's written delta must be the approved one.
    result: Optional[Dict[str, Any]] = None
    approved: Optional[Dict[str, str]] = None
    if event.get("mode") != "plan" and ctx.config.approval_mode != "none":
        result, approved = _refdata_gate(ctx, event, approval.granted(event.get("approval")), source, target,
                                         config, deadline, force, group)
    if result is None and event.get("mode") == "plan":
        result = refdata.plan(source, target, config, deadline=deadline, cursor=event.get("cursor"),
                              force=force, group=group).to_dict()
    elif result is None:
        # The schema's envsync lock: never two appliers (or an applier and a migration) at once;
        # the groups of one fan-out share it (lock.py), each in its own slot.
        lock_timeout = int(event.get("lock_timeout", migrate.DEFAULT_LOCK_TIMEOUT))
        schema = ctx.target_info.database if ctx.target_info else ""
        lock = (schema_lock(target, schema, lock_timeout) if group is None
                else shared_schema_lock(target, schema, int(event.get("slot") or 0), lock_timeout))
        with lock:
            result = refdata.apply(source, target, config, deadline=deadline, cursor=event.get("cursor"),
                                   force=force, approved=approved, group=group).to_dict()
        _announce_unapproved(ctx, result)
    metrics = {"RowsChanged": result.get("rows_changed", 0)}
    if result.get("status") == "done" and result.get("replication_lag_seconds") is not None:
        metrics["ReplicationLagSeconds"] = result["replication_lag_seconds"]
    emit_metrics(ctx.config.env, **metrics)
    failed = [t for t in result.get("tables", []) if t.get("state") in ("drift", "refused")]
    if failed and result.get("status") != "failed":  # the others were synchronised; these need a person
        result["status"] = "failed"
        result["error"] = "; ".join(
            f"{t['table']}: {t.get('error') or 'drift ' + json.dumps(t.get('drift'))} (ENVSYNC_REFDATA_CONFIG)"
            for t in failed)
        result["notice"] = "; ".join(f"{t['table']}: {t.get('notice') or t['state']}" for t in failed)
        result["failure"] = {"table": ", ".join(t["table"] for t in failed),
                             "error": ", ".join(sorted({str(t["state"]) for t in failed}))}
    return result


def _refdata_groups(ctx: EnvContext, config: Any) -> Dict[str, Any]:
    """The fan-out's items: the allow-list's independent FK groups as the target links them
    after this run's migrations, and how many the Map applies at once (the config's)."""
    from envsync import refdata

    found = refdata.groups(ctx.target_connection(), config)
    log_action("reference-data groups", groups=found)
    return {"status": "done", "groups": found, "max_concurrency": config.max_concurrency}


def _refdata_gate(ctx: EnvContext, event: Dict[str, Any], decision: Optional[Dict[str, Any]], source: Any,
                  target: Any, config: Any, deadline: float, force: bool, group: Optional[List[str]] = None,
                  ) -> Tuple[Optional[Dict[str, Any]], Optional[Dict[str, str]]]:
    """The refdata step in a gated env: (its result when it may not apply: a refusal, or the
    comparison when there is nothing to apply yet; None), and when it may, per table the delta
    digest it may write (the person's decision, or what it just compared when that needs no one)."""
    from envsync import refdata

    if decision is not None:
        refusal = approval.decision_refusal(ctx.config.env, decision)
        if refusal is None:
            return None, approval.approved_refdata(decision)
        return _refdata_refused(ctx, refusal, {}, []), None
    preview = refdata.plan(source, target, config, deadline=deadline, cursor=event.get("cursor"),
                           force=force, whole_tables=True, group=group).to_dict()
    waiting = approval.refdata_changes(preview)
    if approval.needs_approval(ctx.config.approval_mode, [], [], waiting):
        refusal = (f"{ctx.config.env}: reference-data changes in {len(waiting)} table(s) need a person's "
                   f"approval here ({ctx.config.approval_mode}); nothing applied. Runs of the env's state "
                   "machine ask for it (envsync approve)")
        return _refdata_refused(ctx, refusal, preview, waiting), None
    if not waiting or preview.get("status") == "continue":  # nothing to apply (yet): the comparison
        return {**preview, "mode": "apply", "rows_changed": 0,
                "tables": [{**t, "rows": [], "sql": []} for t in preview.get("tables", [])]}, None
    return None, {t["table"]: t["digest"] for t in waiting}  # exactly what needed no one


def _announce_unapproved(ctx: EnvContext, result: Dict[str, Any]) -> None:
    """Tables the apply left alone because their delta is not the approved one: a log line and
    a notice on the topic (table names only), and the next run asks for them."""
    tables = [t["table"] for t in result.get("tables", []) if t.get("state") == "unapproved"]
    if not tables:
        return
    result["asks_again"] = tables
    notice = (f"envsync refdata in {ctx.config.env}: the reference-data delta of {', '.join(tables)} is not the "
              "approved one (it changed upstream after the approval, or the approved scripts changed the "
              "table's shape first); nothing of it was applied. The next run plans it again and asks for a new "
              f"approval (envsync status --env {ctx.config.env})")
    log_action("reference data not applied: not the approved delta", tables=tables)
    if ctx.config.sns_topic_arn:
        try:
            aws.client("sns").publish(TopicArn=ctx.config.sns_topic_arn, Subject=UNAPPROVED_SUBJECT[:100],
                                      Message=notice)
        except Exception as error:  # the tables stay unapplied either way; the log says so
            logger.warning("SNS publish failed", extra={"error": str(error)})


def _refdata_refused(ctx: EnvContext, refusal: str, preview: Dict[str, Any],
                     waiting: List[Dict[str, Any]]) -> Dict[str, Any]:
    """The refdata step's refusal in a gated env: nothing applied, the tables that wait named."""
    log_action("reference data refused: no approval", tables=waiting)
    return {**preview, "mode": "apply", "status": "failed", "rows_changed": 0, "error": refusal, "deferred": waiting,
            "tables": [{**t, "rows": [], "sql": []} for t in preview.get("tables", [])],
            "failure": {"table": ", ".join(t["table"] for t in waiting), "error": "refused: needs a person's approval"}}


# ---------------------------------------------------------------- entry points

def migrate_handler(event: Optional[Dict[str, Any]], context: Any = None) -> Dict[str, Any]:
    return _run("migrate", event, context, _migrate)


def plan_handler(event: Optional[Dict[str, Any]], context: Any = None) -> Dict[str, Any]:
    return _run("plan", event, context, _plan)


def validate_handler(event: Optional[Dict[str, Any]], context: Any = None) -> Dict[str, Any]:
    return _run("validate", event, context, _validate)


def drift_handler(event: Optional[Dict[str, Any]], context: Any = None) -> Dict[str, Any]:
    return _run("drift", event, context, _drift)


def refdata_handler(event: Optional[Dict[str, Any]], context: Any = None) -> Dict[str, Any]:
    return _run("refdata", event, context, _refdata)
