"""Handler configuration (environment variables set by the sync stack) and the connections it implies.

Variables
- ENVSYNC_ENV                           this env's name (dev, staging, prod)
- ENVSYNC_CONNECTION_PARAMETER          SSM SecureString with this env's writer ConnectionInfo
- ENVSYNC_MIGRATION_BUCKET              this env's migration bucket (required where there is no upstream)
- ENVSYNC_UPSTREAM_ENV                  empty for dev; else the upstream's env name
- ENVSYNC_UPSTREAM_READER_ROLE_ARN      the upstream's source-reader role   } required when
- ENVSYNC_UPSTREAM_EXTERNAL_ID          its sts:ExternalId                  } ENVSYNC_UPSTREAM_ENV
- ENVSYNC_UPSTREAM_CONNECTION_PARAMETER the upstream reader's SSM parameter } is set
- ENVSYNC_SIGNING_KEY_ARN               the source env's KMS signing key (required without upstream)
- ENVSYNC_ORIGIN_KEY_ARN                } the source env's signing key and its public key (base64
- ENVSYNC_ORIGIN_PUBLIC_KEY             } DER), read at deploy time (required with an upstream)
- ENVSYNC_CA_BUNDLE                     CA bundle for TLS (default: the RDS bundle in the package)
- ENVSYNC_SNS_TOPIC_ARN                 failure notifications (optional)
- ENVSYNC_REFDATA_CONFIG                JSON for the refdata handler (optional elsewhere)
- ENVSYNC_APPROVAL_MODE                 required | destructive-only | none (default none; approval.py)
- ENVSYNC_APPROVAL_TIMEOUT_SECONDS      how long a run waits for a person (default 86400)
"""

from __future__ import annotations

import json
import os
import re
from dataclasses import dataclass, replace
from typing import Any, Dict, List, Mapping, Optional, Tuple

from envsync import aws
from envsync.approval import DEFAULT_TIMEOUT_SECONDS as DEFAULT_APPROVAL_TIMEOUT_SECONDS
from envsync.approval import MODES as APPROVAL_MODES
from envsync.errors import EnvsyncError
from envsync.migrations.origin import OriginError, OriginKey, Signer
from envsync.migrations.plan import UpstreamHistorySource
from envsync.mysql.connection import ACCESS_DENIED, ConnectionInfo, DatabaseUnreachable, connect

ENV_NAME = re.compile(r"^[a-z][a-z0-9-]{0,31}$")


class ConfigError(EnvsyncError, ValueError):
    """The handler's environment variables are missing or invalid (all problems listed)."""

    quotes_no_data = True


