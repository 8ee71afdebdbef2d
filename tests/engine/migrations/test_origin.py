"""Proof of origin on the real MariaDB stand-ins and moto's KMS (real ECDSA P-256 signatures):
dev signs what it applied from its versioned bucket, staging copies the proof, staging and prod
verify it with dev's public key before anything is applied."""

from __future__ import annotations

import uuid
from typing import Dict, Tuple

import boto3
import pytest

from envsync.aws import S3ScriptSource
from envsync.migrations import history, migrate, origin
from envsync.migrations.migrate import UpstreamHistorySource
from envsync.migrations.origin import OriginError, OriginKey, Signer
from envsync.migrations.scripts import checksum
from tests.engine.conftest import EnvDB
from tests.engine.migrations.test_migrate import run

SCRIPTS = {
    "V1__accounts.sql": "CREATE TABLE accounts (id BIGINT PRIMARY KEY, name VARCHAR(50) NOT NULL);\n",
    "V2__currencies.sql": "CREATE TABLE currencies (code CHAR(3) PRIMARY KEY);\n",
}
EVIL = b"CREATE TABLE currencies (code CHAR(3) PRIMARY KEY);\nGRANT ALL ON *.* TO 'mallory'@'%';\n"


def signing_key(kms) -> Tuple[str, OriginKey]:
    """An asymmetric key as the kms stack creates it, and dev's public key as deployed."""
    arn = kms.create_key(KeySpec="ECC_NIST_P256", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    return arn, OriginKey(arn, kms.get_public_key(KeyId=arn)["PublicKey"])


@pytest.fixture
def aws(aws_env: Dict[str, str]) -> Dict[str, object]:
    """dev's versioned migration bucket with the scripts, its signing key and public key."""
    s3, kms = boto3.client("s3", region_name="us-east-1"), boto3.client("kms", region_name="us-east-1")
    bucket = f"envsync-dev-migrations-{uuid.uuid4().hex[:8]}"
    s3.create_bucket(Bucket=bucket)
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    versions = {name: s3.put_object(Bucket=bucket, Key=f"migrations/{name}", Body=body.encode())["VersionId"]
                for name, body in SCRIPTS.items()}
    arn, key = signing_key(kms)
    return {"s3": s3, "kms": kms, "source": S3ScriptSource(s3, bucket, "dev"), "signer": Signer(kms, arn),
            "key": key, "versions": versions}


def promote(env: EnvDB, upstream: EnvDB, key: OriginKey) -> migrate.MigrationResult:
    connection = upstream.connect()
    try:
        return run(env, UpstreamHistorySource(connection, upstream.name, origin_key=key))
    finally:
        connection.close()


def tables(env: EnvDB) -> set:
    return {row[0] for row in env.query("SHOW TABLES")}


def test_dev_signs_staging_copies_and_prod_verifies(chain: Dict[str, EnvDB], aws: Dict[str, object]) -> None:
    dev, staging, prod = chain["dev"], chain["staging"], chain["prod"]
    assert run(dev, aws["source"], signer=aws["signer"]).status == "applied"
    signed = {row.script_name: row.proof for row in dev.history()}
    assert {name: proof.source_version_id for name, proof in signed.items()} == aws["versions"]
    assert {proof.key_id for proof in signed.values()} == {aws["key"].key_arn}
    assert {proof.algorithm for proof in signed.values()} == {"ECDSA_SHA_256"}

    assert promote(staging, dev, aws["key"]).status == "applied"
    assert promote(prod, staging, aws["key"]).status == "applied"
    for env in (staging, prod):
        assert {row.script_name: row.proof for row in env.history()} == signed  # byte for byte
        assert tables(env) == {"accounts", "currencies", history.TABLE}
    # What was signed is the documented message, verifiable by anyone with the public key.
    row = prod.history()[0]
    message = origin.message(row.version, row.script_name, row.checksum, row.proof.source_version_id)
    version_id = aws["versions"]["V1__accounts.sql"]
    assert message == f"envsync-origin-v1\n1\nV1__accounts.sql\n{row.checksum}\n{version_id}".encode()
    assert aws["kms"].verify(KeyId=aws["key"].key_arn, Message=message, MessageType="RAW",
                             Signature=row.proof.signature, SigningAlgorithm="ECDSA_SHA_256")["SignatureValid"]


def _tamper(env: EnvDB, sql: str, args: tuple) -> None:
    env.query(f"UPDATE `{history.TABLE}` SET {sql} WHERE version = '2'", args)


@pytest.mark.parametrize("tampering, reason", [
    ("body", "the stored body does not match its checksum"),
    ("body and checksum", "dev's signature does not match"),
])
def test_tampered_upstream_row_is_refused_and_nothing_is_applied(
    chain: Dict[str, EnvDB], aws: Dict[str, object], tampering: str, reason: str,
) -> None:
    dev, staging, prod = chain["dev"], chain["staging"], chain["prod"]
    run(dev, aws["source"], signer=aws["signer"])
    promote(staging, dev, aws["key"])
    if tampering == "body":
        _tamper(staging, "script_body = %s", (EVIL,))
    else:  # a writer who also recomputes the checksum
        _tamper(staging, "script_body = %s, checksum = %s", (EVIL, checksum(EVIL)))
    with pytest.raises(OriginError, match=f"staging history row V2__currencies.sql .*{reason}"):
        promote(prod, staging, aws["key"])
    assert tables(prod) == {history.TABLE}  # not even V1, which verifies: the history is refused whole
    assert prod.history() == []


def test_a_row_signed_with_another_key_is_refused(chain: Dict[str, EnvDB], aws: Dict[str, object]) -> None:
    dev, staging = chain["dev"], chain["staging"]
    other_arn, _ = signing_key(aws["kms"])
    run(dev, aws["source"], signer=Signer(aws["kms"], other_arn))
    with pytest.raises(OriginError, match=f"signed with {other_arn}, not with dev's origin key"):
        promote(staging, dev, aws["key"])
    # Relabelling the row with the trusted key's ARN does not help: the signature is the other key's.
    dev.query(f"UPDATE `{history.TABLE}` SET signing_key_id = %s", (aws["key"].key_arn,))
    with pytest.raises(OriginError, match="dev's signature does not match"):
        promote(staging, dev, aws["key"])
    assert staging.history() == [] and tables(staging) == {history.TABLE}


def test_unsigned_rows_are_refused_until_dev_resigns_its_history(
    chain: Dict[str, EnvDB], aws: Dict[str, object],
) -> None:
    """An install older than proof of origin: dev and staging applied unsigned; dev re-signs,
    staging takes the proofs of what it already applied, prod then verifies everything."""
    dev, staging, prod = chain["dev"], chain["staging"], chain["prod"]
    run(dev, aws["source"])  # unsigned
    assert run(staging, UpstreamHistorySource(dev.connect(), "dev")).status == "applied"
    with pytest.raises(OriginError, match=r"dev history row V1__accounts.sql \(version 1\) carries no proof "
                                          r"of origin.*\{\"sign_history\": true\}"):
        promote(staging, dev, aws["key"])
    with pytest.raises(OriginError, match=r"staging history row V1__accounts.sql \(version 1\) carries no proof"):
        promote(prod, staging, aws["key"])

    control = dev.connect()
    try:
        done = migrate.sign_history(control, aws["source"], aws["signer"], schema=dev.database)
    finally:
        control.close()
    assert done == {"signed": ["V1__accounts.sql", "V2__currencies.sql"], "refused": []}
    assert {r.script_name: r.proof.source_version_id for r in dev.history()} == aws["versions"]
    assert promote(staging, dev, aws["key"]).status == "up_to_date"  # adopts dev's proofs
    assert [r.proof for r in staging.history()] == [r.proof for r in dev.history()]
    assert promote(prod, staging, aws["key"]).status == "applied"


def test_resigning_refuses_a_row_the_bucket_contradicts(chain: Dict[str, EnvDB], aws: Dict[str, object]) -> None:
    dev = chain["dev"]
    run(dev, aws["source"])
    dev.query(f"UPDATE `{history.TABLE}` SET script_body = %s, checksum = %s WHERE version = '2'",
              (EVIL, checksum(EVIL)))
    control = dev.connect()
    try:
        done = migrate.sign_history(control, aws["source"], aws["signer"], schema=dev.database)
    finally:
        control.close()
    assert done["signed"] == ["V1__accounts.sql"]
    assert done["refused"] == [f"V2__currencies.sql: the bucket's object has checksum "
                               f"{checksum(SCRIPTS['V2__currencies.sql'].encode())[:12]}…, the history "
                               f"{checksum(EVIL)[:12]}…: not signed"]
    assert [r.proof is None for r in dev.history()] == [False, True]


def test_an_older_history_table_gains_the_proof_columns_and_loses_nothing(chain: Dict[str, EnvDB]) -> None:
    dev, staging = chain["dev"], chain["staging"]
    old_table = history.CREATE_TABLE
    for name, _ in history.ORIGIN_COLUMNS:
        old_table = "\n".join(line for line in old_table.splitlines() if not line.strip().startswith(name))
    dev.query(old_table)
    dev.query(f"INSERT INTO `{history.TABLE}` (version, description, script_name, checksum, statement_count, "
              "statements_applied, state, success, applied_by, source_env, script_body, updated_at) VALUES "
              "('1', 'a', 'V1__a.sql', %s, 1, 1, 'success', 1, 'someone', 'dev', %s, NOW(6))",
              (checksum(b"CREATE TABLE a (id INT);"), b"CREATE TABLE a (id INT);"))
    before = dev.query(f"SELECT * FROM `{history.TABLE}`")
    # A downstream reads an upstream that has not been upgraded: its rows are unsigned.
    assert [(r.script_name, r.proof) for r in dev.history()] == [("V1__a.sql", None)]
    control = dev.connect()
    try:
        history.ensure_table(control)
        history.ensure_table(control)  # idempotent
    finally:
        control.close()
    after = dev.query(f"SELECT * FROM `{history.TABLE}`")
    assert [row[:17] for row in after] == [tuple(row) for row in before]
    assert [row[17:] for row in after] == [(None, None, None, None)]
    assert promote(staging, dev, None).status == "applied"  # without a key: the old behaviour


def test_the_origin_key_must_be_a_p256_public_key(aws: Dict[str, object]) -> None:
    rsa = aws["kms"].create_key(KeySpec="RSA_2048", KeyUsage="SIGN_VERIFY")["KeyMetadata"]["Arn"]
    with pytest.raises(OriginError, match="not an ECC_NIST_P256 public key"):
        OriginKey(rsa, aws["kms"].get_public_key(KeyId=rsa)["PublicKey"])
    with pytest.raises(OriginError, match="not base64"):
        OriginKey.from_base64(rsa, "not base64!")
    with pytest.raises(OriginError, match="not a DER public key"):
        OriginKey(rsa, b"\x30\x03junk")


def test_the_signed_message_is_utf8_one_field_a_line() -> None:
    assert origin.message("1.10", "V1.10__añadir_índice.sql", "ab" * 32, "") == (
        "envsync-origin-v1\n1.10\nV1.10__añadir_índice.sql\n" + "ab" * 32 + "\n").encode("utf-8")
    with pytest.raises(OriginError, match="is not one line"):
        origin.message("1", "V1__a.sql", "ab" * 32, "version\nid")
