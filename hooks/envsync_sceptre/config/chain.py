"""The promotion chain: `envs:` in config/config.yaml, the one place an env's account id, VPC
CIDR and place in the chain are written (docs/ARCHITECTURE.md §4).

The map's order is the chain's: the first env is the source (where schema changes are
authored), every other env pulls from the env before it (through the upstream's source-reader
role, with the env's `external_id`), and a prod env (`is_prod: true`) comes last, since prod is
never a source. Everything about an env's neighbours (their
accounts, CIDRs, roles) follows from the map by `env_keys`; each config/<env>/config.yaml
gets those keys through `{{ envsync_env_keys() }}` (`config/jinja_extension.py`, which
config/config.yaml's `j2_environment` loads) and writes only what differs per env.
"""

from __future__ import annotations

import ipaddress
import re
from typing import Any, Dict, List, Mapping, Optional

import yaml

CHAIN_KEY = "envs"
CHAIN_FILE = "config/config.yaml"
ENTRY_KEYS = ("account_id", "vpc_cidr", "is_prod", "external_id")
ACCOUNT_ID = re.compile(r"^\d{12}$")
EXTERNAL_ID = re.compile(r"^[\w+=,.@:/-]{2,1224}$")  # what sts:AssumeRole accepts as ExternalId
# What env_keys derives: a per-env file that sets one of them itself contradicts the map.
DERIVED_KEYS = (
    "env", "account_id", "vpc_cidr", "is_prod", "sceptre_role", "cloudformation_service_role", "source_env",
    "upstream_env", "upstream_account_id", "upstream_vpc_cidr", "upstream_sceptre_role",
    "upstream_external_id", "downstream_env", "downstream_account_id", "downstream_vpc_cidr",
    "downstream_external_id",
)


class ChainError(ValueError):
    """The `envs:` map cannot give the asked env its keys."""


def chain_names(shared: Mapping[str, Any]) -> List[str]:
    """The env names in chain order (upstream first); empty when there is no usable map."""
    envs = shared.get(CHAIN_KEY)
    return [str(name) for name in envs] if isinstance(envs, Mapping) else []


def entry(shared: Mapping[str, Any], name: str) -> Mapping[str, Any]:
    """The env's entry in the map; an unknown env is an error naming the known ones."""
    envs = shared.get(CHAIN_KEY)
    if not isinstance(envs, Mapping) or name not in envs:
        raise ChainError(f"{CHAIN_FILE}: {CHAIN_KEY}: no entry '{name}' "
                         f"(known: {', '.join(chain_names(shared)) or 'none'}); add one per env folder")
    found = envs[name]
    return found if isinstance(found, Mapping) else {}


def role_arn(shared: Mapping[str, Any], account_id: str, role_key: str) -> str:
    """A bootstrap role's ARN in an account (the role names are shared values)."""
    return f"arn:aws:iam::{account_id}:role/{shared.get(role_key)}"


def env_keys(shared: Mapping[str, Any], name: str) -> Dict[str, Any]:
    """The keys the stacks read about env `name` and its neighbours, derived from the map."""
    order = chain_names(shared)
    this = entry(shared, name)
    index = order.index(name)
    account = str(this.get("account_id"))
    keys: Dict[str, Any] = {
        "env": name,
        "account_id": account,
        "vpc_cidr": this.get("vpc_cidr"),
        "is_prod": bool(this.get("is_prod", False)),
        "sceptre_role": role_arn(shared, account, "deployer_role_name"),
        "cloudformation_service_role": role_arn(shared, account, "cfn_execution_role_name"),
        "source_env": order[0],
        "upstream_env": order[index - 1] if index > 0 else None,
    }
    if index > 0:
        upstream = entry(shared, order[index - 1])
        keys.update(upstream_account_id=str(upstream.get("account_id")), upstream_vpc_cidr=upstream.get("vpc_cidr"),
                    upstream_sceptre_role=role_arn(shared, str(upstream.get("account_id")), "deployer_role_name"),
                    upstream_external_id=this.get("external_id"))
    if index + 1 < len(order):
        downstream = entry(shared, order[index + 1])
        keys.update(downstream_env=order[index + 1], downstream_account_id=str(downstream.get("account_id")),
                    downstream_vpc_cidr=downstream.get("vpc_cidr"),
                    downstream_external_id=downstream.get("external_id"))
    return keys


