"""Lambda handlers in-process against moto (SSM SecureString + KMS, Secrets Manager, STS into
another account, S3, SNS) and the real MariaDB stand-ins, as the deployed functions run them."""

from __future__ import annotations

import base64
import dataclasses
import io
import json
import logging
import os
import uuid
from dataclasses import dataclass
from typing import Dict, Sequence

import boto3
import pymysql
import pytest

from envsync import approval, aws, observability
from envsync.lambdas import handlers, sync_users
from envsync.migrations import history, migrate
from envsync.mysql.connection import ConnectionInfo, DatabaseUnreachable, connect
from envsync.mysql.lock import lock_name
from tests.engine.conftest import EnvDB

ACCOUNTS = {"dev": "111111111111", "staging": "222222222222"}
EXTERNAL_ID = "envsync-staging-pulls-dev"


def account_credentials(account: str) -> Dict[str, str]:
    """Credentials that moto books into `account` (it honours assumed-role accounts)."""
    sts = boto3.client("sts", region_name="us-east-1")
    creds = sts.assume_role(RoleArn=f"arn:aws:iam::{account}:role/test-admin",
                            RoleSessionName="test")["Credentials"]
    return {"AWS_ACCESS_KEY_ID": creds["AccessKeyId"], "AWS_SECRET_ACCESS_KEY": creds["SecretAccessKey"],
            "AWS_SESSION_TOKEN": creds["SessionToken"]}


@dataclass
class EnvAccount:
    name: str
    credentials: Dict[str, str]
    variables: Dict[str, str]
    passwords: Dict[str, str]
    users: Dict[str, str]
    queue_url: str = ""


def _session(credentials: Dict[str, str]) -> boto3.session.Session:
    return aws.new_session(
        aws_access_key_id=credentials["AWS_ACCESS_KEY_ID"],
        aws_secret_access_key=credentials["AWS_SECRET_ACCESS_KEY"],
        aws_session_token=credentials["AWS_SESSION_TOKEN"], region_name="us-east-1")


def provision(name: str, db: EnvDB, suffix: str) -> EnvAccount:
    """What the env's stacks create: CMK, secrets, SecureString connection strings, bucket, topic."""
    credentials = account_credentials(ACCOUNTS[name])
    session = _session(credentials)
    kms, ssm, sm = session.client("kms"), session.client("ssm"), session.client("secretsmanager")
    key_id = kms.create_key(Description=f"envsync {name}")["KeyMetadata"]["KeyId"]
    passwords = {"master": "", "reader": f"Rd-{uuid.uuid4().hex}", "writer": f"Wr-{uuid.uuid4().hex}"}
    users = {"master": "root", "reader": f"r_{suffix}", "writer": f"w_{suffix}"}
    arns = {}
    for role in ("master", "reader", "writer"):
        arns[role] = sm.create_secret(
            Name=f"envsync/{name}/{role}-{suffix}", KmsKeyId=key_id,
            SecretString=json.dumps({"username": users[role], "password": passwords[role],
                                     "engine": "mysql"}))["ARN"]
    params = {}
    for role in ("reader", "writer"):
        params[role] = f"/envsync/{name}/db/{role}-{suffix}/connection"
        info = ConnectionInfo(host=db.host, port=db.port, database=db.database, user=users[role],
                              secret_arn=arns[role], tls=True)
        ssm.put_parameter(Name=params[role], Type="SecureString", KeyId=key_id,
                          Value=json.dumps(dataclasses.asdict(info)))
    bucket = f"envsync-{name}-migrations-{suffix}"
    session.client("s3").create_bucket(Bucket=bucket)
    sns, sqs = session.client("sns"), session.client("sqs")
    topic = sns.create_topic(Name=f"envsync-{name}-{suffix}")["TopicArn"]
    queue_url = sqs.create_queue(QueueName=f"failures-{name}-{suffix}")["QueueUrl"]
    queue_arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=queue_arn,
                  Attributes={"RawMessageDelivery": "true"})
    session.client("iam").create_role(
        RoleName=f"envsync-{name}-source-reader-{suffix}", AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
            "Principal": {"AWS": "*"}, "Condition": {"StringEquals": {"sts:ExternalId": EXTERNAL_ID}}}]}))
    # The kms stack's signing key (the source env signs what it applies).
    signing_key = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    variables = {
        "ENVSYNC_ENV": name, "ENVSYNC_CONNECTION_PARAMETER": params["writer"],
        "ENVSYNC_SIGNING_KEY_ARN": signing_key,
        "ENVSYNC_MIGRATION_BUCKET": bucket, "ENVSYNC_CA_BUNDLE": db.ca_bundle,
        "ENVSYNC_SNS_TOPIC_ARN": topic,
        "_MASTER_SECRET_ARN": arns["master"], "_READER_SECRET_ARN": arns["reader"],
        "_WRITER_SECRET_ARN": arns["writer"], "_READER_PARAMETER": params["reader"],
    }
    return EnvAccount(name, credentials, variables, passwords, users, queue_url)


