"""`lambda_runtime: python3.12` in config/config.yaml is the only edit: `envsync-local up` on a copy
of the project launches every env, builds the package for python3.12, runs every function on
Python 3.12 (the custom resources while the aurora stacks launch, then the sync cycle), and the
permission proof ends with 0 denied.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from envsync_local.cli import LocalStack, command_up, env_session
from envsync_local.mariadb import free_port
from envsync_local.paths import PROJECT_ROOT
from envsync_sceptre.config.envconfig import load_envs
from tests.e2e.test_lifecycle import first_status_table

pytestmark = [pytest.mark.slow, pytest.mark.launched, pytest.mark.lifecycle]  # launches its own system

RUNTIME = "python3.12"


@pytest.fixture
def switched_project(tmp_path: Path) -> Path:
    project = tmp_path / "project"
    for part in ("config", "templates"):
        shutil.copytree(PROJECT_ROOT / part, project / part)
    (project / "lambda_code").symlink_to(PROJECT_ROOT / "lambda_code")
    shared = project / "config" / "config.yaml"
    text = shared.read_text()
    assert "\nlambda_runtime: python3.9\n" in text
    shared.write_text(text.replace("\nlambda_runtime: python3.9\n", f"\nlambda_runtime: {RUNTIME}\n"))
    return project


def test_one_line_switches_every_function_and_its_package_to_python312(switched_project, tmp_path, monkeypatch,
                                                                       capsys):
    state = tmp_path / "local"
    monkeypatch.setenv("ENVSYNC_PROJECT_DIR", str(switched_project))
    monkeypatch.setenv("ENVSYNC_LOCAL_DIR", str(state))
    envs = load_envs(switched_project / "config")
    local = LocalStack(state, envs, moto_port=free_port(), db_ports={name: free_port() for name in envs})
    try:
        assert command_up(local, None) == 0
        printed = capsys.readouterr().out
        runtimes = {}
        for name, env in envs.items():
            functions = env_session(local, env).client(
                "lambda", endpoint_url=local.moto.endpoint_url).list_functions()["Functions"]
            runtimes[name] = {function["Runtime"] for function in functions}
            assert len(functions) >= 3, (name, functions)
    finally:
        local.stop()

    assert runtimes == {name: {RUNTIME} for name in envs}
    # Every package the functions ran (unpacked once per code hash) was built for 3.12.
    packages = sorted((state / "lambda" / "packages").iterdir())
    assert packages
    for package in packages:
        assert sorted(p.name for p in package.glob("_cffi_backend*.so")) == [
            "_cffi_backend.cpython-312-x86_64-linux-gnu.so"], package
    # ... and the interpreter they ran on was the runtime's (the offline runtime's SDK links).
    runtime_links = [link for link in (state / "lambda" / "runtime").rglob("boto3") if link.is_symlink()]
    assert runtime_links and all(".venv312" in str(link.resolve()) for link in runtime_links), runtime_links
    assert "UNEXPECTED" not in printed and ", 0 denied" in printed, printed[-3000:]
    rows = first_status_table(printed)
    assert set(rows) == set(envs)
    assert all(" SUCCEEDED " in row for row in rows.values()), rows