def chain_problems(shared: Mapping[str, Any], folders: List[str]) -> List[str]:
    """The map itself: one well-formed entry per env folder, own accounts, disjoint CIDRs,
    prod last (never a source)."""
    envs = shared.get(CHAIN_KEY)
    where = f"{CHAIN_FILE}: {CHAIN_KEY}"
    if not isinstance(envs, Mapping) or not envs:
        return [f"{where}: missing; one entry per env (account_id, vpc_cidr), upstream first"]
    problems: List[str] = []
    networks: Dict[str, Any] = {}
    accounts: Dict[str, str] = {}
    for name, value in envs.items():
        if not isinstance(value, Mapping):
            problems.append(f"{where}.{name}: expected a mapping of {', '.join(ENTRY_KEYS)}")
            continue
        unknown = sorted(set(value) - set(ENTRY_KEYS))
        if unknown:
            problems.append(f"{where}.{name}: unknown key(s) {', '.join(unknown)} (allowed: {', '.join(ENTRY_KEYS)})")
        account = str(value.get("account_id") or "")
        if not ACCOUNT_ID.match(account):
            problems.append(f"{where}.{name}: account_id '{value.get('account_id')}' is not a 12-digit AWS account id "
                            "(quote it: \"012345678901\")")
        elif account in accounts:
            problems.append(f"{where}.{name}: account_id {account} is also {accounts[account]}'s; "
                            "each env needs its own account")
        else:
            accounts[account] = str(name)
        problems += _cidr_problems(f"{where}.{name}", str(name), value.get("vpc_cidr"), networks)
        if not isinstance(value.get("is_prod", False), bool):
            problems.append(f"{where}.{name}: is_prod '{value.get('is_prod')}' must be true or false")
        problems += _external_id_problems(f"{where}.{name}", value.get("external_id"), first=name == next(iter(envs)))
    order = chain_names(shared)
    for name in order[:-1]:
        if isinstance(envs[name], Mapping) and envs[name].get("is_prod") is True:
            problems.append(f"{where}.{name}: a prod env must be last in the chain: "
                            f"'{order[order.index(name) + 1]}' would pull from it, and prod is never a sync source")
    for folder in sorted(set(folders) - set(order)):
        problems.append(f"config/{folder}/: no entry '{folder}' in {where} (known: {', '.join(order)})")
    for name in order:
        if name not in folders:
            problems.append(f"{where}.{name}: no folder config/{name}/ with its stack files")
    return problems


def _external_id_problems(where: str, external_id: Any, first: bool) -> List[str]:
    if first:
        return [f"{where}: external_id set on the chain's first env, which pulls from no upstream"] \
            if external_id is not None else []
    if not EXTERNAL_ID.match(str(external_id or "")):
        return [f"{where}: external_id '{external_id}' must be the sts:ExternalId this env's sync passes to its "
                "upstream's source-reader role (2-1224 characters of letters, digits and +=,.@:/-)"]
    return []


def _cidr_problems(where: str, name: str, cidr: Any, seen: Dict[str, Any]) -> List[str]:
    try:
        network = ipaddress.ip_network(str(cidr), strict=True)
    except ValueError as error:
        return [f"{where}: vpc_cidr '{cidr}' is not a valid CIDR ({error})"]
    if network.version != 4 or not 16 <= network.prefixlen <= 24:
        return [f"{where}: vpc_cidr '{cidr}' must be an IPv4 block from /16 to /24"]
    problems = [f"{where}: vpc_cidr {cidr} overlaps {other}'s {seen[other]}; peered VPCs need disjoint CIDRs"
                for other in seen if network.overlaps(seen[other])]
    seen[name] = network
    return problems


def env_keys_yaml(shared: Mapping[str, Any], name: str) -> str:
    """`env_keys` as the YAML lines a config/<env>/config.yaml renders to."""
    return yaml.safe_dump(env_keys(shared, name), sort_keys=False, default_flow_style=False).rstrip("\n")


def own_keys_problems(label: str, rendered: Mapping[str, Any], shared: Mapping[str, Any],
                      name: str) -> List[str]:
    """A per-env file whose chain keys are not the map's (set by hand, or the derived line gone)."""
    try:
        want = env_keys(shared, name)
    except ChainError as error:
        return [str(error)]
    problems = []
    for key in DERIVED_KEYS:
        have: Optional[Any] = rendered.get(key)
        if str(have) != str(want.get(key)):
            wanted = "none" if want.get(key) is None else f"'{want.get(key)}'"
            problems.append(f"{label}: {key} '{have}' is not {CHAIN_FILE} {CHAIN_KEY}.{name}'s ({wanted}): "
                            "an env's account, CIDR and neighbours come only from the map "
                            "(the file's `{{ envsync_env_keys() }}` line)")
    return problems