@pytest.fixture
def accounts(aws_env: Dict[str, str], chain: Dict[str, EnvDB]) -> Dict[str, EnvAccount]:
    suffix = uuid.uuid4().hex[:8]
    dev = provision("dev", chain["dev"], suffix)
    staging = provision("staging", chain["staging"], suffix)
    staging.variables.update({
        "ENVSYNC_UPSTREAM_ENV": "dev",
        "ENVSYNC_UPSTREAM_READER_ROLE_ARN":
            f"arn:aws:iam::{ACCOUNTS['dev']}:role/envsync-dev-source-reader-{suffix}",
        "ENVSYNC_UPSTREAM_EXTERNAL_ID": EXTERNAL_ID,
        "ENVSYNC_UPSTREAM_CONNECTION_PARAMETER": dev.variables["_READER_PARAMETER"],
        # dev's public key, as the deploy-time resolver reads it.
        "ENVSYNC_ORIGIN_KEY_ARN": dev.variables["ENVSYNC_SIGNING_KEY_ARN"],
        "ENVSYNC_ORIGIN_PUBLIC_KEY": base64.b64encode(_session(dev.credentials).client("kms").get_public_key(
            KeyId=dev.variables["ENVSYNC_SIGNING_KEY_ARN"])["PublicKey"]).decode(),
    })
    del staging.variables["ENVSYNC_MIGRATION_BUCKET"], staging.variables["ENVSYNC_SIGNING_KEY_ARN"]
    return {"dev": dev, "staging": staging}


def invoke(monkeypatch: pytest.MonkeyPatch, account: EnvAccount, handler, event=None) -> dict:
    """Run a handler as the env's Lambda: its account's credentials, its stack's variables."""
    with monkeypatch.context() as patch:
        for key in [k for k in os.environ if k.startswith("ENVSYNC_")]:
            patch.delenv(key)
        for key, value in {**account.credentials, **account.variables}.items():
            if not key.startswith("_"):
                patch.setenv(key, value)
        return handler(event or {})


def create_sync_users(monkeypatch: pytest.MonkeyPatch, account: EnvAccount, db: EnvDB) -> dict:
    """What Custom::SyncUsers does while the env's aurora stack is created."""
    def run(_event: dict) -> dict:
        secrets = _session(account.credentials).client("secretsmanager")
        return sync_users.ensure({
            "MasterSecretArn": account.variables["_MASTER_SECRET_ARN"],
            "WriterSecretArn": account.variables["_WRITER_SECRET_ARN"],
            "ReaderSecretArn": account.variables["_READER_SECRET_ARN"],
            "ReaderTables": "currency,country",  # refdata_tables; none of them exists yet
            "Host": db.host, "Port": str(db.port), "Database": db.database, "Tls": "true"}, secrets)

    return invoke(monkeypatch, account, run)


def upload(account: EnvAccount, scripts: Dict[str, str]) -> None:
    s3 = _session(account.credentials).client("s3")
    for name, body in scripts.items():
        s3.put_object(Bucket=account.variables["ENVSYNC_MIGRATION_BUCKET"], Key=f"migrations/{name}",
                      Body=body.encode())


def user_connect(db: EnvDB, account: EnvAccount, role: str):
    info = ConnectionInfo(host=db.host, port=db.port, database=db.database, user=account.users[role],
                          secret_arn="", tls=True)
    return connect(info, account.passwords[role], ca_bundle=db.ca_bundle)


@pytest.fixture
def json_logs() -> io.StringIO:
    """Every line the handlers' Logger writes, through its own (redacting) formatter."""
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(observability.logger.registered_formatter)
    observability.logger.addHandler(handler)
    yield buffer
    observability.logger.removeHandler(handler)


