"""One launched project for the whole e2e suite: every stack of every env launched with real
`sceptre launch`, then README command 1's sync cycle (bootstrap, samples, dev -> staging ->
prod, blocked promotion). The fault tests run in file order, each starting from the state the
previous one left (converged) and ending converged; the security tests come last and scan
everything the run produced."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

import pytest

from envsync_local.cli import env_handles
from envsync_local.cycle import EnvHandle, run_cycle


@dataclass
class System:
    launched: Any
    handles: List[EnvHandle]
    report: Dict[str, Any]
    printed: List[str]
    # Passwords replaced by the rotation test: still secrets, still scanned for.
    retired_passwords: List[str] = field(default_factory=list)
    # How many AWS calls the stand-in had recorded when the launch and the cycle were done.
    calls_after_cycle: int = 0

    def __getitem__(self, env: str) -> EnvHandle:
        return next(handle for handle in self.handles if handle.name == env)

    @property
    def state_dir(self) -> Path:
        return self.launched.local.root

    @property
    def endpoint_url(self) -> str:
        return self.launched.local.moto.endpoint_url


@pytest.fixture(scope="session")
def system(launched) -> System:
    handles = env_handles(launched.local)
    printed: List[str] = []
    report = run_cycle(handles, print_line=printed.append)
    calls = launched.local.calls_file.read_text().count("\n")
    return System(launched=launched, handles=handles, report=report, printed=printed, calls_after_cycle=calls)


def pytest_collection_modifyitems(session, config, items):
    """The e2e tests change the shared `launched` project (new migrations, a repaired failure,
    rotated passwords): run them after every other test that uses it, whatever the order given.
    (pytest calls this hook with every collected item, not only this folder's.)"""
    here = Path(__file__).resolve().parent
    items.sort(key=lambda item: Path(str(item.fspath)).resolve().is_relative_to(here))
