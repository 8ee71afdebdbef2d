"""The Lambda runtime is Python 3.9: the engine must not use anything newer.

The check is vermin over lambda_code; the second test shows the same check fails on code that
needs 3.10, so its passing on the engine says something.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

VERMIN = [str(PROJECT_ROOT / ".venv" / "bin" / "vermin"), "--no-tips", "--violations", "--eval-annotations",
          "-t=3.9-"]


def run_vermin(path: Path) -> subprocess.CompletedProcess:
    return subprocess.run([*VERMIN, str(path)], capture_output=True, text=True, check=False)


def test_vermin_finds_nothing_newer_than_3_9_in_the_engine() -> None:
    result = run_vermin(PROJECT_ROOT / "lambda_code")
    assert result.returncode == 0, result.stdout + result.stderr


@pytest.mark.parametrize(("code", "reason"), [
    ("def kind(x):\n    match x:\n        case 1:\n            return 'one'\n", "pattern matching requires !2, 3.10"),
    ("from itertools import pairwise\n", "'itertools.pairwise' member requires !2, 3.10"),
    ("def total(a, b):\n    return sum(x * y for x, y in zip(a, b, strict=True))\n", "requires !2, 3.10"),
])
def test_the_same_check_refuses_code_that_needs_3_10(tmp_path: Path, code: str, reason: str) -> None:
    module = tmp_path / "newer.py"
    module.write_text(code)
    result = run_vermin(tmp_path)
    assert result.returncode != 0 and reason in result.stdout, result.stdout + result.stderr
