"""Engine fixtures: one fresh app schema per test on each of the three TLS stand-ins."""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Dict, Iterator

import pytest

from envsync import history
from envsync.db import ConnectionInfo, connect
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
