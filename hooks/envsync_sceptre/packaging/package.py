"""The Lambda package: a deterministic zip of lambda_code/envsync and its pinned deps.

Same sources -> same bytes: entries sorted, fixed timestamp and permissions, fixed
compression. The dependencies are copied from the distributions installed in the deploy
venv (`make venv` installs exactly the pins of lambda_code/requirements.txt), so the build
needs no network. A dependency with compiled code (cryptography) cannot come from the deploy
venv, which is built for this machine's Python: it comes from the wheels built for the Lambda
runtime (Python 3.9, manylinux2014 x86_64) that `make venv` downloads into .lambda-wheels/.
boto3 and what it pulls in come with the Lambda runtime and are never bundled.
The object key is the zip's SHA-256, so an upload happens only when the code
changed, and a stack update that changes the key is exactly a code change.
"""

from __future__ import annotations

import hashlib
import io
import os
import re
import zipfile
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from packaging.markers import Marker
from packaging.requirements import Requirement

# Provided by every Lambda Python runtime; bundling them would shadow the runtime's SDK.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)
# The oldest runtime the package must import on: markers are evaluated for it.
TARGET_PYTHON = "3.9"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644 << 16
KEY_PREFIX = "lambda/envsync-"
CERTS_ARCNAME = "envsync/certs"
# Set by the local launcher to the stand-ins' CA directory (see ca_bundle_dir).
CA_BUNDLE_DIR_ENV = "ENVSYNC_CA_BUNDLE_DIR"
# Wheels for the Lambda runtime (`make venv`: pip download --platform manylinux2014_x86_64
# --python-version 3.9 --only-binary=:all: -r lambda_code/requirements.txt).
LAMBDA_WHEELS_DIR = Path(__file__).resolve().parents[3] / ".lambda-wheels"
LAMBDA_WHEELS_ENV = "ENVSYNC_LAMBDA_WHEELS_DIR"
# Wheel tags the python3.9 x86_64 runtime (Amazon Linux 2, glibc 2.26) imports.
LAMBDA_PYTHON_TAGS = ("cp39", "abi3", "py3", "py2.py3")
LAMBDA_PLATFORM = re.compile(r"^(any|manylinux2014_x86_64|manylinux_2_(1\d|2[0-6])_x86_64)$")
PIN = re.compile(r"^(?P<name>[A-Za-z0-9][A-Za-z0-9._-]*)==(?P<version>[^\s;#]+)")


class PackagingError(RuntimeError):
    """The Lambda package cannot be built or uploaded; the message says what to do."""


def _canonical(name: str) -> str:
    return re.sub(r"[-_.]+", "-", name).lower()


def read_pins(requirements: Path) -> Dict[str, str]:
    """`name==version` lines of lambda_code/requirements.txt (canonical name -> version)."""
    pins: Dict[str, str] = {}
    for number, line in enumerate(requirements.read_text().splitlines(), start=1):
        text = line.split("#", 1)[0].strip()
        if not text:
            continue
        match = PIN.match(text)
        if not match:
            raise PackagingError(
                f"{requirements}:{number}: '{text}' is not pinned as name==version"
            )
        pins[_canonical(match.group("name"))] = match.group("version")
    return pins


def _target_requirements(dist: metadata.Distribution) -> Iterable[str]:
    environment = {"python_version": TARGET_PYTHON, "python_full_version": f"{TARGET_PYTHON}.0",
                   "sys_platform": "linux", "platform_system": "Linux", "extra": ""}
    for text in dist.requires or []:
        requirement = Requirement(text)
        if requirement.marker is None or Marker(str(requirement.marker)).evaluate(environment):
            yield _canonical(requirement.name)


def lambda_wheels_dir() -> Path:
    configured = os.environ.get(LAMBDA_WHEELS_ENV)
    return Path(configured) if configured else LAMBDA_WHEELS_DIR


def _fits_lambda(wheel: str) -> bool:
    """`name-version-python-abi-platform.whl` whose tags the Lambda runtime imports."""
    parts = wheel[: -len(".whl")].split("-")
    if len(parts) < 5:
        return False
    python, abi, platforms = parts[-3], parts[-2], parts[-1]
    pythons = set(python.split("."))
    abi_ok = abi in ("none", "abi3", "cp39")
    python_ok = bool(pythons & {"py3", "py2", "cp39"}) or (abi == "abi3" and any(
        p.startswith("cp3") and int(p[3:] or 0) <= 9 for p in pythons))
    return abi_ok and python_ok and any(LAMBDA_PLATFORM.match(p) for p in platforms.split("."))


