"""Bad per-env config stops Sceptre before anything is sent, naming the file and the value."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from envsync_local.paths import tool
from envsync_sceptre.config.envconfig import EnvConfigError, load_envs, parse_envs, promotion_order

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def good_envs() -> dict:
    return {
        "config/dev/config.yaml": {"env": "dev", "account_id": "111111111111", "vpc_cidr": "10.1.0.0/16",
                                   "sceptre_role": "arn:aws:iam::111111111111:role/envsync-deployer"},
        "config/staging/config.yaml": {"env": "staging", "account_id": "222222222222",
                                       "vpc_cidr": "10.2.0.0/16", "upstream_env": "dev",
                                       "sceptre_role": "arn:aws:iam::222222222222:role/envsync-deployer"},
        "config/prod/config.yaml": {"env": "prod", "account_id": "333333333333", "vpc_cidr": "10.3.0.0/16",
                                    "upstream_env": "staging", "is_prod": True,
                                    "sceptre_role": "arn:aws:iam::333333333333:role/envsync-deployer"},
    }


def problems_for(edit) -> str:
    raw = good_envs()
    edit(raw)
    with pytest.raises(EnvConfigError) as caught:
        parse_envs(raw)
    return str(caught.value)


def test_the_project_config_is_valid_and_ordered_upstream_first():
    envs = load_envs(PROJECT_ROOT / "config")
    assert promotion_order(envs) == ["dev", "staging", "prod"]
    assert {name: env.vpc_cidr for name, env in envs.items()} == {
        "dev": "10.1.0.0/16", "staging": "10.2.0.0/16", "prod": "10.3.0.0/16"}
    assert envs["dev"].upstream_env is None and envs["prod"].is_prod
    assert len({env.account_id for env in envs.values()}) == 3


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda raw: raw["config/dev/config.yaml"].update(vpc_cidr="10.1.0.0/33"),
         "config/dev/config.yaml: vpc_cidr '10.1.0.0/33' is not a valid CIDR"),
        (lambda raw: raw["config/dev/config.yaml"].update(vpc_cidr="10.1.0.1/16"),
         "config/dev/config.yaml: vpc_cidr '10.1.0.1/16' is not a valid CIDR"),
        (lambda raw: raw["config/staging/config.yaml"].update(vpc_cidr="10.1.128.0/17"),
         "config/staging/config.yaml: vpc_cidr 10.1.128.0/17 overlaps dev's 10.1.0.0/16"),
        (lambda raw: raw["config/prod/config.yaml"].update(upstream_env="qa"),
         "config/prod/config.yaml: upstream_env 'qa' is not an env"),
        (lambda raw: raw["config/dev/config.yaml"].pop("account_id"),
         "config/dev/config.yaml: missing account_id"),
        (lambda raw: raw["config/dev/config.yaml"].update(account_id="1234"),
         "config/dev/config.yaml: account_id '1234' is not a 12-digit AWS account id"),
        (lambda raw: raw["config/staging/config.yaml"].update(account_id="111111111111"),
         "is in account 222222222222, not this env's account_id 111111111111"),
        (lambda raw: raw["config/dev/config.yaml"].update(upstream_env="prod"),
         "config/dev/config.yaml: upstream_env 'prod' is a prod env; prod is never a sync source"),
        (lambda raw: raw["config/dev/config.yaml"].update(upstream_env="staging"),
         "upstream_env forms a cycle"),
    ],
    ids=["malformed-cidr", "host-bits-set", "overlap", "unknown-upstream", "missing-account",
         "short-account", "role-in-other-account", "prod-as-source", "cycle"],
)
def test_bad_values_are_named_with_their_file(edit, expected):
    assert expected in problems_for(edit)


@pytest.fixture
def project_copy(tmp_path: Path) -> Path:
    for part in ("config", "templates"):
        shutil.copytree(PROJECT_ROOT / part, tmp_path / part)
    return tmp_path


@pytest.mark.parametrize(
    ("file", "old", "new", "expected"),
    [
        ("staging/config.yaml", "vpc_cidr: 10.2.0.0/16", "vpc_cidr: 10.1.0.0/16",
         "config/staging/config.yaml: vpc_cidr 10.1.0.0/16 overlaps dev's 10.1.0.0/16"),
        ("prod/config.yaml", 'account_id: "333333333333"', "",
         "config/prod/config.yaml: missing account_id"),
        ("config.yaml", "    where: null\n    updated_at_column: updated_at\n  - name: country",
         "    where: '1=1) OR (1=1'\n    updated_at_column: updated_at\n  - name: country",
         "config/config.yaml: refdata_tables: tables[0].where (table 'currency')"),
    ],
    ids=["overlap", "missing-account", "refdata-where-escapes"],
)
def test_sceptre_generate_refuses_bad_config(project_copy, file, old, new, expected):
    path = project_copy / "config" / file
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    result = subprocess.run(
        [tool("sceptre"), "--dir", str(project_copy), "generate", "dev/network.yaml"],
        capture_output=True, text=True, check=False,
    )
    assert result.returncode != 0
    assert expected in result.stdout + result.stderr


def test_config_files_read_sceptre_tags_as_their_text_and_name_a_broken_file(tmp_path):
    from envsync_sceptre.config.configfile import read_config_file

    path = tmp_path / "config.yaml"
    path.write_text("vpc_id: !stack_output dev/network.yaml::VpcId\nhooks:\n  before_launch:\n"
                    "    - !envsync_validate config\nkey: !envsync_lambda_package {bucket: b}\n")
    assert read_config_file(path, "config/dev/x.yaml") == {
        "vpc_id": "dev/network.yaml::VpcId", "hooks": {"before_launch": ["config"]}, "key": None}
    path.write_text("env: [dev\n")
    with pytest.raises(EnvConfigError, match=r"^invalid env config:\n  config/dev/x\.yaml: not valid YAML"):
        read_config_file(path, "config/dev/x.yaml")
    path.write_text("- dev\n")
    with pytest.raises(EnvConfigError, match=r"config/dev/x\.yaml: expected a mapping, got list"):
        read_config_file(path, "config/dev/x.yaml")


def test_the_value_checks_load_without_the_env_set_reader():
    """stackvalues and envconfig import in one direction only (no cycle to untangle at import)."""
    import sys

    code = "import sys, envsync_sceptre.config.stackvalues; print('envsync_sceptre.config.envconfig' in sys.modules)"
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip() == "False"
