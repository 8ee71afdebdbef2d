"""Per-kind reader for views."""

from __future__ import annotations

from typing import Tuple

from envsync.drift.introspect.model import View
from envsync.drift.introspect.normalise import normalise_body
from envsync.drift.introspect.reading import Reading

_VIEWS_SQL = """
SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE, {algorithm}
FROM information_schema.VIEWS
WHERE TABLE_SCHEMA = %s
"""


def read_views(reading: Reading) -> Tuple[View, ...]:
    shows_algorithm = reading.flavour.view_algorithm
    views = tuple(sorted(
        (
            View(
                name=name,
                # Empty: the user may not see it (needs SELECT on the view), never a real view's text.
                definition=normalise_body(definition, reading.schema) if definition else None,
                check_option=str(check_option or "NONE").upper(),
                security_type=str(security_type or "").upper(),
                algorithm=str(algorithm).upper() if algorithm else None,
            )
            for name, definition, check_option, security_type, algorithm in reading.rows(
                _VIEWS_SQL.format(algorithm="ALGORITHM" if shows_algorithm else "NULL"))
        ),
        key=lambda view: view.name,
    ))
    if not shows_algorithm:
        for view in views:
            reading.not_shown("view", view.name, f"ALGORITHM (not shown by {reading.flavour})")
    for view in views:
        if view.definition is None:
            reading.not_shown("view", view.name, "definition (not shown to this user: it needs SELECT on the view)")
    return views
