"""Proof of origin: dev signs what it applied, every downstream env verifies it before applying.

The signed message is this text, UTF-8 (fields joined by LF, no trailing LF):

    envsync-origin-v1
    <version>          canonical (scripts.canonical_version), e.g. 1.10
    <script name>      e.g. V1.10__add_index.sql
    <checksum>         lowercase hex SHA-256 of the normalised body (scripts.checksum)
    <S3 version id>    of the object dev applied; empty for a row signed after its object expired

dev's sync role signs it with an asymmetric KMS key (ECC_NIST_P256, ECDSA_SHA_256, MessageType
RAW) that only that role may use for kms:Sign. The signature, the key's ARN and the algorithm
travel with the history row; staging copies them unchanged when it applies the script, so prod
checks dev's signature too. Downstream envs verify with dev's public key, read once at deploy
time and passed as configuration: no call to dev per run, and nobody who can only write a
history table (or a bucket outside dev) can produce a row that verifies.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass
from typing import Any, Optional

from botocore.exceptions import BotoCoreError, ClientError

from envsync.errors import EnvsyncError
from envsync.migrations.scripts import checksum

ALGORITHM = "ECDSA_SHA_256"
MESSAGE_PREFIX = "envsync-origin-v1"
# How a person re-signs dev's history rows written before proof of origin existed.
RESIGN_HINT = ("re-sign dev's history: invoke dev's migrate function with {\"sign_history\": true} "
               "(aws lambda invoke --function-name envsync-dev-migrate --payload "
               "'{\"sign_history\": true}' out.json), then run the chain again (dev, staging, prod)")


class OriginError(EnvsyncError, RuntimeError):
    """A history row whose origin cannot be proven: nothing is applied."""

    quotes_no_data = True


@dataclass(frozen=True)
class Proof:
    """What travels with a history row."""

    source_version_id: str
    key_id: str  # ARN of the KMS key that signed
    algorithm: str
    signature: bytes


def message(version: str, script_name: str, script_checksum: str, source_version_id: str) -> bytes:
    """The canonical bytes dev signs (see the module docstring)."""
    fields = (MESSAGE_PREFIX, version, script_name, script_checksum, source_version_id or "")
    for value in fields:
        if "\n" in value or "\r" in value:
            raise OriginError(f"cannot sign {script_name}: {value!r} is not one line")
    return "\n".join(fields).encode("utf-8")


class Signer:
    """Signs with dev's KMS signing key (kms:Sign, only dev's sync role may)."""

    def __init__(self, kms: Any, key_id: str) -> None:
        self.kms, self.key_id = kms, key_id

    def sign(self, version: str, script_name: str, script_checksum: str, source_version_id: str) -> Proof:
        try:
            response = self.kms.sign(
                KeyId=self.key_id, MessageType="RAW", SigningAlgorithm=ALGORITHM,
                Message=message(version, script_name, script_checksum, source_version_id))
        except (ClientError, BotoCoreError) as error:
            raise OriginError(f"cannot sign {script_name} with {self.key_id}: {error}") from None
        return Proof(source_version_id=source_version_id or "", key_id=str(response["KeyId"]),
                     algorithm=str(response["SigningAlgorithm"]), signature=bytes(response["Signature"]))


class OriginKey:
    """dev's public key (DER SubjectPublicKeyInfo, as kms:GetPublicKey returns it) and its ARN."""

    def __init__(self, key_arn: str, public_key_der: bytes) -> None:
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.hazmat.primitives.serialization import load_der_public_key

        try:
            public_key = load_der_public_key(public_key_der)
        except ValueError as error:
            raise OriginError(f"the origin public key of {key_arn} is not a DER public key: {error}") from None
        if not isinstance(public_key, ec.EllipticCurvePublicKey) or public_key.curve.name != "secp256r1":
            raise OriginError(f"the origin key {key_arn} is not an ECC_NIST_P256 public key")
        self.key_arn, self._public_key = key_arn, public_key

    @classmethod
    def from_base64(cls, key_arn: str, public_key_b64: str) -> OriginKey:
        try:
            der = base64.b64decode(public_key_b64, validate=True)
        except (binascii.Error, ValueError):
            raise OriginError(f"the origin public key of {key_arn} is not base64") from None
        return cls(key_arn, der)

    def check(self, row: Any, upstream_env: str) -> None:
        """Refuse `row` (history.HistoryRow of the upstream) unless dev's signature proves it."""
        from cryptography.exceptions import InvalidSignature
        from cryptography.hazmat.primitives import hashes
        from cryptography.hazmat.primitives.asymmetric import ec

        where = f"{upstream_env} history row {row.script_name} (version {row.version})"
        proof: Optional[Proof] = row.proof
        if proof is None:
            raise OriginError(f"{where} carries no proof of origin (applied before dev signed its "
                              f"history, or written outside envsync): refusing to promote it. To fix: "
                              f"{RESIGN_HINT}")
        if proof.key_id != self.key_arn:
            raise OriginError(f"{where} is signed with {proof.key_id}, not with dev's origin key "
                              f"{self.key_arn}: refusing to promote it")
        if proof.algorithm != ALGORITHM:
            raise OriginError(f"{where} is signed with {proof.algorithm}, not {ALGORITHM}: refusing to promote it")
        if checksum(row.script_body) != row.checksum:
            raise OriginError(f"{where}: the stored body does not match its checksum {row.checksum}: "
                              "the body was changed after dev applied it; refusing to promote it")
        signed = message(row.version, row.script_name, row.checksum, proof.source_version_id)
        try:
            self._public_key.verify(proof.signature, signed, ec.ECDSA(hashes.SHA256()))
        except InvalidSignature:
            raise OriginError(f"{where}: dev's signature does not match (version, name, checksum "
                              f"{row.checksum}, S3 version {proof.source_version_id or 'none'}): the row "
                              "was changed after dev signed it; refusing to promote it") from None
