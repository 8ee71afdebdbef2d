"""The env set: the chain from `envs:` in config/config.yaml (envsync_sceptre.config.chain) and
the per-env values in config/<env>/config.yaml, read as Sceptre reads them and checked as one set.

Errors name the file and the value, so a bad edit stops `sceptre generate`, `validate`,
`diff` or `launch` before anything is sent to CloudFormation.
"""

from __future__ import annotations

import os
from datetime import date
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from envsync_sceptre.config.chain import chain_names, chain_problems, env_keys, own_keys_problems
from envsync_sceptre.config.configfile import EnvConfig, EnvConfigError, read_config_file
from envsync_sceptre.config.refdata import pulled_config
from envsync_sceptre.config.stackvalues import effective_value, lifecycle_notices, stack_value_problems


def env_folders(config_dir: Path) -> List[str]:
    """The env folders: every config/<env>/ with a config.yaml."""
    return [path.parent.name for path in sorted(config_dir.glob("*/config.yaml"))]


def sceptre_variables(shared: Mapping[str, Any], config_dir: Path, folder: str) -> Dict[str, Any]:
    """What Sceptre renders config/<folder>/config.yaml with: the shared values and the folder."""
    return {**shared, "stack_group_path": folder, "project_path": str(config_dir.parent), "var": {},
            "environment_variable": dict(os.environ), "command_path": []}


def read_env_file(config_dir: Path, folder: str, shared: Optional[Mapping[str, Any]] = None) -> Dict[str, Any]:
    """config/<folder>/config.yaml as Sceptre reads it: rendered (its `envsync_env_keys()` line
    gives the env's keys from the chain), then parsed; empty when the file does not exist."""
    path = config_dir / folder / "config.yaml"
    if not path.is_file():
        return {}
    shared = read_shared_values(config_dir) if shared is None else shared
    return read_config_file(path, f"{config_dir.name}/{folder}/config.yaml",
                            sceptre_variables(shared, config_dir, folder))


def read_env_files(config_dir: Path) -> Dict[str, Dict[str, Any]]:
    """Every config/<env>/config.yaml as Sceptre reads it, keyed by its path relative to the project."""
    shared = read_shared_values(config_dir)
    return {f"{config_dir.name}/{folder}/config.yaml": read_env_file(config_dir, folder, shared)
            for folder in env_folders(config_dir)}


def parse_envs(shared: Mapping[str, Any], raw_by_file: Mapping[str, Mapping[str, Any]]) -> Dict[str, EnvConfig]:
    """The env set, in chain order, from `envs:` in config/config.yaml; raise EnvConfigError when
    the map is not deployable or an env file contradicts it."""
    labels = {Path(label).parent.name: label for label in raw_by_file}
    problems = chain_problems(shared, sorted(labels))
    if problems:
        raise EnvConfigError(problems)
    envs: Dict[str, EnvConfig] = {}
    for name in chain_names(shared):
        problems += own_keys_problems(labels[name], raw_by_file[labels[name]], shared, name)
        keys = env_keys(shared, name)
        envs[name] = EnvConfig(name=name, account_id=keys["account_id"], sceptre_role=keys["sceptre_role"],
                               vpc_cidr=str(keys["vpc_cidr"]), upstream_env=keys["upstream_env"],
                               is_prod=keys["is_prod"], source_file=labels[name])
    if problems:
        raise EnvConfigError(problems)
    return envs


def read_shared_values(config_dir: Path) -> Dict[str, Any]:
    """config/config.yaml: the values every env shares (empty when there is none)."""
    path = config_dir / "config.yaml"
    return read_config_file(path, f"{config_dir.name}/config.yaml") if path.is_file() else {}


def env_value(config_dir: Path, env: str, key: str) -> Tuple[Any, str]:
    """The env's effective value of `key` (its config/<env>/config.yaml, else config/config.yaml)
    and the file it came from: the rule the validator applies (`stackvalues.effective_value`)."""
    return effective_value(key, f"{config_dir.name}/{env}/config.yaml", read_env_file(config_dir, env),
                           read_shared_values(config_dir))


def pulled_refdata_config(config_dir: Path, env: str) -> Tuple[Dict[str, Any], str]:
    """The reference-data config the env's refdata step gets (what `!envsync_refdata_tables`
    hands its sync stack as `pulled`: the env's `refdata_tables` entries for it) and the file the
    list came from. The whole env set is checked first, as `sceptre launch` checks it."""
    envs = load_envs(config_dir)
    if env not in envs:
        raise EnvConfigError([f"{config_dir.name}/: no env {env!r} (known: {', '.join(sorted(envs))})"])
    label = envs[env].source_file
    raw = read_env_file(config_dir, env)
    origin = label if "refdata_tables" in raw else f"{config_dir.name}/config.yaml"
    return pulled_config(env, raw, read_shared_values(config_dir)), f"{origin} refdata_tables"


def load_envs(config_dir: Path, today: Optional[date] = None) -> Dict[str, EnvConfig]:
    """Read and check every env under config_dir (the Sceptre `config/` folder).

    Besides the account set, the data-plane values (instance class, retention, lag threshold,
    runtime, engine version, promotion chain) are checked: see envsync_sceptre.config.stackvalues. A
    runtime or engine AWS no longer lets anyone create (as of `today`) is an error.
    """
    shared = read_shared_values(config_dir)
    problems = chain_problems(shared, env_folders(config_dir))  # before any env file renders from the map
    if problems:
        raise EnvConfigError(problems)
    raw_by_file = read_env_files(config_dir)
    envs = parse_envs(shared, raw_by_file)
    problems = stack_value_problems(envs, raw_by_file, shared, today)
    problems += gate_stack_problems(config_dir, raw_by_file, shared)
    if problems:
        raise EnvConfigError(problems)
    return envs


def gate_stack_problems(config_dir: Path, raw_by_file: Mapping[str, Mapping[str, Any]],
                        shared: Mapping[str, Any]) -> List[str]:
    """An env whose runs wait for a person (approval not none) has the administrator's gate
    stack, which holds its state machine (the sync stack then creates none); no other env has one."""
    problems = []
    for label, raw in raw_by_file.items():
        mode, origin = effective_value("approval", label, raw, shared)
        gate = Path(label).parent / "gate.yaml"
        if (mode != "none") != (config_dir / gate.parent.name / "gate.yaml").is_file():
            problems.append(f"{origin}: approval '{mode}' " + (
                f"needs {gate} (the administrator's stack that holds the machine that waits for a person; "
                "copy config/prod/gate.yaml)" if mode != "none" else
                f"makes {gate} wrong: the sync stack creates the machine of an env that waits for no one"))
    return problems


def lifecycle_warnings(config_dir: Path, today: Optional[date] = None) -> List[str]:
    """Per env, the runtime's and the engine's support dates that are within 90 days or past,
    with the one-line switch (printed by `!envsync_validate` and `envsync-local up`)."""
    notices = lifecycle_notices(read_env_files(config_dir), read_shared_values(config_dir), today)
    return [f"{env}: WARNING {notice.text}" for env, notice in notices if notice.level == "warning"]


def promotion_order(envs: Mapping[str, EnvConfig]) -> List[str]:
    """Envs ordered so that every upstream comes before its downstreams (the `envs:` map's order)."""
    order: List[str] = []

    def visit(name: str) -> None:
        if name in order:
            return
        upstream = envs[name].upstream_env
        if upstream:
            visit(upstream)
        order.append(name)

    for name in sorted(envs):
        visit(name)
    return order
