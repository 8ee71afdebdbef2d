"""A fixed-name resource that the rollback of a failed first create keeps (`DeletionPolicy:
Retain`) stops the retry at "already exists", naming it: the catch test puts one back on the
artifacts bucket and sees the relaunch fail.

Every stack of every env failing its first create and being relaunched is what `make local`
does on a fresh start (`envsync-local up`; its proof line ends `failed-create retries: M/M
stacks relaunched`, and a stack whose first create did not fail, or whose retry fails, makes it
exit 1): `.ci/readme-flows` runs it; test_failed_create checks the rollback on small templates."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from envsync_local.cli import LocalStack, RetryFailed, launch_runs
from envsync_local.mariadb import free_port
from envsync_sceptre.config.envconfig import load_envs
from tests.conftest import PROJECT_ROOT
from tests.stacks.test_permission_proof_catches import replace_text

# launches dev's bootstrap and artifacts stacks on its own moto: run with the lifecycle suite
pytestmark = [pytest.mark.launched, pytest.mark.slow, pytest.mark.lifecycle]


def failing_world(root: Path, project: Path = PROJECT_ROOT) -> LocalStack:
    envs = load_envs(project / "config")
    local = LocalStack(root, envs, moto_port=free_port(), db_ports={name: free_port() for name in envs},
                       fail_first_create="last")
    local.start()
    return local


def test_a_fixed_name_resource_that_retain_keeps_stops_the_retry(tmp_path, monkeypatch):
    project = tmp_path / "project"
    for folder in ("config", "templates", "lambda_code"):
        shutil.copytree(PROJECT_ROOT / folder, project / folder, ignore=shutil.ignore_patterns("__pycache__"))
    replace_text(project / "templates" / "artifacts.yaml", "DeletionPolicy: RetainExceptOnCreate",
                 "DeletionPolicy: Retain")
    monkeypatch.setenv("ENVSYNC_PROJECT_DIR", str(project))
    local = failing_world(tmp_path / "state", project)
    try:
        with pytest.raises(RetryFailed) as caught:
            launch_runs(local, [("create", "dev/bootstrap.yaml", "dev bootstrap"),
                                ("launch", "dev/artifacts.yaml", "dev artifacts")], capture=True)
    finally:
        local.stop()
    message = str(caught.value)
    assert "the retry of a failed create failed: envsync-dev-artifacts" in message, message
    assert "ArtifactsBucket: envsync-dev-artifacts-111111111111 already exists" in message, message
