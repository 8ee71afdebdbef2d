"""The engine adapts before it refuses: a chunk whose row-mode fingerprint does not fit the
packet is split until it does, the chunk size follows the key width the table's definition
allows, and a value bigger than one statement is written in pieces. Checked on real MariaDB
(the target's rows are compared with the source's, byte for byte)."""

from __future__ import annotations

from typing import Iterator

import pymysql
import pytest

from envsync import refdata
from envsync.refdata import RefdataConfig, apply
from envsync.refdata import run as refdata_run
from envsync_local.mariadb import MariaDBInstance, free_port
from tests.engine.conftest import Pair, config, table_result

LONG_KEYS = "CREATE TABLE lk (k VARCHAR(2000) CHARACTER SET latin1 PRIMARY KEY, v INT NOT NULL)"


def _long_keys(pair: Pair, source_rows: int, target_every: int = 1) -> None:
    """Keys of 2000 bytes; the target holds every `target_every`-th row, some of them changed,
    and a few rows of its own."""
    pair.both(LONG_KEYS)
    key = "CONCAT(LPAD(seq, 8, '0'), REPEAT('k', 1992))"
    pair.run(pair.source, f"INSERT INTO lk SELECT {key}, seq FROM seq_1_to_{source_rows}")
    pair.run(pair.target, f"INSERT INTO lk SELECT {key}, IF(seq % 97 = 0, -seq, seq) FROM seq_1_to_{source_rows} "
                          f"WHERE seq % {target_every} = 0",
             "INSERT INTO lk SELECT CONCAT('x', LPAD(seq, 7, '0'), REPEAT('k', 1992)), 0 FROM seq_1_to_5")


def _converged(pair: Pair, cfg: RefdataConfig) -> None:
    result = apply(pair.source, pair.target, cfg)
    assert result.status == "done" and not result.failed, result.to_dict()
    assert pair.same("lk")
    assert apply(pair.source, pair.target, cfg).rows_changed == 0


def test_2000_byte_keys_converge_with_the_default_chunk_rows(pair: Pair) -> None:
    """12 000 keys of 2000 bytes: 10 000 of them (the default chunk) make a 40 MB fingerprint,
    more than the 16 MB packet; the chunk size follows the key width instead."""
    _long_keys(pair, 12000)
    cfg = RefdataConfig.from_dict({"tables": ["lk"], "max_delete_share": 1.0})
    assert cfg.chunk_rows == 10000
    _converged(pair, cfg)


@pytest.fixture
def small_group_concat(monkeypatch: pytest.MonkeyPatch) -> None:
    """Fingerprints are cut at 64 KB (at most min(max_allowed_packet, group_concat_max_len)):
    ~16 long keys fit; the table is a few hundred rows instead of 40 MB."""
    monkeypatch.setattr(refdata, "GROUP_CONCAT_MAX_LEN", 64 * 1024)


def test_a_fingerprint_that_does_not_fit_is_split_until_it_does(pair: Pair, small_group_concat, monkeypatch) -> None:
    """Without the width estimate, the default chunk's fingerprint is cut: halve and recurse."""
    monkeypatch.setattr(refdata_run, "fitting_chunk_rows", lambda source, target, plan, rows, hash_name: rows)
    _long_keys(pair, 300)
    _converged(pair, config("lk"))


@pytest.mark.parametrize("hash_name", ["md5", "crc32"])
def test_a_range_crowded_on_the_target_is_split_on_the_target(pair: Pair, small_group_concat, hash_name) -> None:
    """Chunks are cut by source rows (3 fit); the target holds 100 rows in each such range."""
    pair.both(LONG_KEYS)
    key = "CONCAT(LPAD(seq, 8, '0'), REPEAT('k', 1992))"
    pair.run(pair.source, f"INSERT INTO lk SELECT {key}, seq FROM seq_1_to_400 WHERE seq % 100 = 0")
    pair.run(pair.target, f"INSERT INTO lk SELECT {key}, seq FROM seq_1_to_400")
    _converged(pair, config("lk", hash=hash_name))


def test_a_9_mb_value_that_escapes_past_the_packet_is_written_in_pieces(pair: Pair) -> None:
    """9 MB of quotes and backslashes escape to 18 MB, more than the 16 MB packet: the row is
    inserted with a first piece and the rest appended, on insert and on update."""
    packet = pair.rows(pair.target, "SELECT @@SESSION.max_allowed_packet")[0][0]
    size = 9 * 1024 * 1024
    assert 2 * size > packet > size, packet  # the case this test is about
    pair.both("CREATE TABLE blobs (id INT PRIMARY KEY, body LONGBLOB, note LONGTEXT, tag VARCHAR(10))")
    pair.run(pair.source, f"INSERT INTO blobs SELECT 1, REPEAT(UNHEX('5C27'), {size // 2}), "
                          f"REPEAT('''\\\\', {size // 2}), 'one'",
             "INSERT INTO blobs VALUES (2, 'small', 'small', 'two')")
    pair.run(pair.target, "INSERT INTO blobs VALUES (1, 'old', 'old', 'old')")
    entry = table_result(apply(pair.source, pair.target, config("blobs")), "blobs")
    assert (entry["state"], entry["inserted"], entry["updated"]) == ("changed", 1, 1), entry
    exact = "SELECT id, MD5(body), LENGTH(body), MD5(note), tag FROM blobs ORDER BY id"
    assert pair.rows(pair.target, exact) == pair.rows(pair.source, exact)


