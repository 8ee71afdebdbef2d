"""Engine fixtures: one fresh app schema per test on each of the three TLS stand-ins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator, List, Tuple

import pymysql
import pytest

from envsync.migrations import history
from envsync.mysql.connection import ConnectionInfo, connect
from envsync.refdata import RefdataConfig
from tests.conftest import root_connect


@dataclass
class EnvDB:
    """One env's app schema on its stand-in, reachable as root over verified TLS."""

    name: str
    host: str
    port: int
    database: str
    ca_bundle: str

    @property
    def info(self) -> ConnectionInfo:
        return ConnectionInfo(host=self.host, port=self.port, database=self.database, user="root",
                              secret_arn="", tls=True)

    @property
    def url(self) -> str:
        return f"mysql://root:@{self.host}:{self.port}/{self.database}?tls=true&ca={self.ca_bundle}"

    def connect(self, **kwargs: object):
        return connect(self.info, "", ca_bundle=self.ca_bundle, env_name=self.name, **kwargs)

    def history(self) -> list:
        connection = self.connect()
        try:
            return history.read_rows(connection)
        finally:
            connection.close()

    def query(self, sql: str, args: object = None) -> list:
        connection = self.connect()
        try:
            with connection.cursor() as cursor:
                cursor.execute(sql, args)
                return list(cursor.fetchall())
        finally:
            connection.close()


@pytest.fixture
def chain(mariadb_instances: Dict[str, object]) -> Iterator[Dict[str, EnvDB]]:
    """dev, staging and prod app schemas (same name on each server), dropped afterwards."""
    database = f"app_{uuid.uuid4().hex[:10]}"
    envs = {}
    for name, instance in mariadb_instances.items():
        connection = root_connect(instance)
        with connection.cursor() as cursor:
            cursor.execute(f"CREATE DATABASE `{database}`")
        connection.close()
        envs[name] = EnvDB(name=name, host=instance.host, port=instance.port, database=database,
                           ca_bundle=str(instance.ca_bundle))
    try:
        yield envs
    finally:
        for instance in mariadb_instances.values():
            connection = root_connect(instance)
            with connection.cursor() as cursor:
                cursor.execute(f"DROP DATABASE IF EXISTS `{database}`")
            connection.close()


def write_scripts(folder: Path, scripts: Dict[str, str]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for name, body in scripts.items():
        (folder / name).write_text(body)
    return folder


def history_rows(db: EnvDB) -> list:
    return db.history()


# --- reference data: two schemas on the machine's server ---------------------------------

class Pair:
    """Source and target schemas on one server, with a connection to each."""

    def __init__(self, db: Dict[str, object], source: str, target: str) -> None:
        self.db, self.source_name, self.target_name = db, source, target
        self.source = self.connect(source)
        self.target = self.connect(target)

    def connect(self, database: str) -> pymysql.Connection:
        return pymysql.connect(**self.db, database=database, charset="utf8mb4", autocommit=True)

    def both(self, *statements: str) -> None:
        for conn in (self.source, self.target):
            self.run(conn, *statements)

    @staticmethod
    def run(conn, *statements: str, args=None) -> None:
        with conn.cursor() as cur:
            for statement in statements:
                cur.execute(statement, args)

    @staticmethod
    def rows(conn, sql: str) -> List[Tuple]:
        with conn.cursor() as cur:
            cur.execute(sql)
            return list(cur.fetchall())

    def same(self, table: str, order: str = "1") -> bool:
        sql = f"SELECT * FROM `{table}` ORDER BY {order}"
        return self.rows(self.source, sql) == self.rows(self.target, sql)

    def checksums_equal(self, table: str) -> bool:
        a = self.rows(self.source, f"CHECKSUM TABLE `{table}` EXTENDED")[0][1]
        b = self.rows(self.target, f"CHECKSUM TABLE `{table}` EXTENDED")[0][1]
        return a == b


@pytest.fixture
def pair(machine_mariadb: Dict[str, object], scratch_schema: str) -> Iterator[Pair]:
    target = f"{scratch_schema}_tgt"
    admin = pymysql.connect(**machine_mariadb, autocommit=True)
    with admin.cursor() as cur:
        cur.execute(f"CREATE DATABASE `{target}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
    pair = Pair(machine_mariadb, scratch_schema, target)
    try:
        yield pair
    finally:
        pair.source.close()
        pair.target.close()
        with admin.cursor() as cur:
            cur.execute(f"DROP DATABASE IF EXISTS `{target}`")
        admin.close()


def config(*tables, **extra) -> RefdataConfig:
    """A refdata config; tests of other behaviour delete most of their few rows on purpose, so
    the max_delete_share guard is off unless a test sets it (test_refdata_guards does)."""
    return RefdataConfig.from_dict({"tables": list(tables), "max_delete_share": 1.0, **extra})


def table_result(result, name: str) -> dict:
    return next(t for t in result.to_dict()["tables"] if t["table"] == name)
