"""Bad per-env config stops Sceptre before anything is sent, naming the file and the value."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from envsync_local.paths import tool
from envsync_sceptre.config.chain import env_keys
from envsync_sceptre.config.envconfig import EnvConfigError, load_envs, parse_envs, promotion_order, read_shared_values
from tests.chain import chain

PROJECT_ROOT = Path(__file__).resolve().parents[2]


def good_shared() -> dict:
    return {"deployer_role_name": "envsync-deployer", "cfn_execution_role_name": "envsync-cfn-exec",
            "envs": {"dev": {"account_id": "111111111111", "vpc_cidr": "10.1.0.0/16"},
                     "staging": {"account_id": "222222222222", "vpc_cidr": "10.2.0.0/16", "external_id": "dev-staging"},
                     "prod": {"account_id": "333333333333", "vpc_cidr": "10.3.0.0/16", "external_id": "staging-prod",
                              "is_prod": True}}}


def env_files() -> dict:
    """Each env file as Sceptre renders it from the good map: its `envsync_env_keys()` line."""
    return {f"config/{name}/config.yaml": env_keys(good_shared(), name) for name in good_shared()["envs"]}


def problems_for(edit) -> str:
    shared = good_shared()
    files = env_files()
    edit(shared["envs"], files)
    with pytest.raises(EnvConfigError) as caught:
        parse_envs(shared, files)
    return str(caught.value)


def test_the_project_config_is_valid_and_ordered_upstream_first():
    envs = load_envs(PROJECT_ROOT / "config")
    written = list(read_shared_values(PROJECT_ROOT / "config")["envs"])  # the map as written, in order
    assert promotion_order(envs) == list(chain()) == list(envs) == written
    assert envs[chain()[0]].upstream_env is None and envs[chain()[-1]].is_prod
    assert all(envs[name].upstream_env == upstream for upstream, name in zip(chain(), chain()[1:]))
    assert len({env.account_id for env in envs.values()}) == len({env.vpc_cidr for env in envs.values()}) == len(envs)


def test_each_account_id_and_cidr_is_written_once_in_config():
    """The map is their one home: no other config file repeats an account id or a CIDR."""
    envs = load_envs(PROJECT_ROOT / "config")
    texts = {path: path.read_text() for path in (PROJECT_ROOT / "config").rglob("*.yaml")}
    for env in envs.values():
        for value in (env.account_id, env.vpc_cidr):
            assert sum(text.count(value) for text in texts.values()) == 1, value


def reorder(envs: dict, order: list) -> None:
    items = {name: envs.pop(name) for name in order}
    envs.update(items)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda envs, _: envs["dev"].update(vpc_cidr="10.1.0.0/33"),
         "config/config.yaml: envs.dev: vpc_cidr '10.1.0.0/33' is not a valid CIDR"),
        (lambda envs, _: envs["dev"].update(vpc_cidr="10.1.0.1/16"),
         "config/config.yaml: envs.dev: vpc_cidr '10.1.0.1/16' is not a valid CIDR"),
        (lambda envs, _: envs["staging"].update(vpc_cidr="10.1.128.0/17"),
         "config/config.yaml: envs.staging: vpc_cidr 10.1.128.0/17 overlaps dev's 10.1.0.0/16"),
        (lambda envs, _: envs["dev"].pop("account_id"),
         "config/config.yaml: envs.dev: account_id 'None' is not a 12-digit AWS account id"),
        (lambda envs, _: envs["dev"].update(account_id="1234"),
         "config/config.yaml: envs.dev: account_id '1234' is not a 12-digit AWS account id"),
        (lambda envs, _: envs["staging"].update(account_id="111111111111"),
         "config/config.yaml: envs.staging: account_id 111111111111 is also dev's; each env needs its own account"),
        (lambda envs, _: reorder(envs, ["dev", "prod", "staging"]),
         "config/config.yaml: envs.prod: a prod env must be last in the chain: 'staging' would pull from it"),
        (lambda envs, _: envs["dev"].update(upstream_env="staging"),
         "config/config.yaml: envs.dev: unknown key(s) upstream_env (allowed: account_id, vpc_cidr, is_prod, "
         "external_id)"),
        (lambda envs, _: envs["staging"].pop("external_id"),
         "config/config.yaml: envs.staging: external_id 'None' must be the sts:ExternalId this env's sync passes"),
        (lambda envs, _: envs["dev"].update(external_id="x-dev"),
         "config/config.yaml: envs.dev: external_id set on the chain's first env, which pulls from no upstream"),
        (lambda envs, _: envs.pop("staging"),
         "config/staging/: no entry 'staging' in config/config.yaml: envs (known: dev, prod)"),
        (lambda envs, _: envs.update(qa={"account_id": "444444444444", "vpc_cidr": "10.4.0.0/16"}),
         "config/config.yaml: envs.qa: no folder config/qa/ with its stack files"),
        (lambda _, files: files["config/staging/config.yaml"].update(account_id="111111111111"),
         "config/staging/config.yaml: account_id '111111111111' is not config/config.yaml envs.staging's "
         "('222222222222')"),
        (lambda _, files: files["config/prod/config.yaml"].update(upstream_env="dev"),
         "config/prod/config.yaml: upstream_env 'dev' is not config/config.yaml envs.prod's ('staging')"),
    ],
    ids=["malformed-cidr", "host-bits-set", "overlap", "missing-account", "short-account", "shared-account",
         "prod-as-source", "upstream-by-hand", "missing-external-id", "external-id-on-source",
         "folder-without-entry", "entry-without-folder",
         "file-sets-account", "file-sets-upstream"],
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
        ("config.yaml", "    vpc_cidr: 10.2.0.0/16", "    vpc_cidr: 10.1.0.0/16",
         "config/config.yaml: envs.staging: vpc_cidr 10.1.0.0/16 overlaps dev's 10.1.0.0/16"),
        ("config.yaml", '    account_id: "333333333333"\n', "",
         "config/config.yaml: envs.prod: account_id 'None' is not a 12-digit AWS account id"),
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
