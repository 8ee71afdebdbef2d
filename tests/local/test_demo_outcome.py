"""The demo cycle's verdict follows the chain config/ gives it (no env name is remembered)."""

from __future__ import annotations

from typing import Dict, Optional

from envsync_local.cycle import EnvStatus, demo_outcome_problems


def test_the_demo_judges_the_chain_config_gives_it():
    """The demo's roles follow config/'s order (source, the env after it, the gated last env):
    with qa between dev and staging, qa is where step [5] fails and its alarm is the one expected."""
    chain = ["dev", "qa", "staging", "prod"]

    def status(env: str, execution: str = "SUCCEEDED", alarms: Optional[Dict[str, str]] = None,
               error: str = "") -> EnvStatus:
        return EnvStatus(env=env, execution=execution, schema_version="V3", pending=0, drift=0, rows_synced=0,
                         lag_seconds=0.0, alarms=alarms or {}, error=error)

    failed_qa = status("qa", "FAILED", {"envsync-qa-sync-failures": "ALARM"},
                       "qa: V4__index_country_name.sql statement 1 (line 3): OperationalError: MySQL error 1061")
    report = {"chain": chain, "before": {}, "status": [status(env) for env in chain],
              "approval": {"env": "prod", "cli": {"run_status": "SUCCEEDED"}},
              "blocked": [status("dev"), failed_qa, status("staging"), status("prod")], "notices": [{"run": "r"}]}
    assert demo_outcome_problems(report) == []
    staging_failed = {**report, "blocked": [status("dev"), status("qa"), status(
        "staging", "FAILED", {"envsync-staging-sync-failures": "ALARM"}, failed_qa.error), status("prod")]}
    assert demo_outcome_problems(staging_failed) == [
        "qa: expected to fail on V4's duplicate index ix_country_name",
        "staging: alarm envsync-staging-sync-failures is in ALARM"]
