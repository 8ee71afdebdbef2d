"""Structured JSON logs (powertools Logger) that never carry a secret, and EMF metrics.

Redaction is a guard at the formatter, the last step before a line leaves the process: every
password read from Secrets Manager is registered (`register_secret`) and replaced wherever it
appears in a log record, and values under keys that name secrets are masked, so a careless
`logger.info(..., extra=...)` cannot leak one.
"""

from __future__ import annotations

import re
from typing import Any, Dict, Set

from aws_lambda_powertools import Logger
from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.metrics.provider.cloudwatch_emf.cloudwatch import AmazonCloudWatchEMFProvider

NAMESPACE = "envsync"
MASK = "***"
_SECRETS: Set[str] = set()
SECRET_KEY = re.compile(r"(?i)(password|passwd|secret(?!_arn)|token|credential|secretaccesskey)")

METRIC_UNITS = {
    "SchemaDriftCount": MetricUnit.Count,
    "RowsChanged": MetricUnit.Count,
    "SyncFailures": MetricUnit.Count,
    "ReplicationLagSeconds": MetricUnit.Seconds,
}


def register_secret(value: str) -> None:
    """Never log this value (called for every password and credential the engine reads)."""
    if isinstance(value, str) and len(value) >= 4:
        _SECRETS.add(value)


def redact(value: Any) -> Any:
    if isinstance(value, str):
        for secret in _SECRETS:
            if secret in value:
                value = value.replace(secret, MASK)
        return value
    if isinstance(value, dict):
        return {key: (MASK if isinstance(key, str) and SECRET_KEY.search(key) and item else redact(item))
                for key, item in value.items()}
    if isinstance(value, (list, tuple)):
        return [redact(item) for item in value]
    if value is None or isinstance(value, (bool, int, float)):
        return value
    # Anything else (an exception object in a stack trace, a datetime) would be str()-ed by the
    # JSON serializer after this guard: do it here so the guard sees the text.
    return redact(str(value))


class RedactingFormatter(LambdaPowertoolsFormatter):
    def serialize(self, log: Dict[str, Any]) -> str:  # type: ignore[override]
        return super().serialize(redact(log))


logger = Logger(service="envsync", logger_formatter=RedactingFormatter())


def log_action(action: str, **fields: Any) -> None:
    """One structured line per action: `{"message": action, ...fields}`."""
    logger.info(action, extra={"action": action, **fields})


def emit_metrics(env: str, **values: float) -> None:
    """Publish metrics as EMF on stdout, namespace envsync, dimension Env only.

    The alarms match on exactly {Env}; powertools would add a `service` dimension when
    POWERTOOLS_SERVICE_NAME is set, so the provider's service is cleared here.
    """
    unknown = sorted(set(values) - set(METRIC_UNITS))
    if unknown:
        raise ValueError(f"unknown metrics {unknown}; known: {sorted(METRIC_UNITS)}")
    if not values:
        return
    provider = AmazonCloudWatchEMFProvider(namespace=NAMESPACE)
    provider.service = None
    provider.add_dimension(name="Env", value=env)
    for name, value in values.items():
        provider.add_metric(name=name, unit=METRIC_UNITS[name], value=float(value))
    provider.flush_metrics()
