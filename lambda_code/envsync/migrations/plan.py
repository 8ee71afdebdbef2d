"""What a run would apply, and why it may not: the script sources and the validation rules.

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
from typing import Any, Dict, List, Optional, Protocol

from envsync.errors import EnvsyncError
from envsync.migrations import history
from envsync.migrations.history import FAILED, PENDING, RUNNING, SUCCESS, HistoryRow
from envsync.migrations.origin import OriginKey
from envsync.migrations.scripts import (
    Script,
    ScriptError,
    checksum,
    is_script_candidate,
    load_script,
    script_text,
    sort_scripts,
    version_key,
)
from envsync.mysql.connection import recorded_error_notice

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


def failed_advice(row: HistoryRow, upstream_env: Optional[str]) -> str:
    """What to do about a failed script: README "Repairing a failed migration", its cases 1 and 2."""
    failing, done, version = row.statements_applied + 1, row.statements_applied, row.version
    fix = ("fix this env (the script applied in " + upstream_env + ", so the cause is here)" if upstream_env
           else "fix statement " + str(failing) + " in the script and upload it again under the same name"
           + (f" (statements 1-{done} unchanged)" if done else "") + ", or fix the env")
    if not done:
        return (f"Nothing of it took effect: {fix}, then run `envsync repair --version {version} "
                "--resolution not-applied`; the next run applies the script as the source has it then.")
    return (f"Statements 1-{done} took effect. Either {fix}, then run `envsync repair --version {version} "
            f"--resolution not-applied` (the next run resumes at statement {failing}); or roll the script back: "
            f"undo statements 1-{done} by hand, fix or withdraw the script at the source, then run "
            f"`envsync repair --version {version} --statements-applied 0`.")


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
            then = "; later versions wait. " + failed_advice(row, view.upstream_env)
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