@dataclass(frozen=True)
class HandlerConfig:
    env: str
    connection_parameter: str
    migration_bucket: Optional[str]
    upstream_env: Optional[str]
    upstream_reader_role_arn: Optional[str]
    upstream_external_id: Optional[str]
    upstream_connection_parameter: Optional[str]
    ca_bundle: Optional[str]
    sns_topic_arn: Optional[str]
    refdata_config: Optional[Dict[str, Any]]
    approval_mode: str = "none"
    approval_timeout_seconds: int = DEFAULT_APPROVAL_TIMEOUT_SECONDS
    signing_key_arn: Optional[str] = None
    origin_key: Optional[OriginKey] = None

    @classmethod
    def from_environ(cls, environ: Optional[Mapping[str, str]] = None) -> HandlerConfig:
        environ = os.environ if environ is None else environ

        def get(name: str) -> Optional[str]:
            value = environ.get(name, "").strip()
            return value or None

        problems: List[str] = []
        env = get("ENVSYNC_ENV")
        if env is None:
            problems.append("ENVSYNC_ENV is not set")
        elif not ENV_NAME.match(env):
            problems.append(f"ENVSYNC_ENV={env!r} is not an env name (lowercase letters, digits, -)")
        if get("ENVSYNC_CONNECTION_PARAMETER") is None:
            problems.append("ENVSYNC_CONNECTION_PARAMETER is not set")
        upstream_env = get("ENVSYNC_UPSTREAM_ENV")
        if upstream_env:
            for name in ("ENVSYNC_UPSTREAM_READER_ROLE_ARN", "ENVSYNC_UPSTREAM_EXTERNAL_ID",
                         "ENVSYNC_UPSTREAM_CONNECTION_PARAMETER"):
                if get(name) is None:
                    problems.append(f"{name} is not set (required because ENVSYNC_UPSTREAM_ENV is {upstream_env})")
            role = get("ENVSYNC_UPSTREAM_READER_ROLE_ARN")
            if role and not role.startswith("arn:aws"):
                problems.append(f"ENVSYNC_UPSTREAM_READER_ROLE_ARN={role!r} is not an ARN")
            if upstream_env == env:
                problems.append("ENVSYNC_UPSTREAM_ENV must differ from ENVSYNC_ENV")
        else:
            if get("ENVSYNC_MIGRATION_BUCKET") is None:
                problems.append("ENVSYNC_MIGRATION_BUCKET is not set (required without ENVSYNC_UPSTREAM_ENV: "
                                "the env authors its migrations in its bucket)")
            if get("ENVSYNC_SIGNING_KEY_ARN") is None:
                problems.append("ENVSYNC_SIGNING_KEY_ARN is not set (required without ENVSYNC_UPSTREAM_ENV: "
                                "the env signs what it applies for the envs downstream)")
        origin_key = None
        if upstream_env and not (get("ENVSYNC_ORIGIN_KEY_ARN") and get("ENVSYNC_ORIGIN_PUBLIC_KEY")):
            problems.append("ENVSYNC_ORIGIN_KEY_ARN and ENVSYNC_ORIGIN_PUBLIC_KEY must be set (required with "
                            "ENVSYNC_UPSTREAM_ENV: promoted scripts are verified with the source env's public key)")
        elif upstream_env:
            try:
                origin_key = OriginKey.from_base64(get("ENVSYNC_ORIGIN_KEY_ARN") or "",
                                                   get("ENVSYNC_ORIGIN_PUBLIC_KEY") or "")
            except OriginError as error:
                problems.append(f"ENVSYNC_ORIGIN_KEY_ARN / ENVSYNC_ORIGIN_PUBLIC_KEY: {error} (required "
                                "with ENVSYNC_UPSTREAM_ENV: promoted scripts are verified with it)")
            if origin_key is not None and not origin_key.key_arn.startswith("arn:aws"):
                problems.append(f"ENVSYNC_ORIGIN_KEY_ARN={origin_key.key_arn!r} is not an ARN")
        refdata_config = None
        if get("ENVSYNC_REFDATA_CONFIG"):
            try:
                refdata_config = json.loads(get("ENVSYNC_REFDATA_CONFIG") or "")
                if not isinstance(refdata_config, dict):
                    raise ValueError("not a JSON object")
            except ValueError as error:
                problems.append(f"ENVSYNC_REFDATA_CONFIG is not a JSON object: {error}")
        approval_mode = get("ENVSYNC_APPROVAL_MODE") or "none"
        if approval_mode not in APPROVAL_MODES:
            problems.append(f"ENVSYNC_APPROVAL_MODE={approval_mode!r} is not one of {', '.join(APPROVAL_MODES)}")
        timeout = get("ENVSYNC_APPROVAL_TIMEOUT_SECONDS") or str(DEFAULT_APPROVAL_TIMEOUT_SECONDS)
        if not timeout.isdigit() or int(timeout) < 1:
            problems.append(f"ENVSYNC_APPROVAL_TIMEOUT_SECONDS={timeout!r} is not a positive number of seconds")
        if problems:
            raise ConfigError("invalid handler configuration: " + "; ".join(problems))
        return cls(
            approval_mode=approval_mode, approval_timeout_seconds=int(timeout),
            env=env or "", connection_parameter=get("ENVSYNC_CONNECTION_PARAMETER") or "",
            migration_bucket=get("ENVSYNC_MIGRATION_BUCKET"), upstream_env=upstream_env,
            upstream_reader_role_arn=get("ENVSYNC_UPSTREAM_READER_ROLE_ARN"),
            upstream_external_id=get("ENVSYNC_UPSTREAM_EXTERNAL_ID"),
            upstream_connection_parameter=get("ENVSYNC_UPSTREAM_CONNECTION_PARAMETER"),
            ca_bundle=get("ENVSYNC_CA_BUNDLE"),
            sns_topic_arn=get("ENVSYNC_SNS_TOPIC_ARN"), refdata_config=refdata_config,
            signing_key_arn=get("ENVSYNC_SIGNING_KEY_ARN"), origin_key=origin_key,
        )

    def require(self, *attributes: str) -> None:
        missing = [f"ENVSYNC_{name.upper()}" for name in attributes if not getattr(self, name)]
        if missing:
            raise ConfigError(f"invalid handler configuration: {', '.join(missing)} not set")


