"""Changes spread over many chunks: the diff streams row-mode fingerprints of both sides at once
(one thread per side, each side read once in key order) and merges them chunk by chunk. Checked
on real MariaDB with small chunks, so a few hundred rows make dozens of differing chunks; the
target must end byte for byte equal to the source (NULLs, DOUBLE to the last bit, binary and
composite keys, rows missing or extra at both ends of the key range)."""

from __future__ import annotations

import time

import pytest

from envsync.refdata import RefdataConfig, apply, diff, plan
from tests.engine.conftest import Pair, config, table_result

ROWS = 400
CHUNK = 10


def _converges(pair: Pair, table: str, cfg: RefdataConfig, expected: dict, order: str = "1") -> dict:
    planned = table_result(plan(pair.source, pair.target, cfg), table)
    result = table_result(apply(pair.source, pair.target, cfg), table)
    for entry in (planned, result):
        assert {k: entry[k] for k in expected} == expected, entry
    # most chunks differ: the walk streams row-mode fingerprints instead of re-reading chunks
    assert result["chunks_differing"] * 2 > result["chunks_compared"] >= ROWS // CHUNK, result
    assert pair.same(table, order) and pair.checksums_equal(table)
    assert apply(pair.source, pair.target, cfg).rows_changed == 0
    return result


# md5 mode's row digest is the pair's own (SHA1 between MariaDB servers) or, forced here, the MD5
# MySQL servers use (`Flavour.cheap_row_digest`): the MySQL statements run on MariaDB too.
@pytest.mark.parametrize("hash_name, forced_digest", [("md5", None), ("md5", "MD5"), ("crc32", None)])
def test_uniform_changes_with_nulls_doubles_and_both_ends_converge(pair: Pair, hash_name: str, forced_digest,
                                                                  monkeypatch) -> None:
    if forced_digest:
        monkeypatch.setattr(diff, "row_digest", lambda source, target: forced_digest)
    pair.both("CREATE TABLE u (id BIGINT PRIMARY KEY, name VARCHAR(40) NULL, rate DOUBLE NULL, "
              "amount DECIMAL(18,4) NOT NULL, note TEXT NULL)")
    pair.run(pair.source, f"INSERT INTO u SELECT seq, IF(seq % 3 = 0, NULL, IF(seq % 3 = 1, '', CONCAT('n', seq))), "
                          f"IF(seq % 11 = 0, NULL, RAND(seq) * 1000), seq / 7, IF(seq % 2, NULL, 'a,b:c.d') "
                          f"FROM seq_1_to_{ROWS}")
    pair.run(pair.target,
             f"INSERT INTO u SELECT * FROM `{pair.source_name}`.u WHERE id BETWEEN 3 AND {ROWS - 2}",
             # NULL <-> '' in both directions, and DOUBLE values one step apart in the 15th digit
             "UPDATE u SET name = IF(name IS NULL, '', NULL) WHERE id % 7 = 0",
             "UPDATE u SET rate = rate + rate * 1e-15 WHERE id % 5 = 0 AND rate IS NOT NULL",
             "UPDATE u SET note = IF(note IS NULL, 'a,b:c.d', NULL) WHERE id % 13 = 0",
             f"INSERT INTO u VALUES (-5, 'x', 1, 0, NULL), (0, NULL, NULL, 0, ''), ({ROWS + 1}, 'y', 2, 1, 'z'), "
             f"({ROWS + 50}, 'z', NULL, 2, NULL)")
    changed = pair.rows(pair.source, f"SELECT COUNT(*) FROM u WHERE id BETWEEN 3 AND {ROWS - 2} AND "
                                     "(id % 7 = 0 OR (id % 5 = 0 AND rate IS NOT NULL) OR id % 13 = 0)")[0][0]
    _converges(pair, "u", config("u", chunk_rows=CHUNK, hash=hash_name),
               {"inserted": 4, "updated": changed, "deleted": 4})


