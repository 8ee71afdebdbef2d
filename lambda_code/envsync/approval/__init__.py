"""Approval of a migration plan by a person: when one is needed, what they are shown, what they bind.

An env's `approval` mode (config, passed to the plan step by the state machine):
- `required`: every run that would apply a migration waits for a person;
- `destructive-only`: only runs whose plan holds a destructive statement (lint.py) wait;
- `none`: runs apply without waiting.

What an approval binds is the plan's script list — (version, script name, checksum) of every
pending script, in order — through its digest. The apply step refuses a plan that is not that
list or what is left of it (a run that stopped on its time budget resumes inside the approved
list): a script added, removed or changed upstream after the approval is not applied.
"""

from __future__ import annotations

import hashlib
from typing import Any, Dict, List, Mapping, Optional, Sequence

from envsync.errors import EnvsyncError
from envsync.lint import Finding, summary

MODES = ("required", "destructive-only", "none")
DEFAULT_TIMEOUT_SECONDS = 86400  # a day: one working day to review a promotion into prod
QUOTE_LIMIT = 1000  # characters of one destructive statement in the message (SNS allows 256 KB)


class ApprovalError(EnvsyncError, ValueError):
    """A bad approval mode or an approval that does not match the plan."""

    quotes_no_data = True


def approved_scripts(pending: Sequence[Any]) -> List[Dict[str, str]]:
    """The script list an approval binds, from a migrate.Plan's pending scripts."""
    return [{"version": planned.script.version, "script_name": planned.script.name,
             "checksum": planned.script.checksum} for planned in pending]


def plan_digest(scripts: Sequence[Mapping[str, str]]) -> str:
    """SHA-256 over the script list, one `version checksum name` line each, in plan order."""
    text = "".join(f"{s['version']} {s['checksum']} {s['script_name']}\n" for s in scripts)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def needs_approval(mode: str, pending: Sequence[Any], findings: Sequence[Finding],
                   refdata: Sequence[Mapping[str, Any]] = ()) -> bool:
    """`refdata`: the reference-data changes the run would make (refdata_changes): any change
    waits in `required`, deleted rows in `destructive-only`."""
    if mode not in MODES:
        raise ApprovalError(f"approval mode {mode!r}: expected one of {', '.join(MODES)}")
    if mode == "required":
        return bool(pending) or bool(refdata)
    return mode == "destructive-only" and (bool(findings) or any(t.get("deleted") for t in refdata))


def refdata_changes(preview: Mapping[str, Any]) -> List[Dict[str, Any]]:
    """Per-table row counts of a refdata plan (refdata.plan(...).to_dict()) that change
    something: what the message shows, never the rows themselves."""
    return [{"table": t["table"], "inserted": t["inserted"], "updated": t["updated"], "deleted": t["deleted"]}
            for t in preview.get("tables", []) if t.get("inserted") or t.get("updated") or t.get("deleted")]


