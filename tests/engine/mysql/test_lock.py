"""The schema lock on the machine's MariaDB: groups of a reference-data fan-out share it, an
exclusive holder (a migration) waits for them and keeps new ones out."""

from __future__ import annotations

import threading
import time
from typing import Dict, List

import pymysql
import pytest

from envsync.mysql.lock import LockTimeout, lock_name, schema_lock, shared_schema_lock, slot_name


def _connect(machine_mariadb: Dict[str, object]) -> pymysql.Connection:
    return pymysql.connect(**machine_mariadb, autocommit=True)


def test_groups_of_one_fan_out_hold_the_lock_together(machine_mariadb, scratch_schema) -> None:
    first, second, migration = (_connect(machine_mariadb) for _ in range(3))
    with shared_schema_lock(first, scratch_schema, 0, 5), shared_schema_lock(second, scratch_schema, 1, 5):
        with pytest.raises(LockTimeout, match=r"#0"):  # a migration waits for the groups inside
            with schema_lock(migration, scratch_schema, 1):
                pass
    with schema_lock(migration, scratch_schema, 1):  # both groups done: it gets in
        pass


def test_a_group_waits_while_a_migration_holds_the_lock_then_enters(machine_mariadb, scratch_schema) -> None:
    group, migration = _connect(machine_mariadb), _connect(machine_mariadb)
    entered: List[float] = []
    with schema_lock(migration, scratch_schema, 5):
        with pytest.raises(LockTimeout, match=lock_name(scratch_schema)):
            with shared_schema_lock(group, scratch_schema, 3, 1):
                pass

        def enter() -> None:
            with shared_schema_lock(group, scratch_schema, 3, 10):
                entered.append(time.monotonic())

        waiting = threading.Thread(target=enter)
        waiting.start()
        time.sleep(0.5)
        assert not entered
        released = time.monotonic()
    waiting.join(10)
    assert entered and entered[0] >= released


def test_slots_wrap_and_fit_mysqls_64_characters() -> None:
    long_schema = "s" * 64
    assert slot_name(long_schema, 41) == slot_name(long_schema, 1) and len(slot_name(long_schema, 39)) <= 64