def test_bootstrap_migrate_promote_drift_and_failure(
    accounts: Dict[str, EnvAccount], chain: Dict[str, EnvDB], monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture, json_logs: io.StringIO, caplog: pytest.LogCaptureFixture,
) -> None:
    dev, staging = accounts["dev"], accounts["staging"]

    for name in ("dev", "staging"):
        boot = create_sync_users(monkeypatch, accounts[name], chain[name])
        assert boot["Users"].split(",") == [accounts[name].users["writer"], accounts[name].users["reader"]]
        again = create_sync_users(monkeypatch, accounts[name], chain[name])
        assert again == boot  # idempotent

    # least privilege: the reader reads only, the writer cannot touch mysql.*
    reader = user_connect(chain["dev"], dev, "reader")
    with reader.cursor() as cursor, pytest.raises(pymysql.err.OperationalError) as denied:
        cursor.execute("CREATE TABLE nope (id INT)")
    assert denied.value.args[0] == 1142
    writer = user_connect(chain["dev"], dev, "writer")
    with writer.cursor() as cursor:
        for sql in ("SELECT * FROM mysql.user", "CREATE TABLE mysql.nope (id INT)",
                    "CREATE DATABASE other_schema"):
            with pytest.raises(pymysql.err.OperationalError) as denied:
                cursor.execute(sql)
            assert denied.value.args[0] in (1044, 1142), sql
    writer.close()

    upload(dev, {"V1__accounts.sql": "CREATE TABLE accounts (id BIGINT PRIMARY KEY, name VARCHAR(40));",
                 "V2__index.sql": "CREATE INDEX ix_name ON accounts (name);\n"
                                  "CREATE TRIGGER trg_accounts BEFORE INSERT ON accounts FOR EACH ROW\n"
                                  "  SET NEW.name = TRIM(NEW.name);\n"})
    plan = invoke(monkeypatch, dev, handlers.plan_handler)
    assert [p["script_name"] for p in plan["pending"]] == ["V1__accounts.sql", "V2__index.sql"]
    result = invoke(monkeypatch, dev, handlers.migrate_handler)
    assert (result["status"], result["migration_status"], len(result["applied"])) == ("done", "applied", 2)
    assert invoke(monkeypatch, dev, handlers.validate_handler)["status"] == "done"

    # staging pulls through dev's source-reader role (another account) and dev's reader user
    promoted = invoke(monkeypatch, staging, handlers.migrate_handler)
    assert promoted["status"] == "done", promoted
    assert [a["script_name"] for a in promoted["applied"]] == ["V1__accounts.sql", "V2__index.sql"]
    staging_rows = chain["staging"].query(f"SELECT version, source_env, state FROM {history.TABLE}")
    assert sorted(staging_rows) == [("1", "dev", "success"), ("2", "dev", "success")]

    drift = invoke(monkeypatch, staging, handlers.drift_handler)
    # dev's trigger is invisible to dev's reader: not compared, rather than false drift
    assert (drift["status"], drift["drift_count"]) == ("done", 0), drift
    assert "trigger" in drift["not_compared"]
    chain["staging"].query("CREATE TABLE hotfix (id INT PRIMARY KEY)")
    drift = invoke(monkeypatch, staging, handlers.drift_handler)
    assert drift["drift_count"] >= 1

    # a failing script in dev: failed result, SyncFailures metric, SNS message; staging waits
    upload(dev, {"V3__bad.sql": "CREATE TABLE ok3 (id INT);\nALTER TABLE nope ADD COLUMN x INT;\n"})
    capfd.readouterr()
    failed = invoke(monkeypatch, dev, handlers.migrate_handler)
    assert failed["status"] == "failed"
    assert failed["error"].startswith("dev: V3__bad.sql statement 2 (line 2): [1146]")
    out = capfd.readouterr().out
    emf = [json.loads(line) for line in out.splitlines() if line.startswith('{"_aws"')]
    assert any(m.get("SyncFailures") == [1.0] and m["Env"] == "dev" for m in emf), out
    assert emf[-1]["_aws"]["CloudWatchMetrics"][0]["Dimensions"] == [["Env"]]
    sqs = _session(dev.credentials).client("sqs")
    messages = sqs.receive_message(QueueUrl=dev.queue_url, WaitTimeSeconds=1).get("Messages", [])
    assert messages and "V3__bad.sql statement 2 (line 2): ProgrammingError: MySQL error 1146 (NO_SUCH_TABLE)" \
        in messages[0]["Body"]
    assert "doesn't exist" not in messages[0]["Body"]  # the server's text stays in history and logs
    waits = invoke(monkeypatch, staging, handlers.migrate_handler)
    assert waits["status"] == "done" and [w["version"] for w in waits["withheld"]] == ["3"]

    with pytest.raises(handlers.SyncFailed, match=r"V3__bad\.sql"):
        invoke(monkeypatch, dev, handlers.migrate_handler, {"raise_on_failure": True})

    # logs are JSON lines and never carry a password
    everything = out + capfd.readouterr().out + json_logs.getvalue() + caplog.text
    for account in (dev, staging):
        for role in ("reader", "writer"):
            assert account.passwords[role] not in everything
    actions = [json.loads(line) for line in json_logs.getvalue().splitlines()]
    assert {"migrate started", "migrate finished"} <= {a.get("action") for a in actions}


