"""Statement splitter benchmark: time `split_statements` on a script of N statements.

    .venv/bin/python benchmarks/split_statements.py [--statements 50000] [--before-statements 10000]

The script mixes the forms the splitter handles: single-line INSERTs with quoted strings,
multi-line CREATE TABLEs with comments, and every 100th statement a custom `DELIMITER` block
holding a procedure and a second statement. Prints the time and statements/s of the current
splitter, of the splitter as it was before (read from git, commit BEFORE_COMMIT, whose line
numbers were counted from the start of the text for every statement: quadratic) at a smaller
size and at twice that size (the ratio shows the growth), and of `sqlparse.split` when sqlparse
is installed. Exit status 1 when the current splitter takes 1 s or more for 50 000 statements.
"""

from __future__ import annotations

import argparse
import importlib.util
import subprocess
import sys
import time
import types
from pathlib import Path
from typing import Callable, List, Optional

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "lambda_code"))

from envsync.migrations.scripts import split_statements  # noqa: E402

BEFORE_COMMIT = "f4eb606"
TARGET_SECONDS = 1.0


def script(statements: int) -> str:
    parts: List[str] = []
    for number in range(statements):
        if number % 100 == 99:
            parts.append(f"DELIMITER $$\nCREATE PROCEDURE p{number}(IN k INT)\nBEGIN\n"
                         f"  IF k > 0 THEN UPDATE t SET v = v + 1 WHERE id = k; END IF;\n"
                         f"END;\nINSERT INTO t VALUES ({number}, 'x')$$\nDELIMITER ;\n")
        elif number % 10 == 9:
            parts.append(f"-- table {number}; with a comment\nCREATE TABLE t{number} (\n"
                         f"  id BIGINT PRIMARY KEY, /* inline; */ name VARCHAR(50) NOT NULL\n);\n")
        else:
            parts.append(f"INSERT INTO t VALUES ({number}, 'it''s; {number}');\n")
    return "".join(parts)


def old_splitter() -> Optional[Callable[[str], list]]:
    """The splitter of BEFORE_COMMIT, loaded from git; None outside a git checkout."""
    try:
        # the path the module had at BEFORE_COMMIT
        source = subprocess.run(["git", "-C", str(ROOT), "show", f"{BEFORE_COMMIT}:lambda_code/envsync/scripts.py"],
                                capture_output=True, text=True, check=True).stdout
    except (OSError, subprocess.CalledProcessError):
        return None
    module = types.ModuleType("envsync_scripts_before")
    sys.modules[module.__name__] = module  # dataclasses look their module up
    exec(compile(source, f"{BEFORE_COMMIT}:scripts.py", "exec"), module.__dict__)  # noqa: S102
    return module.split_statements


def timed(split: Callable[[str], list], text: str) -> float:
    started = time.perf_counter()
    split(text)
    return time.perf_counter() - started


def report(label: str, statements: int, seconds: float) -> None:
    print(f"{label:<42} {statements:>7} statements  {seconds:8.3f} s  {statements / seconds:>12,.0f} statements/s")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--statements", type=int, default=50000)
    parser.add_argument("--before-statements", type=int, default=10000,
                        help="size for the old, quadratic splitter (0 skips it)")
    args = parser.parse_args()
    text = script(args.statements)
    print(f"script: {len(text):,} characters, {text.count(chr(10)):,} lines")
    found = len(split_statements(text))
    current = min(timed(split_statements, text) for _ in range(3))
    report("envsync split_statements (now)", found, current)
    half = script(args.statements // 2)
    report("envsync split_statements (now), half size", len(split_statements(half)),
           min(timed(split_statements, half) for _ in range(3)))
    before = old_splitter() if args.before_statements else None
    if before is not None:
        small, double = script(args.before_statements), script(2 * args.before_statements)
        first, second = timed(before, small), timed(before, double)
        report(f"before ({BEFORE_COMMIT})", args.before_statements, first)
        report(f"before ({BEFORE_COMMIT}), twice the size", 2 * args.before_statements, second)
        print(f"before: doubling the input multiplied the time by {second / first:.1f} (linear: 2)")
        now_small = min(timed(split_statements, small) for _ in range(3))
        print(f"before / now at {args.before_statements} statements: {first / now_small:.0f}x")
    if importlib.util.find_spec("sqlparse") is not None:
        import sqlparse

        plain = script(args.statements).replace("DELIMITER $$\n", "").replace("$$\nDELIMITER ;\n", ";\n")
        seconds = timed(sqlparse.split, plain)
        report("sqlparse.split (no DELIMITER support)", args.statements, seconds)
        print(f"sqlparse / now: {seconds / current:.1f}x")
    else:
        print("sqlparse is not installed: no sqlparse figure")
    scaled = current * 50000 / max(found, 1)
    print(f"target: 50 000 statements in under {TARGET_SECONDS} s: "
          f"{'met' if scaled < TARGET_SECONDS else 'MISSED'} ({scaled:.3f} s scaled)")
    return 0 if scaled < TARGET_SECONDS else 1


if __name__ == "__main__":
    sys.exit(main())
