"""The Lambda package: a deterministic zip of lambda_code/envsync and its pinned deps.

Same sources -> same bytes: entries sorted, fixed timestamp and permissions, fixed
compression. The dependencies are copied from the distributions installed in the deploy
venv (`make venv` installs exactly the pins of lambda_code/requirements.txt), so the build
needs no network. A dependency with compiled code (cryptography) cannot come from the deploy
venv, which is built for this machine's Python: it comes from the wheels built for the
function's Lambda runtime (envsync_sceptre.config.runtime: Python tag, manylinux platform) that `make
venv` downloads into .lambda-wheels/<runtime>/ for every configured `lambda_runtime`.
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

from envsync_sceptre.config.runtime import PROJECT_ROOT, Runtime, UnknownRuntime, describe

# Provided by every Lambda Python runtime; bundling them would shadow the runtime's SDK.
RUNTIME_PROVIDED = frozenset(
    {"boto3", "botocore", "s3transfer", "jmespath", "python-dateutil", "six", "urllib3"}
)
# The shipped default (config/config.yaml: lambda_runtime); callers name the configured one.
DEFAULT_RUNTIME = "python3.9"
FIXED_DATE = (1980, 1, 1, 0, 0, 0)
FILE_MODE = 0o100644 << 16
KEY_PREFIX = "lambda/envsync-"
CERTS_ARCNAME = "envsync/certs"
# Set by the local launcher to the stand-ins' CA directory (see ca_bundle_dir).
CA_BUNDLE_DIR_ENV = "ENVSYNC_CA_BUNDLE_DIR"
# Wheels for each Lambda runtime (`make venv`: pip download with Runtime.pip_download_args()
# -r lambda_code/requirements.txt into .lambda-wheels/<runtime>/); the variable overrides the
# parent folder.
LAMBDA_WHEELS_ENV = "ENVSYNC_LAMBDA_WHEELS_DIR"
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


def _target_requirements(dist: metadata.Distribution, runtime: Runtime) -> Iterable[str]:
    environment = {"python_version": runtime.version, "python_full_version": f"{runtime.version}.0",
                   "sys_platform": "linux", "platform_system": "Linux", "extra": ""}
    for text in dist.requires or []:
        requirement = Requirement(text)
        if requirement.marker is None or Marker(str(requirement.marker)).evaluate(environment):
            yield _canonical(requirement.name)


def lambda_wheels_dir(runtime: Runtime) -> Path:
    configured = os.environ.get(LAMBDA_WHEELS_ENV)
    return Path(configured) / runtime.name if configured else PROJECT_ROOT / runtime.wheels_dir


def lambda_wheel(name: str, runtime: Runtime, wheels: Optional[Path] = None) -> Optional[metadata.Distribution]:
    """The distribution `name` as a wheel built for `runtime`, if one was downloaded."""
    folder = wheels or lambda_wheels_dir(runtime)
    if not folder.is_dir():
        return None
    for wheel in sorted(folder.glob("*.whl")):
        if _canonical(wheel.name.split("-")[0]) == _canonical(name) and runtime.accepts_wheel(wheel.name):
            archive = zipfile.ZipFile(wheel)
            info = next(n.split("/")[0] for n in archive.namelist() if n.endswith(".dist-info/METADATA"))
            return metadata.PathDistribution(zipfile.Path(archive, at=f"{info}/"))
    return None


Finder = Callable[[str], metadata.Distribution]


def finder_for(runtime: Runtime) -> Finder:
    """Finds a dependency as `runtime` needs it: its Lambda wheel, else the deploy venv's
    (pure-Python distributions only: a compiled one from the venv is refused when zipped)."""
    return lambda name: lambda_wheel(name, runtime) or metadata.distribution(name)


def resolve_distributions(
    pins: Dict[str, str], find: Optional[Finder] = None, runtime: Optional[Runtime] = None,
) -> List[metadata.Distribution]:
    """The pinned distributions and their dependencies on `runtime`, as installed, minus the SDK."""
    runtime = runtime or describe(DEFAULT_RUNTIME)
    find = find or finder_for(runtime)
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
        pending.extend(sorted(_target_requirements(dist, runtime)))
    return [found[name] for name in sorted(found)]


def _distribution_files(dist: metadata.Distribution, runtime: Runtime) -> Iterable[Tuple[str, Any]]:
    """(name in the zip, a path-like with read_bytes) of every file of `dist`."""
    from_wheel = isinstance(getattr(dist, "_path", None), zipfile.Path)
    for relative in dist.files or []:
        text = str(relative).replace("\\", "/")
        if text.startswith("..") or "__pycache__" in text or text.endswith(".pyc"):
            continue  # console scripts outside site-packages, compiled caches
        if text.endswith((".so", ".pyd", ".dylib")) and not from_wheel:
            raise PackagingError(
                f"{dist.metadata['Name']} {dist.version} ships a compiled extension ({text}) built "
                f"for this machine, not the Lambda runtime {runtime.name}: run `make venv` (downloads its "
                f"Lambda wheel into {lambda_wheels_dir(runtime)})"
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
    find: Optional[Finder] = None,
    ca_dir: Optional[Path] = None,
    runtime: str = DEFAULT_RUNTIME,
) -> bytes:
    """The zip of lambda_code/envsync, its CA bundle and its pinned deps (lambda_code/requirements.txt),
    the compiled ones as wheels for the Lambda `runtime` (python3.9, python3.12, ...).

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
    try:
        described = describe(runtime)
    except UnknownRuntime as error:
        raise PackagingError(str(error)) from error
    for dist in resolve_distributions(pins, find, described):
        for name, path in _distribution_files(dist, described):
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


_BUILD_CACHE: Dict[Tuple[Path, Optional[Path], str], bytes] = {}


def cached_package(lambda_code_dir: Path, ca_dir: Optional[Path] = None, runtime: str = DEFAULT_RUNTIME) -> bytes:
    """Build once per process and runtime: every stack of a `sceptre launch` shares the same zip."""
    resolved = (lambda_code_dir.resolve(), ca_dir.resolve() if ca_dir else None, runtime)
    if resolved not in _BUILD_CACHE:
        _BUILD_CACHE[resolved] = build_package(resolved[0], ca_dir=resolved[1], runtime=runtime)
    return _BUILD_CACHE[resolved]


def publish(call: S3Call, bucket: str, lambda_code_dir: Path, body: Optional[bytes] = None,
            ca_bundle_dir: Optional[Path] = None, runtime: str = DEFAULT_RUNTIME) -> UploadResult:
    """Build (or reuse) the package for `runtime`, upload it if absent, return its key."""
    body = cached_package(lambda_code_dir, ca_bundle_dir, runtime) if body is None else body
    return upload_if_absent(call, bucket, package_key(body), body)
