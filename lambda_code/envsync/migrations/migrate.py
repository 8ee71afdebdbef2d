"""Versioned migrations with a promotion rule (pure core: connections and sources come in).

`apply` runs the plan (plan.py: the sources and the validation rules) under the schema lock,
one script at a time through the runner (runner.py), behind the approval (approval.py)
and with proofs of origin (origin.py); `repair` settles a failed or in-doubt script.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, List, Mapping, Optional

from envsync import approval as approval_rules
from envsync import lint
from envsync.migrations import history
from envsync.migrations.history import FAILED, RUNNING, SUCCESS, HistoryRow
from envsync.migrations.origin import Proof, Signer
from envsync.migrations.plan import (  # noqa: F401 - the engine's migration API, importable from here
    DirectorySource,
    Issue,
    MigrationError,
    Plan,
    PlannedScript,
    ScriptSource,
    SourceView,
    UpstreamHistorySource,
    make_plan,
    same_script,
    validate,
)
from envsync.migrations.runner import _ScriptRun, _server_error, is_lost_connection, session_state  # noqa: F401 - as above
from envsync.migrations.scripts import (
    Script,
    checksum,
    version_key,
)
from envsync.mysql.lock import schema_lock

DEFAULT_LOCK_TIMEOUT = 30


# ---------------------------------------------------------------- apply

@dataclass
class MigrationResult:
    status: str  # up_to_date | applied | continue | failed | refused
    applied: List[Dict[str, Any]] = field(default_factory=list)
    pending: List[str] = field(default_factory=list)
    issues: List[Issue] = field(default_factory=list)
    withheld: List[Dict[str, str]] = field(default_factory=list)
    error: Optional[str] = None
    notice: Optional[str] = None  # `error` as notifications carry it (no server message)
    # What went wrong as named fields (script, statement, line, error class): what SNS carries.
    failure: Optional[Dict[str, Any]] = None

    @property
    def ok(self) -> bool:
        return self.status in ("up_to_date", "applied", "continue")

    def to_dict(self) -> Dict[str, Any]:
        return {
            "status": self.status, "applied": self.applied, "pending": self.pending,
            "issues": [i.to_dict() for i in self.issues], "withheld": self.withheld,
            "error": self.error, "notice": self.notice, "failure": self.failure,
        }


def apply(
    connection: Any,
    source: ScriptSource,
    *,
    schema: str,
    script_connection: Any,
    env_name: Optional[str] = None,
    lock_timeout: int = DEFAULT_LOCK_TIMEOUT,
    applied_by: Optional[str] = None,
    deadline: Optional[float] = None,
    log: Optional[Callable[..., None]] = None,
    approval: Optional[Mapping[str, Any]] = None,
    approval_mode: str = "none",
    progress: Optional[Callable[[str, int, int], None]] = None,
    signer: Optional[Signer] = None,
) -> MigrationResult:
    """Apply the pending scripts in order under the schema lock.

    Two autocommit sessions to `schema`: `connection` holds the lock and writes the history;
    `script_connection` (DDL rights) runs the scripts' statements and nothing else. The
    history write then never depends on what a script did to its session: a `LOCK TABLES`
    that does not name the history table, an open transaction (which would otherwise take the
    progress rows down with it when rolled back), a changed sql_mode. Unlocking before each
    write instead would change what the script's own locks protect. `env_name` names the env
    in errors (the schema when not given). `deadline` is a time.monotonic() value: once
    passed, the run stops between two statements (never inside a transaction), records
    exactly where, and returns status `continue` (the next run resumes there).
    `approval` (an env that waits for a person): the approved script list and its digest;
    a plan that is not that list, or what is left of it, is refused (approval.check_approved).
    Without one, an env whose `approval_mode` asks for a person applies nothing.
    `progress(script_name, statement_number, statements)` is called after each statement that
    ran (the CLI's progress line).
    `signer` (dev): each script is signed before it starts (origin.py); a promoted script
    keeps the proof it arrived with.
    """
    log = log or (lambda *args, **kwargs: None)
    env_label = env_name or schema
    if script_connection is connection:
        raise MigrationError("apply needs two sessions: the scripts' must not be the history's")
    history.ensure_table(connection)
    with schema_lock(connection, schema, lock_timeout):
        # Read history only under the lock: a run that waited must see what the other applied.
        plan = make_plan(connection, source)
        if plan.issues:
            return MigrationResult(status="refused", issues=plan.issues, withheld=plan.withheld,
                                   pending=[p.script.name for p in plan.pending],
                                   error=f"{env_label}: " + "; ".join(i.message for i in plan.issues),
                                   failure=issues_failure(plan))
        adopt_proofs(connection, plan)
        if not plan.pending:
            return MigrationResult(status="up_to_date", withheld=plan.withheld)
        findings = lint.lint_plan(connection, plan.pending) if approval_mode == "destructive-only" else []
        refusal = approval_rules.unapproved_refusal(env_label, approval_mode, plan.pending, findings, approval)
        if refusal:
            return MigrationResult(status="refused", withheld=plan.withheld, error=refusal,
                                   pending=[p.script.name for p in plan.pending],
                                   failure={"error": "refused: needs a person's approval", "detail": refusal})
        if approval is not None and approval.get("digest"):
            refusal = approval_rules.check_approved(env_label, plan.pending, approval)
            if refusal:
                return MigrationResult(status="refused", withheld=plan.withheld, error=refusal,
                                       pending=[p.script.name for p in plan.pending],
                                       failure={"error": "refused: the plan is not the approved one",
                                                "detail": refusal})
            log("applying approved plan", digest=approval.get("digest"),
                approved_by=approval.get("approved_by"), approved_at=approval.get("approved_at"))
        state = session_state(script_connection)
        if state.database != schema or not state.autocommit or state.in_transaction:
            raise MigrationError(f"{env_label}: the script session must be an autocommit session "
                                 f"on schema {schema} with no transaction open, not {state}")
        by_version = {version_key(r.version): r for r in plan.applied}
        applied_by = applied_by or history.default_applied_by(connection)
        if approval is not None and approval.get("approved_by"):  # the history row says who let it in
            applied_by = approval_rules.applied_by_note(applied_by, approval)
        source_env = getattr(source, "env_name", "")
        result = MigrationResult(status="applied", withheld=plan.withheld)
        for index, planned in enumerate(plan.pending):
            script = planned.script
            history.start(connection, script, applied_by=applied_by, source_env=source_env,
                          existing=by_version.get(script.key), proof=_proof_for(script, signer))
            run = _ScriptRun(connection, script_connection, script, schema=schema,
                             env_label=env_label, resume_from=planned.resume_from)
            log("script started", script=script.name, resume_from=planned.resume_from,
                statements=len(script.statements))
            error: Optional[str] = None
            for statement in script.statements[planned.resume_from - 1:]:
                if deadline is not None and run.open_since is None and time.monotonic() >= deadline:
                    history.mark_pending(connection, script.version, statements_applied=run.durable,
                                         note=f"stopped before statement {statement.number}: time budget")
                    result.status = "continue"
                    result.pending = [p.script.name for p in plan.pending[index:]]
                    return result
                error = run.execute(statement)
                if error:
                    log("script failed", script=script.name, statement=statement.number,
                        line=statement.line, error=error)
                    break
                if progress:
                    progress(script.name, statement.number, len(script.statements))
            error = error or run.finish()
            if error:
                result.status = "failed"
                result.error = error
                result.notice = run.notice or error
                result.failure = run.failure or {"script": script.name, "error": "failed"}
                result.pending = [p.script.name for p in plan.pending[index:]]
                return result
            duration_ms = run.elapsed_ms()
            log("script applied", script=script.name, duration_ms=duration_ms)
            result.applied.append({"version": script.version, "script_name": script.name,
                                   "checksum": script.checksum, "duration_ms": duration_ms})
        return result


def issues_failure(plan: Plan) -> Dict[str, Any]:
    """A plan's validation issues as named fields: the scripts, the issues' kinds and their
    notices (the messages can quote a server error a history row recorded; the notices not)."""
    names = {version_key(s.version): s.name for s in plan.offered}
    names.update({version_key(r.version): r.script_name for r in plan.applied})
    scripts = dict.fromkeys(names.get(version_key(i.version), f"V{i.version}") for i in plan.issues)
    return {"script": ", ".join(scripts), "error": "refused: " + ", ".join(sorted({i.kind for i in plan.issues})),
            "detail": "; ".join(i.to_dict()["notice"] for i in plan.issues)}


def _proof_for(script: Script, signer: Optional[Signer]) -> Optional[Proof]:
    """A promoted script's proof as it arrived; dev signs what it applies from its bucket."""
    if script.proof is not None or signer is None:
        return script.proof
    return signer.sign(script.version, script.name, script.checksum, script.source_version_id or "")


def adopt_proofs(connection: Any, plan: Plan) -> List[str]:
    """Rows this env applied before proofs existed take the upstream's proof of the same
    script (same version and checksum), so the next env can verify them. Returns the versions."""
    offered = {s.key: s for s in plan.offered if s.proof is not None}
    adopted = []
    for row in plan.applied:
        script = offered.get(version_key(row.version))
        if row.state == SUCCESS and row.proof is None and script is not None and row.checksum == script.checksum:
            history.set_proof(connection, row.version, script.proof)
            adopted.append(row.version)
    return adopted


def sign_history(connection: Any, source: ScriptSource, signer: Signer, *, schema: str,
                 lock_timeout: int = DEFAULT_LOCK_TIMEOUT) -> Dict[str, Any]:
    """dev: sign the successful rows applied before proof of origin existed. A row whose script
    is still in the bucket must have the same checksum (and is signed with the object's version
    id); a row whose object expired is signed with no version id. Anything else is refused."""
    history.ensure_table(connection)
    signed: List[str] = []
    refused: List[str] = []
    with schema_lock(connection, schema, lock_timeout):
        in_source = {s.key: s for s in source.view().scripts}
        for row in history.read_rows(connection):
            if row.state != SUCCESS or row.proof is not None:
                continue
            script = in_source.get(version_key(row.version))
            if script is not None and not same_script(row, script):
                refused.append(f"{row.script_name}: the bucket's object has checksum {script.checksum[:12]}…, "
                               f"the history {row.checksum[:12]}…: not signed")
                continue
            if checksum(row.script_body) != row.checksum:
                refused.append(f"{row.script_name}: the stored body does not match its checksum: not signed")
                continue
            version_id = (script.source_version_id or "") if script is not None else ""
            history.set_proof(connection, row.version,
                              signer.sign(row.version, row.script_name, row.checksum, version_id))
            signed.append(row.script_name)
    return {"signed": signed, "refused": refused}


# ---------------------------------------------------------------- repair

RESOLUTIONS = ("applied", "not-applied")


def repair(connection: Any, *, schema: str, version: str, resolution: Optional[str] = None,
           statements_applied: Optional[int] = None, lock_timeout: int = 5) -> str:
    """Mark a running (in doubt) or failed script resolved after a human checked the schema.

    `resolution`: did the statement after `statements_applied` take effect? Required for an
    in-doubt row; for a failed row it defaults to `not-applied` (the statement raised).
    `statements_applied` instead says outright how many statements (as the script splits now)
    took effect: for a row whose numbering the splitter changed (validate's `resplit`).
    The next apply resumes at the first statement not applied.
    """
    if resolution is not None and resolution not in RESOLUTIONS:
        raise MigrationError(f"resolution must be one of {RESOLUTIONS}, not {resolution!r}")
    if resolution is not None and statements_applied is not None:
        raise MigrationError("give --resolution or --statements-applied, not both")
    # Taking the lock proves no run is executing the script right now.
    with schema_lock(connection, schema, lock_timeout):
        rows = {version_key(r.version): r for r in history.read_rows(connection)}
        row = rows.get(version_key(version))
        if row is None:
            raise MigrationError(f"version {version} is not in {history.TABLE} of {schema}")
        if statements_applied is not None:
            return _repair_resume_point(connection, row, statements_applied)
        if row.state not in (RUNNING, FAILED):
            raise MigrationError(f"{row.script_name} is {row.state}: nothing to repair")
        if row.state == RUNNING and resolution is None:
            raise MigrationError(
                f"{row.script_name} is in doubt at statement {row.statements_applied + 1}: say "
                "whether it took effect with --resolution applied|not-applied"
            )
        done = row.statements_applied + (1 if resolution == "applied" else 0)
        if done == 0:
            # Nothing of it ran: forget the attempt, so a fixed, renamed or withdrawn script is
            # free to replace it and downstream promotion is not held by a row that means nothing.
            history.delete(connection, row.version)
            return (f"{row.script_name}: removed from history (no statement of it took effect); "
                    "the next apply runs the source's script of that version from statement 1, if any")
        note = (f"repaired: statement {row.statements_applied + 1} marked {resolution or 'not-applied'}"
                f" (was {row.state}: {row.error_text or 'run interrupted'})")
        history.mark_pending(connection, row.version, statements_applied=done, note=note)
        return (f"{row.script_name}: resolved; the next apply resumes at statement {done + 1} "
                f"of {row.statement_count}")


def _repair_resume_point(connection: Any, row: HistoryRow, done: int) -> str:
    if row.state == SUCCESS:
        raise MigrationError(f"{row.script_name} is {row.state}: nothing to repair")
    count = len(row.script().statements)
    if not 0 <= done <= count:
        raise MigrationError(f"{row.script_name} has {count} statements: --statements-applied must "
                             f"be between 0 and {count}, not {done}")
    if done == 0:
        history.delete(connection, row.version)
        return (f"{row.script_name}: removed from history (no statement of it took effect); "
                "the next apply runs the source's script of that version from statement 1, if any")
    note = (f"repaired: statements 1-{done} of {count} marked applied (was {row.state} after "
            f"{row.statements_applied} of {row.statement_count})")
    history.mark_pending(connection, row.version, statements_applied=done, note=note,
                         statement_count=count)
    return f"{row.script_name}: resolved; the next apply resumes at statement {done + 1} of {count}"