def test_configuration_errors_are_listed_in_one_failed_result(
    accounts: Dict[str, EnvAccount], monkeypatch: pytest.MonkeyPatch
) -> None:
    broken = EnvAccount("staging", accounts["staging"].credentials,
                        {"ENVSYNC_ENV": "staging", "ENVSYNC_UPSTREAM_ENV": "dev"}, {}, {})
    result = invoke(monkeypatch, broken, handlers.migrate_handler)
    assert result["status"] == "failed"
    for name in ("ENVSYNC_CONNECTION_PARAMETER", "ENVSYNC_UPSTREAM_READER_ROLE_ARN",
                 "ENVSYNC_UPSTREAM_EXTERNAL_ID", "ENVSYNC_UPSTREAM_CONNECTION_PARAMETER"):
        assert name in result["error"]
    missing_param = EnvAccount("dev", accounts["dev"].credentials,
                               {**accounts["dev"].variables, "ENVSYNC_CONNECTION_PARAMETER": "/nope"}, {}, {})
    result = invoke(monkeypatch, missing_param, handlers.migrate_handler)
    assert result["status"] == "failed" and "cannot read SSM parameter /nope: ParameterNotFound" in result["error"]


def test_connection_contract() -> None:
    good = {"host": "h", "port": 3306, "database": "app", "user": "u", "secret_arn": "arn:x", "tls": True}
    assert ConnectionInfo.from_json(json.dumps(good)).port == 3306
    with pytest.raises(ValueError, match="'password' key"):
        ConnectionInfo.from_json(json.dumps({**good, "password": "x"}))
    with pytest.raises(ValueError, match=r"missing keys \['tls'\].*unknown keys \['ssl'\]"):
        ConnectionInfo.from_json(json.dumps({**{k: v for k, v in good.items() if k != "tls"}, "ssl": 1}))
    info = ConnectionInfo(host="127.0.0.1", port=1, database="app", user="u", secret_arn="", tls=False)
    with pytest.raises(DatabaseUnreachable, match=r"cannot connect to u@127.0.0.1:1/app \(prod\)"):
        connect(info, "pw", env_name="prod", connect_timeout=2)


