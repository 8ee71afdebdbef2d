"""Bad per-env values are rejected before launch, with the file and the value in the message."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from envsync_sceptre.config.envconfig import EnvConfigError, load_envs
from tests.stacks.conftest import copy_project


def edit(path: Path, pattern: str, replacement: str) -> None:
    text = path.read_text()
    changed, count = re.subn(pattern, replacement, text, flags=re.MULTILINE)
    assert count, f"{pattern!r} not found in {path}"
    path.write_text(changed)


def append(path: Path, line: str) -> None:
    path.write_text(path.read_text().rstrip("\n") + "\n" + line + "\n")


CASES = {
    "instance class below db.r5.large": (
        lambda c: append(c / "prod" / "config.yaml", "db_instance_class: db.t3.medium"),
        "config/prod/config.yaml: db_instance_class 'db.t3.medium' is not allowed"),
    "older instance family": (
        lambda c: append(c / "staging" / "config.yaml", "db_instance_class: db.r4.large"),
        "config/staging/config.yaml: db_instance_class 'db.r4.large'"),
    "retention other than 7 days": (
        lambda c: edit(c / "config.yaml", r"^backup_retention_days: 7$", "backup_retention_days: 8"),
        "config/config.yaml: backup_retention_days '8' must be 7"),
    "retention override in one env": (
        lambda c: append(c / "dev" / "config.yaml", "backup_retention_days: 1"),
        "config/dev/config.yaml: backup_retention_days '1' must be 7"),
    "lag threshold above 60 s": (
        lambda c: append(c / "staging" / "config.yaml", "replication_lag_threshold_seconds: 61"),
        "config/staging/config.yaml: replication_lag_threshold_seconds '61'"),
    "runtime not python3.*": (
        lambda c: append(c / "dev" / "config.yaml", "lambda_runtime: nodejs20.x"),
        "config/dev/config.yaml: lambda_runtime 'nodejs20.x' is not a supported Lambda runtime (supported: "),
    "python 2 runtime": (
        lambda c: edit(c / "config.yaml", r"^lambda_runtime: python3\.9$", "lambda_runtime: python2.7"),
        "config/config.yaml: lambda_runtime 'python2.7'"),
    "prod before the end of the chain": (
        lambda c: edit(c / "config.yaml", r"^    vpc_cidr: 10\.2\.0\.0/16$",
                       "    vpc_cidr: 10.2.0.0/16\n    is_prod: true"),
        "config/config.yaml: envs.staging: a prod env must be last in the chain: 'prod' would pull from it"),
    "account id written twice": (
        lambda c: edit(c / "config.yaml", r'^    account_id: "222222222222"$', '    account_id: "111111111111"'),
        "config/config.yaml: envs.staging: account_id 111111111111 is also dev's"),
    "upstream set by hand in an env file": (
        lambda c: append(c / "prod" / "config.yaml", "upstream_env: dev"),
        "config/prod/config.yaml: upstream_env 'dev' is not config/config.yaml envs.prod's ('staging')"),
    "prod as a source by hand": (
        lambda c: append(c / "prod" / "config.yaml", "downstream_env: dev"),
        "config/prod/config.yaml: downstream_env 'dev' is not config/config.yaml envs.prod's (none)"),
    "link without its external id": (
        lambda c: edit(c / "config.yaml", r"^    external_id: envsync-staging-to-prod\n", ""),
        "config/config.yaml: envs.prod: external_id 'None' must be the sts:ExternalId"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_bad_value_is_rejected_naming_file_and_value(case, tmp_path):
    config = copy_project(tmp_path, with_templates=False) / "config"
    change, message = CASES[case]
    change(config)
    with pytest.raises(EnvConfigError) as caught:
        load_envs(config)
    assert message in str(caught.value)


def test_the_shipped_config_is_accepted():
    envs = load_envs(Path(__file__).resolve().parents[2] / "config")
    assert {name: env.upstream_env for name, env in envs.items()} == {
        "dev": None, "staging": "dev", "prod": "staging"}


def test_sceptre_stops_before_rendering_a_bad_value(tmp_path):
    """The real Sceptre run: the group-level !envsync_validate hook rejects it on generate."""
    from sceptre.context import SceptreContext
    from sceptre.plan.plan import SceptrePlan

    project = copy_project(tmp_path)
    append(project / "config" / "prod" / "config.yaml", "db_instance_class: db.t3.medium")
    context = SceptreContext(project_path=str(project), command_path="prod/aurora.yaml",
                             ignore_dependencies=True)
    with pytest.raises(Exception, match=r"config/prod/config.yaml: db_instance_class 'db.t3.medium'"):
        SceptrePlan(context).generate()


RESOLVER_CASES = {
    "lambda package without its bucket": (
        "dev/sync.yaml", r"^    bucket: .*\n", "",
        "dev/sync - !envsync_lambda_package needs {bucket, source, runtime}: missing bucket"),
    "lambda package given a path, not a mapping": (
        "dev/aurora.yaml",
        r"^  LambdaCodeKey: !envsync_lambda_package\n    bucket: .*\n    source: .*\n    runtime: .*$",
        "  LambdaCodeKey: !envsync_lambda_package lambda_code",
        "dev/aurora - !envsync_lambda_package needs a mapping {bucket, source, runtime}, got 'lambda_code'"),
    "cross-account output with a misspelt key": (
        "staging/peering-upstream.yaml", r"^    output: VpcId$", "    outputs: VpcId",
        "staging/peering-upstream - !envsync_stack_output needs {stack, output, role, default (optional)}: "
        "missing output; unknown outputs"),
    "prefix list without a service": (
        "prod/network.yaml", r"!aws_prefix_list s3$", "!aws_prefix_list",
        "prod/network - !aws_prefix_list needs a service name (s3, dynamodb), got None"),
    "json file without a path": (
        "prod/sync.yaml", r"!envsync_json_file .*$", "!envsync_json_file",
        "prod/sync - !envsync_json_file needs the path of a JSON file, got None"),
}


@pytest.mark.parametrize("case", sorted(RESOLVER_CASES))
def test_a_bad_resolver_argument_stops_sceptre_with_its_invalid_argument_error(case, tmp_path):
    """Checked in the resolver's setup(), when Sceptre reads the stack: before any call to AWS."""
    from sceptre.context import SceptreContext
    from sceptre.exceptions import InvalidResolverArgumentError
    from sceptre.plan.plan import SceptrePlan

    stack_file, pattern, replacement, message = RESOLVER_CASES[case]
    project = copy_project(tmp_path)
    edit(project / "config" / stack_file, pattern, replacement)
    context = SceptreContext(project_path=str(project), command_path=stack_file, ignore_dependencies=True)
    with pytest.raises(InvalidResolverArgumentError) as caught:
        SceptrePlan(context).generate()
    assert str(caught.value) == message
