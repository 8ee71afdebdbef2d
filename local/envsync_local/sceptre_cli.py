"""Sceptre's own CLI, polling the stand-in without Sceptre's 4-second pause.

Sceptre waits for a stack operation by reading the stack's status and new events, then
sleeping 4 s before the next read (`sceptre/plan/actions.py`, `_wait_for_completion`; 2 s
between change-set reads). moto completes every create, update, delete and rollback before
answering the request, so the first read already finds the end state and each operation
costs one sleep for nothing: about 4 s per stack per dependency level, most of a local launch.
Here the pause is POLL_SECONDS; every read Sceptre makes is still made, in the same order,
so what it sees and prints is unchanged. Run as `python -m envsync_local.sceptre_cli ARGS`.
"""

from __future__ import annotations

import sys
import time
from typing import Any

POLL_SECONDS = 0.2


class _ShortSleeps:
    """The `time` module as Sceptre's actions see it, with sleeps capped at POLL_SECONDS."""

    def __getattr__(self, name: str) -> Any:
        return getattr(time, name)

    @staticmethod
    def sleep(seconds: float) -> None:
        time.sleep(min(seconds, POLL_SECONDS))


def main() -> int:
    from sceptre.cli import cli
    from sceptre.plan import actions

    actions.time = _ShortSleeps()  # type: ignore[assignment]
    sys.argv[0] = "sceptre"
    return int(cli() or 0)


if __name__ == "__main__":
    sys.exit(main())
