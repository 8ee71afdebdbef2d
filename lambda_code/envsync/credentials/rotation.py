"""Secrets Manager rotation of a sync user's password: single-user strategy, in the env's VPC.

Secrets Manager calls this function four times per rotation, with `Step`:
- createSecret: a new password in a version staged AWSPENDING (once per ClientRequestToken);
- setSecret: the user changes its own password to the pending one (logged in with the current
  one; if the pending one already works, a retried step has done it);
- testSecret: log in with the pending version;
- finishSecret: move AWSCURRENT to the pending version (AWSPREVIOUS follows by itself).

Single user, not alternating users: the secret's `username` never changes (objects the user
defines keep their DEFINER, no clone user, no master secret and no RDS API in a VPC without
NAT). The price is a short window between setSecret and finishSecret in which the current
version no longer logs in; the engine re-reads the secret and tries the pending version once
on error 1045 (`EnvContext._connect_as_secret`). Sessions already open are not affected.

The secret holds username and password (and host, port from its target attachment). The core
takes the Secrets Manager client and a connect function as arguments; `handler` is the edge.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Callable, Dict, Optional

from envsync.errors import EnvsyncError
from envsync.mysql.connection import ConnectionInfo, DatabaseUnreachable, connect
from envsync.mysql.flavour import Flavour

logger = logging.getLogger("envsync.credentials.rotation")
logger.setLevel(logging.INFO)

PENDING, CURRENT = "AWSPENDING", "AWSCURRENT"
PASSWORD_LENGTH = 32
# Characters a password must not hold: quoting in client configs and URLs.
EXCLUDE_CHARACTERS = "\"@/\\'`"
Connect = Callable[[Dict[str, Any]], Any]


class RotationError(EnvsyncError, RuntimeError):
    """A step cannot complete; Secrets Manager marks the rotation failed and keeps AWSCURRENT."""


def own_password_statement(server_version: str) -> str:
    """The statement a user changes its own password with on this server (see `Flavour`)."""
    return Flavour.from_version(server_version).own_password_statement


def _version(secrets: Any, secret_id: str, stage: str, token: Optional[str] = None) -> Dict[str, Any]:
    kwargs: Dict[str, Any] = {"SecretId": secret_id, "VersionStage": stage}
    if token:
        kwargs["VersionId"] = token
    value = json.loads(secrets.get_secret_value(**kwargs)["SecretString"])
    if not isinstance(value, dict) or not value.get("username") or not value.get("password"):
        raise RotationError(f"secret {secret_id} ({stage}) is not JSON with username and password")
    return value


def _connects(connect_as: Connect, value: Dict[str, Any]) -> Optional[Any]:
    try:
        return connect_as(value)
    except DatabaseUnreachable:
        return None


def create_secret(secrets: Any, secret_id: str, token: str) -> str:
    current = _version(secrets, secret_id, CURRENT)
    try:
        _version(secrets, secret_id, PENDING, token)
        return "pending version exists"
    except secrets.exceptions.ResourceNotFoundException:
        pass
    password = secrets.get_random_password(PasswordLength=PASSWORD_LENGTH,
                                           ExcludeCharacters=EXCLUDE_CHARACTERS)["RandomPassword"]
    secrets.put_secret_value(SecretId=secret_id, ClientRequestToken=token,
                             SecretString=json.dumps({**current, "password": password}),
                             VersionStages=[PENDING])
    return "pending version created"


def set_secret(secrets: Any, secret_id: str, token: str, connect_as: Connect) -> str:
    pending = _version(secrets, secret_id, PENDING, token)
    already = _connects(connect_as, pending)
    if already is not None:
        already.close()
        return "pending password already set"
    current = _version(secrets, secret_id, CURRENT)
    if current["username"] != pending["username"]:
        raise RotationError(f"secret {secret_id}: the pending version names another user")
    connection = _connects(connect_as, current)
    if connection is None:
        raise RotationError(f"secret {secret_id}: neither the current nor the pending password logs in")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT VERSION()")
            (version,) = cursor.fetchone()
            cursor.execute(own_password_statement(str(version)),
                           {"new": pending["password"], "current": current["password"]})
    finally:
        connection.close()
    return "password changed"


def test_secret(secrets: Any, secret_id: str, token: str, connect_as: Connect) -> str:
    connection = _connects(connect_as, _version(secrets, secret_id, PENDING, token))
    if connection is None:
        raise RotationError(f"secret {secret_id}: the pending password does not log in")
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    finally:
        connection.close()
    return "pending password logs in"


def finish_secret(secrets: Any, secret_id: str, token: str) -> str:
    versions = secrets.describe_secret(SecretId=secret_id).get("VersionIdsToStages", {})
    current = next((version for version, stages in versions.items() if CURRENT in stages), None)
    if current == token:
        return "already current"
    secrets.update_secret_version_stage(SecretId=secret_id, VersionStage=CURRENT,
                                        MoveToVersionId=token, RemoveFromVersionId=current)
    return "pending version is current"


def connector(tls: bool = True, ca_bundle: Optional[str] = None) -> Connect:
    """Log in with a secret version's username, password, host and port."""
    def connect_as(value: Dict[str, Any]) -> Any:
        info = ConnectionInfo(host=str(value["host"]), port=int(value.get("port", 3306)), database="",
                              user=str(value["username"]), secret_arn="", tls=tls)
        return connect(info, str(value["password"]), ca_bundle=ca_bundle, connect_timeout=5)

    return connect_as


def rotate_step(secrets: Any, event: Dict[str, Any], connect_as: Connect) -> str:
    secret_id, token, step = event["SecretId"], event["ClientRequestToken"], event["Step"]
    metadata = secrets.describe_secret(SecretId=secret_id)
    if not metadata.get("RotationEnabled"):
        raise RotationError(f"secret {secret_id} does not have rotation enabled")
    stages = metadata.get("VersionIdsToStages", {})
    if token not in stages:
        raise RotationError(f"secret {secret_id} has no version {token} to rotate to")
    if CURRENT in stages[token] and step != "finishSecret":
        return "already current"
    if step == "createSecret":
        return create_secret(secrets, secret_id, token)
    if step == "setSecret":
        return set_secret(secrets, secret_id, token, connect_as)
    if step == "testSecret":
        return test_secret(secrets, secret_id, token, connect_as)
    if step == "finishSecret":
        return finish_secret(secrets, secret_id, token)
    raise RotationError(f"unknown rotation step {step!r}")


def handler(event: Dict[str, Any], context: Any = None, secrets: Any = None) -> Dict[str, str]:
    """Lambda entry point. Logs the step and its outcome; never a password."""
    if secrets is None:
        import boto3  # the Lambda runtime provides it

        secrets = boto3.client("secretsmanager")
    fields = {"secret_id": event.get("SecretId"), "step": event.get("Step"),
              "token": event.get("ClientRequestToken")}
    try:
        outcome = rotate_step(secrets, event, connector())
    except Exception as error:
        logger.error(json.dumps({"message": "rotation step failed", **fields,
                                 "error": f"{error.__class__.__name__}: {error}"}))
        raise
    logger.info(json.dumps({"message": "rotation step done", **fields, "outcome": outcome}))
    return {"step": str(event.get("Step")), "outcome": outcome}
