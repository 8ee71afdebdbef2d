"""What must stay denied (tools/envsync_tools/proof/must_stay_denied.yaml): every call of the
reviewed list is refused in every env, and a grant that allows one is named by the proof."""

from __future__ import annotations

from pathlib import Path

import pytest

from envsync_tools.proof.must_stay_denied import BadEntry, load_list, must_stay_denied, project_report
from envsync_tools.proof.policy import Request, explain
from tests.chain import chain
from tests.stacks.test_permission_proof_catches import project_with, replace_text

ENVS = chain()  # config/config.yaml envs:, upstream first


@pytest.mark.parametrize("env", ENVS)
def test_every_call_that_must_stay_denied_is_refused(env_stacks, env: str):
    report = must_stay_denied(env_stacks, env)
    assert not report.leaks, "\n".join(str(leak) for leak in report.leaks)
    assert report.refused > 0
    # An entry marked open (allowed for a stated reason) that is refused now must lose its mark.
    assert not report.open_refused, [f"{check.caller} {check.request}" for check in report.open_refused]


def test_every_entry_is_asked_somewhere_and_each_caller_exists(env_stacks):
    """A list entry that applies in no env, or names a role no stack has, is a mistake in the list
    (unknown callers and placeholders raise)."""
    asked = {env: must_stay_denied(env_stacks, env) for env in ENVS}
    assert all(report.refused for report in asked.values())
    entries = load_list()
    assert {"prod", "all"} <= {entry.get("in", "all") for entry in entries}
    assert all(str(entry["why"]).strip() for entry in entries)


def add_statement(path: Path, anchor: str, statement: str) -> None:
    """Insert YAML `statement` (already indented) before the line `anchor`."""
    replace_text(path, anchor, statement + anchor)


GIVE_DEPLOYER_SECRETS = """\
              - Sid: ReadSecrets
                Effect: Allow
                Action: secretsmanager:GetSecretValue
                Resource: "*"
"""

ONLY_CHAIN_PRINCIPALS = ('{"StringEquals": {"aws:PrincipalAccount": ref("TrustedAccountIds")},\n'
                         '                      "StringEqualsIfExists"')

LEAKS = {
    "the deployer may read prod's secrets": (
        lambda t: add_statement(t / "bootstrap.yaml", "              - Sid: ResolvePrefixLists\n",
                                GIVE_DEPLOYER_SECRETS),
        "prod",
        "role/envsync-deployer may secretsmanager:GetSecretValue on "
        "arn:aws:secretsmanager:us-east-1:333333333333:secret:envsync/prod/db/envsync_writer-AbCdEf"),
    # The key policy is the gate: the execution role's own policy has kms:* (it creates keys).
    "the signing key admits every envsync role": (
        lambda t: replace_text(t / "kms.yaml", ':role/envsync-${Env}-sync"\n', ':role/envsync-*"\n'),
        "dev",
        "role/envsync-cfn-exec may kms:Sign on arn:aws:kms:us-east-1:111111111111:key/5"),
    "an interface endpoint admits any account": (
        lambda t: replace_text(t / "network.py", ONLY_CHAIN_PRINCIPALS, '{"StringEqualsIfExists"'),
        "staging",
        "endpoint SecretsmanagerEndpoint admits secretsmanager:GetSecretValue on "
        "arn:aws:secretsmanager:us-east-1:222222222222:secret:envsync/staging/db/envsync_writer-AbCdEf "
        "for arn:aws:iam::999999999999:role/outsider"),
}


@pytest.mark.parametrize("case", sorted(LEAKS))
def test_a_grant_that_allows_an_entry_is_named(case, tmp_path):
    reintroduce, env, expected = LEAKS[case]
    leaks = [str(leak) for leak in must_stay_denied(project_with(tmp_path, reintroduce), env).leaks]
    assert any(expected in leak for leak in leaks), "\n".join(leaks) or "no leak"


def test_a_bad_entry_is_refused_with_its_place(env_stacks, tmp_path):
    listed = tmp_path / "list.yaml"
    listed.write_text("- caller: deployer\n  action: s3:GetObject\n  resource: '*'\n")
    with pytest.raises(BadEntry, match=r"list.yaml entry 1: missing \['why'\]"):
        load_list(listed)
    unknown = [{"caller": "envsync-admin", "action": "s3:GetObject", "resource": "*", "why": "x"}]
    with pytest.raises(BadEntry, match="entry 1: no caller 'envsync-admin' in dev"):
        must_stay_denied(env_stacks, "dev", unknown)
    placeholder = [{"caller": "deployer", "action": "s3:GetObject", "resource": "{bucket}", "why": "x"}]
    with pytest.raises(BadEntry, match="unknown placeholder 'bucket'"):
        must_stay_denied(env_stacks, "dev", placeholder)


def test_arn_equals_takes_wildcards_as_iam_does():
    """IAM's ArnEquals matches `*` and `?` per ARN component like ArnLike: a key policy that
    names `role/envsync-*` under ArnEquals admits every such role (the evaluator must see it)."""
    policy = {"Statement": [{"Effect": "Allow", "Action": "kms:Sign", "Resource": "*",
                             "Condition": {"ArnEquals": {"aws:PrincipalArn": "arn:aws:iam::1:role/envsync-*"}}}]}
    def asked(role: str) -> Request:
        return Request("kms:Sign", "arn:aws:kms:us-east-1:1:key/k", context={"aws:PrincipalArn": role})

    assert explain([policy], asked("arn:aws:iam::1:role/envsync-x")).allowed
    assert not explain([policy], asked("arn:aws:iam::1:role/admin")).allowed


def test_the_figure_make_local_prints_sums_every_env(env_stacks):
    total = project_report(env_stacks)
    assert total.refused == sum(must_stay_denied(env_stacks, env).refused for env in ENVS)
    assert not total.leaks