def granted(gate: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """The approval a run carries, from the plan step's gate ({"digest", "scripts", ...}) and
    the decision a person sent (its `decision`: {"digest", "approved_by", "approved_at"}):
    the scripts the plan listed, bound to the digest the person approved. None without one."""
    decision = (gate or {}).get("decision")
    if not decision:
        return None
    return {**decision, "scripts": list((gate or {}).get("scripts") or [])}


def applied_by_note(applied_by: str, approval: Mapping[str, Any]) -> str:
    """The history row's applied_by for an approved apply (the column holds 255 characters)."""
    note = (f"{applied_by}, approved by {approval.get('approved_by')} at {approval.get('approved_at')} "
            f"(plan {str(approval.get('digest'))[:12]})")
    return note[:255]


def unapproved_refusal(env: str, mode: str, pending: Sequence[Any], findings: Sequence[Finding],
                       approval: Optional[Mapping[str, Any]]) -> Optional[str]:
    """Why `pending` may not run without a person's approval in an env of `mode`, or None.
    The state machine waits before the apply; this holds the rule in the engine as well, so a
    direct invocation of the migrate step cannot skip the person."""
    if approval and approval.get("digest"):
        return None
    if not needs_approval(mode, pending, findings):
        return None
    why = "every promotion" if mode == "required" else f"destructive statements ({summary(findings)})"
    return (f"{env}: {len(pending)} pending script(s) need a person's approval here ({mode}: {why}); "
            "nothing applied. Runs of the env's state machine ask for it (envsync approve)")


def decision_refusal(env: str, approval: Mapping[str, Any]) -> Optional[str]:
    """Why a granted approval (granted()) is not one for its plan, or None: the digest the person
    approved must be that of the plan's script list."""
    digest = str(approval.get("digest") or "")
    expected = plan_digest(list(approval.get("scripts") or []))
    if digest != expected:
        return (f"{env}: the approval (digest {digest[:12]}…) is not for the plan this run made "
                f"(digest {expected[:12]}…); nothing applied: approve this run's plan")
    return None


def check_approved(env: str, pending: Sequence[Any], approval: Mapping[str, Any]) -> Optional[str]:
    """Why `pending` may not run under `approval` ({"digest", "scripts", "approved_by", ...}),
    or None. The approved digest must be that of the approved list, and `pending` the approved
    list or a tail of it."""
    approved = list(approval.get("scripts") or [])
    digest = str(approval.get("digest") or "")
    refusal = decision_refusal(env, approval)
    if refusal:
        return refusal
    now = approved_scripts(pending)
    if not now or now != approved[len(approved) - len(now):]:
        approved_names = ", ".join(f"{s['script_name']} ({s['checksum'][:12]}…)" for s in approved) or "none"
        pending_names = ", ".join(f"{s['script_name']} ({s['checksum'][:12]}…)" for s in now) or "none"
        return (f"{env}: the plan changed since it was approved (approved {digest[:12]}…: "
                f"{approved_names}; pending now: {pending_names}); nothing applied. The next run "
                "plans again and asks for a new approval")
    return None


def approval_message(*, env: str, upstream_env: str, run_id: str, pending: Sequence[Any],
                     findings: Sequence[Finding], digest: str, timeout_seconds: int,
                     refdata: Sequence[Mapping[str, Any]] = (), refdata_complete: bool = True) -> str:
    """The plan as a person reads it in the topic's e-mail: scripts, destructive statements
    quoted with file and line, the digest, and the commands that approve or reject it. Holds
    script text only (authored in dev), never rows of the env."""
    statements = sum(len(p.script.statements) - p.resume_from + 1 for p in pending)
    what = []
    if pending:
        what.append(f"{len(pending)} migration script{'s' if len(pending) != 1 else ''} ({statements} statements)")
    if refdata:
        what.append(f"reference-data changes in {len(refdata)} table{'s' if len(refdata) != 1 else ''}")
    lines = [
        f"envsync: {env} waits for your approval before it applies {' and '.join(what) or 'nothing'} "
        f"promoted from {upstream_env}.",
        f"Run: {run_id}",
        f"Plan digest: {digest}",
        "",
        "Scripts, in the order they run:" if pending else "Scripts: none pending.",
    ]
    for planned in pending:
        script = planned.script
        count = len(script.statements) - planned.resume_from + 1
        resume = f", resuming at statement {planned.resume_from}" if planned.resume_from > 1 else ""
        lines.append(f"  V{script.version}  {script.description}")
        lines.append(f"      file {script.name}, {count} statement{'s' if count != 1 else ''}{resume}")
        lines.append(f"      sha256 {script.checksum}")
    lines.append("")
    if findings:
        lines.append(f"Destructive statements ({summary(findings)}):")
        for finding in findings:
            quoted = finding.sql if len(finding.sql) <= QUOTE_LIMIT else finding.sql[:QUOTE_LIMIT] + " …(cut)"
            lines.append(f"  [{finding.kind}] {finding.label}: {finding.detail}")
            lines += ["      " + text for text in quoted.splitlines()]
    else:
        lines.append("Destructive statements: none found by the lint.")
    if refdata:
        lines += ["", f"Reference data from {upstream_env} (rows per table: +inserted ~updated -deleted"
                      f"{'' if refdata_complete else '; the comparison did not finish: at least these'}):"]
        lines += [f"  {t['table']}: +{t['inserted']} ~{t['updated']} -{t['deleted']}" for t in refdata]
    hours = timeout_seconds / 3600
    lines += [
        "",
        "Nothing is applied before an approval. To approve exactly this plan:",
        f"  envsync approve --env {env} --run {run_id}",
        "To reject it (the run stops, nothing is applied):",
        f"  envsync reject --env {env} --run {run_id} --reason \"...\"",
        f"Without an answer within {hours:g} h the run times out and nothing is applied. The "
        f"approval binds the digest above: if {upstream_env}'s scripts change before the apply, "
        "the run refuses and the next run asks again.",
    ]
    return "\n".join(lines)
