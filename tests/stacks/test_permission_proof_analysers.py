"""Known IAM risk patterns: cloudsplaining and parliament over every rendered policy; each
finding is fixed or reviewed (tools/envsync_tools/proof/analyser_findings.yaml)."""

from __future__ import annotations

import pytest

from envsync_tools.proof.analysers import (
    BadListEntry,
    RenderedPolicy,
    analyse,
    load_reviewed,
    rendered_policies,
    unreviewed,
)
from tests.stacks.test_permission_proof_catches import project_with, replace_text


@pytest.fixture(scope="module")
def findings(env_stacks):
    return analyse(rendered_policies(env_stacks))


def test_every_policy_of_every_env_is_analysed(env_stacks):
    policies = rendered_policies(env_stacks)
    labels = {(policy.env, policy.label) for policy in policies}
    assert ("prod", "bootstrap/PermissionsBoundary") in labels and ("dev", "kms/SigningKey") in labels
    assert ("staging", "sync/SyncRole/trust") in labels and ("prod", "network/S3Endpoint") in labels
    assert {policy.kind for policy in policies} == {"identity", "resource"}


def test_every_finding_is_fixed_or_reviewed(findings):
    open_findings, stale = unreviewed(findings, load_reviewed())
    assert not open_findings, "\n".join(str(finding) for finding in open_findings)
    assert not stale, f"reviewed entries no analyser reports any more (remove them): {stale}"


def test_a_new_risk_is_named():
    risky = RenderedPolicy("dev", "sync/SyncRole/sync", "identity", {"Version": "2012-10-17", "Statement": [
        {"Effect": "Allow", "Action": ["iam:PutRolePolicy", "s3:GetObjekt"], "Resource": "*"}]})
    named = [str(finding) for finding in unreviewed(analyse([risky]), load_reviewed())[0]]
    assert "cloudsplaining PrivilegeEscalation in sync/SyncRole/sync (dev): PutRolePolicy: iam:putrolepolicy" in named
    assert any(line.startswith("parliament UNKNOWN_ACTION in sync/SyncRole/sync (dev)") and "s3:GetObjekt" in line
               for line in named), named


def test_a_typo_in_a_template_is_named(tmp_path):
    stacks = project_with(tmp_path, lambda t: replace_text(t / "sync.yaml.j2", "                  Action: kms:Sign\n",
                                                           "                  Action: kms:Sing\n"))
    named = [str(finding) for finding in unreviewed(analyse(rendered_policies(stacks)), load_reviewed())[0]]
    assert any(line.startswith("parliament UNKNOWN_ACTION in sync/SyncRole/sync (dev)") for line in named), named


def test_a_reviewed_entry_needs_its_reason(tmp_path):
    listed = tmp_path / "reviewed.yaml"
    listed.write_text("- tool: parliament\n  check: RESOURCE_STAR\n  policy: kms/EnvKey\n  why: ' '\n")
    with pytest.raises(BadListEntry, match=r"reviewed\.yaml entry 1: missing"):
        load_reviewed(listed)
