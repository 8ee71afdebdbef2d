"""The permission proof fails on each blocker a first real deploy would hit.

Each case reintroduces one blocker on a copy of the project (config + templates), renders it
with Sceptre, runs the static proof and expects a finding naming the call and the caller.
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Callable

import pytest

from envsync_tools.proof.driver import static_findings
from tests.conftest import parse_templates, render_project
from tests.stacks.conftest import EnvStacks, copy_project


def remove_statement(path: Path, sid: str) -> None:
    """Drop the YAML list item `- Sid: <sid>` (and its indented body) from a template."""
    lines = path.read_text().splitlines(keepends=True)
    start = next(i for i, line in enumerate(lines) if re.match(rf"^\s*- Sid: {sid}$", line))
    indent = len(lines[start]) - len(lines[start].lstrip())
    end = start + 1
    while end < len(lines) and (not lines[end].strip() or len(lines[end]) - len(lines[end].lstrip()) > indent):
        end += 1
    path.write_text("".join(lines[:start] + lines[end:]))


def remove_lines(path: Path, *texts: str) -> None:
    text = path.read_text()
    for line in texts:
        assert line in text, f"{line!r} not in {path}"
        text = text.replace(line, "", 1)
    path.write_text(text)


def replace_text(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new, 1))


def use_hosted_rotation(path: Path) -> None:
    """The rotation as AWS's hosted function (a nested stack from the transform) instead of ours."""
    text = path.read_text()
    transform = "Transform: AWS::SecretsManager-2024-09-16\n"
    text = text.replace("AWSTemplateFormatVersion:", transform + "AWSTemplateFormatVersion:", 1)
    hosted = ("      HostedRotationLambda:\n        RotationType: MySQLSingleUser\n"
              '        RotationLambdaName: !Sub "envsync-${Env}-rotate-sync-writer"\n')
    assert "      RotationLambdaARN: !GetAtt RotationFunction.Arn\n" in text
    path.write_text(text.replace("      RotationLambdaARN: !GetAtt RotationFunction.Arn\n", hosted, 1))


def project_with(tmp_path: Path, reintroduce: Callable[[Path], None], folder: str = "templates") -> EnvStacks:
    """A copy of the project with one change (`reintroduce` gets its `folder`), rendered."""
    project = copy_project(tmp_path)
    reintroduce(project / folder)
    return EnvStacks(parse_templates(render_project(project)), project)


BLOCKERS = {
    "deployer cannot resolve the S3 prefix list": (
        lambda t: remove_statement(t / "bootstrap.yaml", "ResolvePrefixLists"),
        "envsync-deployer may not ec2:DescribePrefixLists"),
    "Lambda package upload cannot get a data key": (
        lambda t: remove_statement(t / "bootstrap.yaml", "EncryptUploadsThroughS3"),
        "envsync-deployer may not kms:GenerateDataKey on arn:aws:kms"),
    "key policy admits no Step Functions use": (
        lambda t: remove_lines(t / "kms.yaml", '                  - !Sub "states.${AWS::Region}.amazonaws.com"\n'),
        "may not kms:GenerateDataKey on arn:aws:kms:us-east-1:111111111111:key/"),
    "state machine role cannot use its key": (
        lambda t: remove_statement(t / "sync.yaml.j2", "EncryptStateMachineData"),
        "envsync-dev-sync-states may not kms:GenerateDataKey"),
    "hosted rotation, whose nested stack the execution role may not create": (
        lambda t: use_hosted_rotation(t / "aurora.yaml.j2"),
        "envsync-cfn-exec may not cloudformation:CreateStack on arn:aws:cloudformation:us-east-1:111111111111:"
        "stack/envsync-dev-aurora-SyncWriterSecretRotation"),
    "execution role cannot list a role's policies to delete it": (
        lambda t: remove_lines(t / "bootstrap.yaml", "                  - iam:ListRolePolicies\n"),
        "envsync-cfn-exec may not iam:ListRolePolicies on arn:aws:iam::111111111111:role/envsync-dev-sync"),
    "a role created without the permissions boundary": (
        lambda t: remove_lines(t / "sync.yaml.j2", '      PermissionsBoundary: !Sub "arn:${AWS::Partition}:iam::'
                                                   '${AWS::AccountId}:policy/envsync-boundary"\n'),
        "envsync-cfn-exec may not iam:CreateRole on arn:aws:iam::111111111111:role/envsync-dev-sync "),
    # Every resource an action is authorised on: the cluster's default option group.
    "execution role may not use RDS's default groups": (
        lambda t: remove_statement(t / "bootstrap.yaml", "DefaultDbGroups"),
        "envsync-cfn-exec may not rds:CreateDBCluster on arn:aws:rds:us-east-1:111111111111:og:default:aurora-mysql-5-7"
        " (create envsync-dev-aurora/Cluster (AWS::RDS::DBCluster): its og default:aurora-mysql-5-7)"),
    "approver cannot read the encrypted history of the run it answers": (
        lambda t: remove_statement(t / "bootstrap.yaml", "MachineDataKey"),
        "envsync-dev-approver may not kms:Decrypt on arn:aws:kms:us-east-1:111111111111:key/"),
}


