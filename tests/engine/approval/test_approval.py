"""Approval of a plan: when a run waits, what the person reads, and that apply runs only the
approved scripts (real MariaDB, migrate.apply as the Lambda calls it)."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Dict

import pytest

from envsync import approval
from envsync.lint import ColumnFacts, LiveSchema, lint_scripts
from envsync.migrations import history, migrate
from envsync.migrations.migrate import PlannedScript
from envsync.migrations.scripts import load_script
from tests.engine.conftest import EnvDB, write_scripts
from tests.engine.migrations.test_migrate import run

V1 = load_script("V1__create_orders.sql", b"CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(40));\n")
V2 = load_script("V2__tidy_notes.sql", b"-- notes are now codes\nALTER TABLE orders MODIFY note VARCHAR(8);\n"
                                      b"UPDATE orders SET note = 'n/a';\n")


def planned(*scripts) -> list:
    return [PlannedScript(script, 1) for script in scripts]


@pytest.mark.parametrize("mode, destructive, expected", [
    ("required", False, True), ("required", True, True),
    ("destructive-only", False, False), ("destructive-only", True, True),
    ("none", True, False),
])
def test_which_runs_wait(mode: str, destructive: bool, expected: bool) -> None:
    live = LiveSchema(columns={"orders": {"note": ColumnFacts("varchar(40)", True)}}, nonempty={"orders"})
    findings = lint_scripts([(V2, 1)], live) if destructive else []
    assert approval.needs_approval(mode, planned(V2), findings) is expected
    assert approval.needs_approval(mode, [], []) is False  # nothing to apply: nothing to approve


def test_unknown_mode_is_an_error() -> None:
    with pytest.raises(approval.ApprovalError, match="'always': expected one of required, destructive-only, none"):
        approval.needs_approval("always", planned(V1), [])


def test_digest_binds_versions_checksums_and_order() -> None:
    scripts = approval.approved_scripts(planned(V1, V2))
    assert approval.plan_digest(scripts) == approval.plan_digest(approval.approved_scripts(planned(V1, V2)))
    assert approval.plan_digest(scripts) != approval.plan_digest(scripts[::-1])
    changed = load_script("V2__tidy_notes.sql", V2.body + b"DELETE FROM orders;\n")
    assert approval.plan_digest(scripts) != approval.plan_digest(approval.approved_scripts(planned(V1, changed)))


def test_check_approved_accepts_the_plan_and_its_tail_only() -> None:
    scripts = approval.approved_scripts(planned(V1, V2))
    approved = {"digest": approval.plan_digest(scripts), "scripts": scripts}
    assert approval.check_approved("prod", planned(V1, V2), approved) is None
    assert approval.check_approved("prod", [PlannedScript(V2, 2)], approved) is None  # resumed run
    refusal = approval.check_approved("prod", planned(V1), approved)
    assert refusal and refusal.startswith("prod: the plan changed since it was approved")
    forged = {"digest": approval.plan_digest(scripts[:1]), "scripts": scripts}
    assert "is not for the plan this run made" in (approval.check_approved("prod", planned(V1, V2), forged) or "")


def test_message_reads_as_a_plan() -> None:
    live = LiveSchema(columns={"orders": {"note": ColumnFacts("varchar(40)", True)}}, nonempty={"orders"})
    findings = lint_scripts([(V2, 1)], live)
    digest = approval.plan_digest(approval.approved_scripts(planned(V2)))
    message = approval.approval_message(env="prod", upstream_env="staging", run_id="run-7", pending=planned(V2),
                                        findings=findings, digest=digest, timeout_seconds=86400)
    assert message.splitlines()[:3] == [
        "envsync: prod waits for your approval before it applies 1 migration script (2 statements) "
        "promoted from staging.",
        "Run: run-7",
        f"Plan digest: {digest}",
    ]
    assert f"      sha256 {V2.checksum}" in message
    assert "  V2  tidy notes\n      file V2__tidy_notes.sql, 2 statements" in message
    assert ("  [narrowing] V2__tidy_notes.sql statement 1 (line 2): orders.note: varchar(40) narrows to "
            "varchar(8)\n      ALTER TABLE orders MODIFY note VARCHAR(8)") in message
    assert "  [update_without_where] V2__tidy_notes.sql statement 2 (line 3)" in message
    assert "  envsync approve --env prod --run run-7" in message
    assert "Without an answer within 24 h the run times out and nothing is applied" in message


def test_apply_runs_only_the_approved_plan(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    prod = chain["prod"]
    folder = write_scripts(tmp_path / "s", {V1.name: V1.body.decode(), V2.name: V2.body.decode()})
    source = migrate.DirectorySource(str(folder), env_name="staging")
    connection = prod.connect()
    try:
        plan = migrate.make_plan(connection, source)
    finally:
        connection.close()
    scripts = approval.approved_scripts(plan.pending)
    approved = {"digest": approval.plan_digest(scripts), "scripts": scripts,
                "approved_by": "arn:aws:sts::333333333333:assumed-role/envsync-prod-approver/alice",
                "approved_at": "2026-12-01T01:00:00Z"}

    # upstream changes V2 after the approval: nothing at all is applied
    (folder / V2.name).write_text(V2.body.decode() + "DELETE FROM orders;\n")
    refused = run(prod, source, approval=approved)
    assert refused.status == "refused" and "the plan changed since it was approved" in (refused.error or "")
    assert prod.query("SHOW TABLES LIKE 'orders'") == [] and prod.history() == []

    # back to the approved bytes, stopped by the time budget after V1, resumed: all applied
    (folder / V2.name).write_bytes(V2.body)
    stopped = run(prod, source, approval=approved, deadline=time.monotonic() + 0.5,
                  log=lambda message, **_: time.sleep(0.6) if message == "script applied" else None)
    assert stopped.status == "continue" and stopped.pending == [V2.name]
    finished = run(prod, source, approval=approved)
    assert finished.status == "applied" and [a["script_name"] for a in finished.applied] == [V2.name]
    assert [(r.version, r.state) for r in prod.history()] == [("1", history.SUCCESS), ("2", history.SUCCESS)]
