"""Excluded columns belong to the target: a changed row keeps the target's value in them, a new
row (a changed key included) gets the column's default, and the plan says so. Checked on the
target's rows after a real apply, per change kind."""

from __future__ import annotations

from pathlib import Path

import pytest

from envsync.refdata import apply, plan
from tests.engine.conftest import Pair, config, table_result
from tests.engine.refdata.test_guards import run_cli

# local_note is the target's own column; the source may not even have it.
NOTE_SOURCE = "CREATE TABLE note (id INT PRIMARY KEY, v INT NOT NULL, UNIQUE KEY uq_v (v))"
NOTE_TARGET = ("CREATE TABLE note (id INT PRIMARY KEY, v INT NOT NULL, "
               "local_note VARCHAR(20) NOT NULL DEFAULT 'dflt', UNIQUE KEY uq_v (v))")
EXCLUDED = {"name": "note", "exclude_columns": ["local_note"]}


@pytest.fixture
def note(pair: Pair) -> Pair:
    pair.run(pair.source, NOTE_SOURCE)
    pair.run(pair.target, NOTE_TARGET)
    return pair


def _target(pair: Pair):
    return pair.rows(pair.target, "SELECT id, v, local_note FROM note ORDER BY id")


@pytest.mark.parametrize("hash_name", ["md5", "crc32"])
def test_update_keeps_the_targets_value_in_the_excluded_column(note: Pair, hash_name: str) -> None:
    note.run(note.target, "INSERT INTO note VALUES (1, 9, 'mine'), (3, 3, 'same')")
    note.run(note.source, "INSERT INTO note VALUES (1, 1), (3, 3)")
    result = apply(note.source, note.target, config(EXCLUDED, hash=hash_name))
    assert table_result(result, "note")["updated"] == 1
    assert _target(note) == [(1, 1, "mine"), (3, 3, "same")]


def test_insert_gets_the_columns_default(note: Pair) -> None:
    note.run(note.target, "INSERT INTO note VALUES (1, 1, 'mine')")
    note.run(note.source, "INSERT INTO note VALUES (1, 1), (2, 2)")
    apply(note.source, note.target, config(EXCLUDED))
    assert _target(note) == [(1, 1, "mine"), (2, 2, "dflt")]


def test_key_change_is_a_new_row_with_the_default(note: Pair) -> None:
    """Row 1 became row 2 upstream (same unique v): the old row goes, its note with it."""
    note.run(note.target, "INSERT INTO note VALUES (1, 5, 'mine')")
    note.run(note.source, "INSERT INTO note VALUES (2, 5)")
    result = table_result(apply(note.source, note.target, config(EXCLUDED)), "note")
    assert (result["inserted"], result["deleted"]) == (1, 1)
    assert _target(note) == [(2, 5, "dflt")]


def test_swapped_unique_values_keep_each_rows_note(note: Pair) -> None:
    note.run(note.target, "INSERT INTO note VALUES (1, 2, 'one'), (2, 1, 'two')")
    note.run(note.source, "INSERT INTO note VALUES (1, 1), (2, 2)")
    apply(note.source, note.target, config(EXCLUDED))
    assert _target(note) == [(1, 1, "one"), (2, 2, "two")]
    assert apply(note.source, note.target, config(EXCLUDED)).rows_changed == 0


def test_insert_trigger_of_a_changed_row_sees_the_kept_value(note: Pair) -> None:
    """The README's promise: delete and insert triggers fire, the insert already holds the note."""
    note.run(note.target, "CREATE TABLE note_log (seq INT AUTO_INCREMENT PRIMARY KEY, what VARCHAR(40))",
             "CREATE TRIGGER note_ins AFTER INSERT ON note FOR EACH ROW "
             "INSERT INTO note_log (what) VALUES (CONCAT('ins ', NEW.id, ' ', NEW.local_note))",
             "CREATE TRIGGER note_del AFTER DELETE ON note FOR EACH ROW "
             "INSERT INTO note_log (what) VALUES (CONCAT('del ', OLD.id))",
             "CREATE TRIGGER note_upd AFTER UPDATE ON note FOR EACH ROW "
             "INSERT INTO note_log (what) VALUES (CONCAT('upd ', NEW.id))",
             "INSERT INTO note VALUES (1, 9, 'mine')", "DELETE FROM note_log")
    note.run(note.source, "INSERT INTO note VALUES (1, 1)")
    apply(note.source, note.target, config(EXCLUDED))
    assert note.rows(note.target, "SELECT what FROM note_log ORDER BY seq") == [("del 1",), ("ins 1 mine",)]


def test_excluded_column_on_both_sides_is_not_copied(pair: Pair) -> None:
    pair.both("CREATE TABLE fee (id INT PRIMARY KEY, rate INT, owner VARCHAR(20) NULL, "
              "secret VARCHAR(20) NULL DEFAULT 'none')")
    pair.run(pair.source, "INSERT INTO fee VALUES (1, 2, 'up', 'up-secret'), (2, 2, 'up', 'up-secret')")
    pair.run(pair.target, "INSERT INTO fee VALUES (1, 1, 'mine', 'my-secret')")
    apply(pair.source, pair.target, config({"name": "fee", "exclude_columns": ["owner", "secret"]}))
    assert pair.rows(pair.target, "SELECT * FROM fee ORDER BY id") == [
        (1, 2, "mine", "my-secret"), (2, 2, None, "none")]


def test_plan_says_which_columns_it_writes_and_what_excluded_columns_get(
        note: Pair, capsys, tmp_path: Path) -> None:
    note.run(note.target, "INSERT INTO note VALUES (1, 9, 'mine')")
    note.run(note.source, "INSERT INTO note VALUES (1, 1), (2, 2)")
    entry = table_result(plan(note.source, note.target, config(EXCLUDED)), "note")
    assert entry["writes_columns"] == ["id", "v"]
    assert entry["excluded_columns"] == {"columns": ["local_note"], "changed_rows": "keep the target's value",
                                         "new_rows": "get the column's default"}
    statements = "\n".join(entry["sql"])
    assert "(`id`, `v`, `local_note`)" in statements and "<target's local_note>" in statements
    assert "mine" not in statements  # a plan never reads the excluded values
    code, out = run_cli(note, capsys, tmp_path, {"tables": [EXCLUDED]}, command="plan")
    assert code == 1 and "excluded local_note: changed rows keep the target's value" in out
    assert _target(note) == [(1, 9, "mine")]
