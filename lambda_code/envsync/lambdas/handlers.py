"""Lambda handlers: event in, dict out. Thin: configuration, connections, one engine call, log, metrics.

Contract (what the Step Functions state machine relies on)
- Every handler returns a JSON-able dict with "status" and "env":
  "done" (finished), "continue" (time budget used up; call again with the returned "cursor"),
  or "failed" (with "error": what, where and what to do).
- On "failed" the handler also increments SyncFailures, logs the error and publishes to
  ENVSYNC_SNS_TOPIC_ARN when set. It does not raise, so a Choice state on $.status routes the
  failure; an event with {"raise_on_failure": true} makes it raise `SyncFailed` instead, for a
  Catch/Retry.
- The time budget is the Lambda's remaining time minus a safety margin (`deadline`).
"""

from __future__ import annotations

import json
import time
from typing import Any, Callable, Dict, Optional

import pymysql

from envsync import approval, aws, lint
from envsync.credentials import db_users
from envsync.errors import EnvsyncError
from envsync.lambdas.context import ConfigError, EnvContext, HandlerConfig
from envsync.migrations import migrate
from envsync.mysql.connection import server_error_notice
from envsync.mysql.lock import schema_lock
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


class SyncFailed(EnvsyncError, RuntimeError):
    """Raised instead of returning status failed when the event asks for it."""


def _deadline(context: Any) -> float:
    remaining = None
    if context is not None and hasattr(context, "get_remaining_time_in_millis"):
        remaining = context.get_remaining_time_in_millis() / 1000.0 - SAFETY_MARGIN_SECONDS
    return time.monotonic() + max(1.0, remaining if remaining is not None else DEFAULT_BUDGET_SECONDS)


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
        log_action(f"{action} started", event={k: v for k, v in event.items() if k != "cursor"})
        env_context = EnvContext(config)
        result = body(env_context, event, _deadline(context))
    except Exception as error:  # every failure becomes a result the state machine can route
        result = {"status": "failed", "error": str(error), "error_type": type(error).__name__}
        if isinstance(error, pymysql.err.MySQLError):
            result["notice"] = server_error_notice(error)
    finally:
        if env_context is not None:
            env_context.close()
    result = {"env": env, "action": action, **result,
              "duration_ms": int((time.monotonic() - started) * 1000)}
    if result["status"] == "failed":
        # A caller that asks for an exception (the state machine) reports the failure itself.
        _report_failure(action, env, config, result, publish=not event.get("raise_on_failure"))
    elif config is not None:
        emit_metrics(env, SyncFailures=0)  # a steady series, so dashboards and alarms see runs
    log_action(f"{action} finished", result=result)
    if result["status"] == "failed" and event.get("raise_on_failure"):
        # The state machine publishes what it caught: the notice, never the server's message.
        raise SyncFailed(f"{action} in {env}: {result.get('notice') or result.get('error')}")
    return result


def _report_failure(action: str, env: str, config: Optional[HandlerConfig], result: Dict[str, Any],
                    publish: bool = True) -> None:
    logger.error(f"{action} failed", extra={"action": f"{action} failed", "error": result.get("error")})
    try:
        emit_metrics(env, SyncFailures=1)
    except Exception as error:  # a metrics problem must not hide the sync failure
        logger.warning("metrics failed", extra={"error": str(error)})
    if publish and config is not None and config.sns_topic_arn:
        try:
            aws.publish_failure(aws.client("sns"), config.sns_topic_arn, f"envsync {action} failed in {env}",
                                str(result.get("notice") or result.get("error")))
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
        return {"status": "failed", **done, "error": "; ".join(done["refused"])}
    return {"status": "done", **done}


def _plan(ctx: EnvContext, event: Dict[str, Any], deadline: float) -> Dict[str, Any]:
    """The plan, its destructive statements and, for an env that waits for a person
    (ENVSYNC_APPROVAL_MODE: required | destructive-only | none), the message, digest and
    timeout of the approval the state machine waits for. In such an env the reference-data
    changes the run would make count too (per-table row counts, never rows)."""
    target = ctx.target_connection()
    plan = migrate.make_plan(target, ctx.script_source())
    findings = lint.lint_plan(target, plan.pending)
    scripts = approval.approved_scripts(plan.pending)
    digest = approval.plan_digest(scripts)
    preview = _refdata_preview(ctx, deadline) if ctx.config.approval_mode != "none" else {}
    refdata_changes = approval.refdata_changes(preview)
    required = approval.needs_approval(ctx.config.approval_mode, plan.pending, findings, refdata_changes)
    timeout = ctx.config.approval_timeout_seconds
    gate: Dict[str, Any] = {"required": required, "digest": digest, "scripts": scripts, "timeout_seconds": timeout,
                            "refdata": refdata_changes}
    if required:
        gate["message"] = approval.approval_message(
            env=ctx.config.env, upstream_env=ctx.config.upstream_env or "its bucket",
            run_id=str(event.get("run_id", "")), pending=plan.pending, findings=findings, digest=digest,
            timeout_seconds=timeout, refdata=refdata_changes, refdata_complete=preview.get("status") != "continue")
    for finding in findings:
        log_action("destructive statement", kind=finding.kind, statement=finding.label, detail=finding.detail)
    return {"status": "done", **plan.to_dict(), "destructive": [f.to_dict() for f in findings],
            "approval": gate}


