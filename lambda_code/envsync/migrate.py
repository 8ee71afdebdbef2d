"""Versioned migrations with a promotion gate (pure core: connections and sources come in).

Sources
- dev applies the scripts of its migration bucket (`ScriptSource` with `kind == "scripts"`);
- staging and prod apply their upstream's *successful* history, in version order, with the
  same bytes and checksums (`UpstreamHistorySource`). The first upstream version that is not
  `success` stops promotion: it and everything after it are withheld.

Proof of origin (origin.py): dev signs each script it applies from its bucket (`signer`), and a
downstream source given dev's public key (`origin_key`) refuses the whole upstream history when
one successful row's signature, key or checksum does not prove it, before anything is applied.

Validation rules (any issue refuses the whole apply, nothing runs):
- checksum: an applied script whose source bytes changed is refused. A failed or repaired
  script may change only if the statements already applied are unchanged.
- missing: a script applied here but gone from the source. The migration bucket's lifecycle
  deletes objects `retention_days` after their *upload* (not after they were applied), so a
  missing script is accepted only when its recorded upload time (S3 LastModified, kept in the
  history row; applied_at when unknown) is older than the retention: it has legitimately
  expired. Anything younger was deleted by someone and is refused. Sources without a
  lifecycle (a directory) never accept a missing script.
- drift (downstream only): a version applied here that the upstream has not applied
  successfully. Nothing more is promoted until the upstream has it with the same checksum
  (author it in dev so it flows through the chain).
- out_of_order: a new script older than the latest applied version is refused (rename it).
- in_doubt: a row left `running` (the run died mid-script; the lock proves no run is active):
  the statement after `statements_applied` may or may not have taken effect. A human checks and
  runs `repair --resolution applied|not-applied`.
- failed: a failed script blocks every later version until it is repaired.
- resplit: an unfinished row whose stored body the splitter now cuts into another number of
  statements than the run counted: its `statements_applied` may point elsewhere. A human checks
  and runs `repair --statements-applied N`.
"""

from __future__ import annotations

import datetime
import time
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Dict, List, Mapping, Optional, Protocol, Tuple

import pymysql
from pymysql.constants import SERVER_STATUS

from envsync import approval as approval_rules
from envsync import history, lint
from envsync.db import recorded_error_notice, server_error_notice
from envsync.errors import EnvsyncError
from envsync.history import FAILED, PENDING, RUNNING, SUCCESS, HistoryRow
from envsync.lock import schema_lock
from envsync.origin import OriginKey, Proof, Signer
from envsync.scripts import (
    Script,
    ScriptError,
    Statement,
    checksum,
    is_script_candidate,
    load_script,
    script_text,
    sort_scripts,
    version_key,
)

DEFAULT_LOCK_TIMEOUT = 30
DAY = 86400.0


class MigrationError(EnvsyncError, RuntimeError):
    """A source or history that cannot be planned from."""


# ---------------------------------------------------------------- sources

class ScriptSource(Protocol):
    """Where an env's migrations come from: `DirectorySource`, `aws.S3ScriptSource` (dev's
    bucket) or `UpstreamHistorySource` (staging, prod)."""

    env_name: str  # recorded as the history row's source_env

    def describe(self) -> str: ...

    def view(self) -> SourceView: ...


@dataclass
class SourceView:
    """What a source offers the target right now."""

    scripts: List[Script]  # eligible, in version order
    withheld: List[Dict[str, str]] = field(default_factory=list)  # upstream versions not promoted
    upstream_env: Optional[str] = None  # set when the source is an upstream's history
    retention_days: Optional[float] = None  # objects expire this long after upload


class DirectorySource:
    """`V*.sql` files of a directory (CLI, tests). No lifecycle: nothing may disappear. A
    near-miss name (`V2__x.SQL`, `v2__x.sql`, `V2_x.sql`) is an error, not a skipped file."""

    kind = "scripts"

    def __init__(self, path: str, env_name: str = "local") -> None:
        self.path = Path(path)
        self.env_name = env_name

    def describe(self) -> str:
        return f"directory {self.path}"

    def view(self) -> SourceView:
        if not self.path.is_dir():
            raise MigrationError(f"script directory {self.path} does not exist")
        scripts = [
            load_script(entry.name, entry.read_bytes(), entry.stat().st_mtime)
            for entry in self.path.iterdir()
            if entry.is_file() and is_script_candidate(entry.name)
        ]
        return SourceView(scripts=sort_scripts(scripts))


