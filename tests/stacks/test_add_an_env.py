"""README "Add an env", done as a user would: a `qa` env between dev and staging is one entry in
config/config.yaml `envs:` and one folder of stack files copied from an env that, like qa, has
an upstream and a downstream. Nothing else changes:
the new chain validates, every stack of every env renders, the permission proof holds for the
new env as for the others, and the CLI's chain puts qa between dev and staging."""

from __future__ import annotations

import shutil
from pathlib import Path

from envsync.cli.main import upstream_env_of
from envsync_sceptre.config.envconfig import load_envs
from envsync_tools.proof.driver import static_findings
from tests.chain import chain
from tests.conftest import parse_templates, render_project
from tests.stacks.conftest import EnvStacks, copy_project

QA_ENTRY = """  qa:
    account_id: "444444444444"
    vpc_cidr: 10.4.0.0/16
    external_id: envsync-dev-to-qa
"""


def add_qa(config: Path) -> None:
    """README "Add an env": the map entry (after dev: qa pulls from dev, staging from qa) and a
    copy of a middle env's folder (no file in it names its env)."""
    middle = chain()[1]
    shared = config / "config.yaml"
    text = shared.read_text()
    assert f"\n  {middle}:\n" in text
    text = text.replace(f"\n  {middle}:\n", f"\n{QA_ENTRY}  {middle}:\n", 1)
    shared.write_text(text)
    shutil.copytree(config / middle, config / "qa")


def changed_files(before: Path, after: Path) -> set:
    """Files added or changed under `after` relative to `before`."""
    return {str(path.relative_to(after)) for path in after.rglob("*") if path.is_file()
            and (not (before / path.relative_to(after)).is_file()
                 or (before / path.relative_to(after)).read_bytes() != path.read_bytes())}


def test_a_fourth_env_is_one_map_entry_and_one_folder(tmp_path):
    project = copy_project(tmp_path)
    add_qa(project / "config")
    qa_files = {f"qa/{path.name}" for path in (project / "config" / "qa").iterdir()}
    assert changed_files(Path(__file__).resolve().parents[2] / "config", project / "config") == {
        "config.yaml", *qa_files}
    envs = load_envs(project / "config")  # the validator accepts the new chain
    assert chain(project / "config") == ("dev", "qa", "staging", "prod")
    assert (envs["qa"].upstream_env, envs["staging"].upstream_env) == ("dev", "qa")
    assert envs["qa"].account_id == "444444444444" and envs["qa"].vpc_cidr == "10.4.0.0/16"
    stacks = EnvStacks(parse_templates(render_project(project)), project)
    assert {name.split("/")[1] for name in stacks.rendered if name.startswith("qa/")} == {
        "bootstrap", "kms", "artifacts", "network", "aurora", "sync", "peering-upstream", "peering-downstream"}
    for env in chain(project / "config"):
        findings = static_findings(stacks, env)
        assert not findings, "\n".join(str(finding) for finding in findings)
    # qa reads from dev and is read by staging: its source-reader role trusts staging's sync role,
    # staging's peering requests qa's VPC, and dev's accepter side now faces qa.
    reader = stacks.evaluated("qa/sync").props("SourceReaderRole")["AssumeRolePolicyDocument"]["Statement"][0]
    assert reader["Condition"]["ArnEquals"]["aws:PrincipalArn"] == "arn:aws:iam::222222222222:role/envsync-staging-sync"
    assert stacks.stacks["staging/peering-upstream"].sceptre_user_data["peer_cidr"] == "10.4.0.0/16"
    assert stacks.stacks["dev/peering-downstream"].sceptre_user_data["peer_account_id"] == "444444444444"


def test_the_cli_compares_staging_with_qa(tmp_path, monkeypatch):
    """`envsync --env staging` compares against its upstream as envsync-local describes it from
    config/: qa once qa sits between dev and staging."""
    from envsync_local.cli import LocalStack

    project = copy_project(tmp_path, with_templates=False)
    add_qa(project / "config")
    local = LocalStack(tmp_path / "local", load_envs(project / "config"), db_port_base=40000)
    local.write_descriptions()
    assert [upstream_env_of(env, local.envs_file) for env in ("dev", "qa", "staging", "prod")] == [
        None, "dev", "qa", "staging"]
