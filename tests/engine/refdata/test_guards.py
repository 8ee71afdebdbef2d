"""Guards and bad configuration: `envsync refdata plan|apply` exits 2 and names the table, the
column and the config file; an emptied upstream table does not empty the target."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import List, Tuple

import pytest

from envsync.cli import main as cli
from envsync.refdata import RefdataConfig, RefdataConfigError, apply
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
    strict = config("fx", max_delete_share=0.5, min_delete_rows=0)
    assert table_result(apply(pair.source, pair.target, strict), "fx")["state"] == "refused"
    result = apply(pair.source, pair.target, config({"name": "fx", "max_delete_share": 0.8}, min_delete_rows=0))
    assert table_result(result, "fx")["deleted"] == 3 and pair.same("fx")


def _defaults(*tables) -> RefdataConfig:
    """The guard as shipped: no max_delete_share / min_delete_rows in the config."""
    return RefdataConfig.from_dict({"tables": list(tables)})


@pytest.mark.parametrize(("target_keys", "source_keys"), [((1, 2, 3), (1, 7, 8)), ((1, 2), (5, 6))],
                         ids=["rename-2-of-3", "replace-2-row-table"])
def test_small_table_renames_pass_the_default_guard(pair: Pair, target_keys, source_keys) -> None:
    pair.both("CREATE TABLE kind (id INT PRIMARY KEY)")
    pair.run(pair.target, "INSERT INTO kind VALUES " + ", ".join(f"({k})" for k in target_keys))
    pair.run(pair.source, "INSERT INTO kind VALUES " + ", ".join(f"({k})" for k in source_keys))
    entry = table_result(apply(pair.source, pair.target, _defaults("kind")), "kind")
    assert entry["state"] == "changed" and entry["deleted"] == 2 and pair.same("kind")


def test_an_emptied_upstream_is_refused_however_small(pair: Pair) -> None:
    pair.both("CREATE TABLE kind (id INT PRIMARY KEY)")
    pair.run(pair.target, "INSERT INTO kind VALUES (1)")
    entry = table_result(apply(pair.source, pair.target, _defaults("kind")), "kind")
    assert entry["state"] == "refused"
    assert "'kind'" in entry["error"] and "upstream table is empty" in entry["error"] and "1 of 1" in entry["error"]
    assert "--force" in entry["error"] and "min_delete_rows" in entry["error"]
    assert pair.rows(pair.target, "SELECT COUNT(*) FROM kind") == [(1,)]
    assert table_result(apply(pair.source, pair.target, _defaults("kind"), force=True), "kind")["deleted"] == 1


def test_a_truncated_upstream_is_refused_naming_both_limits(pair: Pair) -> None:
    pair.both("CREATE TABLE kind (id INT PRIMARY KEY)")
    pair.run(pair.target, "INSERT INTO kind SELECT seq FROM seq_1_to_100")
    pair.run(pair.source, "INSERT INTO kind SELECT seq FROM seq_1_to_30")
    entry = table_result(apply(pair.source, pair.target, _defaults("kind")), "kind")
    assert entry["state"] == "refused" and "70 of 100" in entry["error"]
    assert "max_delete_share 0.5" in entry["error"] and "min_delete_rows 10" in entry["error"]
    loose = {"name": "kind", "min_delete_rows": 70}
    assert table_result(apply(pair.source, pair.target, _defaults(loose)), "kind")["deleted"] == 70


def test_min_delete_rows_is_validated_here_and_in_the_project_config() -> None:
    from envsync_sceptre.config.stackvalues import refdata_problems

    for bad in ({"tables": ["a"], "min_delete_rows": -1}, {"tables": [{"name": "a", "min_delete_rows": "5"}]},
                {"tables": ["a"], "min_delete_rows": True}):
        with pytest.raises(RefdataConfigError, match="min_delete_rows: expected a whole number"):
            RefdataConfig.from_dict(bad)
    assert _defaults("a").min_delete_rows == 10 and _defaults("a").max_delete_share == 0.5
    shared = {"refdata_tables": [{"name": "a", "max_delete_share": 0.2, "min_delete_rows": 3}]}
    assert refdata_problems("config/dev/config.yaml", {}, shared) == []
    shared["refdata_tables"][0]["min_delete_rows"] = -3
    assert "min_delete_rows" in refdata_problems("config/dev/config.yaml", {}, shared)[0]


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
