"""Each env's reference-data list and its upstream reader's grants follow from one allow-list."""

from __future__ import annotations

import json

from envsync_sceptre.config.envconfig import parse_envs, read_env_files, read_shared_values
from envsync_sceptre.config.refdata import reader_tables, tables_pulled_by
from envsync_sceptre.config.stackvalues import stack_value_problems
from tests.conftest import parse_templates, render_project
from tests.stacks.conftest import EnvStacks, copy_project

CHAIN = {"dev": {"env": "dev"}, "staging": {"env": "staging", "upstream_env": "dev"},
         "prod": {"env": "prod", "upstream_env": "staging"}}
SHARED = {"refdata_tables": [{"name": "currency"}, {"name": "fx_rate", "envs": ["prod"]}]}


def test_a_table_for_some_envs_is_one_key_and_readers_grant_what_downstream_pulls() -> None:
    pulled = {env: [t["name"] for t in tables_pulled_by(env, raw, SHARED)] for env, raw in CHAIN.items()}
    assert pulled == {"dev": ["currency"], "staging": ["currency"], "prod": ["currency", "fx_rate"]}
    assert all("envs" not in t for t in tables_pulled_by("prod", CHAIN["prod"], SHARED))
    # prod pulls fx_rate from staging: staging's reader may read it, dev's may not; prod has no reader
    readers = {env: reader_tables(env, CHAIN, SHARED) for env in CHAIN}
    assert readers == {"dev": ["currency"], "staging": ["currency", "fx_rate"], "prod": []}


def test_an_unknown_env_in_envs_is_refused_naming_the_file(tmp_path) -> None:
    config = copy_project(tmp_path, with_templates=False) / "config"
    shared_file = config / "config.yaml"
    shared_file.write_text(shared_file.read_text().replace(
        "refdata_tables:\n", "refdata_tables:\n  - name: fx_rate\n    envs: [qa]\n", 1))
    raw_by_file = read_env_files(config)
    shared = read_shared_values(config)
    problems = stack_value_problems(parse_envs(shared, raw_by_file), raw_by_file, shared)
    assert any(p.startswith("config/config.yaml: refdata_tables: 'fx_rate': envs names unknown env(s) qa")
               for p in problems), problems


def test_the_stacks_get_the_derived_lists(tmp_path) -> None:
    project = copy_project(tmp_path)
    shared_file = project / "config" / "config.yaml"
    shared_file.write_text(shared_file.read_text().replace(
        "refdata_tables:\n", "refdata_tables:\n  - name: fx_rate\n    envs: [prod]\n", 1))
    stacks = EnvStacks(parse_templates(render_project(project)), project)
    readers = {env: stacks.parameter_values(f"{env}/aurora")["ReaderTables"] for env in ("dev", "staging")}
    assert readers == {"dev": "currency,country", "staging": "fx_rate,currency,country"}
    pulled = {env: [t["name"] for t in json.loads(stacks.parameter_values(f"{env}/sync")["RefdataConfig"])["tables"]]
              for env in ("staging", "prod")}
    assert pulled == {"staging": ["currency", "country"], "prod": ["fx_rate", "currency", "country"]}


def test_the_fan_out_width_is_one_value_an_env_may_override_and_a_bad_one_is_refused(tmp_path) -> None:
    from envsync_sceptre.config.refdata import pulled_config

    assert pulled_config("prod", CHAIN["prod"], {**SHARED, "refdata_max_concurrency": 4})["max_concurrency"] == 4
    assert pulled_config("prod", {**CHAIN["prod"], "refdata_max_concurrency": 2},
                         {**SHARED, "refdata_max_concurrency": 4})["max_concurrency"] == 2
    assert "max_concurrency" not in pulled_config("prod", CHAIN["prod"], SHARED)  # the engine's default
    config = copy_project(tmp_path, with_templates=False) / "config"
    shared_file = config / "config.yaml"
    shared_file.write_text(shared_file.read_text().replace("refdata_max_concurrency: 4", "refdata_max_concurrency: 0"))
    raw_by_file = read_env_files(config)
    shared = read_shared_values(config)
    problems = stack_value_problems(parse_envs(shared, raw_by_file), raw_by_file, shared)
    refused = "config/config.yaml: refdata_max_concurrency: expected"  # the key and the file the user edits
    assert any(p.startswith(refused) for p in problems), problems
