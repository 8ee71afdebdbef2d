"""`!envsync_origin_key {config: <project>/config, attribute: KeyArn | PublicKey}`: the source
env's signing key (proof of origin, lambda_code/envsync/migrations/origin.py), for a downstream env's
sync stack.

Read once at deploy time with kms:GetPublicKey as the source env's deployer role (the key is
`alias/envsync/<source_env>-origin` in the account of the chain's first env, read from config/), so
the functions verify signatures locally and never call the source account per run. PublicKey
resolves to the DER SubjectPublicKeyInfo in base64 (ENVSYNC_ORIGIN_PUBLIC_KEY).
"""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any, Dict, List, Mapping, Tuple

from botocore.exceptions import ClientError
from sceptre.exceptions import SceptreException
from sceptre.resolvers import Resolver

from envsync_sceptre.config.envconfig import EnvConfigError, load_envs, promotion_order
from envsync_sceptre.resolvers.arguments import require_mapping

ATTRIBUTES = ("KeyArn", "PublicKey")


def origin_key_alias(source_env: str, account_id: str, region: str) -> str:
    """The alias ARN the kms stack gives the source env's signing key."""
    return f"arn:aws:kms:{region}:{account_id}:alias/envsync/{source_env}-origin"


class OriginKey(Resolver):
    """Argument: {config: the project's config directory, attribute: KeyArn | PublicKey}."""

    def setup(self) -> None:
        require_mapping(self, "!envsync_origin_key", ("config", "attribute"))
        if self.argument["attribute"] not in ATTRIBUTES:
            self.raise_invalid_argument_error(f"!envsync_origin_key attribute must be one of {', '.join(ATTRIBUTES)}, "
                                              f"got {self.argument['attribute']!r}")

    def _target(self) -> Tuple[str, str, str, str]:
        """(source env, its deployer role, the key's alias ARN, the attribute asked for)."""
        argument: Mapping[str, Any] = self.argument if isinstance(self.argument, dict) else {}
        config, attribute = argument.get("config"), argument.get("attribute")
        if not config or attribute not in ATTRIBUTES:
            raise SceptreException(f"{self.stack.name}: !envsync_origin_key needs {{config: <project>/config, "
                                   f"attribute: {' | '.join(ATTRIBUTES)}}}, got {self.argument!r}")
        try:
            envs = load_envs(Path(str(config)))
        except EnvConfigError as error:
            raise SceptreException(f"{self.stack.name}: {error}") from error
        source = envs[promotion_order(envs)[0]]  # the chain's first env authors and signs
        return source.name, source.sceptre_role, origin_key_alias(source.name, source.account_id,
                                                                  self.stack.region), str(attribute)

    def required_calls(self) -> List[Dict[str, Any]]:
        """What this resolver calls, as the source env's deployer (checked by the permission proof)."""
        source_env, role, alias, _ = self._target()
        return [{"action": "kms:GetPublicKey", "resource": alias, "role": role, "env": source_env}]

    def resolve(self) -> str:
        _, role, alias, attribute = self._target()
        try:
            response = self.stack.connection_manager.call(
                service="kms", command="get_public_key", kwargs={"KeyId": alias}, sceptre_role=role)
        except ClientError as err:
            raise SceptreException(
                f"{self.stack.name}: cannot read the origin key {alias} as {role}: {err}; launch the "
                "source env's kms stack first") from err
        if attribute == "KeyArn":
            key = str(response["KeyId"])  # AWS answers the key's ARN; a bare key id is completed
            return key if key.startswith("arn:") else alias.split(":alias/")[0] + f":key/{key}"
        return base64.b64encode(bytes(response["PublicKey"])).decode("ascii")
