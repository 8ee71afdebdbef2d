"""Per-kind reader for triggers (invisible without the TRIGGER privilege)."""

from __future__ import annotations

from typing import Tuple

from envsync.drift.introspect.model import Trigger
from envsync.drift.introspect.normalise import normalise_body
from envsync.drift.introspect.reading import Reading

_TRIGGERS_SQL = """
SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER,
       ACTION_STATEMENT
FROM information_schema.TRIGGERS
WHERE TRIGGER_SCHEMA = %s
"""


def read_triggers(reading: Reading) -> Tuple[Trigger, ...]:
    return tuple(sorted(
        (
            Trigger(
                name=name, table=table, timing=str(timing).upper(), event=str(event).upper(),
                order=int(order or 1), body=normalise_body(body, reading.schema),
            )
            for name, table, timing, event, order, body in reading.rows(_TRIGGERS_SQL)
        ),
        key=lambda trigger: trigger.name,
    ))
