"""The per-env values in config/<env>/config.yaml, read and checked as one set.

Errors name the file and the value, so a bad edit stops `sceptre generate`, `validate`,
`diff` or `launch` before anything is sent to CloudFormation.
"""

from __future__ import annotations

import ipaddress
import re
from datetime import date
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

from envsync_sceptre.config.configfile import EnvConfig, EnvConfigError, read_config_file
from envsync_sceptre.config.refdata import tables_pulled_by
from envsync_sceptre.config.stackvalues import effective_value, lifecycle_notices, stack_value_problems

ACCOUNT_ID = re.compile(r"^\d{12}$")
ROLE_ARN = re.compile(r"^arn:aws:iam::(?P<account>\d{12}):role/(?P<name>[\w+=,.@/-]+)$")
REQUIRED_KEYS = ("env", "account_id", "sceptre_role", "vpc_cidr")


def read_env_files(config_dir: Path) -> Dict[str, Dict[str, Any]]:
    """Raw contents of every config/<env>/config.yaml, keyed by its path relative to the project."""
    raw: Dict[str, Dict[str, Any]] = {}
    for path in sorted(config_dir.glob("*/config.yaml")):
        label = f"{config_dir.name}/{path.parent.name}/config.yaml"
        raw[label] = read_config_file(path, label)
    return raw


def parse_envs(raw_by_file: Mapping[str, Mapping[str, Any]]) -> Dict[str, EnvConfig]:
    """Check the whole env set; return it keyed by env name or raise EnvConfigError."""
    problems: List[str] = []
    envs: Dict[str, EnvConfig] = {}
    for label, raw in raw_by_file.items():
        missing = [key for key in REQUIRED_KEYS if raw.get(key) in (None, "")]
        if missing:
            problems.append(f"{label}: missing {', '.join(missing)}")
            continue
        name = str(raw["env"])
        folder = Path(label).parent.name
        if name != folder:
            problems.append(f"{label}: env '{name}' must match its folder '{folder}'")
        account_id = str(raw["account_id"])
        if not ACCOUNT_ID.match(account_id):
            problems.append(f"{label}: account_id '{account_id}' is not a 12-digit AWS account id")
        role = ROLE_ARN.match(str(raw["sceptre_role"]))
        if not role:
            problems.append(f"{label}: sceptre_role '{raw['sceptre_role']}' is not an IAM role ARN")
        elif role.group("account") != account_id:
            problems.append(
                f"{label}: sceptre_role '{raw['sceptre_role']}' is in account "
                f"{role.group('account')}, not this env's account_id {account_id}"
            )
        try:
            network = ipaddress.ip_network(str(raw["vpc_cidr"]), strict=True)
            if network.version != 4 or not 16 <= network.prefixlen <= 24:
                problems.append(
                    f"{label}: vpc_cidr '{raw['vpc_cidr']}' must be an IPv4 block from /16 to /24"
                )
        except ValueError as err:
            problems.append(f"{label}: vpc_cidr '{raw['vpc_cidr']}' is not a valid CIDR ({err})")
        upstream = raw.get("upstream_env") or None
        envs[name] = EnvConfig(
            name=name,
            account_id=account_id,
            sceptre_role=str(raw["sceptre_role"]),
            vpc_cidr=str(raw["vpc_cidr"]),
            upstream_env=str(upstream) if upstream else None,
            is_prod=bool(raw.get("is_prod", False)),
            source_file=label,
        )
    problems += _cross_env_problems(envs)
    if problems:
        raise EnvConfigError(problems)
    return envs


