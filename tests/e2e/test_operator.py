"""The operator's day, as README tells it, through the real commands of this launch:
`envsync-local run ENV` runs one env's deployed state machine; prod stops at the approval and
prints the message, its digest and the commands; `envsync status --env prod` shows the waiting
run; `envsync-local inbox prod` lists what prod's topic sent, by run; the printed `envsync
approve` completes the run. A script that fails in dev is fixed in place (README's repair case
1) and `envsync status --env dev` says which step failed and why, without the server's text.
Starts converged (after test_faults) and ends converged; its scripts (V9-V11) come before
test_origin's V20 and test_prod_approval's V40-V42, which run after it (file order).
"""

from __future__ import annotations

import re
import shlex

import pytest

from .helpers import assert_converged, customer_data, envsync_cli, history_row, query

pytestmark = pytest.mark.launched

V10 = "-- operator flow: a table of its own.\nCREATE TABLE operator_probe (id INT PRIMARY KEY);\n"
V11_BROKEN = "-- operator flow: fails (the table exists).\nCREATE TABLE operator_probe (id INT PRIMARY KEY);\n"
V11_FIXED = "-- operator flow: fixed in place.\nCREATE TABLE operator_probe_2 (id INT PRIMARY KEY);\n"


@pytest.fixture(scope="module", autouse=True)
def unblocked(system):
    """After test_faults the chain is converged; alone, this module unblocks staging first with
    README's recipe (drop the hand-made index, repair V4); the runs below then promote V4 too."""
    row = history_row(system["staging"], "4")
    if row is not None and row["state"] == "failed":
        query(system["staging"], "DROP INDEX ix_country_name ON country")
        repaired = envsync_cli(system.state_dir, "repair", "--env", "staging", "--version", "4",
                               "--resolution", "not-applied")
        assert repaired.returncode == 0, repaired.stderr


def local(system, *args):
    return envsync_cli(system.state_dir, *args, program="envsync-local")


def push(system, tmp_path, name, body, *extra):
    """`envsync push --env dev FILE` as README says: checked, then uploaded as dev's deployer."""
    tmp_path.mkdir(exist_ok=True)
    path = tmp_path / name
    path.write_text(body)
    pushed = envsync_cli(system.state_dir, "push", "--env", "dev", *extra, str(path))
    assert pushed.returncode == 0, (pushed.stdout, pushed.stderr)
    assert f"uploaded s3://envsync-dev-migrations-111111111111/migrations/{name} (version " in pushed.stdout
    return pushed


def run_through_prod(system):
    """dev and staging run; prod's run waits: returns what `envsync-local run prod` printed."""
    for env in ("dev", "staging"):
        ran = local(system, "run", env)
        assert ran.returncode == 0, (env, ran.stdout, ran.stderr)
        assert re.search(rf"^{env}: run local-{env}-\d+ SUCCEEDED in ", ran.stdout, re.M), ran.stdout
    waiting = local(system, "run", "prod")
    assert waiting.returncode == 0, (waiting.stdout, waiting.stderr)
    return waiting.stdout


def approve_as_printed(system, printed):
    command = next(line.strip() for line in printed.splitlines() if line.strip().startswith("envsync approve"))
    answered = envsync_cli(system.state_dir, *shlex.split(command)[1:], "--wait", "120")
    assert answered.returncode == 0, (answered.stdout, answered.stderr)
    assert "run local-prod-" in answered.stdout and "SUCCEEDED" in answered.stdout, answered.stdout


def pending_in_dev_and_staging(system):
    """README's operator section: `envsync plan|validate --env` with no scripts directory. dev's
    read its bucket as dev's approver role (each call allowed by the policies as deployed, the
    dynamic proof says), staging's dev's history once dev ran."""
    from envsync_local.cli import permission_proof, recorded_calls

    local_stack = system.launched.local
    first_call = recorded_calls(local_stack)
    planned = envsync_cli(system.state_dir, "plan", "--env", "dev")
    assert planned.returncode == 1, (planned.stdout, planned.stderr)
    assert "-- V10__operator_probe.sql (checksum" in planned.stdout
    assert "CREATE TABLE operator_probe (id INT PRIMARY KEY);" in planned.stdout
    valid = envsync_cli(system.state_dir, "validate", "--env", "dev")
    assert valid.returncode == 0, (valid.stdout, valid.stderr)
    assert valid.stdout.strip() == ("valid against s3://envsync-dev-migrations-111111111111/migrations/: "
                                    "pending V10__operator_probe.sql"), valid.stdout
    report = permission_proof(local_stack, start=first_call, limit=recorded_calls(local_stack))
    assert "arn:aws:iam::111111111111:role/envsync-dev-approver" in report.by_caller, report.summary()
    assert not report.denied, "\n".join(str(item) for item in report.denied)

    ran = local(system, "run", "dev")
    assert ran.returncode == 0, (ran.stdout, ran.stderr)
    staged = envsync_cli(system.state_dir, "plan", "--env", "staging")
    assert staged.returncode == 1, (staged.stdout, staged.stderr)
    assert "-- V10__operator_probe.sql (checksum" in staged.stdout
    assert "nothing pending" in envsync_cli(system.state_dir, "validate", "--env", "dev").stdout


