"""An Aurora reader instance offline: a MariaDB replica of the cluster's stand-in, and its lag.

When a cluster gets a reader instance, `attach` makes the env's replica server (started by the
launcher at the endpoint's `reader_host`, same port) replicate the writer's binary log: GTID,
over TLS verified with the stand-ins' CA, as a dedicated replication user. From then on a
publisher thread does what RDS does for a reader: it measures the replica's lag and puts
`AuroraReplicaLag` and `AuroraReplicaLagMaximum`, in milliseconds, into the account's
CloudWatch under the dimensions RDS uses (`lag_metric_data`).

The lag is measured as RDS measures it for MySQL replicas: a heartbeat row
(`mysql.rds_heartbeat2`) written on the writer with the time of writing, read back on the
replica; lag = now - the newest heartbeat the replica has applied. `Seconds_Behind_Master`
would not do: it is NULL, not growing, while the replica's SQL thread is stopped.
"""

from __future__ import annotations

import logging
import secrets
import threading
import time
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from envsync_local.cfn_models import endpoints

REPLICATION_USER = "rdsrepladmin"
HEARTBEAT_TABLE = "mysql.rds_heartbeat2"
PUBLISH_INTERVAL_SECONDS = 2.0
# Time the replica gets to apply the heartbeat just written before it is read back.
APPLY_WINDOW_SECONDS = 0.2
START_TIMEOUT_SECONDS = 15.0

log = logging.getLogger(__name__)


class ReplicaError(RuntimeError):
    """The replica could not be set up; the message carries the server's replication error."""


@dataclass(frozen=True)
class WatchedReader:
    account_id: str
    region_name: str
    cluster_id: str
    instance_id: str
    endpoint: endpoints.DatabaseEndpoint


_WATCHED: Dict[str, WatchedReader] = {}
_LOCK = threading.Lock()
_PUBLISHER: Dict[str, threading.Thread] = {}


def attach(endpoint: endpoints.DatabaseEndpoint) -> None:
    """Make the endpoint's replica server replicate its writer (idempotent)."""
    if not endpoint.reader_host:
        return
    password = secrets.token_urlsafe(24)
    with endpoints.admin_connection(endpoint) as writer, writer.cursor() as cursor:
        cursor.execute("CREATE USER IF NOT EXISTS %s@'%%' IDENTIFIED BY %s REQUIRE SSL",
                       (REPLICATION_USER, password))
        cursor.execute("ALTER USER %s@'%%' IDENTIFIED BY %s REQUIRE SSL", (REPLICATION_USER, password))
        cursor.execute("GRANT REPLICATION SLAVE ON *.* TO %s@'%%'", (REPLICATION_USER,))
        cursor.execute(f"CREATE TABLE IF NOT EXISTS {HEARTBEAT_TABLE} "
                       "(id INT PRIMARY KEY, value BIGINT NOT NULL) ENGINE=InnoDB")
    with endpoints.admin_connection(endpoint, host=endpoint.reader_host) as replica, replica.cursor() as cursor:
        cursor.execute("STOP SLAVE")
        cursor.execute(
            "CHANGE MASTER TO MASTER_HOST=%s, MASTER_PORT=%s, MASTER_USER=%s, MASTER_PASSWORD=%s, "
            "MASTER_SSL=1, MASTER_SSL_CA=%s, MASTER_SSL_VERIFY_SERVER_CERT=1, "
            "MASTER_USE_GTID=slave_pos, MASTER_CONNECT_RETRY=1",
            (endpoint.host, endpoint.port, REPLICATION_USER, password, endpoint.ca_bundle or ""))
        cursor.execute("START SLAVE")
        deadline = time.monotonic() + START_TIMEOUT_SECONDS
        while True:
            cursor.execute("SHOW SLAVE STATUS")
            columns = [column[0] for column in cursor.description]
            status = dict(zip(columns, cursor.fetchone() or ()))
            if status.get("Slave_IO_Running") == "Yes" and status.get("Slave_SQL_Running") == "Yes":
                return
            if time.monotonic() > deadline:
                raise ReplicaError(
                    f"the replica of env {endpoint.env!r} at {endpoint.reader_host}:{endpoint.port} "
                    f"does not replicate: IO {status.get('Slave_IO_Running')} "
                    f"({status.get('Last_IO_Error') or 'no error'}), SQL {status.get('Slave_SQL_Running')} "
                    f"({status.get('Last_SQL_Error') or 'no error'})")
            time.sleep(0.2)