def _refdata_preview(ctx: EnvContext, deadline: float) -> Dict[str, Any]:
    """What the refdata step would change (a dry run within this invocation's time), or {}."""
    from envsync import refdata

    if not ctx.config.upstream_env or not ctx.config.refdata_config:
        return {}
    config = refdata.RefdataConfig.from_dict(ctx.config.refdata_config)
    return refdata.plan(ctx.upstream_connection(), ctx.target_connection(), config, deadline=deadline).to_dict()


def _validate(ctx: EnvContext, event: Dict[str, Any], deadline: float) -> Dict[str, Any]:
    plan = migrate.make_plan(ctx.target_connection(), ctx.script_source())
    issues = [i.to_dict() for i in plan.issues]
    if issues:
        # A failed or in-doubt row's message quotes the server's error text: notify without it.
        return {"status": "failed", "issues": issues, "error": "; ".join(i["message"] for i in issues),
                "notice": "; ".join(i["notice"] for i in issues)}
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

    if not ctx.config.upstream_env:
        return {"status": "done", "skipped": f"{ctx.config.env} has no upstream to pull reference data from",
                "rows_changed": 0}
    ctx.config.require("refdata_config")
    try:
        config = refdata.RefdataConfig.from_dict(ctx.config.refdata_config or {})
    except refdata.RefdataConfigError as error:  # say where the bad value lives
        raise ConfigError(f"ENVSYNC_REFDATA_CONFIG: {error}") from None
    source = ctx.upstream_connection()  # the upstream first: an unreachable source stops here
    target = ctx.target_connection()
    force = bool(event.get("force"))  # lifts the mass-delete guard for this call (an intended mass delete)
    # An env that waits for a person changes reference rows only in a run a person approved;
    # other runs compare and report what waits (the next run's plan step asks for it).
    deferred = (event.get("mode") != "plan" and ctx.config.approval_mode != "none"
                and approval.granted(event.get("approval")) is None)
    if event.get("mode") == "plan" or deferred:
        result = refdata.plan(source, target, config, deadline=deadline, cursor=event.get("cursor"),
                              force=force).to_dict()
        if deferred:
            waiting = approval.refdata_changes(result)
            result = {**result, "mode": "apply", "deferred": waiting, "rows_changed": 0,
                      "tables": [{**t, "rows": [], "sql": []} for t in result.get("tables", [])]}
            if waiting:
                log_action("reference data waits for approval", tables=waiting)
    else:
        # The schema's envsync lock: never two appliers (or an applier and a migration) at once.
        lock_timeout = int(event.get("lock_timeout", migrate.DEFAULT_LOCK_TIMEOUT))
        with schema_lock(target, ctx.target_info.database if ctx.target_info else "", lock_timeout):
            result = refdata.apply(source, target, config, deadline=deadline,
                                   cursor=event.get("cursor"), force=force).to_dict()
    metrics = {"RowsChanged": result.get("rows_changed", 0)}
    if result.get("status") == "done" and result.get("replication_lag_seconds") is not None:
        metrics["ReplicationLagSeconds"] = result["replication_lag_seconds"]
    emit_metrics(ctx.config.env, **metrics)
    failed = [t for t in result.get("tables", []) if t.get("state") in ("drift", "refused")]
    if failed:  # the other tables were synchronised; these need a person (SNS says which and why)
        result["status"] = "failed"
        result["error"] = "; ".join(
            f"{t['table']}: {t.get('error') or 'drift ' + json.dumps(t.get('drift'))} (ENVSYNC_REFDATA_CONFIG)"
            for t in failed)
        result["notice"] = "; ".join(f"{t['table']}: {t.get('notice') or t['state']}" for t in failed)
    return result


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
