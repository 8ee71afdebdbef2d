"""tests/stacks/REQUIREMENTS.md names only tests that exist, and every seed item has a row."""

from __future__ import annotations

import ast
import re
from pathlib import Path

HERE = Path(__file__).resolve().parent
ROWS = re.compile(r"^\| (?P<id>[MOCEAL]\d+) \|(?P<rest>.*)$", re.MULTILINE)
TEST = re.compile(r"`(?P<file>[\w./-]+\.py)::(?P<test>test_\w+)`")


def defined_tests(path: Path) -> set:
    tree = ast.parse(path.read_text())
    return {node.name for node in ast.walk(tree) if isinstance(node, ast.FunctionDef)}


def test_every_seed_item_has_a_row_naming_existing_tests():
    table = (HERE / "REQUIREMENTS.md").read_text()
    rows = {match.group("id"): match.group("rest") for match in ROWS.finditer(table)}
    expected = ({f"M{n}" for n in range(1, 10)} | {f"O{n}" for n in range(1, 4)}
                | {f"C{n}" for n in range(1, 10)} | {"E1", "E2", "E3"})
    assert expected <= set(rows)
    for row_id, rest in rows.items():
        named = TEST.findall(rest)
        assert named, f"{row_id} names no test"
        for file, test in named:
            path = (HERE / file).resolve()
            assert path.exists(), f"{row_id}: {file} does not exist"
            assert test in defined_tests(path), f"{row_id}: {file} has no {test}"
