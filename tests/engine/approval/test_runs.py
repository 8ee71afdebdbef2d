"""The deployed state machine (templates/statemachine/sync.asl.json) run by the offline ASL
interpreter, each task calling the real handler in-process as the env's Lambda, against a moto
server whose Step Functions executions live in files (as the stand-in serves them) and real
MariaDB. What the topic's subscribers receive (issue 23, findings 6 and 4):
- no SNS message of a run carries a row value or the task token;
- at most one run waits for a person per env; a run whose plan already waits sends nothing.
"""

from __future__ import annotations

import dataclasses
import json
import os
import time
import uuid
from pathlib import Path
from typing import Any, Dict, Iterator, List

import pytest

from envsync.approval import answer as approval_gate
from envsync.lambdas import handlers
from envsync_local import executions
from envsync_local.mariadb import free_port
from envsync_local.moto_server import MotoServer
from envsync_local.moto_server import start as start_moto
from envsync_local.stepfunctions import Execution, StateMachine, StatesError
from tests.engine.conftest import EnvDB
from tests.engine.lambdas import test_handlers
from tests.engine.lambdas.test_handlers import ACCOUNTS, EnvAccount, _session, create_sync_users, invoke, upload

ASL = Path(__file__).resolve().parents[3] / "templates" / "statemachine" / "sync.asl.json"
ROW_VALUE = "ROWVALUE-7f3a"  # a value that only staging's rows hold
accounts = test_handlers.accounts  # the fixture: dev and staging provisioned (on this module's server)
HANDLERS = {"validate": handlers.validate_handler, "plan": handlers.plan_handler,
            "migrate": handlers.migrate_handler, "refdata": handlers.refdata_handler,
            "drift": handlers.drift_handler}


@pytest.fixture(scope="module")
def runs_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple]:
    """A moto server of this module's own, serving executions from files."""
    root = tmp_path_factory.mktemp("gate-runs")
    server = start_moto(free_port(), root / "moto.log", executions_dir=root / "executions")
    try:
        yield server, root / "executions"
    finally:
        server.stop()


@pytest.fixture
def aws_env(runs_server: tuple, monkeypatch: pytest.MonkeyPatch) -> Dict[str, str]:
    """test_handlers' accounts, provisioned on this module's server."""
    server: MotoServer = runs_server[0]
    for key, value in server.aws_env().items():
        monkeypatch.setenv(key, value)
    for key in ("AWS_PROFILE", "AWS_SESSION_TOKEN"):
        monkeypatch.delenv(key, raising=False)
    return server.aws_env()


