"""`!envsync_lag_alarm_period <sync_schedule>`: the replication-lag alarm's period, derived from the
env's schedule by the config model's one rule (`stackvalues.lag_alarm_period_seconds`), so the
schedule is the only value a person sets."""

from __future__ import annotations

from sceptre.exceptions import SceptreException
from sceptre.resolvers import Resolver

from envsync_sceptre.config.stackvalues import ScheduleError, lag_alarm_period_seconds
from envsync_sceptre.resolvers.arguments import require_text


class LagAlarmPeriod(Resolver):
    """Argument: the env's sync_schedule (`rate(15 minutes)`)."""

    def setup(self) -> None:
        require_text(self, "!envsync_lag_alarm_period", "the env's sync_schedule")

    def resolve(self) -> str:
        try:
            return str(lag_alarm_period_seconds(str(self.argument)))
        except ScheduleError as error:
            raise SceptreException(str(error)) from error
