"""Fixtures of the data-plane stack tests: each env's stacks, rendered once and evaluated.

`rendered_templates` (tests/conftest.py) renders every stack of every env with Sceptre's own
renderer; `EnvStacks` (envsync_tools.proof.project) evaluates each for its env.
"""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path
from typing import Any, Dict, Optional

import pytest

from envsync_tools.proof.project import EnvStacks, fake_output  # noqa: F401 (the tests' import path)
from tests.chain import chain
from tests.conftest import PROJECT_ROOT

ENVS = chain()  # config/config.yaml envs:, upstream first
CHECKOV = PROJECT_ROOT / ".venv-checkov" / "bin" / "checkov"


@pytest.fixture(scope="session")
def env_stacks(rendered_templates: Dict[str, dict]) -> EnvStacks:
    return EnvStacks(rendered_templates, PROJECT_ROOT)


@pytest.fixture(scope="session")
def checkov_report(rendered_bodies: Dict[str, str], tmp_path_factory) -> Dict[str, Any]:
    """checkov (own venv) over every rendered template of every env, run once."""
    if not CHECKOV.exists():
        pytest.fail(f"{CHECKOV} missing: run `make venv` (builds .venv-checkov)")
    folder = tmp_path_factory.mktemp("rendered")
    for name, body in rendered_bodies.items():
        (folder / f"{name.replace('/', '__')}.yaml").write_text(body)
    result = subprocess.run(
        [str(CHECKOV), "-d", str(folder), "--framework", "cloudformation", "--output", "json",
         "--skip-download", "--compact"],
        capture_output=True, text=True, check=False, timeout=600,
        env={"PATH": "/usr/bin:/bin", "BC_SKIP_MAPPING": "TRUE", "HOME": str(folder)},
    )
    try:
        report = json.loads(result.stdout)
    except json.JSONDecodeError as err:
        raise AssertionError(f"checkov gave no JSON (exit {result.returncode}): {result.stderr[-2000:]}") from err
    return report if isinstance(report, dict) else {"results": {"failed_checks": [], "passed_checks": [],
                                                                    "skipped_checks": []}}


def copy_project(destination: Path, with_templates: bool = True) -> Path:
    """A throwaway copy of the Sceptre project (config + templates) for bad-input tests."""
    shutil.copytree(PROJECT_ROOT / "config", destination / "config")
    if with_templates:
        shutil.copytree(PROJECT_ROOT / "templates", destination / "templates")
    return destination


def first(mapping: Dict[str, Any]) -> Optional[Any]:
    return next(iter(mapping.values()), None)
