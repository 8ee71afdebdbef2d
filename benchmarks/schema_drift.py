"""Schema drift benchmark: 300 tables x 20 columns in two schemas, 1 % changed; time introspect + diff.

    .venv/bin/python benchmarks/schema_drift.py [--tables 300] [--repeat 5] [--keep]

Connection from ENVSYNC_BENCH_HOST / _PORT / _USER / _PASSWORD (default 127.0.0.1:3306 root,
empty password). Builds schemas ``envsync_bench_<id>_left`` and ``_right`` (dropped afterwards
unless --keep), each table with a primary key, three secondary indexes (one composite) and a
foreign key to the previous table. Then changes 1 % of the columns (type, default,
nullability, added, dropped), 1 % of the indexes (dropped, added, columns reordered) and 1 % of
the foreign keys (ON DELETE rule) in the right schema, every change on a distinct object, so the
expected report has exactly one line per change.

Measured: ``load_schema`` of each side (with the per-query split) and ``diff``; the target is
< 2 s for both loads plus the diff. Exit status 1 when the count of differences found is not the
count introduced, or the median total misses the target.
"""

from __future__ import annotations

import argparse
import os
import random
import statistics
import sys
import time
import uuid
from pathlib import Path
from typing import Dict, List, Optional, Tuple

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambda_code"))

from envsync.drift.introspect import load_schema
from envsync.drift.schemadiff import diff
from envsync.mysql import infoschema

TARGET_SECONDS = 2.0
COLUMNS_PER_TABLE = 20

# (type, nullable, default SQL or None); c02..c19 cycle through these.
COLUMN_KINDS: List[Tuple[str, bool, Optional[str]]] = [
    ("INT", False, "0"),
    ("VARCHAR(64)", True, None),
    ("DECIMAL(12,2)", False, "0.00"),
    ("DATETIME", True, None),
    ("VARCHAR(255)", False, "''"),
    ("TINYINT", False, "1"),
    ("TEXT", True, None),
    ("BIGINT", True, None),
    ("CHAR(3)", False, "'EUR'"),
]
WIDER = {
    "INT": "BIGINT", "VARCHAR(64)": "VARCHAR(80)", "DECIMAL(12,2)": "DECIMAL(14,2)",
    "DATETIME": "DATETIME(3)", "VARCHAR(255)": "VARCHAR(300)", "TINYINT": "SMALLINT",
    "TEXT": "MEDIUMTEXT", "BIGINT": "DECIMAL(20,0)", "CHAR(3)": "CHAR(4)",
}
OTHER_DEFAULT = {
    "INT": "7", "VARCHAR(64)": "'x'", "DECIMAL(12,2)": "1.50", "DATETIME": "'2020-01-01 00:00:00'",
    "VARCHAR(255)": "'n/a'", "TINYINT": "0", "BIGINT": "42", "CHAR(3)": "'USD'",
}
INDEXED = {"id", "parent_id", "c02", "c03", "c04", "c05"}  # never touched by column changes


def table_name(index: int) -> str:
    return f"t{index:03d}"


def base_columns() -> Dict[str, Tuple[str, bool, Optional[str]]]:
    columns: Dict[str, Tuple[str, bool, Optional[str]]] = {}
    for position in range(2, COLUMNS_PER_TABLE):
        columns[f"c{position:02d}"] = COLUMN_KINDS[(position - 2) % len(COLUMN_KINDS)]
    return columns


def render_column(name: str, spec: Tuple[str, bool, Optional[str]]) -> str:
    column_type, nullable, default = spec
    text = f"`{name}` {column_type} {'NULL' if nullable else 'NOT NULL'}"
    return text + (f" DEFAULT {default}" if default is not None else "")