def test_refdata_handler_pulls_reference_rows_from_upstream(
    accounts: Dict[str, EnvAccount], chain: Dict[str, EnvDB], monkeypatch: pytest.MonkeyPatch,
    capfd: pytest.CaptureFixture,
) -> None:
    dev, staging = accounts["dev"], accounts["staging"]
    for name in ("dev", "staging"):
        created = create_sync_users(monkeypatch, accounts[name], chain[name])
        assert (created["Database"], created["ReaderTablesPending"]) == (chain[name].database, "currency,country")
    # currency is created by a migration after the users: dev's migrate run grants it to dev's reader.
    upload(dev, {"V1__currency.sql": "CREATE TABLE currency (code CHAR(3) PRIMARY KEY, name VARCHAR(40));\n"
                                     "INSERT INTO currency VALUES ('EUR', 'Euro'), ('USD', 'US dollar');\n"})
    assert invoke(monkeypatch, dev, handlers.migrate_handler)["status"] == "done"
    # staging gets the schema through the gate; its rows then differ (the INSERT ran in both,
    # so change dev's reference data after promotion)
    assert invoke(monkeypatch, staging, handlers.migrate_handler)["status"] == "done"
    chain["dev"].query("INSERT INTO currency VALUES ('CHF', 'Swiss franc')")
    chain["dev"].query("UPDATE currency SET name = 'euro' WHERE code = 'EUR'")
    staging.variables["ENVSYNC_REFDATA_CONFIG"] = json.dumps({"tables": [{"name": "currency"}]})

    planned = invoke(monkeypatch, staging, handlers.refdata_handler, {"mode": "plan"})
    assert (planned["status"], planned["rows_changed"]) == ("done", 2), planned
    assert chain["staging"].query("SELECT COUNT(*) FROM currency") == [(2,)]  # plan writes nothing
    capfd.readouterr()
    applied = invoke(monkeypatch, staging, handlers.refdata_handler)
    assert (applied["status"], applied["rows_changed"]) == ("done", 2), applied
    emf = [json.loads(line) for line in capfd.readouterr().out.splitlines() if line.startswith('{"_aws"')]
    assert any(m.get("RowsChanged") == [2.0] and m["Env"] == "staging" for m in emf)
    assert chain["staging"].query("SELECT code, name FROM currency ORDER BY code") == [
        ("CHF", "Swiss franc"), ("EUR", "euro"), ("USD", "US dollar")]
    # Another writer of staging's schema holds its envsync lock: the apply waits, then refuses.
    holder = chain["staging"].connect()
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 0)", (lock_name(chain["staging"].database),))
        chain["dev"].query("UPDATE currency SET name = 'Euro' WHERE code = 'EUR'")
        blocked = invoke(monkeypatch, staging, handlers.refdata_handler, {"lock_timeout": 1})
        assert blocked["status"] == "failed" and "holds the migration lock" in blocked["error"], blocked
        assert chain["staging"].query("SELECT name FROM currency WHERE code = 'EUR'") == [("euro",)]
    finally:
        holder.close()
    # dev has no upstream: nothing to pull, and nothing is touched (the state machine runs it anyway).
    source = invoke(monkeypatch, dev, handlers.refdata_handler)
    assert (source["status"], source["rows_changed"]) == ("done", 0) and "no upstream" in source["skipped"]
    missing_config = dict(staging.variables)
    missing_config.pop("ENVSYNC_REFDATA_CONFIG")
    refused = invoke(monkeypatch, dataclasses.replace(staging, variables=missing_config), handlers.refdata_handler)
    assert refused["status"] == "failed" and "ENVSYNC_REFDATA_CONFIG" in refused["error"], refused


def test_bucket_near_miss_names_are_errors_not_skipped(accounts: Dict[str, EnvAccount]) -> None:
    from envsync.aws import S3ScriptSource
    from envsync.migrations.scripts import ScriptError

    dev = accounts["dev"]
    upload(dev, {"V1__a.sql": "SELECT 1;", "README.md": "not a script", "V2__b.SQL": "SELECT 2;"})
    source = S3ScriptSource(_session(dev.credentials).client("s3"),
                            dev.variables["ENVSYNC_MIGRATION_BUCKET"], "dev")
    with pytest.raises(ScriptError, match=r"V2__b.SQL: not a migration script name"):
        source.view()


