"""The Lambda package: deterministic bytes, content-hash key, upload only if absent, clear errors."""

from __future__ import annotations

import io
import os
import shutil
import zipfile
from importlib import metadata
from pathlib import Path

import boto3
import pytest

from envsync_sceptre.config.runtime import describe
from envsync_sceptre.packaging.package import (
    DEFAULT_RUNTIME,
    FIXED_DATE,
    PackagingError,
    build_package,
    package_key,
    publish,
    read_pins,
    resolve_distributions,
    upload_if_absent,
)
from envsync_sceptre.resolvers.json_file import MAX_PARAMETER_BYTES, json_part, minified_json, parse_argument
from tests.conftest import PROJECT_ROOT

LAMBDA_CODE = PROJECT_ROOT / "lambda_code"
# The shipped default and the newer runtimes the config may switch to.
RUNTIMES = ("python3.9", "python3.12", "python3.13")


@pytest.fixture(scope="module")
def ca(tmp_path_factory) -> Path:
    """A CA bundle directory (what `make ca-bundle` or the local launcher provides)."""
    folder = tmp_path_factory.mktemp("ca")
    (folder / "ca.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    return folder


@pytest.fixture(scope="module")
def package(ca: Path) -> bytes:
    return build_package(LAMBDA_CODE, ca_dir=ca)


_PACKAGES: dict = {}


def package_for(runtime: str, ca: Path) -> bytes:
    if runtime not in _PACKAGES:
        _PACKAGES[runtime] = build_package(LAMBDA_CODE, ca_dir=ca, runtime=runtime)
    return _PACKAGES[runtime]


def test_same_sources_give_the_same_bytes(tmp_path, ca):
    # Two copies taken together (others may be editing lambda_code while tests run).
    original, copy = tmp_path / "a" / "lambda_code", tmp_path / "b" / "lambda_code"
    shutil.copytree(LAMBDA_CODE, original, ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copytree(original, copy)
    package = build_package(original, ca_dir=ca)
    # Other timestamps, permissions and creation order must not matter.
    for index, path in enumerate(sorted(copy.rglob("*"), reverse=True)):
        if path.is_file():
            os.utime(path, (1_000_000 + index, 2_000_000 + index))
            path.chmod(0o755 if index % 2 else 0o600)
    assert build_package(copy, ca_dir=ca) == package
    assert package_key(build_package(copy, ca_dir=ca)) == package_key(package)


def test_a_changed_source_changes_the_key(tmp_path, ca):
    copy = tmp_path / "lambda_code"
    shutil.copytree(LAMBDA_CODE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    before = package_key(build_package(copy, ca_dir=ca))
    init = copy / "envsync" / "__init__.py"
    init.write_text(init.read_text() + "\n# changed\n")
    assert package_key(build_package(copy, ca_dir=ca)) != before


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_package_holds_envsync_and_pinned_deps_but_not_boto3(runtime, ca):
    archive = zipfile.ZipFile(io.BytesIO(package_for(runtime, ca)))
    names = archive.namelist()
    assert names == sorted(names)
    top = {name.split("/")[0] for name in names}
    assert {"envsync", "pymysql"} <= top
    assert not top & {"boto3", "botocore", "s3transfer"}
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    # Compiled code only from the wheels built for the function's runtime (its Python tag, x86_64).
    tag = describe(runtime).python_tag[2:]
    assert sorted(n for n in names if n.endswith(".so")) == [
        f"_cffi_backend.cpython-{tag}-x86_64-linux-gnu.so", "cryptography/hazmat/bindings/_rust.abi3.so"]
    for info in archive.infolist():
        assert info.date_time == FIXED_DATE
        assert info.external_attr >> 16 == 0o100644
    assert archive.read("envsync/__init__.py") == (LAMBDA_CODE / "envsync" / "__init__.py").read_bytes()
    pins = read_pins(LAMBDA_CODE / "requirements.txt")
    bundled = {}
    for dist_info in (n.split("/")[0] for n in names if n.endswith(".dist-info/METADATA")):
        name, version = dist_info[: -len(".dist-info")].rsplit("-", 1)
        bundled[name.lower().replace("_", "-")] = version
    # Every pin of lambda_code/requirements.txt is in the zip at exactly its pinned version.
    assert {name: bundled.get(name) for name in pins} == pins


VERIFY = """
import dataclasses, hashlib, sys
sys.path.insert(0, sys.argv[1])
import cryptography
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from envsync.migrations import history, origin
assert cryptography.__file__.startswith(sys.argv[1]), cryptography.__file__
private = ec.generate_private_key(ec.SECP256R1())
der = private.public_key().public_bytes(serialization.Encoding.DER, serialization.PublicFormat.SubjectPublicKeyInfo)
body = b"CREATE TABLE a (id INT);"
digest = hashlib.sha256(body).hexdigest()
signature = private.sign(origin.message("1", "V1__a.sql", digest, "v1"), ec.ECDSA(hashes.SHA256()))
row = history.HistoryRow(1, "1", "a", "V1__a.sql", digest, 1, 1, "success", True, None, None, None, "x",
                         "dev", None, body, None, origin.Proof("v1", "arn:k", "ECDSA_SHA_256", signature))
key = origin.OriginKey("arn:k", der)
key.check(row, "dev")
print("verified")
try:
    key.check(dataclasses.replace(row, proof=dataclasses.replace(row.proof, source_version_id="v2")), "dev")
except origin.OriginError as error:
    print("refused:", error)
print(sys.version_info[:2], cryptography.__version__)
"""


def runtime_python(runtime: str) -> Path:
    python = PROJECT_ROOT / describe(runtime).venv_dir / "bin" / "python"
    if not python.exists():
        pytest.fail(f"{python} missing: `make {describe(runtime).venv_dir}/.installed` builds it")
    return python


@pytest.mark.parametrize("runtime", RUNTIMES)
def test_the_package_verifies_signatures_on_its_runtime(runtime, ca, tmp_path):
    """The bundled cryptography (the runtime's Lambda wheel, not the deploy venv's) runs on the
    runtime's Python."""
    import subprocess

    zipfile.ZipFile(io.BytesIO(package_for(runtime, ca))).extractall(tmp_path / "task")
    out = subprocess.run([str(runtime_python(runtime)), "-I", "-c", VERIFY, str(tmp_path / "task")],
                         capture_output=True, text=True, check=True).stdout
    assert out.splitlines()[0] == "verified", out
    assert "refused: dev history row V1__a.sql (version 1): dev's signature does not match" in out, out
    assert out.strip().endswith(f"(3, {describe(runtime).minor}) 50.0.2"), out


def test_a_compiled_dependency_loads_only_on_the_runtime_it_was_built_for(ca, tmp_path):
    """Why the runtime drives the build: python3.9's cffi extension (cp39) does not load on 3.12,
    the python3.12 package's does. (cryptography itself ships one abi3 extension for all.)"""
    import subprocess

    load = "import sys; sys.path.insert(0, sys.argv[1]); import _cffi_backend; print(_cffi_backend.__file__)"
    results = {}
    for runtime in (DEFAULT_RUNTIME, "python3.12"):
        task = tmp_path / runtime
        zipfile.ZipFile(io.BytesIO(package_for(runtime, ca))).extractall(task)
        results[runtime] = subprocess.run([str(runtime_python("python3.12")), "-I", "-S", "-c", load, str(task)],
                                          capture_output=True, text=True, check=False)
    assert results[DEFAULT_RUNTIME].returncode != 0, results[DEFAULT_RUNTIME].stdout
    assert "No module named '_cffi_backend'" in results[DEFAULT_RUNTIME].stderr, results[DEFAULT_RUNTIME].stderr
    assert results["python3.12"].stdout.strip().endswith("_cffi_backend.cpython-312-x86_64-linux-gnu.so")
    assert package_key(package_for("python3.12", ca)) != package_key(package_for(DEFAULT_RUNTIME, ca))


def test_an_unknown_runtime_is_refused_by_name(ca):
    supported = r"\(supported: python3.9, python3.10, python3.11, python3.12, python3.13\)"
    with pytest.raises(PackagingError, match=r"lambda_runtime 'python3.8' is not a supported Lambda runtime "
                                             + supported):
        build_package(LAMBDA_CODE, ca_dir=ca, runtime="python3.8")


def test_key_is_the_sha256_of_the_zip(package):
    import hashlib

    assert package_key(package) == f"lambda/envsync-{hashlib.sha256(package).hexdigest()}.zip"


def test_version_mismatch_and_unpinned_requirements_are_named(tmp_path):
    class OtherVersion:
        version = "0.0.1"
        requires = ()

    with pytest.raises(PackagingError, match=r"pins pymysql==1\.2\.4 but the deploy venv has 0\.0\.1"):
        resolve_distributions({"pymysql": "1.2.4"}, find=lambda name: OtherVersion())

    def missing(name):
        raise metadata.PackageNotFoundError(name)

    with pytest.raises(PackagingError, match=r"'nosuchpkg' is not installed.*make venv"):
        resolve_distributions({"nosuchpkg": "1.0"}, find=missing)
    requirements = tmp_path / "requirements.txt"
    requirements.write_text("PyMySQL>=1.0\n")
    with pytest.raises(PackagingError, match=r"requirements.txt:1: 'PyMySQL>=1.0' is not pinned"):
        read_pins(requirements)


def s3_call(client):
    return lambda command, kwargs: getattr(client, command)(**kwargs)


def test_upload_happens_once_then_is_skipped(aws_env, package):
    client = boto3.client("s3", region_name="us-east-1")
    bucket = "envsync-dev-artifacts-test-upload"
    client.create_bucket(Bucket=bucket)
    first = publish(s3_call(client), bucket, LAMBDA_CODE, body=package)
    second = publish(s3_call(client), bucket, LAMBDA_CODE, body=package)
    assert first.uploaded is True and second.uploaded is False
    assert first.key == second.key == package_key(package)
    stored = client.get_object(Bucket=bucket, Key=first.key)["Body"].read()
    assert stored == package
    assert len(client.list_objects_v2(Bucket=bucket)["Contents"]) == 1


def test_missing_bucket_fails_with_what_to_do(aws_env, package):
    client = boto3.client("s3", region_name="us-east-1")
    with pytest.raises(PackagingError) as caught:
        upload_if_absent(s3_call(client), "envsync-dev-artifacts-nonexistent", package_key(package), package)
    message = str(caught.value)
    assert "s3://envsync-dev-artifacts-nonexistent/lambda/envsync-" in message
    assert "launch the env's artifacts stack first" in message


def test_state_machine_definition_fits_the_two_parameters_the_templates_join():
    asl = PROJECT_ROOT / "templates" / "statemachine" / "sync.asl.json"
    text = minified_json(asl, parts=2)
    path, part, parts = parse_argument(f"{asl} 2/2")
    assert (path, part, parts) == (asl, 2, 2) and parse_argument(str(asl)) == (asl, 1, 1)
    pieces = [json_part(asl, 1, 2), json_part(asl, 2, 2)]
    assert "".join(pieces) == text and all(0 < len(piece.encode()) <= MAX_PARAMETER_BYTES for piece in pieces)
    from sceptre.exceptions import SceptreException

    with pytest.raises(SceptreException, match=r"add a StateMachineDefinition part.*DefinitionS3Location"):
        minified_json(asl, limit=100, parts=2)
    with pytest.raises(SceptreException, match=r"part 3/2 does not exist"):
        json_part(asl, 3, 2)


def test_ca_bundles_ship_where_the_engine_looks(tmp_path: Path):
    copy = tmp_path / "lambda_code"
    shutil.copytree(LAMBDA_CODE, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "certs").mkdir(exist_ok=True)
    (copy / "certs" / "rds-global-bundle.pem").write_text("-----BEGIN CERTIFICATE-----\n")
    archive = zipfile.ZipFile(io.BytesIO(build_package(copy)))
    assert archive.read("envsync/certs/rds-global-bundle.pem") == b"-----BEGIN CERTIFICATE-----\n"
    # where the engine looks: envsync/certs/ inside the package, whichever module connects
    import envsync
    from envsync.mysql.connection import PACKAGED_CA_BUNDLE
    assert PACKAGED_CA_BUNDLE.relative_to(Path(envsync.__file__).resolve().parent).as_posix() == \
        "certs/rds-global-bundle.pem"


def test_missing_package_dir_is_reported(tmp_path: Path):
    with pytest.raises(PackagingError, match="no envsync package"):
        build_package(tmp_path)


def test_a_package_without_a_ca_bundle_is_refused(tmp_path: Path):
    copy = tmp_path / "lambda_code"
    shutil.copytree(LAMBDA_CODE, copy, ignore=shutil.ignore_patterns("__pycache__", "certs"))
    with pytest.raises(PackagingError, match=r"no CA bundle .*make ca-bundle"):
        build_package(copy)
    (tmp_path / "empty").mkdir()
    with pytest.raises(PackagingError, match="no CA bundle"):
        build_package(copy, ca_dir=tmp_path / "empty")


def test_the_configured_ca_directory_ships_instead_of_lambda_code_certs(tmp_path: Path, ca: Path, monkeypatch):
    from envsync_sceptre.packaging.package import CA_BUNDLE_DIR_ENV, ca_bundle_dir

    monkeypatch.setenv(CA_BUNDLE_DIR_ENV, str(ca))
    copy = tmp_path / "lambda_code"
    shutil.copytree(LAMBDA_CODE, copy, ignore=shutil.ignore_patterns("__pycache__", "certs"))
    archive = zipfile.ZipFile(io.BytesIO(build_package(copy, ca_dir=ca_bundle_dir())))
    assert archive.read("envsync/certs/ca.pem") == b"-----BEGIN CERTIFICATE-----\n"
