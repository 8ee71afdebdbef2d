"""Process helpers shared by the stand-ins (they stop exactly what they started, by pid)."""

from __future__ import annotations

import os
import signal
import socket
import time
from pathlib import Path


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


# What a server's log says when its port is still held (mariadbd, werkzeug under moto).
BIND_FAILURE_MARKERS = ("Address already in use", "Errno 98", "Do you already have another server running")


def port_is_free(host: str, port: int) -> bool:
    """True when a server could listen on host:port now. The probe binds as servers do, with
    SO_REUSEADDR: connections of a stopped server left in TIME_WAIT do not hold the port, a
    listener that is still there (a server still exiting, another process) does."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            probe.bind((host, port))
        except OSError:
            return False
    return True


def wait_until_free(host: str, port: int, timeout: float) -> bool:
    """Wait up to `timeout` seconds for host:port to be free (a just-stopped server's listener
    closes when its last process exits); True when it is."""
    deadline = time.monotonic() + timeout
    while not port_is_free(host, port):
        if time.monotonic() >= deadline:
            return False
        time.sleep(0.1)
    return True


def logged_since(log_path: Path, offset: int) -> str:
    """What a server wrote to its log after `offset` bytes ("" when there is no log)."""
    try:
        with open(log_path, "rb") as log:
            log.seek(offset)
            return log.read().decode(errors="replace")
    except OSError:
        return ""


def log_size(log_path: Path) -> int:
    return log_path.stat().st_size if log_path.exists() else 0


def failed_to_bind(log_tail: str) -> bool:
    """The server's log says it exited because its port was held."""
    return any(marker in log_tail for marker in BIND_FAILURE_MARKERS)
