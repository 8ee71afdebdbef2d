"""Progress of a long `envsync` run, on one stderr line rewritten in place.

Shown only when stderr is a terminal and the output is not `--json`: piped, redirected and
machine-readable runs print exactly what they did before. Migrations report each statement
that took effect (migrate.apply's `progress`); reference data reports each table the engine
finished, read from its `refdata_table` log events (counts only, never row values).
"""

from __future__ import annotations

import contextlib
import json
import logging
import sys
from typing import Any, Dict, Iterator, Optional, TextIO

CLEAR_LINE = "\r\x1b[K"
WIDTH = 120


class Progress:
    def __init__(self, json_output: bool = False, stream: Optional[TextIO] = None):
        self.stream = stream or sys.stderr
        self.enabled = not json_output and self.stream.isatty()
        self.shown = False
        self.totals: Dict[str, int] = {"tables": 0, "chunks": 0, "rows": 0}

    def __enter__(self) -> Progress:
        return self

    def __exit__(self, *exc_info: Any) -> None:
        self.done()

    def show(self, text: str) -> None:
        if self.enabled:
            self.stream.write(CLEAR_LINE + text[:WIDTH])
            self.stream.flush()
            self.shown = True

    def statement(self, script: str, number: int, total: int) -> None:
        """migrate.apply's progress callback: statement `number` of `script` took effect."""
        self.show(f"{script}: statement {number}/{total} applied")

    def refdata_table(self, event: Dict[str, Any]) -> None:
        self.totals["tables"] += 1
        self.totals["chunks"] += int(event.get("chunks_compared") or 0)
        self.totals["rows"] += sum(int(event.get(key) or 0) for key in ("inserted", "updated", "deleted"))
        verb = "rows changed" if event.get("mode") == "apply" else "rows to change"
        self.show(f"refdata {event.get('mode')}: {self.totals['tables']} tables, {self.totals['chunks']} chunks "
                  f"compared, {self.totals['rows']} {verb} (last: {event.get('table')} {event.get('state')})")

    @contextlib.contextmanager
    def refdata_events(self) -> Iterator[None]:
        """Follow the refdata engine's per-table log events while the block runs."""
        if not self.enabled:
            yield
            return
        logger = logging.getLogger("envsync.refdata")
        handler = _EventHandler(self)
        level = logger.level
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        try:
            yield
        finally:
            logger.removeHandler(handler)
            logger.setLevel(level)

    def done(self) -> None:
        """Clear the progress line, so the result printed next starts on a clean line."""
        if self.shown:
            self.stream.write(CLEAR_LINE)
            self.stream.flush()
            self.shown = False


class _EventHandler(logging.Handler):
    def __init__(self, progress: Progress):
        super().__init__(logging.INFO)
        self.progress = progress

    def emit(self, record: logging.LogRecord) -> None:
        try:
            event = json.loads(record.getMessage())
        except ValueError:
            return
        if isinstance(event, dict) and event.get("event") == "refdata_table":
            self.progress.refdata_table(event)