def _cross_env_problems(envs: Mapping[str, EnvConfig]) -> List[str]:
    problems: List[str] = []
    ordered = sorted(envs.values(), key=lambda env: env.name)
    for index, env in enumerate(ordered):
        for other in ordered[index + 1:]:
            if env.account_id == other.account_id:
                problems.append(
                    f"{other.source_file}: account_id {other.account_id} is also {env.name}'s "
                    f"({env.source_file}); each env needs its own account"
                )
            try:
                if ipaddress.ip_network(env.vpc_cidr).overlaps(ipaddress.ip_network(other.vpc_cidr)):
                    problems.append(
                        f"{other.source_file}: vpc_cidr {other.vpc_cidr} overlaps {env.name}'s "
                        f"{env.vpc_cidr} ({env.source_file}); peered VPCs need disjoint CIDRs"
                    )
            except ValueError:
                pass  # already reported per file
    for env in ordered:
        if env.upstream_env is None:
            continue
        upstream = envs.get(env.upstream_env)
        if upstream is None:
            problems.append(
                f"{env.source_file}: upstream_env '{env.upstream_env}' is not an env "
                f"(known: {', '.join(sorted(envs))})"
            )
        elif upstream.is_prod:
            problems.append(
                f"{env.source_file}: upstream_env '{env.upstream_env}' is a prod env; "
                "prod is never a sync source"
            )
        elif env.upstream_env == env.name:
            problems.append(f"{env.source_file}: upstream_env cannot be the env itself")
    seen_cycle = _cycle(envs)
    if seen_cycle:
        problems.append(f"upstream_env forms a cycle: {' -> '.join(seen_cycle)}")
    return problems


def _cycle(envs: Mapping[str, EnvConfig]) -> List[str]:
    for start in sorted(envs):
        chain, current = [start], envs[start].upstream_env
        while current in envs:
            if current in chain:
                return [*chain, current]
            chain.append(current)
            current = envs[current].upstream_env
    return []


def read_shared_values(config_dir: Path) -> Dict[str, Any]:
    """config/config.yaml: the values every env shares (empty when there is none)."""
    path = config_dir / "config.yaml"
    return read_config_file(path, f"{config_dir.name}/config.yaml") if path.is_file() else {}


def env_value(config_dir: Path, env: str, key: str) -> Tuple[Any, str]:
    """The env's effective value of `key` (its config/<env>/config.yaml, else config/config.yaml)
    and the file it came from: the rule the validator applies (`stackvalues.effective_value`)."""
    label = f"{config_dir.name}/{env}/config.yaml"
    path = config_dir / env / "config.yaml"
    raw = read_config_file(path, label) if path.is_file() else {}
    return effective_value(key, label, raw, read_shared_values(config_dir))


def pulled_refdata_config(config_dir: Path, env: str) -> Tuple[Dict[str, Any], str]:
    """The reference-data config the env's refdata step gets (what `!envsync_refdata_tables`
    hands its sync stack as `pulled`: the env's `refdata_tables` entries for it) and the file the
    list came from. The whole env set is checked first, as `sceptre launch` checks it."""
    envs = load_envs(config_dir)
    if env not in envs:
        raise EnvConfigError([f"{config_dir.name}/: no env {env!r} (known: {', '.join(sorted(envs))})"])
    label = envs[env].source_file
    raw = read_config_file(config_dir.parent / label, label)
    origin = label if "refdata_tables" in raw else f"{config_dir.name}/config.yaml"
    return {"tables": tables_pulled_by(env, raw, read_shared_values(config_dir))}, f"{origin} refdata_tables"


def load_envs(config_dir: Path, today: Optional[date] = None) -> Dict[str, EnvConfig]:
    """Read and check every env under config_dir (the Sceptre `config/` folder).

    Besides the account set, the data-plane values (instance class, retention, lag threshold,
    runtime, engine version, promotion chain) are checked: see envsync_sceptre.config.stackvalues. A
    runtime or engine AWS no longer lets anyone create (as of `today`) is an error.
    """
    raw_by_file = read_env_files(config_dir)
    envs = parse_envs(raw_by_file)
    shared = read_shared_values(config_dir)
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
    """Envs ordered so that every upstream comes before its downstreams."""
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
