"""What each env costs per month, computed from config/ and one dated price table (prices.yaml).

Quantities come from what the stacks create for an env's config: Aurora instances (a writer,
plus a reader where `is_prod`, as the aurora stack's HasReader decides), Extended Support
while the engine is 5.7, the network stack's interface endpoints in each of its AZs, the env
key, the secrets (the cluster's managed master secret, the writer's, the reader's where a
downstream env reads this one), the alarms and the dashboard, and the sync runs the schedule
starts (Lambda, Step Functions transitions, logs). Not included: Aurora storage and I/O,
backups beyond the free allowance, data processed by endpoints, peering traffic, free tiers.
"""

from __future__ import annotations

import copy
import importlib.util
import json
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple

import yaml

from envsync_local.paths import PROJECT_ROOT
from envsync_sceptre.config.envconfig import load_envs, promotion_order, read_env_files, read_shared_values
from envsync_sceptre.config.stackvalues import ScheduleError, schedule_interval_seconds

PRICE_FILE = Path(__file__).with_name("prices.yaml")
README_BEGIN, README_END = "<!-- cost table: envsync-local cost --markdown -->", "<!-- end of cost table -->"


class CostError(ValueError):
    """A value the estimate cannot price; the message names it and where it lives."""


@dataclass(frozen=True)
class CostLine:
    item: str
    quantity: str
    usd: float


def load_prices(path: Path = PRICE_FILE) -> Dict[str, Any]:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def runs_per_month(schedule: str, enabled: bool, hours_per_month: float) -> float:
    """Sync runs the EventBridge schedule starts in a month (only rate() is estimated)."""
    if not enabled:
        return 0.0
    try:
        every = schedule_interval_seconds(schedule)
    except ScheduleError as error:
        raise CostError(str(error)) from None
    return hours_per_month * 3600 / every


def network_shape(project: Path = PROJECT_ROOT) -> Tuple[int, int]:
    """(interface endpoints, AZs) of the network stack: its own constants, not a copy."""
    templates = str(project / "templates")
    spec = importlib.util.spec_from_file_location("envsync_network_template", Path(templates) / "network.py")
    module = importlib.util.module_from_spec(spec)
    sys.path.insert(0, templates)  # network.py imports template_common beside it, as Sceptre loads it
    try:
        spec.loader.exec_module(module)  # type: ignore[union-attr]
    finally:
        sys.path.remove(templates)
    return len(module.INTERFACE_ENDPOINTS), int(module.AZ_COUNT)


def state_transitions_per_run(project: Path = PROJECT_ROOT) -> int:
    """Transitions of a run that has nothing to loop over and waits for no one: every state but
    the failure branch, the approval wait and the end of a superseded run."""
    states = json.loads((project / "templates" / "statemachine" / "sync.asl.json").read_text())["States"]
    return sum(1 for name, state in states.items() if state.get("Type") != "Fail" and "Notify" not in name
               and name not in ("WaitForApproval", "Superseded", "Failure"))


def env_values(config_dir: Path) -> Dict[str, Dict[str, Any]]:
    """Each env's values as Sceptre sees them: config/config.yaml, overridden by config/<env>/."""
    shared = read_shared_values(config_dir)
    return {str(raw["env"]): {**shared, **raw} for raw in read_env_files(config_dir).values()}


def estimate_env(values: Mapping[str, Any], prices: Mapping[str, Any], endpoints: int, azs: int,
                 transitions: int) -> List[CostLine]:
    """The monthly cost lines of one env."""
    table, hours, assume = prices["prices"], float(prices["hours_per_month"]), prices["assumptions"]
    instance_class = str(values["db_instance_class"])
    if instance_class not in table["aurora_instance_hour"] or instance_class not in prices["vcpus"]:
        raise CostError(f"db_instance_class '{instance_class}' has no price or vCPU count in {PRICE_FILE.name}")
    instances = 1 + (1 if values.get("is_prod") else 0)
    is_57 = str(values["db_engine_version"]).startswith("5.7")
    vcpus = prices["vcpus"][instance_class] * instances
    secrets = 2 + (1 if values.get("downstream_env") else 0)
    # sync failures, rotation failures, break-glass applies; replication lag; Aurora replica lag
    alarms = 3 + (1 if values.get("upstream_env") else 0) + (1 if values.get("is_prod") else 0)
    runs = runs_per_month(str(values["sync_schedule"]), bool(values.get("sync_schedule_enabled", True)), hours)
    invocations = runs * assume["invocations_per_run"]
    gb_seconds = invocations * assume["seconds_per_invocation"] * 0.5  # 512 MB functions
    log_gb = runs * assume["log_kb_per_run"] / 1024 / 1024
    kind = "writer + reader" if instances > 1 else "writer"
    return [
        CostLine("Aurora instances", f"{instances} x {instance_class} ({kind})",
                 instances * hours * table["aurora_instance_hour"][instance_class]),
        CostLine("RDS Extended Support (5.7)", f"{vcpus} vCPU" if is_57 else "none (8.0)",
                 vcpus * hours * table["extended_support_vcpu_hour"]["usd"] if is_57 else 0.0),
        CostLine("Interface VPC endpoints", f"{endpoints} x {azs} AZ",
                 endpoints * azs * hours * table["interface_endpoint_az_hour"]["usd"]),
        CostLine("KMS key", "1", table["kms_key_month"]["usd"]),
        CostLine("Secrets", str(secrets), secrets * table["secret_month"]["usd"]),
        CostLine("Lambda", f"{invocations:,.0f} invocations",
                 invocations * table["lambda_request"]["usd"] + gb_seconds * table["lambda_gb_second"]["usd"]),
        CostLine("Step Functions", f"{runs:,.0f} runs x {transitions} transitions",
                 runs * transitions * table["stepfunctions_transition"]["usd"]),
        CostLine("Log ingestion", f"{log_gb:.2f} GB", log_gb * table["logs_ingested_gb"]["usd"]),
        CostLine("Alarms + dashboard", f"{alarms} alarms, 1 dashboard",
                 alarms * table["alarm_month"]["usd"] + table["dashboard_month"]["usd"]),
    ]


