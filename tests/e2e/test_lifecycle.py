"""`make local`, `make stop`, switch the runtime, `make local` again: one lifecycle for every
stand-in's state, and one line to move every function to a current runtime.

moto keeps the AWS accounts in memory, so a stopped system starts over as a whole (databases,
replica and call record with it) and the second `up` ends as the first: every env's first sync
succeeds, the demo's blocked promotion happens, and no alarm but staging's SyncFailures is in
ALARM (prod's replica-lag alarm is OK: the replica replicates). Between the two, the project's
only edit is `lambda_runtime: python3.12` in config/config.yaml: the second launch builds the
package for 3.12 and runs every function (the custom resources while the aurora stacks launch,
then the sync cycle) on Python 3.12, with the permission proof at 0 denied. One test does both
because each `up` launches every stack of every env, the suite's costliest step.
"""

from __future__ import annotations

import base64
import re
import shutil
from pathlib import Path
from typing import Dict, Set

import pytest

from envsync_local.cli import LocalStack, command_up, env_session
from envsync_local.mariadb import free_port
from envsync_local.paths import PROJECT_ROOT
from envsync_sceptre.config.envconfig import load_envs

pytestmark = [pytest.mark.slow, pytest.mark.launched, pytest.mark.lifecycle]  # launches its own system

DEFAULT_RUNTIME, CURRENT_RUNTIME = "python3.9", "python3.12"


def first_status_table(printed: str) -> dict:
    """The `[4] status` table of an `up`: env -> its row."""
    table = printed.split("\n[4] status\n", 1)[1].split("\n[5]", 1)[0]
    return {line.split()[0]: line for line in table.splitlines()[2:] if line.strip() and not line.startswith(" ")}


@pytest.fixture
def project(tmp_path: Path) -> Path:
    """A copy of config/ and templates/ (the runtime line is edited between the two launches)."""
    copy = tmp_path / "project"
    for part in ("config", "templates"):
        shutil.copytree(PROJECT_ROOT / part, copy / part)
    (copy / "lambda_code").symlink_to(PROJECT_ROOT / "lambda_code")
    return copy


def switch_runtime(project: Path, runtime: str) -> None:
    shared = project / "config" / "config.yaml"
    text = shared.read_text()
    assert f"\nlambda_runtime: {DEFAULT_RUNTIME}\n" in text
    shared.write_text(text.replace(f"\nlambda_runtime: {DEFAULT_RUNTIME}\n", f"\nlambda_runtime: {runtime}\n"))


def deployed_code(local: LocalStack, envs: Dict) -> Dict[str, Set[str]]:
    """env -> {(runtime, package directory)} of its deployed functions."""
    deployed: Dict[str, Set[str]] = {}
    for name, env in envs.items():
        functions = env_session(local, env).client(
            "lambda", endpoint_url=local.moto.endpoint_url).list_functions()["Functions"]
        assert len(functions) >= 3, (name, functions)
        deployed[name] = {(function["Runtime"], base64.b64decode(function["CodeSha256"]).hex())
                          for function in functions}
    return deployed


def cffi_builds(state: Path, sha256: str) -> list:
    return sorted(p.name for p in (state / "lambda" / "packages" / sha256).glob("_cffi_backend*.so"))


def test_up_down_switch_up_resumes_a_green_system_on_the_new_runtime(project, tmp_path, monkeypatch, capsys):
    state = tmp_path / "local"
    monkeypatch.setenv("ENVSYNC_PROJECT_DIR", str(project))
    monkeypatch.setenv("ENVSYNC_LOCAL_DIR", str(state))
    envs = load_envs(project / "config")
    first = LocalStack(state, envs, moto_port=free_port(), db_ports={name: free_port() for name in envs})
    try:
        assert command_up(first, None) == 0
        printed_first = capsys.readouterr().out
        code_first = deployed_code(first, envs)
        first.stop()
        assert not first.moto_running() and not any(db.is_running() for db in first.servers)

        switch_runtime(project, CURRENT_RUNTIME)
        again = LocalStack(state, envs)  # what the next `make local` sees: the saved ports
        assert again.moto.port == first.moto.port
        assert command_up(again, None) == 0
        printed_again = capsys.readouterr().out
        code_again = deployed_code(again, envs)
    finally:
        LocalStack(state, envs).stop()

    for printed in (printed_first, printed_again):
        assert "UNEXPECTED" not in printed and ", 0 denied" in printed, printed[-3000:]
        rows = first_status_table(printed)
        assert set(rows) == set(envs)
        for row in rows.values():
            assert " SUCCEEDED " in row, row
            assert "=ALARM" not in row, row
        assert re.search(r"aurora-replica-lag=OK", rows["prod"]), rows["prod"]
    # The second run is the first one again, not a resumed half: same schema versions.
    assert {env: row.split()[2] for env, row in first_status_table(printed_first).items()} == \
        {env: row.split()[2] for env, row in first_status_table(printed_again).items()}

    # Every function of every env ran its runtime's package: built for 3.9, then for 3.12.
    for code, runtime, build in ((code_first, DEFAULT_RUNTIME, "cpython-39"),
                                 (code_again, CURRENT_RUNTIME, "cpython-312")):
        assert {name: {r for r, _ in deployed} for name, deployed in code.items()} == \
            {name: {runtime} for name in envs}
        ran = [sha for sha in {sha for deployed in code.values() for _, sha in deployed}
               if (state / "lambda" / "packages" / sha).is_dir()]  # unpacked when first invoked
        assert ran, code
        for sha256 in ran:
            assert cffi_builds(state, sha256) == [f"_cffi_backend.{build}-x86_64-linux-gnu.so"], sha256
    # ... and the interpreter they ran on was the runtime's (the offline runtime's SDK links).
    runtime_links = {link.resolve() for link in (state / "lambda" / "runtime").rglob("boto3") if link.is_symlink()}
    assert any(".venv312" in str(link) for link in runtime_links), runtime_links
