"""README command 1 end to end: bootstrap, samples, dev -> staging -> prod, blocked promotion.

Runs the same cycle `envsync-local up` runs, on the session's launched project, and checks
the outcome in the databases, the history tables, CloudWatch and SNS. The assertions hold on a
first run and on a rerun (the cycle is idempotent: the failing V4 stays failed in staging).
"""

from __future__ import annotations

import pytest

from tests.chain import chain

pytestmark = pytest.mark.launched

REFERENCE_TABLES = ("currency", "country")


def rows(handle, query):
    with handle.app_connection() as connection, connection.cursor() as cursor:
        cursor.execute(query)
        return cursor.fetchall()


def history(handle):
    return {version: state for version, state in rows(handle, "SELECT version, state FROM envsync_schema_history")}


def test_sync_users_exist_only_where_needed(cycle):
    handles, _, _ = cycle
    users = {name: {u for (u,) in rows(h, "SELECT user FROM mysql.user WHERE user LIKE 'envsync\\_%'")}
             for name, h in handles.items()}
    assert users["dev"] >= {"envsync_reader", "envsync_writer"}
    assert users["staging"] >= {"envsync_reader", "envsync_writer"}
    assert "envsync_reader" not in users["prod"], "nothing may read prod"


def test_migrations_promoted_in_order_with_the_same_checksums(cycle):
    handles, _, _ = cycle
    checksums = {name: dict(rows(h, "SELECT version, checksum FROM envsync_schema_history WHERE state = 'success'"))
                 for name, h in handles.items()}
    for version in ("1", "2", "3"):
        assert checksums["dev"][version] == checksums["staging"][version] == checksums["prod"][version]
    sources = dict(rows(handles["prod"], "SELECT version, source_env FROM envsync_schema_history"))
    assert set(sources.values()) == {"staging"}
    assert rows(handles["prod"], "SELECT transfer_fee(1000)")[0][0] == 1


def test_reference_data_is_identical_and_customer_data_stays_home(cycle):
    handles, _, _ = cycle
    for table in REFERENCE_TABLES:
        contents = {name: rows(h, f"SELECT * FROM {table} ORDER BY 1") for name, h in handles.items()}
        assert contents["dev"], f"dev has no {table} rows"
        assert contents["dev"] == contents["staging"] == contents["prod"], table
    for name, handle in handles.items():
        holders = {holder for (holder,) in rows(handle, "SELECT holder_name FROM customer_account")}
        assert holders and all(holder.startswith(f"{name} ") for holder in holders), (name, holders)


def test_blocked_promotion_stops_in_staging_and_prod_is_untouched(cycle):
    handles, report, printed = cycle
    assert history(handles["dev"])["4"] == "success"
    assert history(handles["staging"])["4"] == "failed"
    assert "4" not in history(handles["prod"])
    blocked = {status.env: status for status in report["blocked"]}
    assert blocked["staging"].execution == "FAILED"
    # the notification names the statement and the error class, never the server's text
    assert "V4__index_country_name.sql statement 1 (line 3): OperationalError: MySQL error 1061 (DUP_KEYNAME)" \
        in blocked["staging"].error and "Duplicate key name" not in blocked["staging"].error
    assert blocked["staging"].alarms["envsync-staging-sync-failures"] == "ALARM"
    assert blocked["prod"].execution == "SUCCEEDED" and blocked["prod"].drift == 1
    assert "V4__index_country_name.sql statement 1 (line 3)" in printed


def test_the_failure_is_on_the_topic_and_the_alarm_in_cloudwatch(cycle, launched):
    _, report, _ = cycle
    # the failing step's notice, from named fields (the state machine adds nothing for it)
    (failure,) = [n for n in report["notices"] if n["subject"] == "envsync migrate failed in staging"]
    assert "V4__index_country_name.sql statement 1 (line 3)" in failure["message"], failure
    assert "Duplicate key name" not in failure["message"]
    alarms = launched.client("staging", "cloudwatch").describe_alarms(
        AlarmNames=["envsync-staging-sync-failures"])["MetricAlarms"]
    assert alarms[0]["StateValue"] == "ALARM"
    lag = launched.client("staging", "cloudwatch").describe_alarms(
        AlarmNames=["envsync-staging-replication-lag"])["MetricAlarms"][0]
    assert (lag["Threshold"], lag["ComparisonOperator"]) == (60.0, "GreaterThanThreshold")


def test_status_table_reports_every_env(cycle):
    _, report, printed = cycle
    assert [status.env for status in report["status"]] == list(chain())
    assert all(status.schema_version.startswith("V") for status in report["status"])
    assert report["seconds"] < 180
    assert "[4] status" in printed and "[5] blocked promotion" in printed


def test_the_cycle_ends_as_the_demo_expects_and_anything_else_is_named(cycle):
    """`make local` exits 1 unless the cycle ends as the demo expects (cli.command_sync)."""
    import dataclasses

    from envsync_local.cycle import demo_outcome_problems

    _, report, _ = cycle
    assert demo_outcome_problems(report) == []
    # The same report with prod moved past the failure, an unexpected alarm and dev failing.
    blocked = [dataclasses.replace(status, schema_version="V4") if status.env == "prod" else status
               for status in report["blocked"]]
    blocked = [dataclasses.replace(status, alarms={**status.alarms, "envsync-dev-sync-failures": "ALARM"})
               if status.env == "dev" else status for status in blocked]
    first = [dataclasses.replace(status, execution="FAILED", error="boom") if status.env == "dev" else status
             for status in report["status"]]
    problems = demo_outcome_problems({**report, "status": first, "blocked": blocked})
    assert problems == ["dev: first sync FAILED: boom", "prod: must not move past a failure upstream",
                        "dev: alarm envsync-dev-sync-failures is in ALARM"], problems