def estimate(config_dir: Path = PROJECT_ROOT / "config", prices: Optional[Mapping[str, Any]] = None,
             overrides: Optional[Mapping[str, Any]] = None) -> Dict[str, List[CostLine]]:
    """Every env's lines, upstream first; `overrides` replaces config values in every env."""
    prices = prices or load_prices()
    endpoints, azs = network_shape()
    transitions = state_transitions_per_run()
    values = env_values(config_dir)
    order = promotion_order(load_envs(config_dir))
    return {env: estimate_env({**values[env], **(overrides or {})}, prices, endpoints, azs, transitions)
            for env in order}


def total(lines: List[CostLine]) -> float:
    return sum(line.usd for line in lines)


def switches(config_dir: Path = PROJECT_ROOT / "config",
             prices: Optional[Mapping[str, Any]] = None) -> List[Tuple[str, float]]:
    """The one-line changes that move the monthly total most, with the new total of all envs."""
    prices = prices or load_prices()
    no_endpoints = copy.deepcopy(prices)
    no_endpoints["prices"]["interface_endpoint_az_hour"]["usd"] = 0.0
    return [
        ("db_engine_version: 8.0.mysql_aurora.3.x (no Extended Support)",
         sum(total(lines) for lines in estimate(config_dir, prices, {"db_engine_version": "8.0.mysql_aurora.3.08.0"})
             .values())),
        ("interface endpoints shared from a hub VPC (templates/network.py INTERFACE_ENDPOINTS: none here)",
         sum(total(lines) for lines in estimate(config_dir, no_endpoints).values())),
        ("sync_schedule: rate(1 hour)",
         sum(total(lines) for lines in estimate(config_dir, prices, {"sync_schedule": "rate(1 hour)"}).values())),
    ]


def format_report(config_dir: Path = PROJECT_ROOT / "config", markdown: bool = False) -> str:
    """The per-env table, the total and the switches; `markdown` for README."""
    prices = load_prices()
    estimates = estimate(config_dir, prices)
    envs = list(estimates)
    items = [line.item for line in next(iter(estimates.values()))]
    grand = sum(total(lines) for lines in estimates.values())
    rows = [[item] + [f"{estimates[env][index].usd:,.2f}" for env in envs] for index, item in enumerate(items)]
    rows.append(["**total**" if markdown else "total"] + [f"{total(estimates[env]):,.2f}" for env in envs])
    header = ["USD per month", *envs]
    detail = "; ".join(f"{line.item}: {line.quantity}" for line in estimates[envs[-1]])
    caption = (f"{prices['region']} list prices as published on {prices['as_published_on']} "
               f"({PRICE_FILE.relative_to(PROJECT_ROOT)}); all envs: {grand:,.2f} USD per month")
    changes = [f"{text}: {new:,.2f} USD per month for all envs ({new - grand:+,.2f})"
               for text, new in switches(config_dir, prices)]
    if markdown:
        lines = ["| " + " | ".join(header) + " |", "|" + "---|" + "---:|" * len(envs)]
        lines += ["| " + " | ".join(row) + " |" for row in rows]
        return "\n".join([*lines, "", caption + ".", f"{envs[-1]}: {detail}.", "",
                          *[f"- {change}" for change in changes]])
    widths = [max(len(str(row[i])) for row in [header, *rows]) for i in range(len(header))]
    lines = ["  ".join(str(cell).rjust(width) if i else str(cell).ljust(width)
                       for i, (cell, width) in enumerate(zip(row, widths))) for row in [header, *rows]]
    return "\n".join([*lines, "", caption, f"{envs[-1]}: {detail}", "", "one-line switches:",
                      *[f"  {change}" for change in changes]])