class UpstreamHistorySource:
    """The upstream environment's history table, read with its read-only user. With
    `origin_key` (dev's public key) every successful row must carry dev's valid signature."""

    kind = "upstream"

    def __init__(self, connection: Any, env_name: str, origin_key: Optional[OriginKey] = None) -> None:
        self.connection = connection
        self.env_name = env_name
        self.origin_key = origin_key

    def describe(self) -> str:
        return f"{self.env_name} history"

    def view(self) -> SourceView:
        scripts: List[Script] = []
        withheld: List[Dict[str, str]] = []
        for row in history.read_rows(self.connection):
            if withheld or row.state != SUCCESS:
                reason = (f"{self.env_name} has {row.script_name} in state {row.state}"
                          if not withheld else f"waits for {withheld[0]['version']} in {self.env_name}")
                withheld.append({"version": row.version, "script_name": row.script_name, "reason": reason})
                continue
            if self.origin_key is not None:
                self.origin_key.check(row, self.env_name)  # raises OriginError: nothing applied
            script = replace(row.script(), proof=row.proof)
            if checksum(row.script_body) != row.checksum:
                raise MigrationError(
                    f"{self.env_name} history row {row.script_name}: the stored body does not match "
                    f"its checksum {row.checksum}; the upstream history is corrupt, refusing to promote"
                )
            scripts.append(script)
        return SourceView(scripts=scripts, withheld=withheld, upstream_env=self.env_name)


# ---------------------------------------------------------------- plan / validate

@dataclass(frozen=True)
class Issue:
    kind: str  # checksum | missing | drift | out_of_order | in_doubt | failed | resplit
    version: str
    message: str
    # `message` as notifications carry it: without the server's error text a failed or
    # in-doubt row recorded (it can quote row values); None when the message has none.
    notice: Optional[str] = None

    def to_dict(self) -> Dict[str, str]:
        return {"kind": self.kind, "version": self.version, "message": self.message,
                "notice": self.notice or self.message}


@dataclass
class PlannedScript:
    script: Script
    resume_from: int  # 1-based statement number the run starts with

    def to_dict(self) -> Dict[str, Any]:
        return {
            "version": self.script.version, "script_name": self.script.name,
            "checksum": self.script.checksum, "resume_from": self.resume_from,
            "statements": [
                {"number": s.number, "line": s.line, "sql": s.sql}
                for s in self.script.statements if s.number >= self.resume_from
            ],
        }


@dataclass
class Plan:
    source: str
    pending: List[PlannedScript]
    issues: List[Issue]
    withheld: List[Dict[str, str]]
    applied: List[HistoryRow]
    offered: List[Script] = field(default_factory=list)  # everything the source offers

    def to_dict(self) -> Dict[str, Any]:
        return {
            "source": self.source,
            "pending": [p.to_dict() for p in self.pending],
            "issues": [i.to_dict() for i in self.issues],
            "withheld": self.withheld,
            "applied": [row.to_dict() for row in self.applied],
        }


def _statement_label(script_name: str, statements: List[Any], number: int) -> str:
    for statement in statements:
        if statement.number == number:
            return f"{script_name} statement {number} (line {statement.line})"
    return f"{script_name} statement {number}"


def _prefix_unchanged(row: HistoryRow, script: Script) -> bool:
    """The statements a failed/repaired row already applied are the same in `script`."""
    done = row.statements_applied
    if done == 0:
        return True
    try:
        applied = row.script().statements[:done]
    except ScriptError:
        return False
    return [s.sql for s in applied] == [s.sql for s in script.statements[:done]]


def _upload_time(row: HistoryRow) -> Optional[datetime.datetime]:
    return row.source_uploaded_at or row.applied_at


