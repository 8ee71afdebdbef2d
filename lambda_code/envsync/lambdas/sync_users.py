"""Custom::SyncUsers: the sync database users, created while the aurora stack is created.

The stack declares it after the cluster and the users' secrets and before their rotation
schedules (DependsOn), so a fresh `sceptre launch` leaves users that log in and a first
rotation that finds them. Create and Update run `db_users.ensure_sync_users` as the
cluster's master user (from its RDS-managed secret): idempotent, so an update converges the
grants and resets each password to its secret's current version. Delete leaves the users (the
database may outlive the stack; dropping users is not a deploy's business).

Properties: MasterSecretArn, WriterSecretArn, ReaderSecretArn ("" where nothing reads from the
env), ReaderTables (the reference-data allow-list, comma-separated: the reader's SELECT grants
follow it on every update), Host, Port, Database, Tls. Passwords are read here and never logged
or answered.
"""

from __future__ import annotations

import json
import logging
from typing import Any, Dict, Mapping

from envsync import aws
from envsync.credentials import db_users
from envsync.errors import EnvsyncError
from envsync.lambdas.cfn_response import response_body, send_response
from envsync.mysql.connection import ConnectionInfo, connect

logger = logging.getLogger("envsync.lambdas.sync_users")
logger.setLevel(logging.INFO)


class SyncUsersError(EnvsyncError, ValueError):
    """The request cannot be honoured; the reason goes back to CloudFormation."""


def _required(properties: Mapping[str, Any], *names: str) -> None:
    missing = [name for name in names if not properties.get(name)]
    if missing:
        raise SyncUsersError(f"ResourceProperties: missing {', '.join(missing)}")


def ensure(properties: Mapping[str, Any], secrets: Any) -> Dict[str, Any]:
    """Create or converge the users; returns what the stack may read (no password)."""
    _required(properties, "MasterSecretArn", "WriterSecretArn", "Host", "Port", "Database")
    master = aws.read_credentials(secrets, str(properties["MasterSecretArn"]))
    writer = aws.read_credentials(secrets, str(properties["WriterSecretArn"]))
    reader_arn = str(properties.get("ReaderSecretArn") or "")
    reader = aws.read_credentials(secrets, reader_arn) if reader_arn else None
    tls = str(properties.get("Tls", "true")).lower() == "true"
    info = ConnectionInfo(host=str(properties["Host"]), port=int(properties["Port"]), database="",
                          user=master.username, secret_arn=str(properties["MasterSecretArn"]), tls=tls)
    tables = properties.get("ReaderTables") or ""
    tables = [t.strip() for t in (tables.split(",") if isinstance(tables, str) else tables) if t.strip()]
    connection = connect(info, master.password)
    try:
        done = db_users.ensure_sync_users(
            connection, schema=str(properties["Database"]), require_tls=tls, reader_tables=tables,
            writer={"username": writer.username, "password": writer.password},
            reader={"username": reader.username, "password": reader.password} if reader else None)
    finally:
        connection.close()
    users = [writer.username] + ([reader.username] if reader else [])
    if done.get("missing"):
        logger.warning(json.dumps({"message": "reader tables not granted: not created yet here; the next "
                                   "update of the aurora stack grants them", "tables": done["missing"]}))
    return {"Users": ",".join(users), "Database": str(properties["Database"]),
            "ReaderTablesPending": ",".join(done.get("missing", []))}


def handler(event: Dict[str, Any], context: Any = None, secrets: Any = None) -> Dict[str, Any]:
    """Lambda entry point: do the request, always answer CloudFormation."""
    properties = event.get("ResourceProperties") or {}
    physical_id = f"envsync-sync-users-{properties.get('Database', 'unknown')}"
    fields = {"request_type": event.get("RequestType"), "logical_resource_id": event.get("LogicalResourceId")}
    logger.info(json.dumps({"message": "request", **fields}))
    try:
        if event.get("RequestType") in ("Create", "Update"):
            if secrets is None:
                import boto3  # the Lambda runtime provides it

                secrets = boto3.client("secretsmanager")
            data = ensure(properties, secrets)
        elif event.get("RequestType") == "Delete":
            data = {}
        else:
            raise SyncUsersError(f"unknown RequestType {event.get('RequestType')!r}")
        body = response_body(event, "SUCCESS", "", physical_id, data)
    except Exception as error:  # any failure goes back to CloudFormation instead of hanging it
        body = response_body(event, "FAILED", f"{error.__class__.__name__}: {error}", physical_id)
    logger.info(json.dumps({"message": "response", **fields, "status": body["Status"], "reason": body["Reason"]}))
    send_response(event["ResponseURL"], body)
    return body
