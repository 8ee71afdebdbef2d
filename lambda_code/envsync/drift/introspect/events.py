"""Per-kind reader for scheduled events."""

from __future__ import annotations

from typing import Tuple

from envsync.drift.introspect.model import Event
from envsync.drift.introspect.normalise import normalise_body
from envsync.drift.introspect.reading import Reading

_EVENTS_SQL = """
SELECT EVENT_NAME, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD, STATUS, ON_COMPLETION,
       EVENT_COMMENT, EVENT_DEFINITION
FROM information_schema.EVENTS
WHERE EVENT_SCHEMA = %s
"""


def read_events(reading: Reading) -> Tuple[Event, ...]:
    events = tuple(sorted(
        (
            Event(
                name=name,
                schedule=(f"EVERY {interval_value} {interval_field}" if str(event_type).upper() == "RECURRING"
                          else f"AT {execute_at}"),
                status=str(status or "").upper(), on_completion=str(on_completion or "").upper(),
                comment=comment or "", body=normalise_body(body, reading.schema),
            )
            for (name, event_type, execute_at, interval_value, interval_field, status, on_completion,
                 comment, body) in reading.rows(_EVENTS_SQL)
        ),
        key=lambda event: event.name,
    ))
    # STARTS defaults to the moment each env created the event: different everywhere by design.
    for event in events:
        reading.not_shown("event", event.name, "STARTS/ENDS")
    return events