SMALL_PACKET = 1024 * 1024


@pytest.fixture(scope="module")
def small_packet_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDBInstance]:
    """A target server of the tests' own with a 1 MB max_allowed_packet (the machine's is 16 MB)."""
    instance = MariaDBInstance(name="small-packet", port=free_port(), base_dir=tmp_path_factory.mktemp("small"))
    instance.start()
    try:
        admin = pymysql.connect(host=instance.host, port=instance.port, user="root", password="", autocommit=True)
        with admin.cursor() as cur:
            cur.execute(f"SET GLOBAL max_allowed_packet = {SMALL_PACKET}")
        admin.close()
        yield instance
    finally:
        instance.stop()


@pytest.fixture
def small_target(small_packet_server: MariaDBInstance, pair: Pair) -> Iterator[pymysql.Connection]:
    """The pair's source on the machine's server, a target of the same name on the small-packet server."""
    db = dict(host=small_packet_server.host, port=small_packet_server.port, user="root", password="",
              charset="utf8mb4", autocommit=True)
    admin = pymysql.connect(**db)
    Pair.run(admin, f"CREATE DATABASE `{pair.target_name}`")
    target = pymysql.connect(**db, database=pair.target_name)
    try:
        yield target
    finally:
        target.close()
        Pair.run(admin, f"DROP DATABASE `{pair.target_name}`")
        admin.close()


def test_a_value_larger_than_the_targets_packet_is_refused_with_the_reason(pair: Pair, small_target) -> None:
    """CONCAT gives NULL past max_allowed_packet: a value that long cannot be written at all;
    one that only escapes past it is written in pieces."""
    assert Pair.rows(small_target, "SELECT @@SESSION.max_allowed_packet") == [(SMALL_PACKET,)]
    table = "CREATE TABLE blobs (id INT PRIMARY KEY, body LONGBLOB)"
    pair.run(pair.source, table)
    Pair.run(small_target, table)
    pair.run(pair.source, f"INSERT INTO blobs SELECT 1, REPEAT(UNHEX('5C27'), {SMALL_PACKET // 2 - 100})",
             f"INSERT INTO blobs SELECT 2, REPEAT('a', {SMALL_PACKET + 1})")
    entry = table_result(apply(pair.source, small_target, config("blobs")), "blobs")
    assert entry["state"] == "refused", entry
    assert "'blobs'" in entry["error"] and "'body'" in entry["error"] and f"{SMALL_PACKET + 1} bytes" in entry["error"]
    assert "max_allowed_packet (1048576)" in entry["error"]
    assert Pair.rows(small_target, "SELECT COUNT(*) FROM blobs") == [(0,)]  # the group was rolled back
    pair.run(pair.source, "DELETE FROM blobs WHERE id = 2")
    assert table_result(apply(pair.source, small_target, config("blobs")), "blobs")["inserted"] == 1
    exact = "SELECT id, MD5(body) FROM blobs"
    assert Pair.rows(small_target, exact) == pair.rows(pair.source, exact)


def test_long_keys_converge_on_a_small_packet_target(pair: Pair, small_target) -> None:
    pair.run(pair.source, LONG_KEYS)
    Pair.run(small_target, LONG_KEYS)
    key = "CONCAT(LPAD(seq, 8, '0'), REPEAT('k', 1992))"
    pair.run(pair.source, f"INSERT INTO lk SELECT {key}, seq FROM seq_1_to_600")
    Pair.run(small_target, f"INSERT INTO lk SELECT {key}, -seq FROM seq_1_to_600 WHERE seq % 3 = 0")
    result = apply(pair.source, small_target, config("lk"))
    assert result.status == "done" and not result.failed, result.to_dict()
    order = "SELECT * FROM lk ORDER BY k"
    assert Pair.rows(small_target, order) == pair.rows(pair.source, order)


def test_a_changed_row_written_in_pieces_keeps_its_excluded_value(pair: Pair, small_target) -> None:
    pair.run(pair.source, "CREATE TABLE blobs (id INT PRIMARY KEY, body LONGBLOB)")
    Pair.run(small_target, "CREATE TABLE blobs (id INT PRIMARY KEY, body LONGBLOB, "
                           "local_note VARCHAR(10) NOT NULL DEFAULT 'dflt')",
             "INSERT INTO blobs VALUES (1, 'old', 'mine')")
    pair.run(pair.source, f"INSERT INTO blobs SELECT 1, REPEAT(UNHEX('5C27'), {SMALL_PACKET // 2 - 100})")
    cfg = config({"name": "blobs", "exclude_columns": ["local_note"]})
    assert table_result(apply(pair.source, small_target, cfg), "blobs")["updated"] == 1
    assert Pair.rows(small_target, "SELECT MD5(body), local_note FROM blobs") == [
        (pair.rows(pair.source, "SELECT MD5(body) FROM blobs")[0][0], "mine")]
