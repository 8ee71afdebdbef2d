"""What an offline Lambda invocation runs: the function's deployed package and the runtime's SDK.

A Lambda container holds the function's package (unpacked into /var/task) and the runtime's
own libraries (boto3, botocore and their dependencies); nothing else. Offline, the package is
the zip the function was created from (read from the artifacts bucket the stack points at),
unpacked once into a cache directory named by its SHA-256; the runtime is a directory that
links the SDK modules of an interpreter of the function's runtime (its venv from
envsync_sceptre.config.runtime: python3.9 -> .venv39, python3.12 -> .venv312, built by `make venv` for
every configured lambda_runtime; the running interpreter when it is that version). The child
interpreter runs with `-S` (no site-packages, no editable installs), so a module the package
does not carry, or one built for another Python (a compiled wheel), fails offline as it would
in AWS.
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
from typing import Dict, List, Optional, Tuple

from envsync_local.paths import PROJECT_ROOT, state_dir
from envsync_sceptre.config.runtime import UnknownRuntime, describe

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


def runtime_python(runtime: str) -> Tuple[str, Optional[Path]]:
    """(interpreter, its site-packages or None for the running one) for a Lambda `runtime`."""
    try:
        described = describe(runtime)
    except UnknownRuntime as error:
        raise PackageError(str(error)) from None
    if described.version == f"{sys.version_info[0]}.{sys.version_info[1]}":
        return sys.executable, None
    venv = PROJECT_ROOT / described.venv_dir
    site_packages = venv / "lib" / f"python{described.version}" / "site-packages"
    if (venv / "bin" / "python").exists() and site_packages.is_dir():
        return str(venv / "bin" / "python"), site_packages
    raise PackageError(f"runtime {runtime}: no Python {described.version} interpreter here to run the package "
                       f"with (make {described.venv_dir}/.installed builds one)")


def runtime_dir(root: Path, interpreter: str = sys.executable, site_packages: Optional[Path] = None) -> Path:
    """The runtime's libraries for `interpreter`: links to its SDK modules and the bootstrap."""
    key = hashlib.sha256(f"{interpreter}|{site_packages}|{sys.version}".encode()).hexdigest()[:16]
    target = root / "runtime" / key
    if (target / f"{BOOTSTRAP_MODULE}.py").exists():
        return target
    staging = Path(tempfile.mkdtemp(prefix=".runtime-", dir=_made(root / "runtime")))
    for name in RUNTIME_MODULES:
        source = _module_path(name, site_packages)
        if source is not None:  # not installed (six, when nothing needs it)
            (staging / source.name).symlink_to(source)
    shutil.copyfile(BOOTSTRAP_SOURCE, staging / f"{BOOTSTRAP_MODULE}.py")
    try:
        staging.rename(target)
    except OSError:
        shutil.rmtree(staging, ignore_errors=True)
    return target


def _module_path(name: str, site_packages: Optional[Path]) -> Optional[Path]:
    if site_packages is not None:
        for candidate in (site_packages / name, site_packages / f"{name}.py"):
            if candidate.exists():
                return candidate
        return None
    spec = importlib.util.find_spec(name)
    if spec is None or spec.origin is None:
        return None
    source = Path(spec.origin)
    return source.parent if source.name == "__init__.py" else source


def _made(path: Path) -> Path:
    path.mkdir(parents=True, exist_ok=True)
    return path


def command(handler: str, runtime: str = "") -> List[str]:
    """The child interpreter of the function's runtime, without site-packages, running the
    bootstrap on `handler`."""
    interpreter = runtime_python(runtime)[0] if runtime else sys.executable
    return [interpreter, "-S", "-m", BOOTSTRAP_MODULE, handler]


def process_env(package: Path, root: Path, runtime: str = "") -> Dict[str, str]:
    """sys.path of the child: the package first (as /var/task), then the runtime."""
    interpreter, site_packages = runtime_python(runtime) if runtime else (sys.executable, None)
    return {"PYTHONPATH": os.pathsep.join([str(package), str(runtime_dir(root, interpreter, site_packages))]),
            "PYTHONNOUSERSITE": "1", "PYTHONDONTWRITEBYTECODE": "1", "LAMBDA_TASK_ROOT": str(package)}
