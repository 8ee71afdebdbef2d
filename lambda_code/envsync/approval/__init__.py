"""Approval of a migration plan by a person: when one is needed, what they are shown, what they bind.

An env's `approval` mode (config, passed to the plan step by the state machine):
- `required`: every run that would apply a migration waits for a person;
- `destructive-only`: only runs whose plan holds a destructive statement (lint.py) wait;
- `none`: runs apply without waiting.

What an approval binds, through the plan's digest, is the script list — (version, script name,
checksum) of every pending script, in order — and the reference-data delta: per allow-listed
table with changes, its counts and its delta digest (refdata/digest.py: the deleted keys and the
new row images). The apply step refuses a plan that is not that list or what is left of it (a
run that stopped on its time budget resumes inside the approved list): a script added, removed
or changed upstream after the approval is not applied. The refdata step commits a table only
when the delta it writes is the approved one (or nothing): a row changed upstream after the
approval, or a table whose shape the approved scripts change (its rows could not be compared
before them), is not applied, and the next run asks for it.
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


def plan_digest(scripts: Sequence[Mapping[str, str]], refdata: Sequence[Mapping[str, Any]] = ()) -> str:
    """SHA-256 over the script list, one `version checksum name` line each, in plan order, then
    one `refdata table +inserted ~updated -deleted digest` line per changed table (refdata_changes)."""
    text = "".join(f"{s['version']} {s['checksum']} {s['script_name']}\n" for s in scripts)
    text += "".join(f"refdata {t['table']} +{t['inserted']} ~{t['updated']} -{t['deleted']} {t['digest']}\n"
                    for t in refdata)
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


def refdata_changes(preview: Mapping[str, Any], with_rows: bool = False) -> List[Dict[str, Any]]:
    """The tables of a refdata plan (refdata.plan(..., whole_tables=True).to_dict()) whose delta
    changes something: counts and delta digest (what an approval binds), with `with_rows` also the
    first changed rows, old -> new (what the message shows)."""
    changes = []
    for t in preview.get("tables", []):
        if t.get("inserted") or t.get("updated") or t.get("deleted"):
            change = {"table": t["table"], "inserted": t["inserted"], "updated": t["updated"],
                      "deleted": t["deleted"], "digest": t.get("digest", "")}
            shown = {"rows": list(t.get("rows") or []), "new_table": t.get("checked_by") == "new_table"}
            changes.append({**change, **shown} if with_rows else change)
    return changes


def refdata_not_compared(preview: Mapping[str, Any]) -> List[Dict[str, str]]:
    """Tables a refdata plan could not compare whole (drift: a pending script may change the
    shape; refused; not reached in time): nothing of them is approved, so nothing of them is
    applied under this approval."""
    return [{"table": t["table"], "state": t["state"]} for t in preview.get("tables", [])
            if t.get("state") not in ("in_sync", "changed")]


def approved_refdata(approval: Mapping[str, Any]) -> Dict[str, str]:
    """Per table, the delta digest a granted approval binds (a table not listed: no change)."""
    return {str(t["table"]): str(t["digest"]) for t in approval.get("refdata") or []}


def granted(gate: Optional[Mapping[str, Any]]) -> Optional[Dict[str, Any]]:
    """The approval a run carries, from the plan step's gate ({"digest", "scripts", ...}) and
    the decision a person sent (its `decision`: {"digest", "approved_by", "approved_at"}):
    the scripts the plan listed, bound to the digest the person approved. None without one."""
    decision = (gate or {}).get("decision")
    if not decision:
        return None
    return {**decision, "scripts": list((gate or {}).get("scripts") or []),
            "refdata": list((gate or {}).get("refdata") or [])}


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
    approved must be that of the plan's script list and reference-data delta."""
    digest = str(approval.get("digest") or "")
    expected = plan_digest(list(approval.get("scripts") or []), list(approval.get("refdata") or []))
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
                     refdata: Sequence[Mapping[str, Any]] = (), refdata_listed: Sequence[str] = (),
                     not_compared: Sequence[Mapping[str, str]] = ()) -> str:
    """The plan as a person reads it in the topic's e-mail: scripts, destructive statements
    quoted with file and line, per allow-listed table (`refdata_listed`) the reference-data
    delta (`refdata`: refdata_changes(..., with_rows=True): counts and the first rows, old ->
    new) or why it was not compared (`not_compared`), the digest, and the commands that approve
    or reject it. Holds script text and allow-listed reference rows only, never a customer table."""
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
    if refdata_listed:
        lines += ["", *refdata_lines(upstream_env, refdata, refdata_listed, not_compared)]
    hours = timeout_seconds / 3600
    lines += [
        "",
        "Nothing is applied before an approval. To approve exactly this plan:",
        f"  envsync approve --env {env} --run {run_id}",
        "To reject it (the run stops, nothing is applied):",
        f"  envsync reject --env {env} --run {run_id} --reason \"...\"",
        f"Without an answer within {hours:g} h the run times out and nothing is applied. The "
        f"approval binds the digest above, over the scripts and each table's reference-data delta "
        f"(deleted keys and new rows): if {upstream_env}'s scripts change before the apply, the run "
        f"refuses; if a table's rows change, nothing of that table is applied; the next run asks again.",
    ]
    return "\n".join(lines)


def refdata_lines(upstream_env: str, refdata: Sequence[Mapping[str, Any]], listed: Sequence[str],
                  not_compared: Sequence[Mapping[str, str]]) -> List[str]:
    """The message's reference-data part: one entry per allow-listed table."""
    from envsync.refdata.show import row_line

    changed = {str(t["table"]): t for t in refdata}
    skipped = {str(t["table"]): str(t["state"]) for t in not_compared}
    lines = [f"Reference data from {upstream_env}, per allow-listed table (+inserted ~updated -deleted, "
             "then the first rows, old -> new). Only the allow-listed reference tables are compared: "
             "customer tables are never in the allow-list and never appear here."]
    for name in listed:
        if name in changed:
            t = changed[name]
            shown = list(t.get("rows") or [])
            total = int(t["inserted"]) + int(t["updated"]) + int(t["deleted"])
            new = "; not here yet: as a pending script creates it, empty" if t.get("new_table") else ""
            lines.append(f"  {name}: +{t['inserted']} ~{t['updated']} -{t['deleted']}  "
                         f"(delta digest {str(t['digest'])[:12]}…{new})")
            lines += ["  " + row_line(entry) for entry in shown]
            if total > len(shown):
                lines.append(f"      … and {total - len(shown)} more row(s)")
        elif name in skipped:
            why = NOT_COMPARED.get(skipped[name], skipped[name])
            lines.append(f"  {name}: not compared now ({why}): nothing of it is applied under this "
                         "approval; its rows are compared again by the next run, which asks for them")
        else:
            lines.append(f"  {name}: no change")
    return lines


# Why a table's rows could not be compared before the apply, as the message says it.
NOT_COMPARED = {
    "drift": "its shape differs from the upstream's; a pending script may change it",
    "refused": "refused: see the refdata step's report",
    "not_reached": "not reached within the plan step's time",
    "partial": "not finished within the plan step's time",
}