def test_plan_handler_asks_for_approval_and_migrate_applies_only_the_approved_plan(
    accounts: Dict[str, EnvAccount], chain: Dict[str, EnvDB], monkeypatch: pytest.MonkeyPatch,
) -> None:
    dev = accounts["dev"]
    create_sync_users(monkeypatch, dev, chain["dev"])
    upload(dev, {"V1__orders.sql": "CREATE TABLE orders (id INT PRIMARY KEY, note VARCHAR(40));\n"
                                   "INSERT INTO orders VALUES (1, 'a');\n"})
    assert invoke(monkeypatch, dev, handlers.migrate_handler)["status"] == "done"
    upload(dev, {"V2__drop_note.sql": "ALTER TABLE orders DROP COLUMN note;\n"})

    quiet = invoke(monkeypatch, dev, handlers.plan_handler)  # the env's mode defaults to none
    assert quiet["approval"]["required"] is False and "message" not in quiet["approval"]
    gated = dataclasses.replace(dev, variables={**dev.variables, "ENVSYNC_APPROVAL_MODE": "destructive-only",
                                                "ENVSYNC_APPROVAL_TIMEOUT_SECONDS": "3600"})
    plan = invoke(monkeypatch, gated, handlers.plan_handler, {"run_id": "run-1"})
    gate = plan["approval"]
    assert gate["required"] is True and [s["script_name"] for s in gate["scripts"]] == ["V2__drop_note.sql"]
    assert gate["timeout_seconds"] == 3600 and "within 1 h" in gate["message"]
    assert [(d["kind"], d["line"]) for d in plan["destructive"]] == [("drop_column", 1)]
    assert "[drop_column] V2__drop_note.sql statement 1 (line 1): drops column orders.note" in gate["message"]
    assert "envsync approve --env dev --run run-1" in gate["message"]

    # the migrate step itself refuses to skip the person (a direct invocation, or the state
    # machine's no-approval branch in an env whose mode asks for one)
    for skipped in (None, gate):  # no gate at all; the gate without a person's decision
        refused = invoke(monkeypatch, gated, handlers.migrate_handler, {"approval": skipped} if skipped else {})
        assert refused["status"] == "failed" and "need a person's approval" in refused["error"], refused
    assert [r.version for r in chain["dev"].history()] == ["1"]

    # dev's bucket gains a script after the approval: the run refuses and applies nothing
    # what the state machine hands the migrate step: the plan's gate with the decision inside
    approved = {**gate, "decision": {"digest": gate["digest"], "approved_by": "arn:aws:iam::1:user/a",
                                     "approved_at": "2026-12-01T03:00:00+00:00"}}
    upload(dev, {"V3__more.sql": "CREATE TABLE more_t (id INT);\n"})
    refused = invoke(monkeypatch, gated, handlers.migrate_handler, {"approval": approved})
    assert refused["status"] == "failed" and "the plan changed since it was approved" in refused["error"]
    assert [r.version for r in chain["dev"].history()] == ["1"]
    _session(dev.credentials).client("s3").delete_object(
        Bucket=dev.variables["ENVSYNC_MIGRATION_BUCKET"], Key="migrations/V3__more.sql")
    applied = invoke(monkeypatch, gated, handlers.migrate_handler, {"approval": approved})
    assert [a["script_name"] for a in applied["applied"]] == ["V2__drop_note.sql"]
    recorded = [r.applied_by for r in chain["dev"].history() if r.version == "2"]
    assert recorded and "approved by arn:aws:iam::1:user/a at 2026-12-01T03:00:00+00:00 (plan " in recorded[0]


def _gated_staging(accounts: Dict[str, EnvAccount], chain: Dict[str, EnvDB], monkeypatch: pytest.MonkeyPatch,
                   scripts: Dict[str, str], dev_changes: Sequence[str], refdata: Dict[str, object]) -> EnvAccount:
    """staging waiting for a person (approval required) with `refdata` as its allow-list, after
    `scripts` ran in dev and were promoted, and `dev_changes` then changed dev's rows."""
    for name in ("dev", "staging"):
        create_sync_users(monkeypatch, accounts[name], chain[name])
    upload(accounts["dev"], scripts)
    for name in ("dev", "staging"):
        assert invoke(monkeypatch, accounts[name], handlers.migrate_handler)["status"] == "done"
    for statement in dev_changes:
        chain["dev"].query(statement)
    staging = accounts["staging"]
    return dataclasses.replace(staging, variables={
        **staging.variables, "ENVSYNC_REFDATA_CONFIG": json.dumps(refdata), "ENVSYNC_APPROVAL_MODE": "required"})