@dataclasses.dataclass
class Machine:
    """staging's sync state machine, gated (`approval: required`), and its topic's inbox."""

    account: EnvAccount
    arn: str
    definition: Dict[str, Any]
    directory: Path
    inbox: str
    monkeypatch: pytest.MonkeyPatch

    def client(self, service: str) -> Any:
        return _session(self.account.credentials).client(service)

    def invoke(self, resource: str, payload: Any) -> Any:
        if resource.startswith("arn:aws:states:::sns:publish"):
            arguments = {key: payload[key] for key in ("TopicArn", "Subject", "Message") if key in payload}
            return {"MessageId": self.client("sns").publish(**arguments)["MessageId"]}
        wrapped = resource.startswith("arn:aws:states:::lambda:invoke")
        function, event = (payload["FunctionName"], payload["Payload"]) if wrapped else (resource, payload)
        try:
            result = invoke(self.monkeypatch, self.account, HANDLERS[function.rsplit("-", 1)[-1]], event)
        except handlers.SyncFailed as error:  # as Lambda reports a raised exception
            cause = json.dumps({"errorMessage": str(error), "errorType": "SyncFailed"})
            raise StatesError("SyncFailed", cause) from error
        return {"Payload": result, "StatusCode": 200} if wrapped else result

    def start(self) -> tuple:
        """One scheduled run, started through the API as the stand-in starts it."""
        name = f"run-{uuid.uuid4().hex[:8]}"
        arn = self.client("stepfunctions").start_execution(stateMachineArn=self.arn, name=name,
                                                           input="{}")["executionArn"]
        record = {"executionArn": arn, "stateMachineArn": self.arn, "name": name, "env": "staging",
                  "region": "us-east-1", "startDate": time.time(), "input": {}, "definition": self.definition}
        executions.save(self.directory, {**record, "execution": Execution(status="RUNNING").to_dict()})
        execution = StateMachine(self.definition, self.invoke).run({}, name=name, state_machine_arn=self.arn)
        self.save(record, execution)
        return record, execution

    def resume(self, record: Dict[str, Any], execution: Execution, outcome: Dict[str, Any]) -> Execution:
        execution = StateMachine(self.definition, self.invoke).resume(execution, outcome)
        self.save(record, execution)
        return execution

    def save(self, record: Dict[str, Any], execution: Execution) -> None:
        executions.save(self.directory, {**record, "execution": execution.to_dict(), "decision": None,
                                         **({"stopDate": time.time()} if execution.status != "RUNNING" else {})})

    def waiting(self) -> List[approval_gate.WaitingRun]:
        return approval_gate.waiting_runs(self.client("stepfunctions"), self.arn)

    def messages(self) -> List[Dict[str, Any]]:
        """Every message the topic delivered since the last call: subject, text, attributes."""
        sqs, received = self.client("sqs"), []
        while True:
            batch = sqs.receive_message(QueueUrl=self.inbox, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                received.append(json.loads(message["Body"]))
                sqs.delete_message(QueueUrl=self.inbox, ReceiptHandle=message["ReceiptHandle"])


@pytest.fixture
def staging_machine(accounts: Dict[str, EnvAccount], chain: Dict[str, EnvDB], runs_server: tuple,
                    monkeypatch: pytest.MonkeyPatch) -> Machine:
    staging = accounts["staging"]
    for name in ("dev", "staging"):
        create_sync_users(monkeypatch, accounts[name], chain[name])
    gated = dataclasses.replace(staging, variables={**staging.variables, "ENVSYNC_APPROVAL_MODE": "required"})
    session = _session(staging.credentials)
    topic = staging.variables["ENVSYNC_SNS_TOPIC_ARN"]
    sqs = session.client("sqs")
    inbox = sqs.create_queue(QueueName=f"inbox-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=inbox, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    session.client("sns").subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn)  # envelope: all fields
    functions = {f"{name.capitalize()}FunctionArn":
                 f"arn:aws:lambda:us-east-1:{ACCOUNTS['staging']}:function:envsync-staging-{name}" for name in HANDLERS}
    text = ASL.read_text()
    for key, value in {**functions, "SyncFailureTopicArn": topic}.items():
        text = text.replace("${" + key + "}", value)
    machine_name = f"envsync-staging-sync-{uuid.uuid4().hex[:6]}"
    arn = session.client("stepfunctions").create_state_machine(
        name=machine_name, definition=text,
        roleArn=f"arn:aws:iam::{ACCOUNTS['staging']}:role/envsync-staging-sync-states")["stateMachineArn"]
    return Machine(gated, arn, json.loads(text), runs_server[1], inbox, monkeypatch)


def everything_sent(messages: List[Dict[str, Any]]) -> str:
    return json.dumps(messages)


def test_no_message_of_a_failing_run_carries_a_row_value_or_the_task_token(
    accounts: Dict[str, EnvAccount], chain: Dict[str, EnvDB], staging_machine: Machine,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev, staging = accounts["dev"], accounts["staging"]
    upload(dev, {"V1__notes.sql": "CREATE TABLE notes (id INT PRIMARY KEY, note VARCHAR(40));\n"})
    for account in (dev, staging):  # V1 everywhere (staging before its gate was closed)
        assert invoke(monkeypatch, account, handlers.migrate_handler)["status"] == "done"
    # staging's own rows: a unique index promoted from dev fails on them, and the server's
    # message quotes the value ("Duplicate entry 'ROWVALUE-7f3a' for key ...")
    chain["staging"].query(f"INSERT INTO notes VALUES (1, '{ROW_VALUE}'), (2, '{ROW_VALUE}')")
    upload(dev, {"V2__unique_note.sql": "ALTER TABLE notes ADD UNIQUE INDEX ux_note (note);\n"})
    assert invoke(monkeypatch, dev, handlers.migrate_handler)["status"] == "done"
    staging_machine.messages()

    # a failure that is not a step's (a rejection whose reason quotes a value): one line naming
    # the run and the error, never the cause
    rejected_record, rejected = staging_machine.start()
    rejected_token = rejected.waiting["token"]
    rejected = staging_machine.resume(rejected_record, rejected, {
        "error": approval_gate.REJECTED, "cause": f"rejected by x: see {ROW_VALUE}"})
    assert rejected.status == "FAILED"
    asked_first, line = staging_machine.messages()
    assert line["Message"] == (f"envsync: run {rejected_record['name']} of {staging_machine.arn.rsplit(':', 1)[-1]} "
                               f"failed: {approval_gate.REJECTED}")

    record, waiting = staging_machine.start()
    assert (waiting.status, waiting.waiting["state"]) == ("RUNNING", "WaitForApproval")
    token = waiting.waiting["token"]
    (asked,) = staging_machine.messages()
    assert asked["Subject"] == approval_gate.APPROVAL_SUBJECT and "V2__unique_note.sql" in asked["Message"]
    # the CLI finds the token in the run's history, not in the message
    (found,) = staging_machine.waiting()
    assert (found.execution_arn, found.token) == (record["executionArn"], token)
    decision = {"digest": found.digest, "approved_by": "arn:aws:iam::2:user/a", "approved_at": "2026-12-07T00:00:00Z"}
    ended = staging_machine.resume(record, waiting, {"output": json.dumps(decision)})
    assert (ended.status, ended.error) == ("FAILED", "EnvsyncSyncFailed")
    stored = chain["staging"].query("SELECT error_text FROM envsync_schema_history WHERE version = '2'")
    assert ROW_VALUE in stored[0][0]  # the full error stays in the env's history

    (notice,) = staging_machine.messages()  # the step's notice; nothing more from the machine
    assert notice["Message"].startswith("envsync migrate failed in staging at V2__unique_note.sql statement 1 "
                                        "(line 1): IntegrityError: MySQL error 1062 (DUP_ENTRY)"), notice
    sent = [asked_first, line, asked, notice]
    for message in sent:  # text, subject and message attributes of every message of both runs
        for secret in (ROW_VALUE, token, rejected_token):
            assert secret not in everything_sent([message]), (secret, message)


def test_one_run_waits_per_env_and_a_plan_is_asked_for_once(
    accounts: Dict[str, EnvAccount], staging_machine: Machine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev = accounts["dev"]
    upload(dev, {"V1__a.sql": "CREATE TABLE a (id INT PRIMARY KEY);\n"})
    assert invoke(monkeypatch, dev, handlers.migrate_handler)["status"] == "done"
    staging_machine.messages()

    # the schedule's runs, nobody answers: the first asks, the next ones find its plan waiting
    first, waits = staging_machine.start()
    assert waits.status == "RUNNING"
    outcomes = []
    for _ in range(3):
        _, execution = staging_machine.start()
        outcomes.append((execution.status, execution.visited()[-1]))
        assert [run.run_id for run in staging_machine.waiting()] == [first["name"]]
    assert outcomes == [("SUCCEEDED", "Superseded")] * 3
    asked = [m for m in staging_machine.messages() if m.get("Subject") == approval_gate.APPROVAL_SUBJECT]
    assert len(asked) == 1 and f"--run {first['name']}" in asked[0]["Message"]

    # upstream moves on: the next run's plan differs, it replaces the waiting one (stopped,
    # nothing applied) and is the only one that waits
    upload(dev, {"V2__b.sql": "CREATE TABLE b (id INT PRIMARY KEY);\n"})
    assert invoke(monkeypatch, dev, handlers.migrate_handler)["status"] == "done"
    second, waits_again = staging_machine.start()
    assert waits_again.status == "RUNNING"
    stopped = staging_machine.client("stepfunctions").describe_execution(executionArn=first["executionArn"])
    assert (stopped["status"], stopped.get("error")) == ("ABORTED", approval_gate.SUPERSEDED)
    _, after = staging_machine.start()
    assert after.visited()[-1] == "Superseded"
    (only,) = staging_machine.waiting()
    assert only.run_id == second["name"]
    # so `envsync approve --env staging` needs no --run: the one waiting run is the one meant
    assert approval_gate.choose(staging_machine.waiting(), "staging", None, None).run_id == second["name"]
    asked = [m for m in staging_machine.messages() if m.get("Subject") == approval_gate.APPROVAL_SUBJECT]
    assert len(asked) == 1 and "V2__b.sql" in asked[0]["Message"]
    # the stopped run's token is void: an answer to it finds no task
    stepfunctions = staging_machine.client("stepfunctions")
    with pytest.raises(stepfunctions.exceptions.TaskDoesNotExist):
        stepfunctions.send_task_success(taskToken=waits.waiting["token"], output="{}")


# The schedule's rate in a gated env (config: schedule_expression rate(15 minutes)): 96 runs a day.
RUNS_A_DAY = 24 * 60 // 15


@pytest.mark.slow
@pytest.mark.lifecycle  # 96 runs of the machine: minutes, so with the lifecycle suite
def test_a_day_of_scheduled_runs_nobody_answers_asks_once_per_plan_and_keeps_one_run_waiting(
    accounts: Dict[str, EnvAccount], staging_machine: Machine, monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Every 15 minutes for a day, no answer; upstream moves on three times (at 06:00, 12:00
    and 18:00): four distinct plans, so four approval messages, and never two runs waiting."""
    dev = accounts["dev"]
    changes = {RUNS_A_DAY * hour // 24: f"V{n}__t{n}.sql" for n, hour in ((2, 6), (3, 12), (4, 18))}
    upload(dev, {"V1__t1.sql": "CREATE TABLE t1 (id INT PRIMARY KEY);\n"})
    assert invoke(monkeypatch, dev, handlers.migrate_handler)["status"] == "done"
    staging_machine.messages()
    most_waiting, asked = 0, []
    for tick in range(RUNS_A_DAY):
        if tick in changes:  # dev applies a new script: staging's plan is another one
            name = changes[tick]
            upload(dev, {name: f"CREATE TABLE {name.split('__')[1][:-4]} (id INT PRIMARY KEY);\n"})
            assert invoke(monkeypatch, dev, handlers.migrate_handler)["status"] == "done"
        staging_machine.start()
        most_waiting = max(most_waiting, len(staging_machine.waiting()))
        asked += [m for m in staging_machine.messages() if m.get("Subject") == approval_gate.APPROVAL_SUBJECT]
    assert most_waiting == 1
    assert len(asked) == 1 + len(changes), [m["Message"][:80] for m in asked]
    for message, newest in zip(asked, ["V1__t1.sql", *changes.values()]):
        assert newest in message["Message"]  # each message is the plan of its part of the day


def test_a_notice_carries_an_error_text_only_when_its_class_declares_it_data_free(monkeypatch: pytest.MonkeyPatch):
    """Named fields: the error's class always; its message only for engine errors whose texts
    hold names and what to do (proof of origin, connections, config), never a server's."""
    import pymysql

    from envsync.migrations.origin import OriginError

    for key in [k for k in os.environ if k.startswith("ENVSYNC_")]:
        monkeypatch.delenv(key)
    monkeypatch.setenv("ENVSYNC_ENV", "prod")  # a valid configuration (no AWS call is made)
    monkeypatch.setenv("ENVSYNC_CONNECTION_PARAMETER", "/envsync/prod/db/envsync_writer/connection")
    monkeypatch.setenv("ENVSYNC_MIGRATION_BUCKET", "envsync-prod-migrations")
    monkeypatch.setenv("ENVSYNC_SIGNING_KEY_ARN", "arn:aws:kms:us-east-1:333333333333:key/k")
    monkeypatch.delenv("ENVSYNC_SNS_TOPIC_ARN", raising=False)

    def failing(error: Exception):
        def body(*_: Any) -> Dict[str, Any]:
            raise error
        return body

    origin = "staging history row V20__origin_probe.sql (version 20): dev's signature does not match"
    with pytest.raises(handlers.SyncFailed) as raised:
        handlers._run("migrate", {"raise_on_failure": True}, None, failing(OriginError(origin)))
    assert str(raised.value).startswith(f"envsync migrate failed in prod: OriginError — {origin}.")
    server = pymysql.err.IntegrityError(1062, f"Duplicate entry '{ROW_VALUE}' for key 'ux_note'")
    with pytest.raises(handlers.SyncFailed) as raised:
        handlers._run("migrate", {"raise_on_failure": True}, None, failing(server))
    assert "IntegrityError: MySQL error 1062 (DUP_ENTRY)" in str(raised.value)
    assert ROW_VALUE not in str(raised.value)
    plain = RuntimeError(f"unexpected: {ROW_VALUE}")
    assert handlers._run("migrate", {}, None, failing(plain))["failure"] == {"error": "RuntimeError"}
