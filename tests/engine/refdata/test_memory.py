"""The delta streams in bounded batches: big values copy exactly, and the engine's peak memory
does not grow with the size of the delta."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from envsync.refdata import apply
from tests.engine.conftest import Pair, config, table_result

PROJECT_ROOT = Path(__file__).resolve().parents[3]


def test_a_9_mb_blob_is_copied_exactly(pair: Pair) -> None:
    pair.both("CREATE TABLE blobs (id INT PRIMARY KEY, body LONGBLOB)")
    # 9 MB where two bytes in 9 need a backslash (NUL, quote) and one is 0xFF
    pair.run(pair.source, "INSERT INTO blobs SELECT 1, REPEAT(UNHEX('00FF27414243444546'), 1048576)",
             "INSERT INTO blobs SELECT 2, REPEAT(UNHEX('4142434445464748495C'), 943718)")
    result = apply(pair.source, pair.target, config("blobs"))
    assert table_result(result, "blobs")["inserted"] == 2
    assert pair.rows(pair.target, "SELECT MD5(body) FROM blobs ORDER BY id") == pair.rows(
        pair.source, "SELECT MD5(body) FROM blobs ORDER BY id")


PEAK_RSS = """
import resource, sys
sys.path.insert(0, {lambda_code!r})
import pymysql
from envsync.refdata import RefdataConfig, apply
db = dict(host="127.0.0.1", port=3306, user="root", password="", charset="utf8mb4", autocommit=True)
source = pymysql.connect(database={source!r}, **db)
target = pymysql.connect(database={target!r}, **db)
apply(source, target, RefdataConfig.from_dict({{"tables": ["wide"]}}))
print(resource.getrusage(resource.RUSAGE_SELF).ru_maxrss)
"""


def _peak_rss_kb(pair: Pair, rows: int) -> int:
    pair.run(pair.target, "DELETE FROM wide")
    pair.run(pair.source, "DELETE FROM wide",
             f"INSERT INTO wide SELECT seq, REPEAT(CHAR(65 + seq % 26), 100000) FROM seq_1_to_{rows}")
    script = PEAK_RSS.format(lambda_code=str(PROJECT_ROOT / "lambda_code"), source=pair.source_name,
                             target=pair.target_name)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True)
    assert pair.same("wide")
    return int(out.stdout.strip())


def test_peak_memory_does_not_grow_with_the_delta(pair: Pair) -> None:
    """10 MB and 100 MB of inserts: the second run must not need ~90 MB more memory."""
    pair.both("CREATE TABLE wide (id INT PRIMARY KEY, body MEDIUMTEXT)")
    small = _peak_rss_kb(pair, 100)
    large = _peak_rss_kb(pair, 1000)
    assert large - small < 40 * 1024, (small, large)


def test_a_target_session_with_no_backslash_escapes_still_gets_exact_bytes(pair: Pair) -> None:
    pair.both("CREATE TABLE esc (id INT PRIMARY KEY, s VARCHAR(20), b VARBINARY(20))")
    pair.run(pair.source, "INSERT INTO esc VALUES (1, 'a\\\\b''c', UNHEX('5C27005C'))")
    pair.run(pair.target, "SET SESSION sql_mode = CONCAT(@@sql_mode, ',NO_BACKSLASH_ESCAPES')")
    apply(pair.source, pair.target, config("esc"))
    exact = "SELECT id, HEX(s), HEX(b) FROM esc"
    assert pair.rows(pair.source, exact) == pair.rows(pair.target, exact)
    assert "NO_BACKSLASH_ESCAPES" in pair.rows(pair.target, "SELECT @@SESSION.sql_mode")[0][0]
