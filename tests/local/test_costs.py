"""`envsync-local cost`: the monthly estimate follows config/, and README shows what it prints."""

from __future__ import annotations

import subprocess
import sys

import pytest

from envsync_tools.cost import (
    PRICE_FILE,
    README_BEGIN,
    README_END,
    CostError,
    estimate,
    estimate_env,
    format_report,
    load_prices,
    network_shape,
    total,
)
from tests.conftest import PROJECT_ROOT

SCHEDULED = ("Lambda", "Step Functions", "Log ingestion")


def by_item(lines):
    return {line.item: line for line in lines}


def base_values(**changes):
    values = {"db_instance_class": "db.r5.large", "db_engine_version": "5.7.mysql_aurora.2.12.5",
              "sync_schedule": "rate(15 minutes)", "sync_schedule_enabled": True, "is_prod": False,
              "upstream_env": "dev", "downstream_env": "prod"}
    values.update(changes)
    return values


def one_env(**changes):
    return by_item(estimate_env(base_values(**changes), load_prices(), 8, 2, 9))


def test_readme_table_is_what_the_command_prints():
    readme = (PROJECT_ROOT / "README.md").read_text()
    block = readme[readme.index(README_BEGIN) + len(README_BEGIN):readme.index(README_END)].strip()
    assert block == format_report(markdown=True), "regenerate README's table: envsync-local cost --markdown"
    printed = subprocess.run([sys.executable, "-m", "envsync_local.cli", "cost", "--markdown"],
                             capture_output=True, text=True, check=True).stdout.strip()
    assert printed == block


def test_the_schedule_moves_only_the_per_run_lines():
    every_15 = estimate()
    every_30 = estimate(overrides={"sync_schedule": "rate(30 minutes)"})
    for env in every_15:
        before, after = by_item(every_15[env]), by_item(every_30[env])
        for item in before:
            if item in SCHEDULED:
                assert after[item].usd == pytest.approx(before[item].usd / 2)
                assert before[item].usd > 0
            else:
                assert after[item].usd == before[item].usd
    assert by_item(every_15["dev"])["Step Functions"].quantity == "2,920 runs x 10 transitions"  # 730 h x 4
    off = one_env(sync_schedule_enabled=False)
    assert all(off[item].usd == 0 for item in SCHEDULED)


def test_quantities_follow_the_config_as_the_stacks_do():
    lines = estimate()
    # The aurora stack gives prod (is_prod) a reader; only source envs have a reader user's secret.
    assert by_item(lines["prod"])["Aurora instances"].quantity == "2 x db.r5.large (writer + reader)"
    assert by_item(lines["dev"])["Aurora instances"].quantity == "1 x db.r5.large (writer)"
    assert by_item(lines["prod"])["Secrets"].quantity == "2" and by_item(lines["staging"])["Secrets"].quantity == "3"
    # dev: no upstream, no reader -> 3 alarms (failures, rotation, break-glass); prod: lag +
    # replica lag -> 5 (as the sync stack).
    assert by_item(lines["dev"])["Alarms + dashboard"].quantity.startswith("3 alarms")
    assert by_item(lines["prod"])["Alarms + dashboard"].quantity.startswith("5 alarms")
    endpoints, azs = network_shape()
    assert by_item(lines["dev"])["Interface VPC endpoints"].quantity == f"{endpoints} x {azs} AZ"
    prod = by_item(lines["prod"])
    assert prod["Aurora instances"].usd == pytest.approx(2 * 730 * 0.29)
    assert prod["RDS Extended Support (5.7)"].usd == pytest.approx(2 * 2 * 730 * 0.10)
    assert total(lines["prod"]) > total(lines["staging"])


def test_8_0_pays_no_extended_support_and_a_bigger_class_pays_more():
    assert one_env(db_engine_version="8.0.mysql_aurora.3.08.0")["RDS Extended Support (5.7)"].usd == 0
    small, large = one_env(), one_env(db_instance_class="db.r5.xlarge")
    assert large["RDS Extended Support (5.7)"].usd == 2 * small["RDS Extended Support (5.7)"].usd
    assert large["Aurora instances"].usd > small["Aurora instances"].usd


def test_what_cannot_be_priced_is_named():
    with pytest.raises(CostError, match=r"db\.x2g\.large.*prices\.yaml"):
        one_env(db_instance_class="db.x2g.large")
    with pytest.raises(CostError, match=r"sync_schedule 'cron\(0 \* \* \* \? \*\)'"):
        one_env(sync_schedule="cron(0 * * * ? *)")


def test_every_price_is_dated_and_cited():
    prices = load_prices(PRICE_FILE)
    assert str(prices["as_published_on"]) == "2026-12-01" and prices["region"] == "us-east-1"
    for name, entry in prices["prices"].items():
        assert str(entry["source"]).startswith("https://aws.amazon.com/"), name