def test_binary_keys_with_separator_bytes_converge(pair: Pair) -> None:
    pair.both("CREATE TABLE bk (k VARBINARY(16) PRIMARY KEY, v INT NOT NULL, b BLOB NULL)")
    # keys hold NUL, 0xFF and the fingerprint's separators (',' ':' '.')
    key = "CONCAT(UNHEX(LPAD(HEX(seq), 6, '0')), IF(seq % 2, UNHEX('00FF'), ',:.'))"
    pair.run(pair.source, f"INSERT INTO bk SELECT {key}, seq, IF(seq % 4 = 0, NULL, UNHEX('00272C5C')) "
                          f"FROM seq_1_to_{ROWS}")
    pair.run(pair.target, f"INSERT INTO bk SELECT {key}, IF(seq % 6 = 0, -seq, seq), "
                          f"IF(seq % 4 = 0 OR seq % 9 = 0, NULL, UNHEX('00272C5C')) FROM seq_1_to_{ROWS} "
                          f"WHERE seq > 1 AND seq < {ROWS}",
             "INSERT INTO bk VALUES (UNHEX('00'), 0, NULL), (UNHEX('FFFFFFFFFF'), 1, UNHEX('FF'))")
    updated = pair.rows(pair.source, f"SELECT COUNT(*) FROM seq_2_to_{ROWS - 1} "
                                     "WHERE seq % 6 = 0 OR (seq % 9 = 0 AND seq % 4 <> 0)")[0][0]
    _converges(pair, "bk", config("bk", chunk_rows=CHUNK), {"inserted": 2, "updated": updated, "deleted": 2},
               order="k")


def test_composite_keys_converge(pair: Pair) -> None:
    pair.both("CREATE TABLE ck (a INT NOT NULL, b VARCHAR(10) NOT NULL, v DOUBLE NOT NULL, PRIMARY KEY (a, b))")
    pair.run(pair.source, f"INSERT INTO ck SELECT seq DIV 4, CONCAT('b.', seq % 4), seq / 3 FROM seq_1_to_{ROWS}")
    pair.run(pair.target, f"INSERT INTO ck SELECT seq DIV 4, CONCAT('b.', seq % 4), IF(seq % 3 = 0, seq, seq / 3) "
                          f"FROM seq_1_to_{ROWS} WHERE seq NOT IN (1, 2, {ROWS})",
             "INSERT INTO ck VALUES (-1, 'zz', 0), (0, 'a', 0), (1000, '', 1)")
    updated = len([s for s in range(3, ROWS) if s % 3 == 0])
    _converges(pair, "ck", config("ck", chunk_rows=CHUNK), {"inserted": 3, "updated": updated, "deleted": 3},
               order="a, b")


def _spread(pair: Pair, rows: int = ROWS, changed_below: int = ROWS + 1) -> None:
    pair.both("CREATE TABLE s (id INT PRIMARY KEY, v INT NOT NULL)")
    pair.run(pair.source, f"INSERT INTO s SELECT seq, seq FROM seq_1_to_{rows}")
    pair.run(pair.target, f"INSERT INTO s SELECT seq, IF(seq % 4 = 0 AND seq < {changed_below}, 0, seq) "
                          f"FROM seq_1_to_{rows}")


def test_a_deadline_inside_the_stream_resumes_to_the_same_state(pair: Pair) -> None:
    _spread(pair)
    cfg, cursor, calls = config("s", chunk_rows=CHUNK), None, 0
    while True:
        calls += 1
        result = apply(pair.source, pair.target, cfg, deadline=time.monotonic(), cursor=cursor)
        if result.status == "done":
            break
        cursor = result.cursor
    assert calls > 1 and pair.same("s")
    assert apply(pair.source, pair.target, cfg).rows_changed == 0


def test_clean_chunks_after_a_changed_stretch_are_compared_by_aggregate_again(pair: Pair) -> None:
    """Every chunk of the first quarter differs, the rest are equal: the walk streams rows, then
    goes back to aggregate fingerprints; only the differing chunks count as differing."""
    _spread(pair, changed_below=ROWS // 4 + 1)
    result = table_result(apply(pair.source, pair.target, config("s", chunk_rows=CHUNK)), "s")
    assert (result["updated"], result["chunks_differing"]) == (ROWS // 16, ROWS // 4 // CHUNK)
    assert result["chunks_compared"] == ROWS // CHUNK + 1 and pair.same("s")