def validate(rows: List[HistoryRow], view: SourceView, now: Optional[float] = None) -> List[Issue]:
    """Every reason to refuse an apply (see the module docstring for the rules)."""
    now = time.time() if now is None else now
    issues: List[Issue] = []
    by_version = {version_key(s.version): s for s in view.scripts}
    for row in rows:
        key = version_key(row.version)
        script = by_version.get(key)
        if row.state == RUNNING:
            statements = _safe_statements(row)
            label = _statement_label(row.script_name, statements, row.statements_applied + 1)
            done = (f"statements 1-{row.statements_applied} are applied" if row.statements_applied
                    else "no statement recorded as applied")
            said = f" The run said: {row.error_text}" if row.error_text else ""
            in_doubt = (
                f"{label} is in doubt: a run stopped while executing it ({done}). Check the schema "
                f"by hand, then run `envsync repair --version {row.version} --resolution applied` if "
                f"it took effect or `--resolution not-applied` if it did not.")
            issues.append(Issue("in_doubt", row.version, in_doubt + said, notice=in_doubt))
        elif row.state == FAILED:
            then = f"; later versions wait. Fix the cause, then run `envsync repair --version {row.version}`."
            recorded = row.error_text or row.script_name + " failed"
            issues.append(Issue("failed", row.version, recorded + then,
                                notice=(recorded_error_notice(row.error_text) or recorded) + then))
        if row.state != SUCCESS and row.statements_applied:
            resplit = _safe_statements(row)
            if resplit and len(resplit) != row.statement_count:
                issues.append(Issue("resplit", row.version, (
                    f"{row.script_name}: a run recorded statements 1-{row.statements_applied} of "
                    f"{row.statement_count} as applied, but its stored body now splits into "
                    f"{len(resplit)} statements (the splitter changed since), so those numbers may "
                    "no longer point at the same statements. Check which statements took effect "
                    "(`envsync plan` lists them with their lines), then run `envsync repair "
                    f"--version {row.version} --statements-applied N`"
                )))
        if script is not None:
            if not same_script(row, script):
                resumable = row.state in (PENDING, FAILED) and _prefix_unchanged(row, script)
                if not resumable:
                    issues.append(Issue("checksum", row.version, (
                        f"{row.script_name} was applied with checksum {row.checksum[:12]}… but the "
                        f"source now has {script.checksum[:12]}…: applied scripts must never change; "
                        "restore the original bytes and put the change in a new version"
                    )))
            continue
        if view.upstream_env is not None:
            if row.state == SUCCESS or row.statements_applied:
                issues.append(Issue("drift", row.version, (
                    f"{row.script_name} is applied here but {view.upstream_env} has not applied it "
                    "successfully: schema drift. Author it in dev so it flows through the chain "
                    "with the same checksum; nothing more is promoted until then"
                )))
            continue
        uploaded = _upload_time(row)
        expired = (view.retention_days is not None and uploaded is not None
                   and now - history._to_epoch(uploaded) >= view.retention_days * DAY)
        if not expired:
            issues.append(Issue("missing", row.version, (
                f"{row.script_name} was applied but is missing from the source, and it is not old "
                "enough to have expired by the bucket lifecycle: restore it (same bytes)"
            )))
    applied_keys = [version_key(r.version) for r in rows]
    latest = max(applied_keys) if applied_keys else None
    for script in view.scripts:
        if latest is not None and script.key not in applied_keys and script.key < latest:
            issues.append(Issue("out_of_order", script.version, (
                f"{script.name} is older than the latest applied version "
                f"{'.'.join(map(str, latest))}: give it a higher version"
            )))
    return issues


def same_script(row: HistoryRow, script: Script) -> bool:
    """`script` is what `row` applied. Rows written before checksums were taken over normalised
    text hold the raw bytes and their checksum: those match when the bytes are intact and
    normalise to the script's text (the same file with other line endings or a BOM)."""
    if script.checksum == row.checksum:
        return True
    if checksum(row.script_body) != row.checksum:
        return False
    try:
        return script_text(row.script_body).encode("utf-8") == script.body
    except ScriptError:
        return False


def _safe_statements(row: HistoryRow) -> List[Any]:
    try:
        return row.script().statements
    except ScriptError:
        return []


def make_plan(connection: Any, source: ScriptSource, now: Optional[float] = None) -> Plan:
    """What an apply would run; reads only."""
    view = source.view()
    rows = history.read_rows(connection)
    issues = validate(rows, view, now)
    by_version = {version_key(r.version): r for r in rows}
    pending: List[PlannedScript] = []
    for script in view.scripts:
        row = by_version.get(script.key)
        if row is None:
            pending.append(PlannedScript(script, 1))
        elif row.state in (PENDING, FAILED, RUNNING):
            pending.append(PlannedScript(script, row.statements_applied + 1))
    return Plan(source=source.describe(), pending=pending, issues=issues,
                withheld=view.withheld, applied=rows, offered=view.scripts)


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

    @property
    def ok(self) -> bool:
        return self.status in ("up_to_date", "applied", "continue")

    def to_dict(self) -> Dict[str, Any]:
        return {
            "status": self.status, "applied": self.applied, "pending": self.pending,
            "issues": [i.to_dict() for i in self.issues], "withheld": self.withheld,
            "error": self.error, "notice": self.notice,
        }


