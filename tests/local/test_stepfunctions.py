"""The offline ASL interpreter: the semantics local mode relies on to run the deployed machine."""

from __future__ import annotations

import json

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


# ---- .waitForTaskToken: pause, resume with the decision, time out ---------------------------

GATED = {
    "StartAt": "Wait",
    "States": {
        "Wait": {
            "Type": "Task", "Resource": SNS + ".waitForTaskToken",
            "Parameters": {"TopicArn": "arn:topic", "Message.$": "$.plan",
                           "MessageAttributes": {"token": {"DataType": "String", "StringValue.$": "$$.Task.Token"}}},
            "TimeoutSecondsPath": "$.timeout",
            "ResultPath": "$.approval",
            "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "Rejected"}],
            "Next": "Apply",
        },
        "Apply": {"Type": "Pass", "Parameters": {"applied_with.$": "$.approval.digest"}, "End": True},
        "Rejected": {"Type": "Fail", "Error": "Rejected", "Cause": "see SNS"},
    },
}


def gated_run(timeout=60):
    published = []
    machine = StateMachine(GATED, lambda resource, payload: published.append((resource, payload)) or {})
    return machine, machine.run({"plan": "V2 drops a column", "timeout": timeout}), published


def test_a_task_token_pauses_the_run_after_publishing_the_token():
    _machine, execution, published = gated_run()
    assert execution.status == "RUNNING" and execution.output is None
    token = execution.waiting["token"]
    assert published == [(SNS + ".waitForTaskToken",
                          {"TopicArn": "arn:topic", "Message": "V2 drops a column",
                           "MessageAttributes": {"token": {"DataType": "String", "StringValue": token}}})]
    assert execution.waiting["state"] == "Wait" and execution.waiting["timeout_seconds"] == 60
    assert execution.visited() == ["Wait"]


def test_success_resumes_with_the_output_as_the_task_result():
    machine, execution, _ = gated_run()
    resumed = machine.resume(execution, {"output": '{"digest": "abc"}'})
    assert (resumed.status, resumed.output, resumed.waiting) == ("SUCCEEDED", {"applied_with": "abc"}, None)
    assert resumed.visited() == ["Wait", "Wait", "Apply"]  # entered, then its TaskSucceeded


def test_failure_and_timeout_go_through_the_catch():
    machine, execution, _ = gated_run()
    rejected = machine.resume(execution, {"error": "EnvsyncApprovalRejected", "cause": "not today"})
    assert (rejected.status, rejected.error) == ("FAILED", "Rejected")
    caught = {"state": "Wait", "type": "Caught", "error": "EnvsyncApprovalRejected", "cause": "not today"}
    assert caught in rejected.history
    machine, late, _ = gated_run(timeout=0)
    timed_out = machine.resume(late, {"output": '{"digest": "abc"}'})  # answered after the deadline
    assert timed_out.status == "FAILED"
    assert {"state": "Wait", "type": "Caught", "error": "States.Timeout",
            "cause": "the task token was not answered in time"} in timed_out.history


def test_a_paused_execution_survives_a_round_trip_through_json():
    import json

    from envsync_local.stepfunctions import Execution

    machine, execution, _ = gated_run()
    restored = Execution.from_dict(json.loads(json.dumps(execution.to_dict())))
    assert machine.resume(restored, {"output": '{"digest": "d"}'}).output == {"applied_with": "d"}
    try:
        machine.resume(restored, {"output": "{}"})
    except StatesError as err:
        assert "not waiting" in str(err)
    else:
        raise AssertionError("a finished execution cannot be resumed twice")


def test_a_caught_failure_shows_in_the_history_as_aws_records_it_and_status_reads_it():
    """GetExecutionHistory's events of a failed run carry the failed task's error and cause
    (taskFailedEventDetails), from which `envsync status` names the step and the error."""
    from envsync.cli.runs import failed_step
    from envsync_local.executions import history_events

    class Failing(Handlers):
        def __call__(self, resource, payload):
            if resource == LAMBDA and payload["FunctionName"] == "migrate":
                raise StatesError("SyncFailed", "migrate in staging: V4__ix.sql statement 1 (line 3): "
                                                "[1062] Duplicate entry 'secret-row' for key 'PRIMARY'")
            return super().__call__(resource, payload)

    execution = run(Failing(), {"env": "staging"})
    assert execution.status == "FAILED"
    events = history_events({"executionArn": "arn:x", "startDate": 1.0, "stopDate": 2.0, "input": {},
                             "execution": execution.to_dict()})
    failed = [event for event in events if event["type"] == "TaskFailed"]
    assert failed[0]["taskFailedEventDetails"]["error"] == "SyncFailed"
    step, error = failed_step(events)
    assert step == "Migrate"
    assert error == "SyncFailed: migrate in staging: V4__ix.sql statement 1 (line 3): MySQL error 1062 (DUP_ENTRY)"


