"""The Lambda runtime is Python 3.9: the engine must not use anything newer."""

from __future__ import annotations

import subprocess
import sys

from tests.conftest import PROJECT_ROOT

BIN = PROJECT_ROOT / ".venv" / "bin"


def test_vermin_finds_nothing_newer_than_3_9() -> None:
    result = subprocess.run(
        [str(BIN / "vermin"), "--no-tips", "--violations", "--eval-annotations", "-t=3.9-",
         str(PROJECT_ROOT / "lambda_code")], capture_output=True, text=True, check=False)
    assert result.returncode == 0, result.stdout + result.stderr


def test_ruff_targets_py39_and_passes_on_the_engine() -> None:
    engine = PROJECT_ROOT / "lambda_code" / "envsync"
    mine = ["scripts", "history", "lock", "migrate", "db", "aws", "context", "observability",
            "handlers", "cli", "bootstrap_users"]
    result = subprocess.run(
        [str(BIN / "ruff"), "check", "--target-version", "py39",
         *[str(engine / f"{name}.py") for name in mine]],
        capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
    assert result.returncode == 0, result.stdout + result.stderr
    assert sys.version_info >= (3, 9)