@dataclass(frozen=True)
class SessionState:
    """What the script's session would leave behind if the run stopped now."""

    in_transaction: bool
    autocommit: bool
    database: Optional[str]


def session_state(connection: Any) -> SessionState:
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@autocommit, DATABASE()")
        autocommit, database = cursor.fetchone()
    # The status flags of the reply say whether a transaction is open, on MySQL and MariaDB
    # alike (@@in_transaction is MariaDB-only).
    in_transaction = bool(connection.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)
    return SessionState(in_transaction=in_transaction, autocommit=bool(autocommit), database=database)


# PyMySQL's errors for a session that died: lost mid-query, gone away, socket closed.
LOST_CONNECTION_CODES = (2006, 2013, 2055)


def is_lost_connection(error: BaseException) -> bool:
    if isinstance(error, pymysql.err.InterfaceError):
        return True
    return (isinstance(error, pymysql.err.OperationalError) and bool(error.args)
            and error.args[0] in LOST_CONNECTION_CODES)


class _ScriptRun:
    """One script on the script session, progress on the control session.

    Progress is recorded only for work that is durable: while the script has a transaction
    open, its statements could still be rolled back, so they are recorded when it commits
    (explicitly, or implicitly by DDL). A transaction still open at the end, or autocommit
    turned off, fails the script after rolling back: nothing rolled back is ever recorded.
    """

    def __init__(self, control: Any, session: Any, script: Script, *, schema: str, env_label: str,
                 resume_from: int) -> None:
        self.control, self.session, self.script = control, session, script
        self.schema, self.env_label = schema, env_label
        self.durable = resume_from - 1  # statements known to have taken effect for good
        self.open_since: Optional[Statement] = None  # first statement of an open transaction
        self.started = time.monotonic()
        # A failure as notifications carry it: the server's message can quote row values
        # ("Duplicate entry ..."), so it stays in the history and the env's logs only.
        self.notice: Optional[str] = None

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def label(self, statement: Statement) -> str:
        return f"{self.script.name} statement {statement.number} (line {statement.line})"

    def rolled_back(self, upto: Statement) -> str:
        """Roll back the open transaction; say which statements it undid."""
        if self.open_since is None:
            return ""
        with self.session.cursor() as cursor:
            cursor.execute("ROLLBACK")
        first = self.open_since
        self.open_since = None
        span = (f"statement {first.number}" if first.number == upto.number
                else f"statements {first.number}-{upto.number}")
        return f"; {span} (from line {first.line}) ran in a transaction that was rolled back"

    def recorded(self, what: str, write: Callable[[], None]) -> None:
        """A history write on the control session; if it fails, say what ran and what to do."""
        try:
            write()
        except Exception as error:
            if is_lost_connection(error):
                code, message = _server_error(error)
                cause = f"lost the connection to the database ([{code}] {message})"
            elif isinstance(error, history.HistoryWriteError):
                cause = str(error)
            else:
                cause = f"{type(error).__name__}: {error}"
            raise MigrationError(
                f"{self.env_label}: {what}, but writing that to the history failed: {cause}. The "
                f"history may be behind what ran: run `envsync status` to see where {self.env_label} "
                "stands, check the schema, then `envsync repair` the script in doubt"
            ) from error

    def failed(self, text: str) -> str:
        self.recorded(text, lambda: history.fail(
            self.control, self.script.version, error_text=text, duration_ms=self.elapsed_ms(),
            statements_applied=self.durable))
        return f"{self.env_label}: {text}"

    def lost(self, statement: Statement, error: BaseException) -> str:
        code, message = _server_error(error)
        text = (f"{self.label(statement)}: lost the connection to the database ([{code}] {message}) "
                f"while it ran: it may or may not have taken effect. Run `envsync status` to see "
                f"where {self.env_label} stands, check the schema, then `envsync repair --version "
                f"{self.script.version} --resolution applied|not-applied`")
        if self.open_since is not None:
            text += (f" (statements {self.open_since.number}-{statement.number - 1} ran in a "
                     "transaction the server rolled back when the session died)")
        # The row stays `running`: in doubt until a human says what happened.
        self.recorded(text, lambda: history.interrupted(
            self.control, self.script.version, error_text=text, duration_ms=self.elapsed_ms()))
        return f"{self.env_label}: {text}"

    def execute(self, statement: Statement) -> Optional[str]:
        """Run one statement; the error text when the script must stop, else None."""
        try:
            with self.session.cursor() as cursor:
                cursor.execute(statement.sql)
                while cursor.nextset():
                    pass
        except Exception as error:  # the server's message goes into history, verbatim
            if is_lost_connection(error):
                return self.lost(statement, error)
            code, message = _server_error(error)
            text = f"{self.label(statement)}: [{code}] {message}"
            try:
                undone = self.rolled_back(statement)
            except Exception as rollback_error:
                if is_lost_connection(rollback_error):
                    return self.lost(statement, error)
                raise
            self.notice = f"{self.env_label}: {self.label(statement)}: {server_error_notice(error)}{undone}"
            return self.failed(text + undone)
        state = session_state(self.session)
        if state.database != self.schema:
            text = (f"{self.label(statement)}: the session's schema is now {state.database!r}, "
                    f"not {self.schema!r}; a migration must not change schema"
                    f"{self.rolled_back(statement)}")
            return self.failed(text)
        if not state.autocommit:
            self.open_since = self.open_since or statement
            text = (f"{self.label(statement)} turned autocommit off: its work and everything after "
                    "it would be rolled back when the session ends, though reported applied. "
                    "Use START TRANSACTION ... COMMIT instead" + self.rolled_back(statement))
            with self.session.cursor() as cursor:
                cursor.execute("SET autocommit = 1")
            return self.failed(text)
        if state.in_transaction:
            self.open_since = self.open_since or statement
            return None
        self.open_since = None
        self.durable = statement.number
        self.recorded(f"{self.label(statement)} took effect", lambda: history.record_progress(
            self.control, self.script.version, statement.number))
        return None

    def finish(self) -> Optional[str]:
        """After the last statement: a transaction still open is rolled back and fails the script."""
        if self.open_since is not None:
            last = self.script.statements[-1]
            first = self.open_since
            text = (f"{self.label(first)} opened a transaction that the script never commits: "
                    "nothing after the last COMMIT is recorded as applied. End it with COMMIT"
                    f"{self.rolled_back(last)}")
            return self.failed(text)
        # LOCK TABLES without UNLOCK: released at the end of the script, as the client's session
        # end would, so the next script does not start in a locked session.
        with self.session.cursor() as cursor:
            cursor.execute("UNLOCK TABLES")
        self.recorded(f"{self.script.name} ran to its end", lambda: history.finish(
            self.control, self.script.version, duration_ms=self.elapsed_ms()))
        return None


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
                                   error=f"{env_label}: " + "; ".join(i.message for i in plan.issues))
        adopt_proofs(connection, plan)
        if not plan.pending:
            return MigrationResult(status="up_to_date", withheld=plan.withheld)
        findings = lint.lint_plan(connection, plan.pending) if approval_mode == "destructive-only" else []
        refusal = approval_rules.unapproved_refusal(env_label, approval_mode, plan.pending, findings, approval)
        if refusal:
            return MigrationResult(status="refused", withheld=plan.withheld, error=refusal,
                                   pending=[p.script.name for p in plan.pending])
        if approval is not None and approval.get("digest"):
            refusal = approval_rules.check_approved(env_label, plan.pending, approval)
            if refusal:
                return MigrationResult(status="refused", withheld=plan.withheld, error=refusal,
                                       pending=[p.script.name for p in plan.pending])
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
                result.pending = [p.script.name for p in plan.pending[index:]]
                return result
            duration_ms = run.elapsed_ms()
            log("script applied", script=script.name, duration_ms=duration_ms)
            result.applied.append({"version": script.version, "script_name": script.name,
                                   "checksum": script.checksum, "duration_ms": duration_ms})
        return result


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


def _server_error(error: BaseException) -> Tuple[object, str]:
    args = getattr(error, "args", ())
    if len(args) >= 2:
        return args[0], str(args[1])
    return type(error).__name__, str(error) or "no message"


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
