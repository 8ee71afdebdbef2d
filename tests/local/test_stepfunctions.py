"""The offline ASL interpreter: the semantics local mode relies on to run the deployed machine."""

from __future__ import annotations

from envsync_local.stepfunctions import StateMachine, StatesError

LAMBDA = "arn:aws:states:::lambda:invoke"
SNS = "arn:aws:states:::sns:publish"

DEFINITION = {
    "StartAt": "Migrate",
    "States": {
        "Migrate": {
            "Type": "Task", "Resource": LAMBDA,
            "Parameters": {"FunctionName": "migrate", "Payload": {"env.$": "$.env"}},
            "ResultSelector": {"status.$": "$.Payload.status"},
            "ResultPath": "$.migrate",
            "Retry": [{"ErrorEquals": ["Transient"], "MaxAttempts": 2, "IntervalSeconds": 1}],
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Notify"}],
            "Next": "Refdata",
        },
        "Refdata": {
            "Type": "Task", "Resource": LAMBDA,
            "Parameters": {"FunctionName": "refdata", "Payload": {"cursor.$": "$.refdata.cursor"}},
            "ResultSelector": {"status.$": "$.Payload.status", "cursor.$": "$.Payload.cursor"},
            "ResultPath": "$.refdata",
            "Next": "MoreRefdata?",
        },
        "MoreRefdata?": {
            "Type": "Choice",
            "Choices": [{"Variable": "$.refdata.status", "StringEquals": "continue", "Next": "Refdata"}],
            "Default": "Done",
        },
        "Notify": {
            "Type": "Task", "Resource": SNS,
            "Parameters": {"TopicArn": "arn:topic",
                           "Message.$": "States.Format('sync of {} failed: {}', $.env, $.error.Error)"},
            "ResultPath": None,
            "Next": "Failed",
        },
        "Failed": {"Type": "Fail", "Error": "SyncFailed", "Cause": "see SNS"},
        "Done": {"Type": "Succeed"},
    },
}


class Handlers:
    def __init__(self, migrate_errors=(), refdata_rounds=3):
        self.calls = []
        self.migrate_errors = list(migrate_errors)
        self.refdata_rounds = refdata_rounds

    def __call__(self, resource, payload):
        self.calls.append((resource, payload))
        if resource == SNS:
            return {"MessageId": "m-1"}
        function = payload["FunctionName"]
        if function == "migrate":
            if self.migrate_errors:
                raise StatesError(self.migrate_errors.pop(0), "boom")
            return {"Payload": {"status": "done"}}
        self.refdata_rounds -= 1
        cursor = {"round": self.refdata_rounds}
        return {"Payload": {"status": "continue" if self.refdata_rounds else "done", "cursor": cursor}}


def run(handlers, execution_input):
    initial = {"refdata": {"cursor": None}, **execution_input}
    return StateMachine(DEFINITION, handlers).run(initial)


def test_loops_while_the_handler_says_continue():
    handlers = Handlers(refdata_rounds=3)
    execution = run(handlers, {"env": "staging"})
    assert execution.status == "SUCCEEDED"
    assert execution.visited().count("Refdata") == 3
    assert execution.output["migrate"] == {"status": "done"}
    cursors = [p["Payload"]["cursor"] for _, p in handlers.calls if p.get("FunctionName") == "refdata"]
    assert cursors == [None, {"round": 2}, {"round": 1}]


def test_retry_then_success():
    handlers = Handlers(migrate_errors=["Transient", "Transient"])
    assert run(handlers, {"env": "dev"}).status == "SUCCEEDED"
    assert sum(1 for _, p in handlers.calls if p.get("FunctionName") == "migrate") == 3


def test_catch_publishes_and_fails():
    handlers = Handlers(migrate_errors=["MigrationFailed"])
    execution = run(handlers, {"env": "staging"})
    assert (execution.status, execution.error) == ("FAILED", "SyncFailed")
    resource, payload = handlers.calls[-1]
    assert resource == SNS
    assert payload["Message"] == "sync of staging failed: MigrationFailed"
    assert "Refdata" not in execution.visited()


def test_retries_exhausted_go_to_catch():
    handlers = Handlers(migrate_errors=["Transient"] * 5)
    execution = run(handlers, {"env": "dev"})
    assert execution.status == "FAILED"
    assert sum(1 for _, p in handlers.calls if p.get("FunctionName") == "migrate") == 3
