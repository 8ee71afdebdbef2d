"""Prod's reader instance is a real replica of prod's writer, and its lag reaches CloudWatch.

The replica (a MariaDB server replicating the writer's binary log over TLS) answers the
cluster's reader endpoint; the stand-in measures its lag with a heartbeat row and publishes
AuroraReplicaLag / AuroraReplicaLagMaximum in milliseconds, as RDS does.

How the alarm is made to fire: the replica's SQL thread is stopped, so the heartbeats it applies
stop and the measured lag grows in real time. The deployed alarm needs 3 minutes above 60 s;
the test redefines the same alarm (PutMetricAlarm, its own name, metric and actions) with a
10 s period and a 3 s threshold for the duration of the stop, then restores the deployed
definition and sees it return to OK once the replica caught up.
"""

from __future__ import annotations

import datetime as dt
import time

import pymysql
import pytest

from envsync_local.cloudwatch_emulation import evaluate_alarms
from envsync_local.mariadb import REPLICA_HOST

ALARM = "envsync-prod-aurora-replica-lag"
ALARM_FIELDS = ("AlarmName", "AlarmDescription", "ActionsEnabled", "OKActions", "AlarmActions",
                "InsufficientDataActions", "MetricName", "Namespace", "Statistic", "Dimensions",
                "Period", "EvaluationPeriods", "Threshold", "ComparisonOperator", "TreatMissingData")


pytestmark = pytest.mark.launched


def reader_connection(system) -> pymysql.Connection:
    prod = system["prod"]
    return pymysql.connect(host=REPLICA_HOST, port=prod.db_port, user="root", password="",
                           database=prod.database, ssl={"ca": prod.ca_bundle}, autocommit=True)


def recent_lag_ms(cloudwatch, cluster_id: str, seconds: int = 10) -> float:
    now = dt.datetime.now(dt.timezone.utc)
    points = cloudwatch.get_metric_statistics(
        Namespace="AWS/RDS", MetricName="AuroraReplicaLagMaximum",
        Dimensions=[{"Name": "DBClusterIdentifier", "Value": cluster_id}],
        StartTime=now - dt.timedelta(seconds=seconds), EndTime=now + dt.timedelta(seconds=1),
        Period=seconds, Statistics=["Maximum"])["Datapoints"]
    return max((point["Maximum"] for point in points), default=-1.0)


def prod_cluster(system) -> dict:
    (cluster,) = system["prod"].client("rds").describe_db_clusters()["DBClusters"]
    return cluster


def test_the_reader_endpoint_is_a_replica_holding_the_writers_data(system):
    cluster = prod_cluster(system)
    assert cluster["ReaderEndpoint"] == REPLICA_HOST and cluster["Endpoint"] != REPLICA_HOST
    instances = system["prod"].client("rds").describe_db_instances()["DBInstances"]
    roles = {tag["Value"]: instance for instance in instances for tag in instance.get("TagList", [])
             if tag["Key"] == "Role"}
    assert roles["reader"]["Endpoint"]["Address"] == REPLICA_HOST
    assert roles["writer"]["Endpoint"]["Address"] == cluster["Endpoint"]
    with system["prod"].app_connection() as writer, writer.cursor() as cursor:
        cursor.execute("SELECT version, checksum, state FROM envsync_schema_history ORDER BY installed_rank")
        history = cursor.fetchall()
        cursor.execute("SELECT COUNT(*) FROM customer_account")
        customers = cursor.fetchone()
    deadline = time.monotonic() + 10
    while True:
        with reader_connection(system) as reader, reader.cursor() as cursor:
            cursor.execute("SELECT version, checksum, state FROM envsync_schema_history ORDER BY installed_rank")
            replicated = cursor.fetchall()
            cursor.execute("SELECT COUNT(*) FROM customer_account")
            replicated_customers = cursor.fetchone()
            cursor.execute("SELECT @@read_only")
            (read_only,) = cursor.fetchone()
        if (replicated, replicated_customers) == (history, customers) or time.monotonic() > deadline:
            break
        time.sleep(0.5)
    assert history and replicated == history and replicated_customers == customers
    assert read_only == 1


def test_replica_lag_is_published_and_the_alarm_follows_it(system):
    cloudwatch = system["prod"].client("cloudwatch")
    cluster_id = prod_cluster(system)["DBClusterIdentifier"]
    session, endpoint = system["prod"].session, system.endpoint_url
    assert 0 <= recent_lag_ms(cloudwatch, cluster_id) < 3000
    assert evaluate_alarms(session, endpoint, prefix=ALARM)[ALARM] == "OK"

    (deployed,) = cloudwatch.describe_alarms(AlarmNames=[ALARM])["MetricAlarms"]
    definition = {key: deployed[key] for key in ALARM_FIELDS if key in deployed}
    with reader_connection(system) as reader, reader.cursor() as cursor:
        cursor.execute("STOP SLAVE SQL_THREAD")
    try:
        cloudwatch.put_metric_alarm(**{**definition, "Period": 10, "EvaluationPeriods": 1, "Threshold": 3000})
        deadline = time.monotonic() + 30
        while recent_lag_ms(cloudwatch, cluster_id, seconds=4) <= 3000 and time.monotonic() < deadline:
            time.sleep(1)
        assert recent_lag_ms(cloudwatch, cluster_id, seconds=4) > 3000
        assert evaluate_alarms(session, endpoint, prefix=ALARM)[ALARM] == "ALARM"
    finally:
        with reader_connection(system) as reader, reader.cursor() as cursor:
            cursor.execute("START SLAVE SQL_THREAD")
        cloudwatch.put_metric_alarm(**definition)

    deadline = time.monotonic() + 30
    while recent_lag_ms(cloudwatch, cluster_id, seconds=4) > 1000 and time.monotonic() < deadline:
        time.sleep(1)
    assert 0 <= recent_lag_ms(cloudwatch, cluster_id, seconds=4) <= 1000
    assert evaluate_alarms(session, endpoint, prefix=ALARM)[ALARM] == "OK"
