"""`envsync status --env ENV`'s runs part: the waiting runs with their answers, the last failure."""

from __future__ import annotations

import datetime
import json

from envsync.approval.answer import WaitingRun, answer_commands
from envsync.cli.runs import FailedRun, error_text, failed_step, status_data, status_text
from envsync.mysql.connection import scrub_server_text

T0 = datetime.datetime(2026, 12, 1, 12, 0, tzinfo=datetime.timezone.utc)


def entered(name: str) -> dict:
    return {"type": "TaskStateEntered", "stateEnteredEventDetails": {"name": name}}


def test_the_failed_step_is_the_state_entered_before_the_failure_as_aws_records_a_lambda_error():
    cause = json.dumps({"errorType": "SyncFailed", "errorMessage": "migrate in staging: V4__x.sql statement 1 "
                        "(line 3): OperationalError: MySQL error 1061 (DUP_KEYNAME)",
                        "stackTrace": ["  File \"/var/task/envsync/handlers.py\", line 84"]})
    events = [{"type": "ExecutionStarted"}, entered("Validate"), {"type": "TaskStateExited"}, entered("Migrate"),
              {"type": "LambdaFunctionFailed", "lambdaFunctionFailedEventDetails": {"error": "SyncFailed",
                                                                                    "cause": cause}},
              entered("NotifyFailure"), {"type": "FailStateEntered", "stateEnteredEventDetails": {"name": "Failed"}},
              {"type": "ExecutionFailed", "executionFailedEventDetails": {"error": "EnvsyncSyncFailed",
                                                                          "cause": "A sync step failed"}}]
    step, error = failed_step(events)
    assert step == "Migrate"
    assert error == ("SyncFailed: migrate in staging: V4__x.sql statement 1 (line 3): "
                     "OperationalError: MySQL error 1061 (DUP_KEYNAME)")  # no stack trace
    # no task failed (a Fail state reached directly): the execution's own error
    assert failed_step([entered("Check"), events[-1]]) == ("Check", "EnvsyncSyncFailed: A sync step failed")
    assert failed_step([entered("Validate")]) is None


def test_server_text_that_can_quote_rows_is_reduced_to_its_code():
    assert scrub_server_text("V2__x.sql statement 4 (line 9): [1062] Duplicate entry 'alice@x' for key 'u'\nnext") \
        == "V2__x.sql statement 4 (line 9): MySQL error 1062 (DUP_ENTRY)\nnext"
    assert scrub_server_text("IntegrityError: (1062, \"Duplicate entry 'alice' for key 'PRIMARY'\") at V2") \
        == "IntegrityError: MySQL error 1062 (DUP_ENTRY) at V2"
    assert scrub_server_text("migrate in prod: the plan changed since it was approved") \
        == "migrate in prod: the plan changed since it was approved"
    long = error_text("SyncFailed", "x" * 1000)
    assert len(long) < 420 and long.endswith("…(cut)")


def test_status_shows_the_waiting_run_its_digest_age_and_answers_and_the_last_failure():
    waiting = WaitingRun(execution_arn="arn:aws:states:us-east-1:3:execution:envsync-prod-sync:local-prod-1",
                         run_id="local-prod-1", started=T0, token="secret-token", digest="abcdef0123456789" * 4,
                         message="plan")
    failure = FailedRun(run_id="local-prod-0", execution_arn="arn:0", stopped=T0 - datetime.timedelta(hours=2),
                        step="Migrate", error="SyncFailed: boom")
    now = T0 + datetime.timedelta(minutes=7)
    text = status_text("prod", [waiting], failure, now)
    assert text.splitlines() == [
        "runs of envsync-prod-sync:",
        "  WAITING for approval: run local-prod-1, plan digest abcdef012345…, waiting 7 min",
        "    envsync approve --env prod --run local-prod-1 --digest abcdef012345",
        '    envsync reject --env prod --run local-prod-1 --reason "..."',
        "  last failed run: local-prod-0, 2 h ago, step Migrate: SyncFailed: boom",
    ]
    data = status_data("prod", [waiting], None, now)
    assert data["waiting"][0]["age_seconds"] == 420 and data["last_failure"] is None
    assert data["waiting"][0]["commands"] == answer_commands("prod", "local-prod-1", waiting.digest)
    assert "secret-token" not in json.dumps(data) + text  # the token is a credential
    assert status_text("dev", [], None, now).splitlines()[1:] == ["  no run waits for an approval", "  no failed run"]


def test_runs_that_cannot_be_read_are_one_line_naming_the_machine_and_the_call_never_the_message():
    from botocore.exceptions import ClientError, EndpointConnectionError

    from envsync.cli.runs import unreadable_text

    denied = ClientError({"Error": {"Code": "AccessDeniedException", "Message": "User: arn:aws:sts::1:assumed-role/x "
                                    "is not authorized to perform: states:ListExecutions"}}, "ListExecutions")
    assert unreadable_text("prod", denied) == ("runs of envsync-prod-sync: could not read them (AccessDeniedException "
                                               "on ListExecutions); the history above stands")
    down = EndpointConnectionError(endpoint_url="http://127.0.0.1:5599/")
    assert unreadable_text("dev", down) == ("runs of envsync-dev-sync: could not read them (EndpointConnectionError "
                                            "(http://127.0.0.1:5599/)); the history above stands")
