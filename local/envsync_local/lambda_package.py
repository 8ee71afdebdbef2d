"""What an offline Lambda invocation runs: the function's deployed package and the runtime's SDK.

A Lambda container holds the function's package (unpacked into /var/task) and the runtime's
own libraries (boto3, botocore and their dependencies); nothing else. Offline, the package is
the zip the function was created from (read from the artifacts bucket the stack points at),
unpacked once into a cache directory named by its SHA-256; the runtime is a directory that
links the running interpreter's SDK modules only. The child interpreter runs with `-S` (no
site-packages, no editable installs), so a module the package does not carry fails to import
offline as it would in AWS.
"""

from __future__ import annotations

import hashlib
import importlib.util
import io
import os
import shutil
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Dict, List

from envsync_local.paths import state_dir

# Import names of what every Lambda Python runtime provides (the packaging leaves them out).
RUNTIME_MODULES = ("boto3", "botocore", "s3transfer", "jmespath", "dateutil", "six", "urllib3")
BOOTSTRAP_MODULE = "envsync_lambda_bootstrap"
BOOTSTRAP_SOURCE = Path(__file__).with_name("lambda_bootstrap.py")


class PackageError(RuntimeError):
    """The function's package is missing, unreadable or not what the function says it is."""


def cache_root() -> Path:
    return state_dir() / "lambda"


def unpack(code: bytes, root: Path) -> Path:
    """The package unpacked under root/packages/<sha256>, extracted once (race-free)."""
    if not code:
        raise PackageError("the function has no deployment package")
    target = root / "packages" / hashlib.sha256(code).hexdigest()
    if target.is_dir():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    staging = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
    try:
        zipfile.ZipFile(io.BytesIO(code)).extractall(staging)
    except zipfile.BadZipFile as error:
        shutil.rmtree(staging, ignore_errors=True)
        raise PackageError(f"the deployment package is not a zip: {error}") from None
    try:
        staging.rename(target)
    except OSError:  # another invocation unpacked the same package first
        shutil.rmtree(staging, ignore_errors=True)
    return target


def runtime_dir(root: Path) -> Path:
    """The runtime's libraries for this interpreter: links to its SDK modules and the bootstrap."""
    key = hashlib.sha256(f"{sys.executable}|{sys.version}".encode()).hexdigest()[:16]
    target = root / "runtime" / key
    if (target / f"{BOOTSTRAP_MODULE}.py").exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix=".runtime-", dir=_made(root / "runtime")))
    for name in RUNTIME_MODULES:
        spec = importlib.util.find_spec(name)
        if spec is None or spec.origin is None:
            continue  # not installed here (six, when nothing needs it)
        source = Path(spec.origin)
        source = source.parent if source.name == "__init__.py" else source
        (staging / source.name).symlink_to(source)
    shutil.copyfile(BOOTSTRAP_SOURCE, staging / f"{BOOTSTRAP_MODULE}.py")
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def command(handler: str) -> List[str]:
    """The child interpreter, without site-packages, running the bootstrap on `handler`."""
    return [sys.executable, "-S", "-m", BOOTSTRAP_MODULE, handler]


def process_env(package: Path, root: Path) -> Dict[str, str]:
    """sys.path of the child: the package first (as /var/task), then the runtime."""
    return {"PYTHONPATH": os.pathsep.join([str(package), str(runtime_dir(root))]),
            "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "LAMBDA_TASK_ROOT": str(package)}