def test_in_a_gated_env_reference_rows_change_only_in_an_approved_run(
    accounts: Dict[str, EnvAccount], chain: Dict[str, EnvDB], monkeypatch: pytest.MonkeyPatch,
) -> None:
    gated = _gated_staging(
        accounts, chain, monkeypatch,
        {"V1__currency.sql": "CREATE TABLE currency (code CHAR(3) PRIMARY KEY, name VARCHAR(40));\n"
                             "INSERT INTO currency VALUES ('EUR', 'Euro'), ('USD', 'US dollar');\n"},
        ["INSERT INTO currency VALUES ('CHF', 'Swiss franc')", "DELETE FROM currency WHERE code = 'USD'"],
        {"tables": [{"name": "currency"}]})

    # no script is pending, but reference rows would change: the run waits, and says what changes:
    # the counts and the rows; the digest binds the delta
    gate = invoke(monkeypatch, gated, handlers.plan_handler, {"run_id": "run-9"})["approval"]
    assert gate["required"] is True and gate["scripts"] == []
    [delta] = gate["refdata"]
    assert {k: v for k, v in delta.items() if k != "digest"} == {"table": "currency", "inserted": 1, "updated": 0,
                                                                 "deleted": 1}
    assert gate["digest"] == approval.plan_digest([], gate["refdata"]) and len(delta["digest"]) == 64
    assert "currency: +1 ~0 -1" in gate["message"]
    assert "    + code='CHF': name='Swiss franc'" in gate["message"] and "    - code='USD'" in gate["message"]
    # without a person's decision the refdata step compares, changes nothing and refuses, as the
    # migrate step does: a direct invocation, or the gate without the decision
    forged = {**gate, "decision": {"digest": "0" * 64, "approved_by": "me"}}
    for skipped, why in (({"mode": "apply"}, "need a person's approval"), ({}, "need a person's approval"),
                         ({"mode": "apply", "approval": gate}, "need a person's approval"),
                         ({"approval": forged}, "is not for the plan this run made")):
        refused = invoke(monkeypatch, gated, handlers.refdata_handler, skipped)
        assert (refused["status"], refused["rows_changed"]) == ("failed", 0), (skipped, refused)
        assert why in refused["error"] and "Swiss franc" not in json.dumps(refused)
        if "approval" not in skipped:  # SNS names the tables that wait, never their rows
            assert refused["failure"] == {"table": "currency", "error": "refused: needs a person's approval"}
    assert chain["staging"].query("SELECT code FROM currency ORDER BY code") == [("EUR",), ("USD",)]
    # destructive-only: changes without deletes need no person; deletes do
    chain["dev"].query("INSERT INTO currency VALUES ('USD', 'US dollar')")
    partly = dataclasses.replace(gated, variables={**gated.variables, "ENVSYNC_APPROVAL_MODE": "destructive-only"})
    inserted = invoke(monkeypatch, partly, handlers.refdata_handler)
    assert (inserted["status"], inserted["rows_changed"]) == ("done", 1), inserted
    chain["dev"].query("DELETE FROM currency WHERE code = 'USD'")
    assert invoke(monkeypatch, partly, handlers.refdata_handler)["status"] == "failed"
    assert chain["staging"].query("SELECT code FROM currency ORDER BY code") == [("CHF",), ("EUR",), ("USD",)]
    # the approval binds the delta the person read (+CHF -USD); staging holds CHF by now, so the
    # delta is another (-USD): nothing of the table is applied, and the next run asks again
    approved = {**gate, "decision": {"digest": gate["digest"], "approved_by": "arn:aws:iam::1:user/a",
                                     "approved_at": "2026-12-01T03:00:00+00:00"}}
    moved_on = invoke(monkeypatch, gated, handlers.refdata_handler, {"mode": "apply", "approval": approved})
    assert (moved_on["status"], moved_on["rows_changed"], moved_on["asks_again"]) == ("done", 0, ["currency"])
    assert chain["staging"].query("SELECT code FROM currency ORDER BY code") == [("CHF",), ("EUR",), ("USD",)]
    # asked again and approved, the same step applies exactly that
    gate = invoke(monkeypatch, gated, handlers.plan_handler, {"run_id": "run-10"})["approval"]
    assert "    - code='USD'" in gate["message"] and "Swiss franc" not in gate["message"]
    approved = {**gate, "decision": {"digest": gate["digest"], "approved_by": "arn:aws:iam::1:user/a",
                                     "approved_at": "2026-12-01T03:30:00+00:00"}}
    applied = invoke(monkeypatch, gated, handlers.refdata_handler, {"mode": "apply", "approval": approved})
    assert (applied["status"], applied["rows_changed"]) == ("done", 1), applied
    assert chain["staging"].query("SELECT code FROM currency ORDER BY code") == [("CHF",), ("EUR",)]