def create_table_sql(index: int) -> str:
    name = table_name(index)
    parts = ["`id` BIGINT NOT NULL AUTO_INCREMENT", "`parent_id` BIGINT NULL"]
    parts += [render_column(column, spec) for column, spec in base_columns().items()]
    parts += [
        "PRIMARY KEY (`id`)",
        f"KEY `ix_{name}_parent` (`parent_id`)",
        f"KEY `ix_{name}_c02` (`c02`)",
        f"KEY `ix_{name}_c03_c04` (`c03`, `c04`)",
    ]
    if index > 0:
        parts.append(
            f"CONSTRAINT `fk_{name}_parent` FOREIGN KEY (`parent_id`) "
            f"REFERENCES `{table_name(index - 1)}` (`id`)"
        )
    return (f"CREATE TABLE `{name}` (\n  " + ",\n  ".join(parts)
            + "\n) ENGINE=InnoDB DEFAULT CHARSET=utf8mb4 COLLATE=utf8mb4_unicode_ci")


def plan_changes(tables: int, rng: random.Random) -> Tuple[Dict[str, List[str]], List[str], int]:
    """ALTER clauses per table (1 % of columns, indexes, FKs), FK statements, change count."""
    clauses: Dict[str, List[str]] = {}
    fk_statements: List[str] = []
    changes = 0
    columns = base_columns()

    candidates = [(t, c) for t in range(tables) for c in columns if c not in INDEXED]
    column_total = tables * COLUMNS_PER_TABLE
    column_changes = max(5, round(column_total * 0.01))
    picked = rng.sample(candidates, column_changes)
    for number, (t, column) in enumerate(picked):
        column_type, nullable, default = columns[column]
        kind = ("type", "default", "nullability", "added", "dropped")[number % 5]
        if kind == "default" and column_type == "TEXT":
            kind = "type"  # no literal default on TEXT in MySQL
        name = table_name(t)
        if kind == "type":
            clause = "MODIFY " + render_column(column, (WIDER[column_type], nullable, default))
        elif kind == "default":
            clause = "MODIFY " + render_column(column, (column_type, nullable, OTHER_DEFAULT[column_type]))
        elif kind == "nullability":
            clause = "MODIFY " + render_column(column, (column_type, not nullable, default))
        elif kind == "added":
            clause = f"ADD COLUMN `added_{number}` INT NULL"
        else:
            clause = f"DROP COLUMN `{column}`"
        clauses.setdefault(name, []).append(clause)
        changes += 1

    index_total = tables * 4
    index_changes = max(3, round(index_total * 0.01))
    index_tables = rng.sample(range(tables), index_changes)
    for number, t in enumerate(index_tables):
        name = table_name(t)
        kind = ("dropped", "added", "reordered")[number % 3]
        if kind == "dropped":
            clause = f"DROP INDEX `ix_{name}_c02`"
        elif kind == "added":
            clause = f"ADD INDEX `ix_{name}_c05` (`c05`)"
        else:
            clause = f"DROP INDEX `ix_{name}_c03_c04`, ADD INDEX `ix_{name}_c03_c04` (`c04`, `c03`)"
        clauses.setdefault(name, []).append(clause)
        changes += 1

    fk_changes = max(1, round((tables - 1) * 0.01))
    for t in rng.sample(range(1, tables), fk_changes):
        name = table_name(t)
        fk_statements.append(f"ALTER TABLE `{name}` DROP FOREIGN KEY `fk_{name}_parent`")
        fk_statements.append(
            f"ALTER TABLE `{name}` ADD CONSTRAINT `fk_{name}_parent` FOREIGN KEY (`parent_id`) "
            f"REFERENCES `{table_name(t - 1)}` (`id`) ON DELETE CASCADE"
        )
        changes += 1
    return clauses, fk_statements, changes


def connect(database: Optional[str] = None) -> pymysql.Connection:
    return pymysql.connect(
        host=os.environ.get("ENVSYNC_BENCH_HOST", "127.0.0.1"),
        port=int(os.environ.get("ENVSYNC_BENCH_PORT", "3306")),
        user=os.environ.get("ENVSYNC_BENCH_USER", "root"),
        password=os.environ.get("ENVSYNC_BENCH_PASSWORD", ""),
        database=database,
        autocommit=True,
    )


def run(cursor: pymysql.cursors.Cursor, statements: List[str]) -> None:
    for statement in statements:
        cursor.execute(statement)


