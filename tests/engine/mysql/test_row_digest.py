"""md5 mode's per-row digest follows the flavour (the function each computes cheaply per call),
and both servers of one comparison always use the same one."""

from __future__ import annotations

import pytest

from envsync.mysql.flavour import row_digest_for
from envsync.refdata.diff import _ChunkQueries, row_digest
from envsync.refdata.schema import Column, RefdataError
from envsync.refdata.sql import TablePlan
from tests.engine.conftest import Pair

MARIADB = "5.5.5-10.11.19-MariaDB-0+deb12u1"  # as PyMySQL's handshake reports it
AURORA_2, AURORA_3 = "5.7.12-log", "8.0.36"


@pytest.mark.parametrize("source, target, digest", [
    (MARIADB, MARIADB, "SHA1"),
    (AURORA_2, AURORA_2, "MD5"),
    (AURORA_3, AURORA_2, "MD5"),
    (MARIADB, AURORA_3, "MD5"),  # mixed vendors: MD5, which both have
    (AURORA_3, MARIADB, "MD5"),
])
def test_both_sides_get_one_digest_the_flavours_cheap_one(source: str, target: str, digest: str) -> None:
    assert row_digest_for(source, target) == digest


def test_a_connection_pair_is_asked_its_handshake_version(pair: Pair) -> None:
    assert row_digest(pair.source, pair.target) == "SHA1"  # the tests' servers are MariaDB


def _plan() -> TablePlan:
    key = Column(name="id", data_type="bigint", column_type="bigint", nullable=False, charset=None, collation=None)
    value = Column(name="v", data_type="varchar", column_type="varchar(9)", nullable=True, charset="utf8mb4",
                   collation="utf8mb4_bin")
    return TablePlan(name="t", columns=[key, value], key=[key], where=None)


def test_only_the_row_hash_changes_the_chunk_aggregate_stays_md5() -> None:
    for digest in ("MD5", "SHA1"):
        queries = _ChunkQueries(_plan(), 10, "md5", digest)
        assert f"LEFT({digest}(CONCAT_WS(" in queries.rows_sql
        assert queries.aggregate_head.startswith("SELECT COUNT(*), MD5(GROUP_CONCAT(")


def test_no_other_function_is_spliced_into_the_statements() -> None:
    with pytest.raises(RefdataError, match="unknown row digest"):
        _ChunkQueries(_plan(), 10, "md5", "MD5); DROP TABLE t; --")
