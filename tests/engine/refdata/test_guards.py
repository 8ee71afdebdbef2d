"""Guards and bad configuration: `envsync refdata plan|apply` exits 2 and names the table, the
column and the config file; an emptied upstream table does not empty the target."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from envsync.cli import main as cli
from envsync.refdata import apply
from tests.engine.conftest import Pair, config, table_result


def run_cli(pair: Pair, capsys, tmp_path: Path, body, *extra: str, command: str = "apply") -> Tuple[int, str]:
    path = tmp_path / "refdata.json"
    path.write_text(body if isinstance(body, str) else json.dumps(body))
    url = "mysql://{user}:@{host}:{port}/".format(**pair.db)
    code = cli.main(["refdata", command, "--target", url + pair.target_name, "--upstream", url + pair.source_name,
                     "--config", str(path), *extra])
    captured = capsys.readouterr()
    return code, captured.out + captured.err


def _product(pair: Pair, target_extra: str = "") -> None:
    pair.run(pair.source, "CREATE TABLE product (id INT PRIMARY KEY, name VARCHAR(20), secret VARCHAR(9) NULL)",
             "INSERT INTO product VALUES (1, 'a', 's'), (2, 'b', 's')")
    pair.run(pair.target, f"CREATE TABLE product (id INT PRIMARY KEY, name VARCHAR(20), "
                          f"secret VARCHAR(9) {target_extra or 'NULL'})")


@pytest.mark.parametrize("command", ["plan", "apply"])
def test_table_missing_on_one_side_exits_2_naming_it(pair: Pair, capsys, tmp_path: Path, command: str) -> None:
    pair.run(pair.source, "CREATE TABLE only_up (id INT PRIMARY KEY)")
    code, out = run_cli(pair, capsys, tmp_path, {"tables": ["only_up"]}, command=command)
    assert code == 2 and "only_up" in out and "missing" in out and "refdata.json" in out


def test_column_type_mismatch_exits_2(pair: Pair, capsys, tmp_path: Path) -> None:
    pair.run(pair.source, "CREATE TABLE t (id INT PRIMARY KEY, v INT)")
    pair.run(pair.target, "CREATE TABLE t (id INT PRIMARY KEY, v BIGINT)")
    code, out = run_cli(pair, capsys, tmp_path, {"tables": ["t"]})
    assert code == 2 and "'t'" in out and "v" in out and "bigint" in out


def test_exclude_columns_typo_exits_2_naming_the_column(pair: Pair, capsys, tmp_path: Path) -> None:
    _product(pair)
    code, out = run_cli(pair, capsys, tmp_path, {"tables": [{"name": "product", "exclude_columns": ["secert"]}]})
    assert code == 2 and "secert" in out and "product" in out
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM product") == [(0,)]


def test_excluded_not_null_column_without_default_fails_at_plan(pair: Pair, capsys, tmp_path: Path) -> None:
    _product(pair, target_extra="NOT NULL")
    pair.run(pair.source, "ALTER TABLE product MODIFY secret VARCHAR(9) NOT NULL")
    code, out = run_cli(pair, capsys, tmp_path, {"tables": [{"name": "product", "exclude_columns": ["secret"]}]},
                        command="plan")
    assert code == 2 and "secret" in out and "NOT NULL" in out and "default" in out


def test_config_that_is_not_json_names_the_file(pair: Pair, capsys, tmp_path: Path) -> None:
    code, out = run_cli(pair, capsys, tmp_path, "{'tables': ['x']}")
    assert code == 2 and "refdata.json" in out and "JSON" in out


def test_child_listed_without_its_parent_names_both(pair: Pair) -> None:
    pair.both("CREATE TABLE parent (id INT PRIMARY KEY)",
              "CREATE TABLE child (id INT PRIMARY KEY, parent_id INT, "
              "CONSTRAINT fk_child_parent FOREIGN KEY (parent_id) REFERENCES parent (id))")
    pair.run(pair.source, "INSERT INTO parent VALUES (1)", "INSERT INTO child VALUES (1, 1)")
    entry = table_result(apply(pair.source, pair.target, config("child")), "child")
    assert entry["state"] == "refused"
    assert "child" in entry["error"] and "parent" in entry["error"] and "fk_child_parent" in entry["error"]
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM child") == [(0,)]


def _emptied_upstream(pair: Pair) -> List[str]:
    pair.both("CREATE TABLE fx (id INT PRIMARY KEY)")
    pair.run(pair.target, "INSERT INTO fx VALUES (1), (2), (3), (4)")
    return ["fx"]


def test_emptied_upstream_table_is_refused_unless_forced(pair: Pair, capsys, tmp_path: Path) -> None:
    _emptied_upstream(pair)
    code, out = run_cli(pair, capsys, tmp_path, {"tables": ["fx"]})
    assert code == 2 and "fx" in out and "4 of 4" in out and "--force" in out
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM fx") == [(4,)]
    code, _ = run_cli(pair, capsys, tmp_path, {"tables": ["fx"]}, "--force")
    assert code == 0 and pair.rows(pair.target, "SELECT COUNT(*) FROM fx") == [(0,)]


def test_delete_share_is_configurable_per_table(pair: Pair) -> None:
    _emptied_upstream(pair)
    pair.run(pair.source, "INSERT INTO fx VALUES (1)")
    assert table_result(apply(pair.source, pair.target, config("fx", max_delete_share=0.5)), "fx")["state"] == "refused"
    result = apply(pair.source, pair.target, config({"name": "fx", "max_delete_share": 0.8}))
    assert table_result(result, "fx")["deleted"] == 3 and pair.same("fx")


def test_delete_share_counts_the_whole_run_not_each_deadline_call(pair: Pair) -> None:
    """60 % of the rows gone upstream, spread: each call (one chunk) deletes ~15 %, the run 60 %."""
    pair.both("CREATE TABLE spread (id INT PRIMARY KEY)")
    pair.run(pair.source, "INSERT INTO spread SELECT seq FROM seq_1_to_1000 WHERE seq % 5 IN (0, 1)")
    pair.run(pair.target, "INSERT INTO spread SELECT seq FROM seq_1_to_1000")
    cfg = config("spread", chunk_rows=100, max_delete_share=0.5)
    cursor, states = None, []
    for _ in range(20):
        result = apply(pair.source, pair.target, cfg, deadline=time.monotonic(), cursor=cursor)
        states.append(table_result(result, "spread")["state"])
        if result.status == "done":
            break
        cursor = result.cursor
    assert "refused" in states, states
    remaining = pair.rows(pair.target, "SELECT COUNT(*) FROM spread")[0][0]
    assert remaining >= 500, remaining  # never more than half of the run's starting rows


def test_cli_apply_takes_the_schema_lock_like_the_lambda(pair: Pair, capsys, tmp_path: Path) -> None:
    """One writer per schema: while a migration (or another apply) holds the target's envsync
    lock, `envsync refdata apply` waits, then gives up without applying anything."""
    import pymysql

    from envsync.mysql.lock import lock_name

    pair.both("CREATE TABLE t (id INT PRIMARY KEY, v VARCHAR(10))")
    pair.run(pair.source, "INSERT INTO t VALUES (1, 'new')")
    holder = pymysql.connect(**pair.db, autocommit=True)
    try:
        with holder.cursor() as cursor:
            cursor.execute("SELECT GET_LOCK(%s, 10)", (lock_name(pair.target_name),))
        code, output = run_cli(pair, capsys, tmp_path, {"tables": ["t"]}, "--lock-timeout", "1")
        assert code == 2 and "holds the migration lock" in output, output
        assert pair.rows(pair.target, "SELECT * FROM t") == []  # nothing applied
        code, output = run_cli(pair, capsys, tmp_path, {"tables": ["t"]}, "--lock-timeout", "1", command="plan")
        assert code == 1, output  # a plan reads only and does not wait for writers (1: differences)
    finally:
        holder.close()
    code, output = run_cli(pair, capsys, tmp_path, {"tables": ["t"]}, "--lock-timeout", "1")
    assert code == 0, output
    assert pair.rows(pair.target, "SELECT * FROM t") == [(1, "new")]
