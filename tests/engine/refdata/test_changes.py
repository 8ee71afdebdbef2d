"""Reference-data sync never misses a change: chunk aggregates that linear row hashes cannot fool.

CRC32 is linear over XOR, so BIT_XOR(CRC32(row)) cancels the same change made to an even
number of rows of one chunk. Every test here makes such a change on the target and checks
that the sync finds it, with both hash modes, and that the target ends byte-equal."""

from __future__ import annotations

import pytest

from envsync import refdata
from envsync.refdata import apply, plan
from tests.engine.conftest import Pair, config, table_result

FLAGS = "CREATE TABLE flags (id INT PRIMARY KEY, flag TINYINT NOT NULL, v CHAR(4) NOT NULL)"


def _seed(pair: Pair, rows: int) -> None:
    pair.both(FLAGS)
    values = ", ".join(f"({i}, 1, 'v{i % 10:03d}')" for i in range(1, rows + 1))
    pair.both(f"INSERT INTO flags VALUES {values}")


@pytest.mark.parametrize("hash_name", ["crc32", "md5"])
def test_identical_update_on_two_rows_of_one_chunk_is_found(pair: Pair, hash_name: str) -> None:
    _seed(pair, 20)
    pair.run(pair.target, "UPDATE flags SET flag = 0 WHERE id IN (10, 11)")
    result = apply(pair.source, pair.target, config({"name": "flags"}, hash=hash_name, chunk_rows=1000))
    assert table_result(result, "flags")["updated"] == 2
    assert pair.same("flags")


@pytest.mark.parametrize("hash_name", ["crc32", "md5"])
def test_bulk_update_of_600_rows_is_found(pair: Pair, hash_name: str) -> None:
    _seed(pair, 1000)
    pair.run(pair.target, "UPDATE flags SET flag = 0 WHERE id <= 600")
    result = apply(pair.source, pair.target, config({"name": "flags"}, hash=hash_name, chunk_rows=1000))
    assert table_result(result, "flags")["updated"] == 600
    assert pair.same("flags")


@pytest.mark.parametrize("hash_name", ["crc32", "md5"])
def test_value_swap_between_two_rows_is_found(pair: Pair, hash_name: str) -> None:
    _seed(pair, 20)
    pair.run(pair.target, "UPDATE flags SET v = CASE id WHEN 3 THEN 'v004' ELSE 'v003' END WHERE id IN (3, 4)")
    result = apply(pair.source, pair.target, config({"name": "flags"}, hash=hash_name))
    assert table_result(result, "flags")["updated"] == 2
    assert pair.same("flags")


@pytest.mark.parametrize("hash_name", ["crc32", "md5"])
def test_equal_delta_pairs_are_found(pair: Pair, hash_name: str) -> None:
    """Four rows changed so that the bit flips of two pairs cancel under XOR."""
    _seed(pair, 20)
    pair.run(pair.target, "UPDATE flags SET v = 'v990' WHERE id IN (1, 2)",
             "UPDATE flags SET flag = 3 WHERE id IN (5, 6)")
    result = apply(pair.source, pair.target, config({"name": "flags"}, hash=hash_name))
    assert table_result(result, "flags")["updated"] == 4
    assert pair.same("flags")


@pytest.mark.parametrize("hash_name", ["crc32", "md5"])
def test_row_image_above_max_allowed_packet_is_compared(pair: Pair, hash_name: str) -> None:
    """Two texts of half max_allowed_packet each: CONCAT of the row would be NULL (and skipped)."""
    pair.both("CREATE TABLE big (id INT PRIMARY KEY, a LONGTEXT, b LONGTEXT)")
    packet = pair.rows(pair.source, "SELECT @@GLOBAL.max_allowed_packet")[0][0]
    size = packet // 2 - 8
    for conn, tail in ((pair.source, "x"), (pair.target, "y")):
        pair.run(conn, f"INSERT INTO big VALUES (1, REPEAT('a', {size}), CONCAT(REPEAT('b', {size - 1}), '{tail}'))")
    result = plan(pair.source, pair.target, config({"name": "big"}, hash=hash_name))
    assert table_result(result, "big")["updated"] == 1


def test_identical_update_behind_the_checksum_table_shortcut_is_found(pair: Pair) -> None:
    """crc32 mode first tries CHECKSUM TABLE (a sum of row CRCs, not an XOR) when chunk 1 is equal."""
    _seed(pair, 40)
    pair.run(pair.target, "UPDATE flags SET flag = 0 WHERE id IN (30, 31)")
    result = apply(pair.source, pair.target, config({"name": "flags"}, hash="crc32", chunk_rows=5))
    assert table_result(result, "flags")["updated"] == 2
    assert pair.same("flags")


def test_a_truncated_chunk_concatenation_is_not_read_as_equal(pair: Pair, monkeypatch) -> None:
    """md5 chunks are MD5(GROUP_CONCAT(images)): a concatenation cut at group_concat_max_len
    would hide a change in its tail; the server's warning sends the chunk to row mode."""
    monkeypatch.setattr(refdata, "GROUP_CONCAT_MAX_LEN", 4096)  # 100 rows x ~60-byte images
    pair.both("CREATE TABLE tail (id INT PRIMARY KEY, v VARCHAR(60) NOT NULL)")
    pair.both("INSERT INTO tail SELECT seq, REPEAT('v', 50) FROM seq_1_to_100")
    pair.run(pair.target, "UPDATE tail SET v = REPEAT('w', 50) WHERE id = 100")
    result = apply(pair.source, pair.target, config("tail", hash="md5"))
    assert table_result(result, "tail")["updated"] == 1
    assert pair.same("tail")
