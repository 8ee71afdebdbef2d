"""Thin AWS edges: SSM connection strings, Secrets Manager passwords, STS, S3 scripts, SNS.

Every call goes through a boto3 client with botocore's standard retry mode. Nothing here
decides anything; callers pass the clients in, so tests use moto without patching.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Optional

import boto3
import botocore.session
from botocore.config import Config
from botocore.exceptions import BotoCoreError, ClientError

from envsync.errors import EnvsyncError
from envsync.migrations.plan import SourceView
from envsync.migrations.scripts import is_script_candidate, load_script, sort_scripts
from envsync.mysql.connection import ConnectionInfo
from envsync.observability import register_secret

RETRY_CONFIG = Config(retries={"mode": "standard", "max_attempts": 5}, connect_timeout=5, read_timeout=30)
DEFAULT_REGION = "us-east-1"


class AwsConfigError(EnvsyncError, RuntimeError):
    """An AWS resource the engine needs is missing or unreadable."""

    quotes_no_data = True


def region() -> str:
    return os.environ.get("AWS_REGION") or os.environ.get("AWS_DEFAULT_REGION") or DEFAULT_REGION


# One botocore data loader for every session of the process. Each new boto3 Session otherwise
# parses the JSON models of its services (and the endpoints file) again, ~0.1 s per client: most
# of a warm invocation, which makes a session per assumed role.
_shared_loader: Optional[Any] = None


def new_session(**credentials: Any) -> boto3.session.Session:
    """A boto3 session (default credentials, or the keys given) sharing the process's loader."""
    global _shared_loader
    core = botocore.session.Session()
    if _shared_loader is None:
        _shared_loader = core.get_component("data_loader")
    else:
        core.register_component("data_loader", _shared_loader)
    session = boto3.session.Session(botocore_session=core, **credentials)
    # boto3 appends its own data path to the loader's search paths at every session: keep one.
    paths = _shared_loader.search_paths
    paths[:] = list(dict.fromkeys(paths))
    return session


def client(service: str, session: Optional[boto3.session.Session] = None) -> Any:
    session = session or new_session()
    kwargs: Dict[str, Any] = {"region_name": region(), "config": RETRY_CONFIG}
    if service == "sts" and not (os.environ.get("AWS_ENDPOINT_URL") or os.environ.get("AWS_ENDPOINT_URL_STS")):
        # The VPC's STS interface endpoint serves only the regional name (no NAT, no global STS).
        kwargs["endpoint_url"] = f"https://sts.{region()}.amazonaws.com"
    return session.client(service, **kwargs)


def _fail(what: str, error: Exception) -> AwsConfigError:
    if isinstance(error, ClientError):
        code = error.response.get("Error", {}).get("Code", "?")
        message = error.response.get("Error", {}).get("Message", "")
        return AwsConfigError(f"{what}: {code} {message}".strip())
    return AwsConfigError(f"{what}: {error}")


def read_connection_info(ssm: Any, parameter_name: str) -> ConnectionInfo:
    """The env's connection string: SSM SecureString (KMS CMK), decrypted, as ConnectionInfo."""
    try:
        response = ssm.get_parameter(Name=parameter_name, WithDecryption=True)
    except (ClientError, BotoCoreError) as error:
        raise _fail(f"cannot read SSM parameter {parameter_name}", error) from None
    parameter = response["Parameter"]
    if parameter.get("Type") != "SecureString":
        raise AwsConfigError(f"SSM parameter {parameter_name} is {parameter.get('Type')}, expected SecureString")
    try:
        return ConnectionInfo.from_json(parameter["Value"])
    except ValueError as error:
        raise AwsConfigError(f"SSM parameter {parameter_name}: {error}") from None


@dataclass(frozen=True)
class DbCredentials:
    username: str
    password: str

    def __repr__(self) -> str:  # never print the password, even in a traceback's locals
        return f"DbCredentials(username={self.username!r}, password='***')"


def read_credentials(secrets: Any, secret_arn: str, stage: str = "AWSCURRENT") -> DbCredentials:
    """A DB user's secret (JSON with at least "username" and "password"), at version `stage`."""
    try:
        response = secrets.get_secret_value(SecretId=secret_arn, VersionStage=stage)
    except (ClientError, BotoCoreError) as error:
        raise _fail(f"cannot read secret {secret_arn} ({stage})", error) from None
    try:
        data = json.loads(response["SecretString"])
        credentials = DbCredentials(username=str(data["username"]), password=str(data["password"]))
    except (KeyError, TypeError, ValueError):
        raise AwsConfigError(f"secret {secret_arn} is not JSON with username and password") from None
    register_secret(credentials.password)
    return credentials


def assume_role_session(role_arn: str, external_id: str, session_name: str) -> boto3.session.Session:
    """A session with the upstream account's source-reader role (STS, ExternalId)."""
    sts = client("sts")
    try:
        response = sts.assume_role(RoleArn=role_arn, RoleSessionName=session_name[:64],
                                   ExternalId=external_id, DurationSeconds=900)
    except (ClientError, BotoCoreError) as error:
        raise _fail(f"cannot assume {role_arn}", error) from None
    credentials = response["Credentials"]
    register_secret(credentials["SecretAccessKey"])
    register_secret(credentials["SessionToken"])
    return new_session(
        aws_access_key_id=credentials["AccessKeyId"],
        aws_secret_access_key=credentials["SecretAccessKey"],
        aws_session_token=credentials["SessionToken"],
        region_name=region(),
    )


class S3ScriptSource:
    """dev's scripts: `V*.sql` objects of the env's migration bucket (versioned, 30-day lifecycle)."""

    kind = "scripts"

    def __init__(self, s3: Any, bucket: str, env_name: str, prefix: str = "migrations/",
                 retention_days: Optional[float] = 30) -> None:
        self.s3, self.bucket, self.env_name, self.prefix = s3, bucket, env_name, prefix
        self.retention_days = retention_days

    def describe(self) -> str:
        return f"s3://{self.bucket}/{self.prefix}"

    def view(self) -> SourceView:
        scripts = []
        try:
            for obj in self._objects():
                name = obj["Key"][len(self.prefix):]
                if "/" in name or not is_script_candidate(name):
                    continue
                load_script(name, b"")  # a near-miss name fails here, before the download
                response = self.s3.get_object(Bucket=self.bucket, Key=obj["Key"])
                script = load_script(name, response["Body"].read(), obj["LastModified"].timestamp())
                # The version dev applies is the one it signs (origin.py).
                scripts.append(replace(script, source_version_id=response.get("VersionId") or ""))
        except (ClientError, BotoCoreError) as error:
            raise _fail(f"cannot read scripts from {self.describe()}", error) from None
        return SourceView(scripts=sort_scripts(scripts), retention_days=self.retention_days)

    def _objects(self) -> List[Dict[str, Any]]:
        paginator = self.s3.get_paginator("list_objects_v2")
        objects: List[Dict[str, Any]] = []
        for page in paginator.paginate(Bucket=self.bucket, Prefix=self.prefix):
            objects.extend(page.get("Contents", []))
        return objects


def publish_failure(sns: Any, topic_arn: str, subject: str, message: str) -> None:
    """SNS notification of a failed sync (subject <= 100 characters, as SNS requires)."""
    sns.publish(TopicArn=topic_arn, Subject=subject[:100], Message=message)
