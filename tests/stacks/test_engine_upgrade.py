"""Aurora MySQL 3 (8.0) is one config value: `db_engine_version` switched in a copy of config/,
both projects rendered by Sceptre and evaluated for prod, and the change between them read
against the CloudFormation resource schemas cfn-lint ships: which properties change, and
whether any of them is create-only (a replacement: a new, empty cluster) or an in-place update.
"""

from __future__ import annotations

import shutil
from typing import Any, Dict, Set

import pytest
from cfnlint.schema import PROVIDER_SCHEMA_MANAGER

from tests.chain import chain
from tests.conftest import PROJECT_ROOT, parse_templates, render_project
from tests.stacks.conftest import EnvStacks

OLD, NEW = "5.7.mysql_aurora.2.12.5", "8.0.mysql_aurora.3.10.3"


@pytest.fixture(scope="module")
def upgraded(tmp_path_factory) -> EnvStacks:
    project = tmp_path_factory.mktemp("upgrade")
    for part in ("config", "templates"):
        shutil.copytree(PROJECT_ROOT / part, project / part)
    shared = project / "config" / "config.yaml"
    text = shared.read_text()
    assert f"\ndb_engine_version: {OLD}\n" in text
    shared.write_text(text.replace(f"\ndb_engine_version: {OLD}\n", f"\ndb_engine_version: {NEW}\n"))
    return EnvStacks(parse_templates(render_project(project)), project)


def create_only(resource_type: str) -> Set[str]:
    """Properties whose change replaces the resource (create-only, and conditionally so)."""
    schema = PROVIDER_SCHEMA_MANAGER.get_resource_schema("us-east-1", resource_type).schema
    paths = schema.get("createOnlyProperties", []) + schema.get("conditionalCreateOnlyProperties", [])
    return {path.split("/")[2] for path in paths if path.startswith("/properties/")}


def mentions(value: Any, names: Set[str]) -> bool:
    """Does `value` take a Ref or GetAtt of one of `names` (whose physical id changes)?"""
    if isinstance(value, dict):
        if value.get("Ref") in names or (value.get("Fn::GetAtt") or [None])[0] in names:
            return True
        return any(mentions(item, names) for item in value.values())
    return isinstance(value, list) and any(mentions(item, names) for item in value)


def change_set(before: Dict[str, dict], after: Dict[str, dict]) -> Dict[str, Dict[str, Any]]:
    """resource -> {"changed": properties, "replaced": bool}, replacements propagated to the
    resources that reference them, as CloudFormation plans an update."""
    plan: Dict[str, Dict[str, Any]] = {}
    replaced: Set[str] = set()
    while True:
        for name, resource in after.items():
            old, new = before[name].get("Properties", {}), resource.get("Properties", {})
            changed = {key for key in set(old) | set(new) if old.get(key) != new.get(key)
                       or mentions(new.get(key), replaced)}
            if changed:
                plan[name] = {"changed": changed, "replaced": bool(changed & create_only(resource["Type"]))}
        now = {name for name, entry in plan.items() if entry["replaced"]}
        if now == replaced:
            return plan
        replaced = now


def test_the_switch_changes_only_the_engine_version_parameter(env_stacks: EnvStacks, upgraded: EnvStacks):
    for env in chain():
        name = f"{env}/aurora"
        # Same template body: the version is a parameter, the family is derived from it.
        assert upgraded.rendered[name] == env_stacks.rendered[name]
        before, after = env_stacks.parameter_values(name), upgraded.parameter_values(name)
        assert {key for key in before if before[key] != after[key]} == {"EngineVersion"}
        assert (before["EngineVersion"], after["EngineVersion"]) == (OLD, NEW)


@pytest.mark.parametrize("env", chain())
def test_5_7_to_8_0_updates_the_cluster_in_place(env_stacks: EnvStacks, upgraded: EnvStacks, env: str):
    before, after = env_stacks.evaluated(f"{env}/aurora"), upgraded.evaluated(f"{env}/aurora")
    plan = change_set(before.resources, after.resources)
    assert plan == {
        # Family is create-only: a new group of the 8.0 family; it has no fixed name, so the
        # new one is created first and the old one deleted after the cluster moved.
        "ClusterParameterGroup": {"changed": {"Family"}, "replaced": True},
        # The cluster itself: an update (ModifyDBCluster with the new version and group).
        "Cluster": {"changed": {"EngineVersion", "DBClusterParameterGroupName"}, "replaced": False},
    }, plan
    assert before.props("ClusterParameterGroup")["Family"] == "aurora-mysql5.7"
    assert after.props("ClusterParameterGroup")["Family"] == "aurora-mysql8.0"
    assert "DBClusterParameterGroupName" not in after.props("ClusterParameterGroup")
    assert after.props("Cluster")["EngineVersion"] == NEW
    # The instances follow the cluster: none pins a version of its own.
    instances = after.of_type("AWS::RDS::DBInstance")
    assert sorted(instances) == (["ReaderInstance", "WriterInstance"] if env == "prod" else ["WriterInstance"])
    assert all("EngineVersion" not in instance["Properties"] for instance in instances.values())


def test_the_schema_reading_would_see_a_replacement(env_stacks: EnvStacks):
    """The same reading flags a change that does replace the cluster (a new KMS key)."""
    before = env_stacks.evaluated("dev/aurora").resources
    after = {name: {**resource, "Properties": dict(resource.get("Properties", {}))} for name, resource in
             before.items()}
    after["Cluster"]["Properties"]["KmsKeyId"] = "arn:aws:kms:us-east-1:111111111111:key/other"
    assert change_set(before, after)["Cluster"] == {"changed": {"KmsKeyId"}, "replaced": True}
    assert {"KmsKeyId", "StorageEncrypted", "DBClusterIdentifier"} <= create_only("AWS::RDS::DBCluster")
    assert not {"EngineVersion", "DBClusterParameterGroupName"} & create_only("AWS::RDS::DBCluster")