class EnvContext:
    """The connections one invocation needs, built lazily from SSM, Secrets Manager and STS."""

    def __init__(self, config: HandlerConfig, session: Any = None) -> None:
        self.config = config
        self.session = session
        self._upstream_session: Any = None
        self._connections: List[Any] = []
        self.target_info: Optional[ConnectionInfo] = None  # set by target_connection()
        self.upstream_info: Optional[ConnectionInfo] = None  # set by upstream_connection()

    def _connect(self, info: ConnectionInfo, password: str, env_name: str) -> Any:
        if os.environ.get("AWS_LAMBDA_FUNCTION_NAME") and not info.tls:
            raise ConfigError(f"{env_name} connection string has tls=false: TLS is required in AWS")
        connection = connect(info, password, ca_bundle=self.config.ca_bundle, env_name=env_name)
        self._connections.append(connection)
        return connection

    def _connect_as_secret(self, info: ConnectionInfo, secrets: Any, env_name: str,
                           ) -> Tuple[Any, ConnectionInfo, str]:
        """Connect as the user the secret names (username and password both from it).

        A rotation can land between reading the secret and connecting: on access denied the
        secret is read again, and while a rotation is between setting the new password and
        promoting it, the pending version is tried as well. One retry each, then the error.
        Returns the connection, `info` with the secret's user, and the password that worked.
        """
        credentials = aws.read_credentials(secrets, info.secret_arn)
        as_user = replace(info, user=credentials.username)
        try:
            return self._connect(as_user, credentials.password, env_name), as_user, credentials.password
        except DatabaseUnreachable as error:
            if error.code != ACCESS_DENIED:
                raise
            denied = error
        for stage in ("AWSCURRENT", "AWSPENDING"):
            try:
                retry = aws.read_credentials(secrets, info.secret_arn, stage)
            except aws.AwsConfigError:
                continue  # no pending version: no rotation in flight
            if retry == credentials:
                continue
            as_user = replace(info, user=retry.username)
            return self._connect(as_user, retry.password, env_name), as_user, retry.password
        raise denied

    def target_connection(self) -> Any:
        """This env's writer (its own account's parameter and secret)."""
        return self.target_connections(1)[0]

    def target_connections(self, count: int) -> List[Any]:
        """`count` sessions of this env's writer; the parameter and secret are read once."""
        info = aws.read_connection_info(aws.client("ssm", self.session), self.config.connection_parameter)
        first, self.target_info, password = self._connect_as_secret(
            info, aws.client("secretsmanager", self.session), self.config.env)
        return [first] + [self._connect(self.target_info, password, self.config.env) for _ in range(count - 1)]

    def upstream_session(self) -> Any:
        if self._upstream_session is None:
            self.config.require("upstream_env")
            self._upstream_session = aws.assume_role_session(
                self.config.upstream_reader_role_arn or "", self.config.upstream_external_id or "",
                f"envsync-{self.config.env}-from-{self.config.upstream_env}",
            )
        return self._upstream_session

    def upstream_connection(self) -> Any:
        """The upstream's read-only user, read with the upstream's source-reader role."""
        session = self.upstream_session()
        info = aws.read_connection_info(aws.client("ssm", session), self.config.upstream_connection_parameter or "")
        connection, self.upstream_info, _ = self._connect_as_secret(
            info, aws.client("secretsmanager", session), self.config.upstream_env or "upstream")
        return connection

    def script_source(self) -> Any:
        """dev: its bucket's scripts; downstream: the upstream's successful history, each row
        verified with the source env's public key."""
        if self.config.upstream_env:
            return UpstreamHistorySource(self.upstream_connection(), self.config.upstream_env,
                                         origin_key=self.config.origin_key)
        return aws.S3ScriptSource(aws.client("s3", self.session), self.config.migration_bucket or "",
                                  env_name=self.config.env)

    def signer(self) -> Optional[Signer]:
        """The source env signs what it applies; downstream envs copy the proof they received."""
        if self.config.upstream_env or not self.config.signing_key_arn:
            return None
        return Signer(aws.client("kms", self.session), self.config.signing_key_arn)

    def sns(self) -> Any:
        return aws.client("sns", self.session)

    def close(self) -> None:
        for connection in self._connections:
            try:
                connection.close()
            except Exception:  # noqa: S110 - closing is best effort; the work is already done
                pass
        self._connections = []
