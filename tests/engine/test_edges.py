"""Small contracts of the edges: URLs, handler configuration, the regional STS endpoint."""

from __future__ import annotations

import pytest

from envsync import aws
from envsync.lambdas.context import ConfigError, HandlerConfig
from envsync.migrations.scripts import ScriptError, load_script
from envsync.mysql.connection import ConnectionConfigError, parse_url, resolve_ca_bundle


def test_parse_url() -> None:
    target = parse_url("mysql://sync%40w:p%3Ass@db.example:3307/app?tls=true&ca=/etc/ca.pem")
    assert (target.info.user, target.password, target.info.host, target.info.port) == (
        "sync@w", "p:ss", "db.example", 3307)
    assert (target.info.database, target.info.tls, target.ca_bundle) == ("app", True, "/etc/ca.pem")
    assert parse_url("mysql://u@h/app").info.tls is False
    for bad, message in (("postgres://u@h/app", "not a mysql:// URL"), ("mysql://h/app", "needs user"),
                         ("mysql://u@h/app?ssl=1", "unknown options")):
        with pytest.raises(ConnectionConfigError, match=message):
            parse_url(bad)
    with pytest.raises(ConnectionConfigError, match=r"CA bundle /nope\.pem does not exist"):
        resolve_ca_bundle("/nope.pem")


DEV = {"ENVSYNC_ENV": "dev", "ENVSYNC_CONNECTION_PARAMETER": "/envsync/dev/db/writer/connection",
       "ENVSYNC_MIGRATION_BUCKET": "bucket",
       "ENVSYNC_SIGNING_KEY_ARN": "arn:aws:kms:us-east-1:111111111111:key/1234abcd-12ab-34cd-56ef-1234567890ab"}


def test_handler_config_lists_every_problem() -> None:
    assert HandlerConfig.from_environ(DEV).upstream_env is None
    with pytest.raises(ConfigError) as error:
        HandlerConfig.from_environ({"ENVSYNC_ENV": "Prod!", "ENVSYNC_REFDATA_CONFIG": "[1]"})
    text = str(error.value)
    for expected in ("ENVSYNC_ENV='Prod!'", "ENVSYNC_CONNECTION_PARAMETER is not set",
                     "ENVSYNC_MIGRATION_BUCKET is not set", "ENVSYNC_SIGNING_KEY_ARN is not set",
                     "ENVSYNC_REFDATA_CONFIG is not a JSON object"):
        assert expected in text
    with pytest.raises(ConfigError, match="ENVSYNC_UPSTREAM_READER_ROLE_ARN='role' is not an ARN"):
        HandlerConfig.from_environ({**DEV, "ENVSYNC_ENV": "staging", "ENVSYNC_UPSTREAM_ENV": "dev",
                                    "ENVSYNC_UPSTREAM_READER_ROLE_ARN": "role",
                                    "ENVSYNC_UPSTREAM_EXTERNAL_ID": "x",
                                    "ENVSYNC_UPSTREAM_CONNECTION_PARAMETER": "/p"})
    # A downstream env verifies promoted scripts: without dev's public key it does not start.
    staging = {**DEV, "ENVSYNC_ENV": "staging", "ENVSYNC_UPSTREAM_ENV": "dev",
               "ENVSYNC_UPSTREAM_READER_ROLE_ARN": "arn:aws:iam::1:role/r", "ENVSYNC_UPSTREAM_EXTERNAL_ID": "x",
               "ENVSYNC_UPSTREAM_CONNECTION_PARAMETER": "/p"}
    with pytest.raises(ConfigError, match="ENVSYNC_ORIGIN_KEY_ARN and ENVSYNC_ORIGIN_PUBLIC_KEY must be set"):
        HandlerConfig.from_environ(staging)
    with pytest.raises(ConfigError, match="ENVSYNC_ORIGIN_PUBLIC_KEY: the origin public key of arn:aws:kms:k "
                                          "is not a DER public key"):
        HandlerConfig.from_environ({**staging, "ENVSYNC_ORIGIN_KEY_ARN": "arn:aws:kms:k",
                                    "ENVSYNC_ORIGIN_PUBLIC_KEY": "AAAA"})


def test_sts_uses_the_regional_endpoint(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_STS"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_REGION", "us-east-1")
    assert aws.client("sts").meta.endpoint_url == "https://sts.us-east-1.amazonaws.com"
    monkeypatch.setenv("AWS_ENDPOINT_URL", "http://127.0.0.1:1")
    assert aws.client("sts").meta.endpoint_url == "http://127.0.0.1:1"


def test_use_statement_is_refused() -> None:
    with pytest.raises(ScriptError, match=r"V1__x.sql: statement 2 \(line 2\): USE is not allowed"):
        load_script("V1__x.sql", b"SELECT 1;\nuse other;\n")
    assert load_script("V1__x.sql", b"SELECT user FROM t;").statements