@pytest.mark.parametrize("blocker", sorted(BLOCKERS))
def test_the_proof_fails_on_a_reintroduced_blocker(blocker, tmp_path):
    reintroduce, expected = BLOCKERS[blocker]
    project = copy_project(tmp_path)
    reintroduce(project / "templates")
    stacks = EnvStacks(parse_templates(render_project(project)), project)
    findings = [str(finding) for finding in static_findings(stacks, "dev")]
    assert any(expected in finding for finding in findings), "\n".join(findings) or "no finding"


# Proof of origin: dev's sync role signs with dev's signing key; staging's and prod's launches
# read its public key as dev's deployer. Each grant is needed, and the proof says which is missing.
ORIGIN_BLOCKERS = {
    "the signing key's policy does not admit dev's sync role": (
        lambda t: remove_statement(t / "kms.yaml", "SyncRoleSigns"), "dev",
        "envsync-dev-sync may not kms:Sign on arn:aws:kms:us-east-1:111111111111:key/5"),
    "dev's sync role has no kms:Sign": (
        lambda t: replace_text(t / "sync.yaml.j2", "                  Action: kms:Sign\n",
                               "                  Action: kms:Verify\n"), "dev",
        "envsync-dev-sync may not kms:Sign on arn:aws:kms:us-east-1:111111111111:key/5"),
    "the permissions boundary leaves out kms:Sign": (
        lambda t: remove_lines(t / "bootstrap.yaml", "              - kms:Sign\n"), "dev",
        "envsync-dev-sync may not kms:Sign"),
    "dev's deployer has no kms:GetPublicKey": (
        lambda t: remove_statement(t / "bootstrap.yaml", "ReadOriginPublicKey"), "prod",
        "arn:aws:iam::111111111111:role/envsync-deployer may not kms:GetPublicKey on "
        "arn:aws:kms:us-east-1:111111111111:key/5"),
    "the signing key's policy does not admit dev's deployer": (
        lambda t: remove_statement(t / "kms.yaml", "DeployerReadsPublicKey"), "staging",
        "arn:aws:iam::111111111111:role/envsync-deployer may not kms:GetPublicKey"),
}


@pytest.mark.parametrize("blocker", sorted(ORIGIN_BLOCKERS))
def test_the_proof_covers_signing_and_reading_the_origin_key(blocker, tmp_path):
    reintroduce, env, expected = ORIGIN_BLOCKERS[blocker]
    findings = [str(finding) for finding in static_findings(project_with(tmp_path, reintroduce), env)]
    assert any(expected in finding for finding in findings), "\n".join(findings) or "no finding"
