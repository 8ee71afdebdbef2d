"""Process helpers shared by the stand-ins (they stop exactly what they started, by pid)."""

from __future__ import annotations

import os
import signal
import time


def is_alive(pid: int) -> bool:
    """True while pid runs; reaps it first if it is our exited child (a zombie is not alive)."""
    try:
        reaped, _ = os.waitpid(pid, os.WNOHANG)
        if reaped == pid:
            return False
    except ChildProcessError:
        pass
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def terminate(pid: int, timeout: float, group: bool = False, hard: bool = False) -> None:
    """SIGTERM (or SIGKILL if hard) pid or its process group; SIGKILL after timeout."""
    send = os.killpg if group else os.kill
    try:
        send(pid, signal.SIGKILL if hard else signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not is_alive(pid):
            return
        time.sleep(0.05)
    try:
        send(pid, signal.SIGKILL)
    except ProcessLookupError:
        return
    while is_alive(pid):
        time.sleep(0.05)
