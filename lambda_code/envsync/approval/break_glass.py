"""Break-glass applies: a person applies past the approval gate, and everyone can see it.

`envsync apply` and `envsync refdata apply` against an env whose config asks for a person's
approval (`approval: required | destructive-only`) refuse what would need one, unless given
`--break-glass --reason "..."`. Such an apply
- names the person and the reason in each history row it writes (`applied_by`, approval.py);
- leaves a row in `envsync_break_glass` (this module): who, when, why in full, what (migrations
  or reference data), the plan's digest and the outcome. A table of its own, created on first
  use, so older envs and the history table's readers are unchanged;
- publishes to the env's topic and counts 1 in the `BreakGlassApplies` metric, whose alarm
  (sync stack) tells the topic too. When the CLI cannot reach AWS it says so: the row remains.
"""

from __future__ import annotations

import datetime
import getpass
import socket
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Sequence

from envsync import approval

TABLE = "envsync_break_glass"
METRIC = "BreakGlassApplies"
NAMESPACE = "envsync"
CREATE_TABLE = f"""
CREATE TABLE IF NOT EXISTS `{TABLE}` (
  id BIGINT NOT NULL AUTO_INCREMENT,
  applied_at DATETIME(6) NOT NULL,
  applied_by VARCHAR(255) NOT NULL,
  env VARCHAR(64) NOT NULL,
  what VARCHAR(32) NOT NULL,
  reason TEXT NOT NULL,
  plan_digest CHAR(64) NULL,
  outcome VARCHAR(255) NOT NULL,
  PRIMARY KEY (id)
) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4
"""


@dataclass(frozen=True)
class BreakGlass:
    """One person's decision to apply without an approval, and why."""

    env: str
    reason: str
    who: str = field(default_factory=lambda: f"{getpass.getuser()}@{socket.gethostname()}")
    at: datetime.datetime = field(default_factory=lambda: datetime.datetime.now(datetime.timezone.utc))


def approval_for(pending: Sequence[Any], glass: BreakGlass) -> Dict[str, Any]:
    """What migrate.apply checks, as for a person's approval: exactly the pending scripts (a
    plan that changes before the apply is refused), approved `(BREAK-GLASS: reason)`."""
    scripts = approval.approved_scripts(pending)
    return {"digest": approval.plan_digest(scripts), "scripts": scripts, "break_glass": glass.reason,
            "approved_by": f"{glass.who} (BREAK-GLASS: {glass.reason})",
            "approved_at": glass.at.isoformat(timespec="seconds")}


def record(connection: Any, glass: BreakGlass, what: str, outcome: str, digest: Optional[str] = None) -> None:
    """The audit row (committed on its own)."""
    with connection.cursor() as cursor:
        cursor.execute(CREATE_TABLE)
        cursor.execute(
            f"INSERT INTO `{TABLE}` (applied_at, applied_by, env, what, reason, plan_digest, outcome) "
            "VALUES (%s, %s, %s, %s, %s, %s, %s)",
            (glass.at.replace(tzinfo=None), glass.who[:255], glass.env, what, glass.reason, digest, outcome[:255]))
    connection.commit()


def read(connection: Any) -> List[Dict[str, Any]]:
    """Every audit row, oldest first ([] where no break-glass apply ever happened)."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COUNT(*) FROM information_schema.TABLES WHERE TABLE_SCHEMA = DATABASE() "
                       "AND TABLE_NAME = %s", (TABLE,))
        if not cursor.fetchone()[0]:
            return []
        cursor.execute(f"SELECT applied_at, applied_by, env, what, reason, plan_digest, outcome FROM `{TABLE}` "
                       "ORDER BY id")
        names = ("applied_at", "applied_by", "env", "what", "reason", "plan_digest", "outcome")
        return [dict(zip(names, row)) for row in cursor.fetchall()]


def message(glass: BreakGlass, what: str, outcome: str) -> str:
    return (f"envsync: BREAK-GLASS {what} apply in {glass.env} by {glass.who} at "
            f"{glass.at.isoformat(timespec='seconds')}, without an approval. Reason: {glass.reason}\n"
            f"Outcome: {outcome}\nThe env's history and its {TABLE} table record it.")


def notify(session: Any, endpoint_url: Optional[str], account_id: str, glass: BreakGlass, what: str,
           outcome: str) -> List[str]:
    """Publish to the env's topic (envsync-<env>-sync) and count the metric; what failed, if anything."""
    region = session.region_name or "us-east-1"
    problems = []
    topic = f"arn:aws:sns:{region}:{account_id}:envsync-{glass.env}-sync"
    try:
        session.client("sns", endpoint_url=endpoint_url).publish(
            TopicArn=topic, Subject=f"envsync: BREAK-GLASS apply in {glass.env}"[:100],
            Message=message(glass, what, outcome))
    except Exception as error:  # the audit row is written; say what could not be sent
        problems.append(f"could not publish to {topic} ({type(error).__name__}: {error})")
    try:
        session.client("cloudwatch", endpoint_url=endpoint_url).put_metric_data(Namespace=NAMESPACE, MetricData=[
            {"MetricName": METRIC, "Dimensions": [{"Name": "Env", "Value": glass.env}], "Value": 1.0,
             "Unit": "Count"}])
    except Exception as error:
        problems.append(f"could not count {NAMESPACE}/{METRIC} ({type(error).__name__}: {error})")
    return problems
