"""When AWS stops supporting the runtime and the engine this project deploys: one cited table.

Lambda Python runtimes, from AWS's runtime table
(https://docs.aws.amazon.com/lambda/latest/dg/lambda-runtimes.html, "Supported runtimes" and
"Deprecated runtimes"; the Python rows also at
https://docs.aws.amazon.com/lambda/latest/dg/lambda-python.html). cfn-lint ships the same
table (cfnlint/data/AdditionalSpecs/LmbdRuntimeLifecycle.json, rule W1030), and
tests/config/test_lifecycle.py checks these rows against the pinned cfn-lint's, so a release
that moves a date fails the suite instead of going unnoticed. AWS has moved these dates before.

Aurora MySQL major versions, from the release calendar
(https://docs.aws.amazon.com/AmazonRDS/latest/AuroraMySQLReleaseNotes/AuroraMySQL.release-calendars.html):
version 2 (MySQL 5.7) left standard support on 2024-10-31 and RDS Extended Support ends
2027-02-28 (after which Aurora upgrades the major version itself); version 3 (MySQL 8.0)
standard support ends 2028-04-30, Extended Support 2029-07-31. (Same dates in
endoflife.date's amazon-aurora-mysql page, which reads that calendar: endoflife.date PR #9534.)

Stdlib only: envsync_sceptre.config.runtime (run by the Makefile) imports it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from datetime import date, timedelta
from typing import List, Optional

# A date this close (or past) is printed as a warning wherever the config is checked.
WARN_DAYS = 90


@dataclass(frozen=True)
class LambdaDates:
    deprecated: date  # no more security patches
    create_blocked: date  # CreateFunction with this runtime refused
    update_blocked: date  # UpdateFunctionCode/Configuration refused


@dataclass(frozen=True)
class EngineDates:
    family: str  # the DB cluster parameter group family of the major version
    standard_support_end: date
    extended_support_end: date  # after it no new cluster; Aurora upgrades existing ones


LAMBDA_RUNTIMES = {
    "python3.9": LambdaDates(date(2025, 12, 15), date(2027, 2, 1), date(2027, 3, 3)),
    "python3.10": LambdaDates(date(2026, 10, 31), date(2027, 2, 1), date(2027, 3, 3)),
    "python3.11": LambdaDates(date(2027, 6, 30), date(2027, 7, 31), date(2027, 8, 31)),
    "python3.12": LambdaDates(date(2028, 10, 31), date(2028, 11, 30), date(2029, 1, 10)),
    "python3.13": LambdaDates(date(2029, 6, 30), date(2029, 7, 31), date(2029, 8, 31)),
}
AURORA_MYSQL = {
    "5.7": EngineDates("aurora-mysql5.7", date(2024, 10, 31), date(2027, 2, 28)),
    "8.0": EngineDates("aurora-mysql8.0", date(2028, 4, 30), date(2029, 7, 31)),
}
# What the one-line switch proposes: the newest runtime in the table, and an Aurora MySQL 3
# release (3.10.3, MySQL 8.0.42: Aurora MySQL release notes, document history).
SUCCESSOR_RUNTIME = "python3.13"
SUCCESSOR_ENGINE = "8.0.mysql_aurora.3.10.3"
ENGINE_VERSION = re.compile(r"^(?P<major>5\.7|8\.0)\.mysql_aurora\.(2|3)\.\d+\.\d+$")


@dataclass(frozen=True)
class Notice:
    level: str  # "warning" or "error"
    text: str


def engine_major(version: str) -> Optional[str]:
    """`5.7` or `8.0` for an Aurora MySQL engine version (`8.0.mysql_aurora.3.10.3`), else None."""
    match = ENGINE_VERSION.match(str(version))
    if not match or (match.group("major") == "5.7") != (match.group(2) == "2"):
        return None
    return match.group("major")


def _when(day: date, today: date) -> str:
    days = (day - today).days
    return f"{day.isoformat()} ({f'in {days} days' if days > 0 else 'today' if days == 0 else 'passed'})"


def _dated(today: date, dates: List[tuple], block: date, what: str, switch: str) -> List[Notice]:
    """An error once `block` is reached, else a warning when any date is within WARN_DAYS."""
    listed = ", ".join(f"{label} {_when(day, today)}" for label, day in dates)
    if today >= block:
        return [Notice("error", f"{what} can no longer be created in AWS: {listed}; switch: {switch}")]
    if any(day - timedelta(days=WARN_DAYS) <= today for _label, day in dates):
        return [Notice("warning", f"{what}: {listed}; switch: {switch}")]
    return []


def runtime_notices(runtime: str, origin: str, today: date) -> List[Notice]:
    """The runtime's dates as a warning (within 90 days or past) or an error (create blocked)."""
    dates = LAMBDA_RUNTIMES.get(str(runtime))
    if dates is None:
        return []
    return _dated(today, [("deprecated", dates.deprecated), ("create blocked", dates.create_blocked),
                          ("update blocked", dates.update_blocked)], dates.create_blocked,
                  f"Lambda {runtime}", f"lambda_runtime: {SUCCESSOR_RUNTIME} in {origin}")


def engine_notices(version: str, origin: str, today: date) -> List[Notice]:
    """The engine's support dates: a warning within 90 days or past, an error once Extended
    Support has ended (no new cluster of that major version)."""
    major = engine_major(version)
    if major is None:
        return []
    dates = AURORA_MYSQL[major]
    return _dated(today, [("end of standard support", dates.standard_support_end),
                          ("end of Extended Support", dates.extended_support_end)],
                  dates.extended_support_end, f"Aurora MySQL {major} ({version})",
                  f"db_engine_version: {SUCCESSOR_ENGINE} in {origin} (README: upgrade dev, then staging, then prod)")
