"""The redaction guard and the EMF shape the alarms depend on."""

from __future__ import annotations

import io
import json
import logging

import pytest

from envsync import observability


def test_registered_secrets_and_secret_keys_never_reach_a_log_line() -> None:
    buffer = io.StringIO()
    handler = logging.StreamHandler(buffer)
    handler.setFormatter(observability.logger.registered_formatter)
    observability.logger.addHandler(handler)
    try:
        observability.register_secret("S3cr3t-value-42")
        observability.log_action("connect", password="plain", nested={"api_token": "t0k3n", "ok": 1},
                                 secret_arn="arn:aws:secretsmanager:us-east-1:1:secret:x",
                                 message_text="login with S3cr3t-value-42 failed")
        try:
            raise RuntimeError("driver said: password S3cr3t-value-42 rejected")
        except RuntimeError:
            observability.logger.exception("boom")
    finally:
        observability.logger.removeHandler(handler)
    text = buffer.getvalue()
    assert "S3cr3t-value-42" not in text and "plain" not in text and "t0k3n" not in text
    first = json.loads(text.splitlines()[0])
    assert first["password"] == "***" and first["nested"] == {"api_token": "***", "ok": 1}
    assert first["secret_arn"].startswith("arn:aws:secretsmanager")  # ARNs are not secrets


def test_emf_namespace_and_env_dimension_only(capsys: pytest.CaptureFixture,
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("POWERTOOLS_SERVICE_NAME", "envsync")
    observability.emit_metrics("prod", ReplicationLagSeconds=12.5)
    observability.emit_metrics("prod", SchemaDriftCount=3)
    lines = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert [line["_aws"]["CloudWatchMetrics"][0]["Dimensions"] for line in lines] == [[["Env"]], [["Env"]]]
    assert lines[0]["_aws"]["CloudWatchMetrics"][0]["Namespace"] == "envsync"
    assert lines[0]["ReplicationLagSeconds"] == [12.5] and lines[1]["SchemaDriftCount"] == [3.0]
    assert lines[0]["_aws"]["CloudWatchMetrics"][0]["Metrics"] == [
        {"Name": "ReplicationLagSeconds", "Unit": "Seconds"}]
    with pytest.raises(ValueError, match="unknown metrics"):
        observability.emit_metrics("prod", Typo=1)