def test_the_context_names_the_execution_and_its_machine_as_aws_does():
    machine_arn = "arn:aws:states:us-east-1:333333333333:stateMachine:envsync-prod-sync"
    definition = {"StartAt": "Who", "States": {"Who": {"Type": "Pass", "End": True, "Parameters": {
        "run.$": "$$.Execution.Id", "name.$": "$$.Execution.Name", "machine.$": "$$.StateMachine.Name",
        "line.$": "States.Format('run {} of {}', $$.Execution.Name, $$.StateMachine.Name)"}}}}
    execution = StateMachine(definition, lambda *_: None).run({}, name="r1", state_machine_arn=machine_arn)
    assert execution.output == {
        "run": "arn:aws:states:us-east-1:333333333333:execution:envsync-prod-sync:r1", "name": "r1",
        "machine": "envsync-prod-sync", "line": "run r1 of envsync-prod-sync"}


FAN_OUT = {
    "StartAt": "Groups",
    "States": {
        "Groups": {"Type": "Pass", "Result": {"groups": [["a", "b"], ["c"], ["d"]], "max_concurrency": 2},
                   "ResultPath": "$.listed", "Next": "Each"},
        "Each": {
            "Type": "Map", "ItemsPath": "$.listed.groups", "MaxConcurrencyPath": "$.listed.max_concurrency",
            "ItemSelector": {"group.$": "$$.Map.Item.Value", "slot.$": "$$.Map.Item.Index", "run.$": "$.run"},
            "ItemProcessor": {"StartAt": "Apply", "States": {
                "Apply": {"Type": "Task", "Resource": "apply", "ResultPath": "$.out",
                          "Catch": [{"ErrorEquals": ["States.ALL"], "ResultPath": "$.error", "Next": "GroupFailed"}],
                          "Next": "GroupDone"},
                "GroupDone": {"Type": "Pass", "Parameters": {"group.$": "$.group", "status": "done"}, "End": True},
                "GroupFailed": {"Type": "Pass", "Parameters": {"group.$": "$.group", "status": "failed",
                                                               "error.$": "$.error.Error"}, "End": True}}},
            "ResultSelector": {"groups.$": "$", "failed.$": "$[?(@.status == 'failed')]"},
            "ResultPath": "$.refdata", "Next": "AnyFailed"},
        "AnyFailed": {"Type": "Choice", "Choices": [{"Variable": "$.refdata.failed[0]", "IsPresent": True,
                                                      "Next": "Failed"}], "Default": "Done"},
        "Done": {"Type": "Succeed"},
        "Failed": {"Type": "Fail", "Error": "GroupsFailed"},
    },
}


def test_map_runs_each_item_at_most_max_concurrency_at_once_and_catches_per_iteration():
    import threading
    import time

    running, peak, seen, lock = [0], [0], [], threading.Lock()

    def invoke(resource, payload):
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
            seen.append((payload["slot"], payload["group"], payload["run"]))
        time.sleep(0.2)
        with lock:
            running[0] -= 1
        if payload["group"] == ["c"]:
            raise StatesError("SyncFailed", "group c refused")
        return {"status": "done"}

    execution = StateMachine(FAN_OUT, invoke).run({"run": 7})
    assert execution.status == "FAILED" and execution.error == "GroupsFailed"
    assert peak[0] == 2  # MaxConcurrencyPath: two at once, never three
    assert sorted(seen) == [(0, ["a", "b"], 7), (1, ["c"], 7), (2, ["d"], 7)]
    assert "Caught" in [event["type"] for event in execution.history]


def test_map_results_keep_item_order_and_a_filter_selects_by_field():
    execution = StateMachine(FAN_OUT, lambda resource, payload: {"status": "done"}).run({"run": 1})
    assert execution.status == "SUCCEEDED"
    assert execution.output["refdata"] == {"groups": [{"group": ["a", "b"], "status": "done"},
                                                      {"group": ["c"], "status": "done"},
                                                      {"group": ["d"], "status": "done"}], "failed": []}


def test_an_uncaught_iteration_failure_fails_the_map_and_a_bad_concurrency_is_a_runtime_error():
    definition = json.loads(json.dumps(FAN_OUT))
    del definition["States"]["Each"]["ItemProcessor"]["States"]["Apply"]["Catch"]

    def invoke(resource, payload):
        if payload["group"] == ["d"]:
            raise StatesError("SyncFailed", "d")
        return {"status": "done"}

    assert StateMachine(definition, invoke).run({"run": 1}).error == "SyncFailed"
    definition["States"]["Groups"]["Result"]["max_concurrency"] = -1
    failed = StateMachine(definition, lambda resource, payload: {}).run({"run": 1})
    assert failed.error == "States.Runtime" and "MaxConcurrency" in failed.cause


def test_after_an_uncaught_iteration_failure_no_further_iteration_starts():
    definition = json.loads(json.dumps(FAN_OUT))
    del definition["States"]["Each"]["ItemProcessor"]["States"]["Apply"]["Catch"]
    definition["States"]["Groups"]["Result"]["max_concurrency"] = 1
    started = []

    def invoke(resource, payload):
        started.append(payload["group"])
        if payload["group"] == ["a", "b"]:
            raise StatesError("SyncFailed", "a refused")
        return {"status": "done"}

    failed = StateMachine(definition, invoke).run({"run": 1})
    assert failed.status == "FAILED" and failed.error == "SyncFailed"
    assert started == [["a", "b"]]  # AWS stops the Map: c and d never run
