"""The data-plane values (aurora, peering, sync) of every env, checked before anything renders.

Each value comes from config/<env>/config.yaml or, when the env does not set it, from the
shared config/config.yaml; errors name the file the value came from and the value itself.
The templates hold the same limits (AllowedValues, MaxValue) as a second line of defence; the lag
cap reaches them from MAX_LAG_THRESHOLD_SECONDS (the stack files' `envsync_limits`), not as a copy.
"""

from __future__ import annotations

import re
from datetime import date
from typing import Any, List, Mapping, Optional, Tuple

from envsync_sceptre.config import lifecycle
from envsync_sceptre.config.configfile import EnvConfig
from envsync_sceptre.config.refdata import envs_key_problems, pulled_config
from envsync_sceptre.config.runtime import UnknownRuntime, describe

# The instance classes the aurora template allows: db.r5.large and up (the seed's minimum),
# and the Graviton/Intel successors of the same size and up that Aurora MySQL 2 supports.
ALLOWED_INSTANCE_CLASSES = (
    "db.r5.large", "db.r5.xlarge", "db.r5.2xlarge", "db.r5.4xlarge",
    "db.r5.8xlarge", "db.r5.12xlarge", "db.r5.16xlarge", "db.r5.24xlarge",
    "db.r6g.large", "db.r6g.xlarge", "db.r6g.2xlarge", "db.r6g.4xlarge",
    "db.r6g.8xlarge", "db.r6g.12xlarge", "db.r6g.16xlarge",
)
BACKUP_RETENTION_DAYS = 7
MAX_LAG_THRESHOLD_SECONDS = 60  # the requirement: alarm when replication lag exceeds 60 s
RATE = re.compile(r"^rate\((\d+) (minute|minutes|hour|hours|day|days)\)$")
UNIT_SECONDS = {"minute": 60, "hour": 3600, "day": 86400}
# CloudWatch evaluates an alarm over at most one day (Period x EvaluationPeriods <= 86400 s).
MAX_ALARM_WINDOW_SECONDS = 86400
SHARED_FILE = "config/config.yaml"
APPROVER_PRINCIPAL = re.compile(r"^arn:aws[a-z-]*:iam::\d{12}:(role|user)/.+$")


class ScheduleError(ValueError):
    """A sync_schedule from which the values that follow it cannot be derived."""


def schedule_interval_seconds(schedule: str) -> int:
    """Seconds between two runs of an EventBridge `rate(N unit)` schedule. A `cron(...)` schedule
    has no fixed interval, so nothing that follows the schedule can be derived from it."""
    match = RATE.match(str(schedule))  # as EventBridge takes it: no surrounding blanks
    if not match:
        raise ScheduleError(f"sync_schedule '{schedule}': only rate(N minutes|hours|days) has a fixed interval "
                            "(the lag alarm's period and the cost estimate follow it)")
    seconds = int(match.group(1)) * UNIT_SECONDS[match.group(2).rstrip("s")]
    if seconds <= 0:
        raise ScheduleError(f"sync_schedule '{schedule}': the interval must be positive")
    return seconds


def lag_alarm_period_seconds(schedule: str) -> int:
    """The replication-lag alarm's period for a schedule: one run puts one ReplicationLagSeconds
    datapoint, and missing data counts as lag, so each period must hold a run. A period shorter
    than the interval is in ALARM between runs (900 s on an hourly schedule: 45 minutes an hour)."""
    seconds = schedule_interval_seconds(schedule)
    if seconds > MAX_ALARM_WINDOW_SECONDS:
        raise ScheduleError(f"sync_schedule '{schedule}': runs more than a day apart cannot be alarmed on "
                            f"(CloudWatch evaluates at most {MAX_ALARM_WINDOW_SECONDS} s); run at least daily")
    return seconds


def effective_value(key: str, label: str, raw: Mapping[str, Any], shared: Mapping[str, Any]) -> Tuple[Any, str]:
    """The effective value of `key` for one env and the file it came from."""
    if key in raw:
        return raw[key], label
    return shared.get(key), SHARED_FILE