def test_dev_resigns_its_history_on_request_and_staging_then_promotes(
    accounts: Dict[str, EnvAccount], chain: Dict[str, EnvDB], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """An install older than proof of origin: dev's rows are unsigned; staging refuses them,
    saying how to fix it; {"sign_history": true} to dev's migrate function signs them."""
    from envsync.aws import S3ScriptSource

    dev, staging = accounts["dev"], accounts["staging"]
    for name in ("dev", "staging"):
        create_sync_users(monkeypatch, accounts[name], chain[name])
    upload(dev, {"V1__accounts.sql": "CREATE TABLE accounts (id BIGINT PRIMARY KEY);\n"})
    s3 = _session(dev.credentials).client("s3")
    old_release = S3ScriptSource(s3, dev.variables["ENVSYNC_MIGRATION_BUCKET"], "dev")
    control, scripts = chain["dev"].connect(), chain["dev"].connect()
    try:  # what a release without proofs of origin did
        assert migrate.apply(control, old_release, schema=chain["dev"].database,
                             script_connection=scripts).status == "applied"
    finally:
        control.close()
        scripts.close()

    refused = invoke(monkeypatch, staging, handlers.migrate_handler)
    assert refused["status"] == "failed" and refused["error_type"] == "OriginError", refused
    assert "dev history row V1__accounts.sql (version 1) carries no proof of origin" in refused["error"]
    assert '{"sign_history": true}' in refused["error"]
    assert "only the source env signs" in invoke(monkeypatch, staging, handlers.migrate_handler,
                                                 {"sign_history": True})["error"]

    signed = invoke(monkeypatch, dev, handlers.migrate_handler, {"sign_history": True})
    assert (signed["status"], signed["signed"], signed["refused"]) == ("done", ["V1__accounts.sql"], [])
    assert chain["dev"].history()[0].proof.key_id == dev.variables["ENVSYNC_SIGNING_KEY_ARN"]
    promoted = invoke(monkeypatch, staging, handlers.migrate_handler)
    assert [a["version"] for a in promoted["applied"]] == ["1"], promoted
    assert chain["staging"].history()[0].proof == chain["dev"].history()[0].proof


def test_the_fan_out_lists_fk_groups_and_each_group_applies_only_its_approved_delta(
    accounts: Dict[str, EnvAccount], chain: Dict[str, EnvDB], monkeypatch: pytest.MonkeyPatch,
) -> None:
    """What the state machine's Map runs in a gated env: the plan's one digest covers every group,
    then one refdata call per group (its own slot of the shared schema lock) writes that group's
    approved delta; a group whose delta moved after the approval writes nothing, the others apply."""
    gated = _gated_staging(
        accounts, chain, monkeypatch,
        {"V1__lookups.sql": "CREATE TABLE currency (code CHAR(3) PRIMARY KEY, name VARCHAR(40));\n"
                            "CREATE TABLE country (iso CHAR(2) PRIMARY KEY, name VARCHAR(40));\n"},
        ["INSERT INTO currency VALUES ('EUR', 'Euro'), ('CHF', 'Swiss franc')",
         "INSERT INTO country VALUES ('DE', 'Germany')"],
        {"tables": ["currency", "country"], "max_concurrency": 2})

    listed = invoke(monkeypatch, gated, handlers.refdata_handler, {"groups": True})
    assert (listed["groups"], listed["max_concurrency"]) == ([["currency"], ["country"]], 2), listed
    no_upstream = invoke(monkeypatch, accounts["dev"], handlers.refdata_handler, {"groups": True})
    assert no_upstream["groups"] == []
    gate = invoke(monkeypatch, gated, handlers.plan_handler, {"run_id": "run-1"})["approval"]
    assert sorted(t["table"] for t in gate["refdata"]) == ["country", "currency"]  # one digest, every group
    approved = {**gate, "decision": {"digest": gate["digest"], "approved_by": "arn:aws:iam::1:user/a",
                                     "approved_at": "2026-12-01T03:00:00+00:00"}}
    chain["dev"].query("INSERT INTO country VALUES ('CH', 'Switzerland')")  # after the approval

    by_group = {tuple(group): invoke(monkeypatch, gated, handlers.refdata_handler,
                                     {"mode": "apply", "group": group, "slot": index, "approval": approved})
                for index, group in enumerate(listed["groups"])}
    assert [t["table"] for t in by_group[("currency",)]["tables"]] == ["currency"]
    assert by_group[("currency",)]["rows_changed"] == 2
    assert by_group[("country",)]["rows_changed"] == 0 and by_group[("country",)]["asks_again"] == ["country"]
    assert chain["staging"].query("SELECT code FROM currency ORDER BY code") == [("CHF",), ("EUR",)]
    assert chain["staging"].query("SELECT COUNT(*) FROM country") == [(0,)]
    # a group that is not one FK group (any more) is refused by name, nothing written
    wrong = invoke(monkeypatch, gated, handlers.refdata_handler,
                   {"mode": "apply", "group": ["currency", "country"], "approval": approved})
    assert wrong["status"] == "failed" and "not one foreign-key group" in wrong["error"], wrong