class QueryTimer:
    """Wraps infoschema.rows to attribute time to each information_schema query."""

    def __init__(self) -> None:
        self.seconds: Dict[str, float] = {}
        self._original = infoschema.rows

    def __enter__(self) -> QueryTimer:
        def timed(conn, sql, args=()):  # type: ignore[no-untyped-def]
            started = time.perf_counter()
            try:
                return self._original(conn, sql, args)
            finally:
                key = " ".join(sql.split()).split(" FROM ")[-1].split(" ")[0]
                self.seconds[key] = self.seconds.get(key, 0.0) + time.perf_counter() - started

        infoschema.rows = timed
        return self

    def __exit__(self, *exc: object) -> None:
        infoschema.rows = self._original


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--tables", type=int, default=300)
    parser.add_argument("--repeat", type=int, default=5)
    parser.add_argument("--seed", type=int, default=20261126)
    parser.add_argument("--keep", action="store_true", help="keep the two schemas")
    args = parser.parse_args()

    prefix = f"envsync_bench_{uuid.uuid4().hex[:6]}"
    left_schema, right_schema = f"{prefix}_left", f"{prefix}_right"
    admin = connect()
    cursor = admin.cursor()
    cursor.execute("SELECT VERSION()")
    server = cursor.fetchone()[0]
    try:
        started = time.perf_counter()
        for schema in (left_schema, right_schema):
            cursor.execute(f"CREATE DATABASE `{schema}` CHARACTER SET utf8mb4 COLLATE utf8mb4_unicode_ci")
            cursor.execute(f"USE `{schema}`")
            run(cursor, [create_table_sql(i) for i in range(args.tables)])
        clauses, fk_statements, introduced = plan_changes(args.tables, random.Random(args.seed))
        cursor.execute(f"USE `{right_schema}`")
        run(cursor, [f"ALTER TABLE `{name}` " + ", ".join(parts) for name, parts in sorted(clauses.items())])
        run(cursor, fk_statements)
        setup_seconds = time.perf_counter() - started

        left_conn, right_conn = connect(left_schema), connect(right_schema)
        totals: List[float] = []
        loads: List[float] = []
        diffs: List[float] = []
        report = None
        timer = QueryTimer()
        with timer:
            for _ in range(args.repeat):
                t0 = time.perf_counter()
                left = load_schema(left_conn, left_schema)
                right = load_schema(right_conn, right_schema)
                t1 = time.perf_counter()
                report = diff(left, right, left_name="left", right_name="right")
                t2 = time.perf_counter()
                loads.append(t1 - t0)
                diffs.append(t2 - t1)
                totals.append(t2 - t0)
        left_conn.close()
        right_conn.close()
        assert report is not None

        objects = sum(len(t.columns) + len(t.indexes) + len(t.foreign_keys) for t in left.tables)
        print(f"server {server}; {args.tables} tables x {COLUMNS_PER_TABLE} columns, "
              f"{objects} columns+indexes+FKs per schema; setup {setup_seconds:.1f} s (not timed)")
        print(f"changes introduced: {introduced}; differences found: {report.count}")
        print(f"introspect both schemas: first {loads[0]:.3f} s, median {statistics.median(loads):.3f} s")
        print(f"diff: median {statistics.median(diffs) * 1000:.1f} ms")
        print(f"introspect + diff: first {totals[0]:.3f} s, median {statistics.median(totals):.3f} s, "
              f"max {max(totals):.3f} s over {args.repeat} runs (target < {TARGET_SECONDS:.1f} s)")
        per_query = ", ".join(
            f"{name} {seconds / (2 * args.repeat) * 1000:.0f} ms"
            for name, seconds in sorted(timer.seconds.items(), key=lambda item: -item[1])
        )
        print(f"per schema load, by query: {per_query}")
        for line in report.lines()[:5]:
            print("  e.g. " + line)

        ok = report.count == introduced and statistics.median(totals) < TARGET_SECONDS
        if report.count != introduced:
            print("MISMATCH: the report does not have one line per change", file=sys.stderr)
            for line in report.lines():
                print("  " + line, file=sys.stderr)
        return 0 if ok else 1
    finally:
        if not args.keep:
            for schema in (left_schema, right_schema):
                cursor.execute(f"DROP DATABASE IF EXISTS `{schema}`")
        admin.close()


if __name__ == "__main__":
    sys.exit(main())