def test_run_prod_waits_status_and_inbox_show_it_and_approve_completes_it(system, tmp_path):
    customers = customer_data(system.handles)
    push(system, tmp_path, "V10__operator_probe.sql", V10)
    older = tmp_path / "V9__too_late.sql"
    older.write_text("SELECT 1;\n")
    refused = envsync_cli(system.state_dir, "push", "--env", "dev", str(older))
    assert refused.returncode == 2 and "V9__too_late.sql: older than V10__operator_probe.sql" in refused.stderr
    before = envsync_cli(system.state_dir, "status", "--env", "prod")
    assert "no run waits for an approval" in before.stdout, before.stdout
    pending_in_dev_and_staging(system)

    printed = run_through_prod(system)
    run_id = re.search(r"^prod: run (local-prod-\d+) waits for a person's approval", printed, re.M).group(1)
    digest = re.search(r"^plan digest: ([0-9a-f]{64})$", printed, re.M).group(1)
    assert re.search(r"^  \| envsync: prod waits for your approval before it applies \d+ migration script",
                     printed, re.M), printed
    assert "  |       file V10__operator_probe.sql, 1 statement" in printed
    assert f"  envsync approve --env prod --run {run_id} --digest {digest[:12]}" in printed
    assert f'  envsync reject --env prod --run {run_id} --reason "..."' in printed
    assert history_row(system["prod"], "10") is None, "nothing applied before the approval"

    status = envsync_cli(system.state_dir, "status", "--env", "prod")
    assert status.returncode == 1, status.stdout  # a run waits: pending work
    assert re.search(rf"WAITING for approval: run {run_id}, plan digest {digest[:12]}…, waiting \d+ (s|min)",
                     status.stdout), status.stdout
    assert f"envsync approve --env prod --run {run_id} --digest {digest[:12]}" in status.stdout

    inbox = local(system, "inbox", "prod")
    assert inbox.returncode == 0, inbox.stderr
    newest = inbox.stdout.split("\n\n")[1].splitlines()[0]
    assert re.fullmatch(rf"\S+  run {run_id}  envsync: approval needed", newest), inbox.stdout

    approve_as_printed(system, printed)
    assert history_row(system["prod"], "10")["state"] == "success"
    after = envsync_cli(system.state_dir, "status", "--env", "prod")
    assert "no run waits for an approval" in after.stdout, after.stdout
    assert_converged(system.handles, customers)


def test_a_failed_step_is_named_in_status_and_a_script_fixed_in_place_then_runs(system, tmp_path):
    customers = customer_data(system.handles)
    push(system, tmp_path, "V11__operator_second.sql", V11_BROKEN)
    failed = local(system, "run", "dev")
    assert failed.returncode == 1, failed.stdout
    run_id = re.search(r"^dev: run (local-dev-\d+) FAILED in ", failed.stdout, re.M).group(1)
    assert "V11__operator_second.sql statement 1 (line 2)" in failed.stdout

    status = envsync_cli(system.state_dir, "status", "--env", "dev")
    line = next(line for line in status.stdout.splitlines() if "last failed run:" in line)
    assert re.search(rf"last failed run: {run_id}, [^,]+ ago, step Migrate: SyncFailed: .*V11__operator_second.sql "
                     r"statement 1 \(line 2\): OperationalError: MySQL error 1050 \(TABLE_EXISTS_ERROR\)", line), line
    assert "already exists" not in line  # the server's text stays in the history table

    # README "Repairing a failed migration", case 1: the statement failed, fix the script in place
    repaired = envsync_cli(system.state_dir, "repair", "--env", "dev", "--version", "11", "--resolution", "not-applied")
    assert repaired.returncode == 0, repaired.stderr
    push(system, tmp_path / "fixed", "V11__operator_second.sql", V11_FIXED, "--replace")
    approve_as_printed(system, run_through_prod(system))
    assert history_row(system["prod"], "11")["state"] == "success"
    assert_converged(system.handles, customers)