def lambda_wheel(name: str, wheels: Optional[Path] = None) -> Optional[metadata.Distribution]:
    """The distribution `name` as a wheel built for the Lambda runtime, if one was downloaded."""
    folder = wheels or lambda_wheels_dir()
    if not folder.is_dir():
        return None
    for wheel in sorted(folder.glob("*.whl")):
        if _canonical(wheel.name.split("-")[0]) == _canonical(name) and _fits_lambda(wheel.name):
            archive = zipfile.ZipFile(wheel)
            info = next(n.split("/")[0] for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            return metadata.PathDistribution(zipfile.Path(archive, at=f"{info}/"))
    return None


def find_for_lambda(name: str) -> metadata.Distribution:
    """A dependency as the Lambda runtime needs it: its Lambda wheel, else the deploy venv's."""
    return lambda_wheel(name) or metadata.distribution(name)


def resolve_distributions(
    pins: Dict[str, str], find: Callable[[str], metadata.Distribution] = find_for_lambda
) -> List[metadata.Distribution]:
    """The pinned distributions and their runtime dependencies, as installed, minus the SDK."""
    found: Dict[str, metadata.Distribution] = {}
    pending = sorted(name for name in pins if name not in RUNTIME_PROVIDED)
    while pending:
        name = pending.pop(0)
        if name in found or name in RUNTIME_PROVIDED:
            continue
        try:
            dist = find(name)
        except metadata.PackageNotFoundError as err:
            raise PackagingError(
                f"lambda_code/requirements.txt: '{name}' is not installed in the deploy venv; "
                "run `make venv`"
            ) from err
        wanted = pins.get(name)
        if wanted is not None and dist.version != wanted:
            raise PackagingError(
                f"lambda_code/requirements.txt pins {name}=={wanted} but the deploy venv has "
                f"{dist.version}; run `make venv`"
            )
        found[name] = dist
        pending.extend(sorted(_target_requirements(dist)))
    return [found[name] for name in sorted(found)]


def _distribution_files(dist: metadata.Distribution) -> Iterable[Tuple[str, Any]]:
    """(name in the zip, a path-like with read_bytes) of every file of `dist`."""
    from_wheel = isinstance(getattr(dist, "_path", None), zipfile.Path)
    for relative in dist.files or []:
        text = str(relative).replace("\\", "/")
        if text.startswith("..") or "__pycache__" in text or text.endswith(".pyc"):
            continue  # console scripts outside site-packages, compiled caches
        if text.endswith((".so", ".pyd", ".dylib")) and not from_wheel:
            raise PackagingError(
                f"{dist.metadata['Name']} {dist.version} ships a compiled extension ({text}) built "
                f"for this machine, not the Lambda runtime: run `make venv` (downloads its Lambda wheel "
                f"into {lambda_wheels_dir()})"
            )
        source = dist.locate_file(relative) if from_wheel else Path(str(dist.locate_file(relative)))
        if source.is_file():
            yield text, source


def _source_files(package_dir: Path) -> Iterable[Tuple[str, Path]]:
    for path in package_dir.rglob("*"):
        if path.is_file() and "__pycache__" not in path.parts and path.suffix != ".pyc":
            yield f"{package_dir.name}/{path.relative_to(package_dir).as_posix()}", path


def zip_entries(entries: Dict[str, bytes]) -> bytes:
    """A zip of `entries` whose bytes depend on nothing but the names and contents."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as archive:
        for name in sorted(entries):
            info = zipfile.ZipInfo(name, date_time=FIXED_DATE)
            info.external_attr = FILE_MODE
            info.create_system = 3
            info.compress_type = zipfile.ZIP_DEFLATED
            archive.writestr(info, entries[name], compresslevel=9)
    return buffer.getvalue()


def ca_bundle_dir() -> Optional[Path]:
    """Where the CA bundle comes from when not lambda_code/certs: ENVSYNC_CA_BUNDLE_DIR.

    The local launcher points it at the stand-ins' CA, so the offline package carries the CA its
    databases present, as a real package carries the RDS bundle.
    """
    configured = os.environ.get(CA_BUNDLE_DIR_ENV)
    return Path(configured) if configured else None


def build_package(
    lambda_code_dir: Path,
    find: Callable[[str], metadata.Distribution] = find_for_lambda,
    ca_dir: Optional[Path] = None,
) -> bytes:
    """The zip of lambda_code/envsync, its CA bundle and its pinned deps (lambda_code/requirements.txt).

    Refuses to build without a CA bundle: the engine verifies the database's certificate, so a
    package without one could not connect to any cluster.
    """
    package_dir = lambda_code_dir / "envsync"
    if not (package_dir / "__init__.py").is_file():
        raise PackagingError(f"{package_dir}: no envsync package (__init__.py) to bundle")
    entries: Dict[str, bytes] = {}
    for name, path in _source_files(package_dir):
        entries[name] = path.read_bytes()
    # TLS trust for MySQL: lambda_code/certs/*.pem (the RDS global bundle, from
    # https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem) ships as
    # envsync/certs/<name>, where envsync.mysql.connection looks for it.
    certs_dir = ca_dir or lambda_code_dir / "certs"
    bundles = sorted(certs_dir.glob("*.pem")) if certs_dir.is_dir() else []
    if not bundles:
        raise PackagingError(
            f"no CA bundle (*.pem) in {certs_dir}: run `make ca-bundle` (the RDS CA bundle, "
            "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem); without it the "
            "Lambda functions cannot verify the cluster's TLS certificate and every connection fails"
        )
    for path in bundles:
        entries[f"{CERTS_ARCNAME}/{path.name}"] = path.read_bytes()
    pins = read_pins(lambda_code_dir / "requirements.txt")
    for dist in resolve_distributions(pins, find):
        for name, path in _distribution_files(dist):
            if name in entries:
                raise PackagingError(f"{name} is provided twice (envsync and a dependency)")
            entries[name] = path.read_bytes()
    return zip_entries(entries)


def package_key(body: bytes, prefix: str = KEY_PREFIX) -> str:
    return f"{prefix}{hashlib.sha256(body).hexdigest()}.zip"


@dataclass
class UploadResult:
    key: str
    uploaded: bool


S3Call = Callable[[str, Dict[str, object]], Dict[str, object]]


def upload_if_absent(call: S3Call, bucket: str, key: str, body: bytes) -> UploadResult:
    """Put `body` at s3://bucket/key unless an object is already there (same key = same bytes).

    `call(command, kwargs)` is an S3 client call (Sceptre's connection manager in the resolver,
    a boto3 client in tests), so errors arrive as botocore ClientError.
    """
    from botocore.exceptions import ClientError

    try:
        call("head_object", {"Bucket": bucket, "Key": key})
        return UploadResult(key=key, uploaded=False)
    except ClientError as err:
        code = str(err.response.get("Error", {}).get("Code", ""))
        if code not in ("404", "NoSuchKey", "NotFound"):
            raise PackagingError(_upload_hint(bucket, key, err)) from err
    try:
        call("put_object", {"Bucket": bucket, "Key": key, "Body": body,
                            "ContentType": "application/zip"})
    except ClientError as err:
        raise PackagingError(_upload_hint(bucket, key, err)) from err
    return UploadResult(key=key, uploaded=True)


def _upload_hint(bucket: str, key: str, err: Exception) -> str:
    text = str(err)
    if "NoSuchBucket" in text or "404" in text:
        hint = "the bucket does not exist: launch the env's artifacts stack first"
    elif "AccessDenied" in text or "403" in text:
        hint = ("access denied: the deployer role needs s3:GetObject/PutObject/ListBucket on "
                "envsync-<env>-* (bootstrap stack)")
    else:
        hint = "see the error above"
    return f"Lambda package upload to s3://{bucket}/{key} failed: {hint} ({text})"


_BUILD_CACHE: Dict[Tuple[Path, Optional[Path]], bytes] = {}


def cached_package(lambda_code_dir: Path, ca_dir: Optional[Path] = None) -> bytes:
    """Build once per process: every stack of a `sceptre launch` shares the same zip."""
    resolved = (lambda_code_dir.resolve(), ca_dir.resolve() if ca_dir else None)
    if resolved not in _BUILD_CACHE:
        _BUILD_CACHE[resolved] = build_package(resolved[0], ca_dir=resolved[1])
    return _BUILD_CACHE[resolved]


def publish(call: S3Call, bucket: str, lambda_code_dir: Path,
            body: Optional[bytes] = None, ca_bundle_dir: Optional[Path] = None) -> UploadResult:
    """Build (or reuse) the package, upload it if absent, return its key."""
    body = cached_package(lambda_code_dir, ca_bundle_dir) if body is None else body
    return upload_if_absent(call, bucket, package_key(body), body)
