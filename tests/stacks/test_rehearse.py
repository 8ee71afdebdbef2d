"""`envsync-rehearse`: the proof over the project as config/ names it, before the first deploy,
without AWS credentials; it names the principals to create by hand and fails on any finding."""

from __future__ import annotations

import os
import subprocess

from envsync_tools.rehearse import main
from tests.conftest import PROJECT_ROOT
from tests.stacks.conftest import copy_project
from tests.stacks.test_permission_proof_catches import remove_lines


def test_the_rehearsal_runs_without_aws_credentials(tmp_path):
    """As a fresh clone runs it: no AWS variables, no ~/.aws, the installed console script."""
    env = {"PATH": "/usr/bin:/bin", "HOME": str(tmp_path), "AWS_CONFIG_FILE": os.devnull,
           "AWS_SHARED_CREDENTIALS_FILE": os.devnull}
    result = subprocess.run([str(PROJECT_ROOT / ".venv" / "bin" / "envsync-rehearse")], cwd=PROJECT_ROOT, env=env,
                            capture_output=True, text=True, timeout=600, check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    for env_name, account in (("dev", "111111111111"), ("staging", "222222222222"), ("prod", "333333333333")):
        assert f"{env_name} (account {account}, " in out
        assert f"CI principal (arn:aws:iam::123456789012:role/envsync-ci): sts:AssumeRole on " \
               f"arn:aws:iam::{account}:role/envsync-deployer" in out
        assert f"sts:AssumeRole on arn:aws:iam::{account}:role/envsync-{env_name}-approver" in out
    assert out.index("dev (account") < out.index("staging (account") < out.index("prod (account")
    assert "static proof 0 denied" in out and "must-stay-denied refused" in out and "0 new" in out
    assert '"Resource":["arn:aws:iam::111111111111:role/OrganizationAccountAccessRole"' in out
    prod_line = out.split("prod (account", 1)[1].splitlines()[0]
    assert prod_line.endswith("; approval gate: the administrator's machine waits in WaitForApproval"), prod_line
    assert "approval gate: none (the env waits for no one)" in out.split("dev (account", 1)[1].splitlines()[0]
    assert out.rstrip().endswith("rehearsal passed: nothing the first deploy would be refused, "
                                 "nothing that must stay denied allowed")


def test_a_finding_fails_the_rehearsal_and_is_named(tmp_path, capsys):
    project = copy_project(tmp_path)
    remove_lines(project / "config" / "dev" / "bootstrap.yaml", "ignore: true\n")
    assert main(["--project", str(project)]) == 1
    err = capsys.readouterr().err
    assert "may not sts:AssumeRole on arn:aws:iam::111111111111:role/OrganizationAccountAccessRole " \
           "(dev/bootstrap is launched as its sceptre_role)" in err


def test_a_gate_stack_whose_machine_waits_for_no_one_fails_the_rehearsal(tmp_path, capsys):
    """The administrator's machine is what keeps prod waiting for a person: the rehearsal reads
    the rendered definition, as `envsync status` reads the deployed one."""
    project = copy_project(tmp_path)
    definition = project / "templates" / "statemachine" / "sync.asl.json"
    definition.write_text(definition.read_text().replace(".waitForTaskToken", ""))
    assert main(["--project", str(project)]) == 1
    captured = capsys.readouterr()
    assert "approval gate: MISSING" in captured.out
    assert "[prod] the gate stack's machine waits for no one (no .waitForTaskToken state)" in captured.err


def test_a_directory_without_config_is_refused(tmp_path, capsys):
    assert main(["--project", str(tmp_path)]) == 2
    assert "has no config/" in capsys.readouterr().err
