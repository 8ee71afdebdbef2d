"""README "Add an env", done as a user would: a `qa` env between dev and staging, by editing
config/ only. The new chain validates, every stack of every env renders, and the permission
proof holds for the new env as for the others."""

from __future__ import annotations

import shutil
from pathlib import Path

from envsync_sceptre.config.envconfig import load_envs
from envsync_tools.proof.driver import static_findings
from tests.conftest import parse_templates, render_project
from tests.stacks.conftest import EnvStacks, copy_project

QA = """# The qa account, between dev and staging.
env: qa
account_id: "444444444444"
sceptre_role: arn:aws:iam::444444444444:role/envsync-deployer
cloudformation_service_role: arn:aws:iam::444444444444:role/envsync-cfn-exec
vpc_cidr: 10.4.0.0/16
upstream_env: dev
is_prod: false
upstream_account_id: "111111111111"
upstream_vpc_cidr: 10.1.0.0/16
upstream_sceptre_role: arn:aws:iam::111111111111:role/envsync-deployer
upstream_cloudformation_service_role: arn:aws:iam::111111111111:role/envsync-cfn-exec
downstream_env: staging
downstream_account_id: "222222222222"
downstream_vpc_cidr: 10.2.0.0/16
"""


def replace(path: Path, old: str, new: str) -> None:
    text = path.read_text()
    assert old in text, f"{old!r} not in {path}"
    path.write_text(text.replace(old, new))


def add_qa(config: Path) -> None:
    """Steps 1-2 of README "Add an env": the env's folder, then the neighbour keys of its links."""
    shutil.copytree(config / "staging", config / "qa")  # the env it resembles: a source with an upstream
    (config / "qa" / "config.yaml").write_text(QA)
    replace(config / "dev" / "config.yaml",
            'downstream_env: staging\ndownstream_account_id: "222222222222"\ndownstream_vpc_cidr: 10.2.0.0/16',
            'downstream_env: qa\ndownstream_account_id: "444444444444"\ndownstream_vpc_cidr: 10.4.0.0/16')
    replace(config / "staging" / "config.yaml",
            'upstream_env: dev\n', 'upstream_env: qa\n')
    replace(config / "staging" / "config.yaml",
            'upstream_account_id: "111111111111"\nupstream_vpc_cidr: 10.1.0.0/16\n'
            "upstream_sceptre_role: arn:aws:iam::111111111111:role/envsync-deployer\n"
            "upstream_cloudformation_service_role: arn:aws:iam::111111111111:role/envsync-cfn-exec",
            'upstream_account_id: "444444444444"\nupstream_vpc_cidr: 10.4.0.0/16\n'
            "upstream_sceptre_role: arn:aws:iam::444444444444:role/envsync-deployer\n"
            "upstream_cloudformation_service_role: arn:aws:iam::444444444444:role/envsync-cfn-exec")
    replace(config / "config.yaml", "sync_external_ids:\n  staging: envsync-dev-to-staging\n",
            "sync_external_ids:\n  qa: envsync-dev-to-qa\n  staging: envsync-qa-to-staging\n")


def test_a_fourth_env_is_a_config_only_change(tmp_path):
    project = copy_project(tmp_path)
    add_qa(project / "config")
    envs = load_envs(project / "config")  # the validator accepts the new chain
    assert (envs["qa"].upstream_env, envs["staging"].upstream_env) == ("dev", "qa")
    stacks = EnvStacks(parse_templates(render_project(project)), project)
    assert {name.split("/")[1] for name in stacks.rendered if name.startswith("qa/")} == {
        "bootstrap", "kms", "artifacts", "network", "aurora", "sync", "peering-upstream", "peering-downstream"}
    for env in ("dev", "qa", "staging", "prod"):
        findings = static_findings(stacks, env)
        assert not findings, "\n".join(str(finding) for finding in findings)
    # qa reads from dev and is read by staging: its source-reader role trusts staging's sync role.
    reader = stacks.evaluated("qa/sync").props("SourceReaderRole")["AssumeRolePolicyDocument"]["Statement"][0]
    assert reader["Condition"]["ArnEquals"]["aws:PrincipalArn"] == "arn:aws:iam::222222222222:role/envsync-staging-sync"
