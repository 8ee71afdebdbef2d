"""Every stack of every env, its first create failing at its last resource: each rolls back
(ROLLBACK_COMPLETE), and its relaunch (Sceptre deletes a ROLLBACK_COMPLETE stack and creates
it again; the bootstrap stack's administrator deletes and creates) succeeds. A fixed-name
resource that the rollback keeps (`DeletionPolicy: Retain`) stops that retry at "already
exists", naming it: the catch test puts one back and sees it."""

from __future__ import annotations

import shutil
import time
from pathlib import Path
from typing import Iterator, Tuple

import pytest

from envsync_local.cli import (
    FailedCreates,
    LocalModeError,
    LocalStack,
    env_session,
    launch_all,
    launch_runs,
    stack_statuses,
)
from envsync_local.mariadb import free_port
from envsync_sceptre.config.envconfig import load_envs
from tests.conftest import PROJECT_ROOT
from tests.stacks.test_permission_proof_catches import replace_text

# its own launch of every env (about 6 minutes): run with the lifecycle suite, after `make test`
pytestmark = [pytest.mark.launched, pytest.mark.slow, pytest.mark.lifecycle]


def failing_world(root: Path, project: Path = PROJECT_ROOT) -> LocalStack:
    envs = load_envs(project / "config")
    local = LocalStack(root, envs, moto_port=free_port(), db_ports={name: free_port() for name in envs},
                       fail_first_create="last")
    local.start()
    return local


@pytest.fixture(scope="module")
def relaunched(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Tuple[LocalStack, FailedCreates, dict, float]]:
    """Every env launched as `envsync-local up --fail-first-create last` launches them."""
    local = failing_world(tmp_path_factory.mktemp("failing"))
    failed = FailedCreates()
    try:
        started = time.monotonic()
        logs = launch_all(local, local.order, capture=True, failed=failed)
        seconds = time.monotonic() - started
        print(f"\nevery env launched with every first create failing: {seconds:.1f}s; {failed.figure()}")
        yield local, failed, logs, seconds
    finally:
        local.stop()


def configured_stacks(project: Path = PROJECT_ROOT) -> set:
    """envsync-<env>-<stack> for every stack config of every env."""
    return {f"envsync-{path.parent.name}-{path.stem}" for path in (project / "config").glob("*/*.yaml")
            if path.name != "config.yaml"}


def test_every_stack_of_every_env_rolled_back_once_and_was_relaunched(relaunched):
    local, failed, logs, _ = relaunched
    assert configured_stacks(), "no stack configs found"
    assert set(failed.rolled_back) == configured_stacks() == failed.launched
    for env in local.order:
        statuses = stack_statuses(local, env)
        assert set(statuses.values()) <= {"CREATE_COMPLETE", "UPDATE_COMPLETE"}, statuses
    # RDS refuses to delete prod's protected cluster, so that rollback fails as in CloudFormation
    # (ROLLBACK_FAILED); README's deploy section gives the administrator's recovery.
    assert failed.by_hand == {"envsync-prod-aurora"}
    assert failed.figure() == (f"failed-create retries: {len(failed.launched)}/{len(failed.launched)} stacks "
                               "relaunched (envsync-prod-aurora after its cluster's deletion protection was "
                               "lifted by hand)")
    # Sceptre saw each rollback and relaunched over it.
    output = "\n".join(logs.values())
    assert "ROLLBACK_COMPLETE" in output and "creation failed on purpose" in output


def test_each_rollback_names_the_resource_that_failed(relaunched):
    local, failed, _, _ = relaunched
    for env in local.order:
        cloudformation = env_session(local, local.envs[env]).client("cloudformation",
                                                                    endpoint_url=local.moto.endpoint_url)
        for stack in (name for name in failed.rolled_back if name.startswith(f"envsync-{env}-")):
            deleted = [summary for summary in cloudformation.list_stacks(StackStatusFilter=["DELETE_COMPLETE"])[
                "StackSummaries"] if summary["StackName"] == stack]
            assert deleted, f"{stack}: its rolled-back first create was not deleted before the retry"
            events = cloudformation.describe_stack_events(StackName=deleted[0]["StackId"])["StackEvents"]
            reasons = [e.get("ResourceStatusReason", "") for e in events if e["ResourceStatus"] == "CREATE_FAILED"]
            assert any("creation failed on purpose" in reason for reason in reasons), (stack, reasons)
            # prod's protected cluster stops its rollback (README: the administrator's recovery).
            ended = "ROLLBACK_FAILED" if stack in failed.by_hand else "ROLLBACK_COMPLETE"
            assert ended in {e["ResourceStatus"] for e in events}, stack


def test_a_fixed_name_resource_that_retain_keeps_stops_the_retry(tmp_path, monkeypatch):
    project = tmp_path / "project"
    for folder in ("config", "templates", "lambda_code"):
        shutil.copytree(PROJECT_ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    replace_text(project / "templates" / "artifacts.yaml", "DeletionPolicy: RetainExceptOnCreate",
                 "DeletionPolicy: Retain")
    monkeypatch.setenv("ENVSYNC_PROJECT_DIR", str(project))
    local = failing_world(tmp_path / "state", project)
    try:
        with pytest.raises(LocalModeError) as caught:
            launch_runs(local, [("create", "dev/bootstrap.yaml", "dev bootstrap"),
                                ("launch", "dev/artifacts.yaml", "dev artifacts")], capture=True)
    finally:
        local.stop()
    message = str(caught.value)
    assert "the retry of a failed create failed: envsync-dev-artifacts" in message, message
    assert "ArtifactsBucket: envsync-dev-artifacts-111111111111 already exists" in message, message
