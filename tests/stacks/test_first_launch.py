"""What a first `sceptre launch` into real accounts needs that moto does not check (issue 21):
a failed create can be retried, and no stack claims what AWS services own."""

from __future__ import annotations

from typing import Dict

import pytest

ENVS = ("dev", "staging", "prod")


def test_kept_resources_go_with_a_failed_create(rendered_templates: Dict[str, dict]):
    """`Retain` survives the rollback of a failed create too: a fixed-name bucket, log group,
    secret or parameter would then stop the retry at "already exists"."""
    kept = {}
    for name, template in rendered_templates.items():
        for logical_id, resource in template.get("Resources", {}).items():
            policy = resource.get("DeletionPolicy")
            assert policy != "Retain", f"{name}/{logical_id}: DeletionPolicy Retain (use RetainExceptOnCreate)"
            if policy == "RetainExceptOnCreate":
                assert resource.get("UpdateReplacePolicy") == "Retain", f"{name}/{logical_id}"
                kept.setdefault(name, set()).add(logical_id)
    # What outlives a stack: buckets and keys everywhere; prod's secrets, parameters and logs.
    for env in ENVS:
        assert {"ArtifactsBucket"} <= kept[f"{env}/artifacts"] and "EnvKey" in kept[f"{env}/kms"]
        assert "MigrationBucket" in kept[f"{env}/sync"]
    assert {"SyncWriterSecret", "WriterConnectionParameter", "ClusterAuditLogGroup",
            "SecureParameterLogGroup"} <= kept["prod/aurora"]
    assert "FlowLogGroup" in kept["prod/network"]
    assert "SyncWriterSecret" not in kept.get("dev/aurora", set())


@pytest.mark.parametrize("env", ENVS)
def test_no_stack_creates_the_log_group_rds_owns(rendered_templates: Dict[str, dict], env: str):
    """Enhanced Monitoring writes to `RDSOSMetrics`, one log group per account that RDS creates
    and owns: a stack creating it fails where it exists and deleting it removes it for every
    instance of the account."""
    for name, template in rendered_templates.items():
        if name.startswith(f"{env}/"):
            for logical_id, resource in template.get("Resources", {}).items():
                if resource["Type"] == "AWS::Logs::LogGroup":
                    assert resource["Properties"].get("LogGroupName") != "RDSOSMetrics", f"{name}/{logical_id}"


@pytest.mark.parametrize("upstream", ("dev", "staging"))
def test_peer_security_group_rule_waits_for_the_active_peering(env_stacks, upstream: str):
    """A rule naming the peer VPC's group needs an active peering: the downstream's Lambda
    group exists (its network stack) before its peering stack has created and accepted the
    connection, so the rule comes only with the connection id (that stack's output)."""
    from tests.stacks.cfn_eval import Evaluated

    name = f"{upstream}/peering-downstream"
    values = env_stacks.parameter_values(name)
    assert values["PeeringConnectionId"] and values["PeerLambdaSecurityGroupId"]
    assert "DbIngressFromPeerMysql" in env_stacks.evaluated(name).resources
    before_peering = Evaluated(env_stacks.rendered[name], {**values, "PeeringConnectionId": ""},
                               env_stacks.account(upstream))
    assert "DbIngressFromPeerMysql" not in before_peering.resources
