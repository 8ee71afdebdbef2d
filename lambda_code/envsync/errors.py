"""The engine's error base: every failure a user can act on is an `EnvsyncError`.

It carries what the CLI needs to report it without knowing the class: the one-line message an
operator reads (`message`) and the process exit code (`exit_code`). Each concern keeps its own
subclass (`ScriptError`, `MigrationError`, `RefdataError`, ...) so callers can still catch the
narrow kind; those that were `ValueError`s or `RuntimeError`s stay so as well.
"""

from __future__ import annotations

EXIT_ERROR = 2  # the CLI's exit code for a failure (1 means "differences found")


class EnvsyncError(Exception):
    """A failure with a message fit for the user: what, where, and what to do."""

    exit_code: int = EXIT_ERROR
    # The message holds only names, numbers, configuration and client-library words, never a
    # server message or a row value: notifications may carry it (lambdas/handlers.py).
    quotes_no_data: bool = False

    @property
    def message(self) -> str:
        return str(self)