def measure_lag_ms(endpoint: endpoints.DatabaseEndpoint) -> Optional[float]:
    """Write a heartbeat on the writer, read the newest one the replica applied; None if unknown."""
    with endpoints.admin_connection(endpoint) as writer, writer.cursor() as cursor:
        cursor.execute(f"REPLACE INTO {HEARTBEAT_TABLE} (id, value) VALUES (1, %s)", (int(time.time() * 1000),))
    time.sleep(APPLY_WINDOW_SECONDS)
    with endpoints.admin_connection(endpoint, host=endpoint.reader_host) as replica, replica.cursor() as cursor:
        cursor.execute(f"SELECT value FROM {HEARTBEAT_TABLE} WHERE id = 1")
        row = cursor.fetchone()
    return None if row is None else max(0.0, time.time() * 1000 - float(row[0]))


def watch(reader: WatchedReader) -> None:
    """Publish the reader's lag from now on (the publisher starts with the first reader)."""
    with _LOCK:
        _WATCHED[reader.instance_id] = reader
        if "thread" not in _PUBLISHER:
            _PUBLISHER["thread"] = threading.Thread(target=_publish_forever, name="replica-lag", daemon=True)
            _PUBLISHER["thread"].start()


def unwatch(instance_id: str) -> None:
    with _LOCK:
        _WATCHED.pop(instance_id, None)


def lag_metric_data(cluster_id: str, instance_id: str, lag_ms: float) -> List[Dict[str, Any]]:
    """The AWS/RDS datapoints of one lag measurement, with every dimension set RDS publishes
    them under: AuroraReplicaLag per reader instance and per cluster role (READER, what a
    dashboard charts), AuroraReplicaLagMaximum per cluster and per cluster role (WRITER: the
    cluster-level figures are the writer's view of its readers). One reader: maximum = its lag."""
    def dimensions(**pairs: str) -> List[Dict[str, str]]:
        return [{"Name": name, "Value": value} for name, value in pairs.items()]

    sets = {"AuroraReplicaLag": [dimensions(DBInstanceIdentifier=instance_id),
                                 dimensions(DBClusterIdentifier=cluster_id, Role="READER")],
            "AuroraReplicaLagMaximum": [dimensions(DBClusterIdentifier=cluster_id),
                                        dimensions(DBClusterIdentifier=cluster_id, Role="WRITER")]}
    return [{"MetricName": metric, "Value": lag_ms, "Unit": "Milliseconds", "Dimensions": dimension_set}
            for metric, dimension_sets in sets.items() for dimension_set in dimension_sets]


def publish(reader: WatchedReader, lag_ms: float) -> None:
    """Put the reader's lag into its account's CloudWatch, as RDS does."""
    from moto.cloudwatch.models import cloudwatch_backends

    backend = cloudwatch_backends[reader.account_id][reader.region_name]
    backend.put_metric_data("AWS/RDS", lag_metric_data(reader.cluster_id, reader.instance_id, lag_ms))


def _publish_forever() -> None:
    while True:
        with _LOCK:
            readers = list(_WATCHED.values())
        for reader in readers:
            try:
                lag = measure_lag_ms(reader.endpoint)
            except Exception as error:  # a server down: no datapoint, as RDS reports none
                log.warning("replica lag of %s not measured: %s", reader.instance_id, error)
                continue
            if lag is not None:
                publish(reader, lag)
        time.sleep(PUBLISH_INTERVAL_SECONDS)
