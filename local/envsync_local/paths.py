"""Where the project and the local-mode state live."""

from __future__ import annotations

import os
import sys
from pathlib import Path

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def project_dir() -> Path:
    """The Sceptre project local mode launches (config/, templates/, lambda_code/): this
    checkout, or ENVSYNC_PROJECT_DIR (a test launching a copy whose config differs)."""
    return Path(os.environ.get("ENVSYNC_PROJECT_DIR", PROJECT_ROOT)).resolve()


def state_dir() -> Path:
    """Local-mode state (datadirs, pid files, logs); ENVSYNC_LOCAL_DIR overrides."""
    return Path(os.environ.get("ENVSYNC_LOCAL_DIR", PROJECT_ROOT / ".local")).resolve()


def moto_python() -> str:
    """The interpreter of the moto venv (moto>=5 cannot share a venv with sceptre 4.7)."""
    configured = os.environ.get("ENVSYNC_MOTO_PYTHON")
    if configured:
        return configured
    candidate = PROJECT_ROOT / ".venv-moto" / "bin" / "python"
    return str(candidate) if candidate.exists() else sys.executable


def tool(name: str) -> str:
    """A console script installed beside the running interpreter (e.g. sceptre)."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.exists() else name
