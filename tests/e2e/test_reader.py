"""The upstream's read-only user as the aurora stacks deployed it (dev and staging): it reads the
reference tables and the history a downstream promotes from, and no customer row."""

from __future__ import annotations

import json

import pymysql
import pytest

from tests.e2e.helpers import CUSTOMER_TABLES, HISTORY, REFDATA_TABLES

pytestmark = pytest.mark.launched


def as_reader(handle) -> pymysql.Connection:
    secret = handle.client("secretsmanager").get_secret_value(SecretId=handle.outputs["ReaderSecretArn"])
    value = json.loads(secret["SecretString"])
    return pymysql.connect(host=handle.db_host, port=handle.db_port, user=value["username"],
                           password=value["password"], database=handle.database, ssl={"ca": handle.ca_bundle},
                           autocommit=True)


@pytest.mark.parametrize("env", ["dev", "staging"])
def test_the_reader_selects_reference_tables_and_history_but_no_customer_row(system, env):
    handle = system[env]
    with as_reader(handle) as connection, connection.cursor() as cursor:
        for table in (*REFDATA_TABLES, HISTORY):  # created by migrations after the user: granted by the runs
            cursor.execute(f"SELECT COUNT(*) FROM `{table}`")
            assert cursor.fetchone()[0] > 0, table
        for table in CUSTOMER_TABLES:
            with pytest.raises(pymysql.err.OperationalError) as denied:
                cursor.execute(f"SELECT * FROM `{table}`")
            assert denied.value.args[0] == 1142, denied.value
            # its definition stays visible, for drift
            cursor.execute("SELECT COUNT(*) FROM information_schema.COLUMNS WHERE TABLE_SCHEMA = DATABASE() "
                           "AND TABLE_NAME = %s", (table,))
            assert cursor.fetchone()[0] > 0