def value_problems(label: str, raw: Mapping[str, Any], shared: Mapping[str, Any]) -> List[str]:
    """Per-env values that cannot be deployed (instance class, retention, lag, runtime...)."""
    problems: List[str] = []
    instance_class, origin = effective_value("db_instance_class", label, raw, shared)
    if instance_class not in ALLOWED_INSTANCE_CLASSES:
        problems.append(
            f"{origin}: db_instance_class '{instance_class}' is not allowed: the minimum is "
            f"db.r5.large (allowed: {', '.join(ALLOWED_INSTANCE_CLASSES)})"
        )
    retention, origin = effective_value("backup_retention_days", label, raw, shared)
    if retention != BACKUP_RETENTION_DAYS or isinstance(retention, bool):
        problems.append(
            f"{origin}: backup_retention_days '{retention}' must be {BACKUP_RETENTION_DAYS} "
            "(automated backups are kept 7 days on every cluster)"
        )
    threshold, origin = effective_value("replication_lag_threshold_seconds", label, raw, shared)
    if isinstance(threshold, bool) or not isinstance(threshold, (int, float)) or not (
        0 < threshold <= MAX_LAG_THRESHOLD_SECONDS
    ):
        problems.append(
            f"{origin}: replication_lag_threshold_seconds '{threshold}' must be a number "
            f"from 1 to {MAX_LAG_THRESHOLD_SECONDS} (alarm when lag exceeds {MAX_LAG_THRESHOLD_SECONDS} s)"
        )
    runtime, origin = effective_value("lambda_runtime", label, raw, shared)
    try:
        describe(str(runtime))
    except UnknownRuntime as error:
        problems.append(f"{origin}: {error}")
    version, origin = effective_value("db_engine_version", label, raw, shared)
    if lifecycle.engine_major(str(version)) is None:
        problems.append(f"{origin}: db_engine_version '{version}' is not an Aurora MySQL 2 (5.7.mysql_aurora.2.x.y) "
                        "or 3 (8.0.mysql_aurora.3.x.y) version")
    schedule, origin = effective_value("sync_schedule", label, raw, shared)
    try:  # the one schedule rule: a rate() the lag alarm's period can follow
        lag_alarm_period_seconds(str(schedule))
    except ScheduleError as error:
        problems.append(f"{origin}: {error}")
    problems += refdata_problems(label, raw, shared)
    problems += approval_problems(label, raw, shared)
    return problems


def approval_problems(label: str, raw: Mapping[str, Any], shared: Mapping[str, Any]) -> List[str]:
    """The approval's mode (the engine's own list), timeout and approver principal."""
    from envsync.approval import MODES

    problems: List[str] = []
    mode, origin = effective_value("approval", label, raw, shared)
    if mode not in MODES:
        problems.append(f"{origin}: approval '{mode}' must be one of {', '.join(MODES)}")
    if raw.get("is_prod") and mode == "none":
        problems.append(f"{origin}: approval 'none' in prod: promotions into prod need a person "
                        "(required or destructive-only)")
    timeout, origin = effective_value("approval_timeout_seconds", label, raw, shared)
    if isinstance(timeout, bool) or not isinstance(timeout, int) or not 60 <= timeout <= 31536000:
        problems.append(f"{origin}: approval_timeout_seconds '{timeout}' must be whole seconds from 60 "
                        "to 31536000 (a year, the longest a run may wait)")
    principal, origin = effective_value("approver_trusted_principal", label, raw, shared)
    if not APPROVER_PRINCIPAL.match(str(principal)):
        problems.append(f"{origin}: approver_trusted_principal '{principal}' is not an IAM role or user ARN")
    deployer, _ = effective_value("deployer_trusted_principal", label, raw, shared)
    if principal == deployer:
        problems.append(f"{origin}: approver_trusted_principal is the deployer's principal (CI): whoever "
                        "deploys would approve its own changes")
    return problems


def refdata_problems(label: str, raw: Mapping[str, Any], shared: Mapping[str, Any]) -> List[str]:
    """The reference-data allow-list, checked by the engine's own parser (one definition of valid)."""
    from envsync.refdata import RefdataConfig, RefdataConfigError

    tables, origin = effective_value("refdata_tables", label, raw, shared)
    if tables is None:
        return []
    try:
        RefdataConfig.from_dict(pulled_config(str(raw.get("env")), raw, shared))
    except RefdataConfigError as error:
        if error.key == "max_concurrency":  # the Map's width: its own key and file
            _, concurrency_origin = effective_value("refdata_max_concurrency", label, raw, shared)
            return [f"{concurrency_origin}: refdata_{error}"]
        return [f"{origin}: refdata_tables: {error}"]
    return []


def lifecycle_notices(
    raw_by_file: Mapping[str, Mapping[str, Any]], shared: Mapping[str, Any], today: Optional[date] = None,
) -> List[Tuple[str, lifecycle.Notice]]:
    """(env, notice) for every env whose runtime or engine is within 90 days of a support date
    (a warning) or past the date AWS refuses to create it (an error), from envsync_sceptre.config.lifecycle."""
    today = today or date.today()
    found: List[Tuple[str, lifecycle.Notice]] = []
    for label, raw in sorted(raw_by_file.items()):
        env = str(raw.get("env") or label)
        runtime, origin = effective_value("lambda_runtime", label, raw, shared)
        version, engine_origin = effective_value("db_engine_version", label, raw, shared)
        found += [(env, notice) for notice in lifecycle.runtime_notices(str(runtime), origin, today)]
        found += [(env, notice) for notice in lifecycle.engine_notices(str(version), engine_origin, today)]
    return found


def stack_value_problems(
    envs: Mapping[str, EnvConfig],
    raw_by_file: Mapping[str, Mapping[str, Any]],
    shared: Mapping[str, Any],
    today: Optional[date] = None,
) -> List[str]:
    problems: List[str] = []
    for label, raw in raw_by_file.items():
        problems += value_problems(label, raw, shared)
        origin = label if "refdata_tables" in raw else SHARED_FILE
        problems += envs_key_problems(label, raw, shared, origin, sorted(envs))
    problems += [f"{env}: {notice.text}" for env, notice in lifecycle_notices(raw_by_file, shared, today)
                 if notice.level == "error"]
    # The same shared value is reported once, not once per env.
    return list(dict.fromkeys(problems))
