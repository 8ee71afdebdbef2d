"""Single-user rotation of a sync user's secret, step by step, on a real MariaDB and moto.

The stand-in's RotateSecret runs the same steps through the deployed function (tests/e2e);
here each step is called directly, so a step's failure and a retried step can be staged.
"""

from __future__ import annotations

import json
import uuid
from typing import Dict

import boto3
import pymysql
import pytest

from envsync.credentials import rotation
from envsync.credentials.db_users import WRITER_PRIVILEGES, ensure_user
from envsync.lambdas.context import EnvContext, HandlerConfig
from envsync.mysql.connection import ConnectionInfo, DatabaseUnreachable
from tests.conftest import root_connect

CONFIG = {"ENVSYNC_ENV": "dev", "ENVSYNC_CONNECTION_PARAMETER": "/x", "ENVSYNC_MIGRATION_BUCKET": "b",
          "ENVSYNC_SIGNING_KEY_ARN": "arn:aws:kms:us-east-1:111111111111:key/k"}


@pytest.fixture
def user_secret(aws_env: Dict[str, str], chain, mariadb_instances):
    """A sync user on the dev stand-in and its secret (username, password, host, port)."""
    db = chain["dev"]
    username, password = f"w_{uuid.uuid4().hex[:8]}", f"Pw-{uuid.uuid4().hex}"
    admin = root_connect(mariadb_instances["dev"])
    admin.autocommit(True)
    ensure_user(admin, username=username, password=password, schema=db.database,
                privileges=WRITER_PRIVILEGES, require_tls=True)
    secrets = boto3.client("secretsmanager", region_name="us-east-1")
    arn = secrets.create_secret(Name=f"envsync/dev/db/{username}", SecretString=json.dumps(
        {"username": username, "password": password, "host": db.host, "port": db.port}))["ARN"]
    try:
        yield secrets, arn, db, username
    finally:
        with admin.cursor() as cursor:
            cursor.execute("DROP USER IF EXISTS %s@'%%'", (username,))
        admin.close()


def stages(secrets, arn: str) -> Dict[str, list]:
    return secrets.describe_secret(SecretId=arn)["VersionIdsToStages"]


def logs_in(db, value: dict) -> bool:
    try:
        pymysql.connect(host=db.host, port=db.port, user=value["username"], password=value["password"],
                        ssl={"ca": db.ca_bundle}).close()
    except pymysql.err.OperationalError as error:
        assert error.args[0] == 1045
        return False
    return True


def test_four_steps_rotate_the_password_in_place(user_secret):
    secrets, arn, db, username = user_secret
    connect_as = rotation.connector(ca_bundle=db.ca_bundle)
    old = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    token = str(uuid.uuid4())
    assert rotation.create_secret(secrets, arn, token) == "pending version created"
    assert rotation.create_secret(secrets, arn, token) == "pending version exists"  # retried step
    pending = json.loads(secrets.get_secret_value(SecretId=arn, VersionId=token)["SecretString"])
    assert pending["username"] == username and pending["password"] != old["password"]
    assert rotation.set_secret(secrets, arn, token, connect_as) == "password changed"
    assert rotation.set_secret(secrets, arn, token, connect_as) == "pending password already set"
    assert rotation.test_secret(secrets, arn, token, connect_as) == "pending password logs in"
    assert rotation.finish_secret(secrets, arn, token) == "pending version is current"
    current = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    assert current == pending and logs_in(db, current) and not logs_in(db, old)
    assert "AWSCURRENT" in stages(secrets, arn)[token]


def test_a_failed_test_step_leaves_the_current_password_working(user_secret):
    secrets, arn, db, _ = user_secret
    connect_as = rotation.connector(ca_bundle=db.ca_bundle)
    current = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    token = str(uuid.uuid4())
    rotation.create_secret(secrets, arn, token)
    # setSecret never ran (its invocation failed): the pending password is not the user's.
    with pytest.raises(rotation.RotationError, match="the pending password does not log in"):
        rotation.test_secret(secrets, arn, token, connect_as)
    assert json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"]) == current
    assert logs_in(db, current)


def test_the_engine_logs_in_during_the_rotation_window(user_secret, monkeypatch):
    """Between setSecret and finishSecret only the pending version logs in: the engine tries it."""
    secrets, arn, db, username = user_secret
    token = str(uuid.uuid4())
    rotation.create_secret(secrets, arn, token)
    rotation.set_secret(secrets, arn, token, rotation.connector(ca_bundle=db.ca_bundle))
    old = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    assert not logs_in(db, old)
    monkeypatch.setenv("ENVSYNC_CA_BUNDLE", db.ca_bundle)
    context = EnvContext(HandlerConfig.from_environ(CONFIG))
    info = ConnectionInfo(host=db.host, port=db.port, database=db.database, user="someone-else",
                          secret_arn=arn, tls=True)
    connection, used, _ = context._connect_as_secret(info, secrets, "dev")
    try:
        assert used.user == username  # the user comes from the secret, never from elsewhere
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        context.close()


def test_a_wrong_password_everywhere_still_fails_clearly(user_secret, monkeypatch):
    secrets, arn, db, _ = user_secret
    value = json.loads(secrets.get_secret_value(SecretId=arn)["SecretString"])
    secrets.put_secret_value(SecretId=arn, SecretString=json.dumps({**value, "password": "wrong"}))
    monkeypatch.setenv("ENVSYNC_CA_BUNDLE", db.ca_bundle)
    context = EnvContext(HandlerConfig.from_environ(CONFIG))
    info = ConnectionInfo(host=db.host, port=db.port, database=db.database, user="", secret_arn=arn, tls=True)
    with pytest.raises(DatabaseUnreachable, match=r"\[1045\]"):
        context._connect_as_secret(info, secrets, "dev")


def test_rotate_step_refuses_a_token_secrets_manager_did_not_stage(user_secret):
    secrets, arn, db, _ = user_secret
    secrets.rotate_secret(SecretId=arn, RotateImmediately=False,
                          RotationRules={"AutomaticallyAfterDays": 30})
    event = {"SecretId": arn, "ClientRequestToken": str(uuid.uuid4()), "Step": "createSecret"}
    with pytest.raises(rotation.RotationError, match="has no version"):
        rotation.rotate_step(secrets, event, rotation.connector(ca_bundle=db.ca_bundle))


@pytest.mark.parametrize(("version", "statement"), [
    ("10.11.9-MariaDB-log", "SET PASSWORD = PASSWORD(%(new)s)"),
    ("5.7.12-log", "ALTER USER USER() IDENTIFIED BY %(new)s"),
    ("8.0.12", "ALTER USER USER() IDENTIFIED BY %(new)s"),
    ("8.0.32", "ALTER USER USER() IDENTIFIED BY %(new)s REPLACE %(current)s"),
])
def test_own_password_statement_per_flavour(version, statement):
    assert rotation.own_password_statement(version) == statement
