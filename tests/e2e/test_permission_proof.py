"""Dynamic permission proof: every AWS call of the launch and the sync cycle, as AWS would judge it.

The stand-in recorded each call with its caller; `envsync_local.proof` evaluates them against the
policies as deployed (identity, key, bucket and trust policies with their conditions) plus the
KMS calls services make on the caller's behalf. The fault and security tests that run after the
cycle probe denials on purpose, so only the calls up to the end of the cycle are judged.
"""

from __future__ import annotations

import pytest

from envsync_local.cli import permission_proof

pytestmark = pytest.mark.launched


def test_every_call_of_the_launch_and_the_cycle_is_allowed(system):
    report = permission_proof(system.launched.local, limit=system.calls_after_cycle)
    print(report.summary())
    assert report.evaluated > 500, report.summary()
    callers = {caller.split(":")[-1] for caller in report.by_caller}
    # Sceptre as the deployer, CloudFormation as the execution role, the functions as theirs,
    # the engine as the upstream's source-reader role.
    assert {"role/envsync-deployer", "role/envsync-cfn-exec", "role/envsync-staging-sync",
            "role/envsync-prod-sync", "lambda.amazonaws.com"} <= callers, sorted(callers)
    assert not report.denied, "\n".join(str(item) for item in report.denied)


def test_the_dynamic_proof_names_a_removed_grant(system):
    def without_prefix_list_lookup(world) -> None:
        for arn, role in world.roles.items():
            if arn.endswith(":role/envsync-deployer"):
                for document in role.identity_policies:
                    document["Statement"] = [s for s in document["Statement"] if s.get("Sid") != "ResolvePrefixLists"]

    report = permission_proof(system.launched.local, limit=system.calls_after_cycle,
                              adjust_world=without_prefix_list_lookup)
    denied = [str(item) for item in report.denied]
    assert denied and all("ec2:DescribePrefixLists" in item and "envsync-deployer" in item for item in denied), denied


def test_the_dynamic_proof_judges_signing_and_reading_the_origin_key(system):
    """Proof of origin: dev's sync role signed (kms:Sign) and dev's deployer read the public key
    for staging's and prod's launches (kms:GetPublicKey); without the key policy's grants the
    proof names exactly those calls."""
    def without_origin_grants(world) -> None:
        for document in world.key_policies.values():
            document["Statement"] = [s for s in document["Statement"]
                                     if s.get("Sid") not in ("SyncRoleSigns", "DeployerReadsPublicKey")]

    report = permission_proof(system.launched.local, limit=system.calls_after_cycle,
                              adjust_world=without_origin_grants)
    denied = [str(item) for item in report.denied]
    assert any(item.startswith("arn:aws:iam::111111111111:role/envsync-dev-sync kms:Sign on arn:aws:kms:")
               for item in denied), denied
    assert any(item.startswith("arn:aws:iam::111111111111:role/envsync-deployer kms:GetPublicKey on "
                               "arn:aws:kms:") for item in denied), denied
    assert all(" kms:Sign " in item or " kms:GetPublicKey " in item for item in denied), denied
