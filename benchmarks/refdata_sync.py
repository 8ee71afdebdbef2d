"""Benchmark: envsync reference-data sync against pt-table-sync, mysqldump | mysql and CHECKSUM TABLE.

One run on one machine, all figures from the same run:

    .venv/bin/python benchmarks/refdata_sync.py            # 1 M rows, machine MariaDB on 3306
    .venv/bin/python benchmarks/refdata_sync.py --rows 100000 --skip-pt --db-prefix mine  # shared server

A ~10-column table (BIGINT key, VARCHAR, utf8mb4 text, DECIMAL, DOUBLE, INT, TINYINT, nullable
TEXT, DATETIME(6), TIMESTAMP(6)) is created in two databases on the server. Changes are made on
the target (so source -> target sync must undo them): 1 % of the rows, as 0.5 % updates,
0.25 % rows missing (-> inserts) and 0.25 % extra rows (-> deletes), spread uniformly over the
key (every 200th/400th row) or clustered (three contiguous key ranges). The mutation is
deterministic, so after each sync the same state is recreated by running it again.

Measured: envsync apply (crc32 and md5 row hashes), `pt-table-sync --execute` (Debian package
percona-toolkit, installed with apt-get when missing; skipped with a message when it cannot
be), `mysqldump | mysql` reload of the table, the floor `CHECKSUM TABLE ... EXTENDED` on both
sides, and the in-sync case: md5 twice, the full 128-bit pass (the first run, none recorded yet)
and then the CHECKSUM TABLE fast path the engine takes until the next full pass is due.
After every run CHECKSUM TABLE says whether the two tables are identical. A last case applies
a delta of 100 one-MiB blobs (`--blob-mb`) in a separate process and reports its peak RSS (the
delta is streamed, so it stays far below the delta's size). Peak memory of the engine is the
process's max RSS (only the engine runs Python row work in this process; baselines run as child
processes).

The server: by default the benchmark starts its own MariaDB (a temporary datadir, a free port,
an InnoDB buffer pool that holds both copies of the table, as Aurora's buffer pool - 3/4 of the
instance's memory - holds reference tables) and stops it at the end, so the figures do not
depend on how the machine's server is configured (Debian's 128 MB pool with O_DIRECT makes
every pass over 2 x 120 MB a disk read). `--host/--port` run it on a given server instead.

The stateless floor: the engine's own row-mode chunk queries (key and row hash of every row) on
both sides at once, chunk bounds found beforehand and not timed, nothing compared or written.
Any diff that finds changes spread over the table without keeping state must read that much;
`dump+reload / floor` is the most such a diff can be faster than `mysqldump | mysql` here.
"""

from __future__ import annotations

import argparse
import os
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

import pymysql

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "lambda_code"))
sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "local"))
from envsync.refdata import RefdataConfig
from envsync.refdata import apply as refdata_apply
from envsync.refdata.config import TableConfig, table_plan
from envsync.refdata.diff import _ChunkQueries, _on_both, row_digest
from envsync.refdata.schema import read_shapes
from envsync_local.mariadb import MariaDBInstance, free_port

SOURCE_DB, TARGET_DB, TABLE = "envsync_bench_src", "envsync_bench_dst", "ref_bench"
CHUNK_ROWS = RefdataConfig.chunk_rows  # the engine's default unless --chunk-rows

CREATE = f"""CREATE TABLE {TABLE} (
  id BIGINT NOT NULL PRIMARY KEY,
  code VARCHAR(32) NOT NULL,
  name VARCHAR(100) CHARACTER SET utf8mb4 NOT NULL,
  amount DECIMAL(18,4) NOT NULL,
  rate DOUBLE NULL,
  qty INT NOT NULL,
  flag TINYINT NOT NULL,
  note TEXT NULL,
  created DATETIME(6) NOT NULL,
  updated_at TIMESTAMP(6) NOT NULL DEFAULT CURRENT_TIMESTAMP(6)
) ENGINE=InnoDB"""


class Server:
    def __init__(self, host: str, port: int, user: str, password: str) -> None:
        self.host, self.port, self.user, self.password = host, port, user, password

    def connect(self, database: Optional[str] = None) -> pymysql.Connection:
        return pymysql.connect(host=self.host, port=self.port, user=self.user, password=self.password,
                               database=database, charset="utf8mb4", autocommit=True)

    def run(self, *statements: str, database: Optional[str] = None) -> None:
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                for statement in statements:
                    cur.execute(statement)
        finally:
            conn.close()

    def value(self, sql: str, database: Optional[str] = None):
        conn = self.connect(database)
        try:
            with conn.cursor() as cur:
                cur.execute(sql)
                return cur.fetchone()
        finally:
            conn.close()

    def cli_args(self) -> List[str]:
        args = [f"-h{self.host}", f"-P{self.port}", f"-u{self.user}"]
        return args + ([f"-p{self.password}"] if self.password else [])


def timed(action: Callable[[], object]) -> Tuple[float, object]:
    began = time.perf_counter()
    outcome = action()
    return time.perf_counter() - began, outcome


def setup(server: Server, rows: int) -> None:
    server.run(f"DROP DATABASE IF EXISTS {SOURCE_DB}", f"DROP DATABASE IF EXISTS {TARGET_DB}",
               f"CREATE DATABASE {SOURCE_DB}", f"CREATE DATABASE {TARGET_DB}")
    server.run(CREATE, database=SOURCE_DB)
    server.run(CREATE, database=TARGET_DB)
    # MariaDB's sequence engine makes the rows server-side (the benchmark runs on MariaDB).
    server.run(
        f"INSERT INTO {TABLE} SELECT seq, CONCAT('C', seq), CONCAT('name ', seq, ' é ✓'), seq / 7, "
        "RAND(seq) * 1000, seq % 1000, seq % 2, IF(seq % 10 = 0, NULL, REPEAT('x', seq % 50)), "
        "'2024-01-01 00:00:00' + INTERVAL seq SECOND + INTERVAL (seq % 1000000) MICROSECOND, "
        f"'2024-06-01 00:00:00.123456' FROM seq_1_to_{rows}",
        database=SOURCE_DB,
    )
    server.run(f"INSERT INTO {TARGET_DB}.{TABLE} SELECT * FROM {SOURCE_DB}.{TABLE}")


def mutate(server: Server, rows: int, pattern: str) -> None:
    """Change 1 % of the rows on the target: 0.5 % updated, 0.25 % missing, 0.25 % extra."""
    extra = rows // 400
    if pattern == "uniform":
        updated, missing = "id % 200 = 3", "id % 400 = 5"
    else:
        start = rows // 2
        updated = f"id BETWEEN {start + 1} AND {start + rows // 200}"
        missing = f"id BETWEEN {rows // 5 + 1} AND {rows // 5 + rows // 400}"
    server.run(
        f"UPDATE {TABLE} SET name = CONCAT(name, ' (old)'), rate = rate + 1 WHERE {updated}",
        f"DELETE FROM {TABLE} WHERE {missing}",
        f"INSERT INTO {TABLE} SELECT seq + {rows}, 'EXTRA', 'extra', 0, 0, 0, 0, NULL, "
        f"'2024-01-01', '2024-01-01' FROM seq_1_to_{extra}",
        database=TARGET_DB,
    )


def identical(server: Server) -> bool:
    a = server.value(f"CHECKSUM TABLE {SOURCE_DB}.{TABLE} EXTENDED")[1]
    b = server.value(f"CHECKSUM TABLE {TARGET_DB}.{TABLE} EXTENDED")[1]
    return a == b


def checksum_floor(server: Server) -> float:
    conn = server.connect()
    try:
        with conn.cursor() as cur:
            began = time.perf_counter()
            cur.execute(f"CHECKSUM TABLE {SOURCE_DB}.{TABLE} EXTENDED")
            cur.execute(f"CHECKSUM TABLE {TARGET_DB}.{TABLE} EXTENDED")
            return time.perf_counter() - began
    finally:
        conn.close()


def envsync_run(server: Server, hash_name: str) -> Tuple[float, Dict[str, object]]:
    source, target = server.connect(SOURCE_DB), server.connect(TARGET_DB)
    try:
        config = RefdataConfig.from_dict({"tables": [{"name": TABLE, "updated_at_column": "updated_at"}],
                                          "chunk_rows": CHUNK_ROWS, "hash": hash_name})
        seconds, result = timed(lambda: refdata_apply(source, target, config))
        return seconds, result.to_dict()
    finally:
        source.close()
        target.close()


def stateless_floor(server: Server, hash_name: str) -> float:
    """The row-mode chunk queries of a diff (key and row hash of every row) on both sides at
    once, with the chunk bounds found beforehand (not timed); nothing compared or written."""
    source, target = server.connect(SOURCE_DB), server.connect(TARGET_DB)
    try:
        plan = table_plan(read_shapes(source, [TABLE])[TABLE], TableConfig(name=TABLE))
        queries = _ChunkQueries(plan, CHUNK_ROWS, hash_name, row_digest(source, target))  # the engine's statements
        bounds: List[object] = [None]
        while bounds[-1] is not None or len(bounds) == 1:
            bounds.append(queries.boundary(source, bounds[-1]))
        ranges = list(zip(bounds, bounds[1:]))

        def read_all(conn) -> int:
            return sum(queries.fingerprint(conn, lower, upper, True)[0] for lower, upper in ranges)

        seconds, _ = timed(lambda: _on_both(source, target, read_all))
        return seconds
    finally:
        source.close()
        target.close()


def ensure_pt_table_sync() -> Optional[str]:
    found = shutil.which("pt-table-sync")
    if found:
        return found
    print("pt-table-sync missing: apt-get install -y percona-toolkit ...", flush=True)
    try:
        env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
        subprocess.run(["apt-get", "install", "-y", "-q", "percona-toolkit"], check=True, env=env,
                       stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    except (OSError, subprocess.CalledProcessError) as error:
        print(f"  cannot install percona-toolkit ({error}); the pt-table-sync baseline is skipped")
        return None
    return shutil.which("pt-table-sync")


def pt_table_sync(server: Server, tool: str) -> float:
    dsn = f"h={server.host},P={server.port},u={server.user}" + (f",p={server.password}" if server.password else "")
    command = [tool, "--execute", "--no-check-slave",
               f"{dsn},D={SOURCE_DB},t={TABLE}", f"{dsn},D={TARGET_DB},t={TABLE}"]
    seconds, proc = timed(lambda: subprocess.run(command, capture_output=True, text=True, check=False))
    if proc.returncode not in (0, 2):  # 2 = differences found and synced
        print(f"  pt-table-sync exit {proc.returncode}: {proc.stderr.strip()[-400:]}")
    return seconds


def dump_reload(server: Server) -> float:
    def run() -> None:
        dump = subprocess.Popen(
            [shutil.which("mysqldump") or "mysqldump", *server.cli_args(), "--single-transaction",
             "--skip-lock-tables", SOURCE_DB, TABLE], stdout=subprocess.PIPE)
        load = subprocess.run([shutil.which("mysql") or "mysql", *server.cli_args(), TARGET_DB],
                              stdin=dump.stdout, check=True)
        dump.stdout.close()
        if dump.wait() != 0 or load.returncode != 0:
            raise RuntimeError("mysqldump | mysql failed")
    seconds, _ = timed(run)
    return seconds


def resync(server: Server) -> None:
    """Bring the target back to the source (not timed) after a baseline that left it different."""
    if not identical(server):
        envsync_run(server, "md5")


BLOB_TABLE = "ref_bench_blob"
BLOB_RUN = """
import resource, sys, time
sys.path.insert(0, {lambda_code!r})
import pymysql
from envsync.refdata import RefdataConfig, apply
db = dict(host={host!r}, port={port}, user={user!r}, password={password!r}, charset="utf8mb4", autocommit=True)
source, target = pymysql.connect(database={source!r}, **db), pymysql.connect(database={target!r}, **db)
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
began = time.perf_counter()
result = apply(source, target, RefdataConfig.from_dict({{"tables": [{table!r}]}}))
print(time.perf_counter() - began, before, resource.getrusage(resource.RUSAGE_SELF).ru_maxrss, result.rows_changed)
"""


def blob_delta(server: Server, megabytes: int) -> None:
    """A delta of `megabytes` 1 MB blobs (inserts), applied by the engine in its own process."""
    create = f"CREATE TABLE {BLOB_TABLE} (id INT PRIMARY KEY, body LONGBLOB NOT NULL)"
    server.run(f"DROP TABLE IF EXISTS {BLOB_TABLE}", create, database=SOURCE_DB)
    server.run(f"DROP TABLE IF EXISTS {BLOB_TABLE}", create, database=TARGET_DB)
    # bytes that need escaping (NUL, quote, backslash) and high bytes, 1 MiB per row
    server.run(f"INSERT INTO {BLOB_TABLE} SELECT seq, REPEAT(CONCAT(UNHEX('00FF275C'), CHAR(seq % 256)), 209715) "
               f"FROM seq_1_to_{megabytes}", database=SOURCE_DB)
    script = BLOB_RUN.format(lambda_code=str(Path(__file__).resolve().parents[1] / "lambda_code"),
                             host=server.host, port=server.port, user=server.user, password=server.password,
                             source=SOURCE_DB, target=TARGET_DB, table=BLOB_TABLE)
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    seconds, before_kb, peak_kb, changed = out.split()
    same = server.value(f"CHECKSUM TABLE {SOURCE_DB}.{BLOB_TABLE} EXTENDED")[1] == server.value(
        f"CHECKSUM TABLE {TARGET_DB}.{BLOB_TABLE} EXTENDED")[1]
    print(f"{megabytes} MB blob delta ({changed} rows of 1 MiB): envsync apply {float(seconds):.2f} s, "
          f"peak RSS {int(peak_kb) / 1024:.0f} MiB (after imports: {int(before_kb) / 1024:.0f} MiB), "
          f"identical: {'yes' if same else 'NO'}")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--host", default=None,
                        help="run on this server (default: start the benchmark's own MariaDB)")
    parser.add_argument("--port", type=int, default=3306)
    parser.add_argument("--buffer-pool", default="1G",
                        help="InnoDB buffer pool of the benchmark's own server (default 1G: both tables fit)")
    parser.add_argument("--user", default="root")
    parser.add_argument("--password", default="")
    parser.add_argument("--chunk-rows", type=int, default=RefdataConfig.chunk_rows)
    parser.add_argument("--skip-pt", action="store_true", help="skip the pt-table-sync baseline")
    parser.add_argument("--keep", action="store_true", help="keep the benchmark databases")
    parser.add_argument("--db-prefix", default="envsync_bench",
                        help="name prefix of the two databases (<prefix>_src, <prefix>_dst)")
    parser.add_argument("--blob-mb", type=int, default=100, help="size of the blob-delta case (0: skip)")
    parser.add_argument("--blob-only", action="store_true", help="run only the blob-delta case")
    args = parser.parse_args()
    global CHUNK_ROWS, SOURCE_DB, TARGET_DB
    CHUNK_ROWS = args.chunk_rows
    SOURCE_DB, TARGET_DB = f"{args.db_prefix}_src", f"{args.db_prefix}_dst"
    own = None
    if args.host is None:
        own = MariaDBInstance(name="benchmark", port=free_port(), buffer_pool=args.buffer_pool,
                              base_dir=Path(tempfile.mkdtemp(prefix="envsync-bench-")))
        own.start()
        print(f"own MariaDB on port {own.port} (buffer pool {args.buffer_pool}, datadir {own.datadir})")
        server = Server(own.host, own.port, "root", "")
    else:
        server = Server(args.host, args.port, args.user, args.password)
    try:
        return run(args, server)
    finally:
        if own is not None and not args.keep:
            own.wipe()


def run(args: argparse.Namespace, server: Server) -> int:
    rows = args.rows
    print(f"refdata sync benchmark: {rows} rows x 10 columns, 1 % changed, chunk_rows {CHUNK_ROWS}; "
          f"load average {os.getloadavg()}")
    if args.blob_only:
        server.run(f"CREATE DATABASE IF NOT EXISTS {SOURCE_DB}", f"CREATE DATABASE IF NOT EXISTS {TARGET_DB}")
        blob_delta(server, args.blob_mb)
        print(f"load average at the end: {os.getloadavg()}")
        if not args.keep:
            server.run(f"DROP DATABASE IF EXISTS {SOURCE_DB}", f"DROP DATABASE IF EXISTS {TARGET_DB}")
        return 0
    seconds, _ = timed(lambda: setup(server, rows))
    print(f"setup: {seconds:.1f} s")
    rss_before_engine = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    figures: Dict[str, float] = {}
    checks: Dict[str, bool] = {}

    def record(name: str, value: float, verify: bool = True) -> None:
        figures[name] = value
        same = identical(server) if verify else None
        if verify:
            checks[name] = bool(same)
        print(f"  {name:<38} {value:7.2f} s" + ("" if same is None else f"   identical: {'yes' if same else 'NO'}"),
              flush=True)

    print("in sync (0 changes):")
    record("CHECKSUM TABLE both sides (floor)", checksum_floor(server))
    # md5: the first run is the full 128-bit pass (none recorded yet), the next the fast path
    for hash_name, name in (("crc32", "crc32"), ("md5", "md5, full 128-bit pass"), ("md5", "md5")):
        seconds, result = envsync_run(server, hash_name)
        assert result["rows_changed"] == 0, result
        record(f"envsync apply, in sync ({name})", seconds)
        print(f"      checked by {result['tables'][0]['checked_by']}")
    pt_tool = None if args.skip_pt else ensure_pt_table_sync()
    if pt_tool:
        record("pt-table-sync --execute, in sync", pt_table_sync(server, pt_tool))
        resync(server)

    for pattern in ("uniform", "clustered"):
        print(f"1 % changed, {pattern}:")
        for hash_name in ("crc32", "md5"):
            mutate(server, rows, pattern)
            if pattern == "uniform":
                record(f"stateless floor ({hash_name})", stateless_floor(server, hash_name), verify=False)
            seconds, result = envsync_run(server, hash_name)
            table = result["tables"][0]
            record(f"envsync apply, {pattern} ({hash_name})", seconds)
            print(f"      +{table['inserted']} ~{table['updated']} -{table['deleted']}, chunks "
                  f"{table['chunks_differing']}/{table['chunks_compared']} differing")
        if pt_tool:
            mutate(server, rows, pattern)
            record(f"pt-table-sync --execute, {pattern}", pt_table_sync(server, pt_tool))
            resync(server)
        mutate(server, rows, pattern)
        record(f"mysqldump | mysql reload, {pattern}", dump_reload(server))

    if args.blob_mb:
        blob_delta(server, args.blob_mb)
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    print(f"engine peak memory (max RSS of this process): {peak_mb:.0f} MiB "
          f"(before the first engine run: {rss_before_engine / 1024:.0f} MiB)")
    print(f"load average at the end: {os.getloadavg()}")

    print("ratios (targets: >= 4x vs dump+reload, in sync <= 1.2x floor, 1 % changed <= 1.5x in sync):")
    floor = figures["CHECKSUM TABLE both sides (floor)"]
    print(f"  [md5] full 128-bit pass in sync / CHECKSUM floor: "
          f"{figures['envsync apply, in sync (md5, full 128-bit pass)'] / floor:.2f}x")
    for hash_name in ("crc32", "md5"):
        in_sync = figures[f"envsync apply, in sync ({hash_name})"]
        print(f"  [{hash_name}] in sync / CHECKSUM floor: {in_sync / floor:.2f}x")
        for pattern in ("uniform", "clustered"):
            ours = figures[f"envsync apply, {pattern} ({hash_name})"]
            reload = figures[f"mysqldump | mysql reload, {pattern}"]
            line = (f"  [{hash_name}] {pattern}: dump+reload / envsync = {reload / ours:.2f}x, "
                    f"envsync / in sync = {ours / in_sync:.2f}x")
            if pt_tool:
                line += f", pt-table-sync / envsync = {figures[f'pt-table-sync --execute, {pattern}'] / ours:.2f}x"
            print(line)
        if pt_tool:
            ours = figures[f"envsync apply, in sync ({hash_name})"]
            print(f"  [{hash_name}] in sync: pt-table-sync / envsync = "
                  f"{figures['pt-table-sync --execute, in sync'] / ours:.2f}x")
    reload = figures["mysqldump | mysql reload, uniform"]
    for hash_name in ("crc32", "md5"):
        least = figures[f"stateless floor ({hash_name})"]
        print(f"  [{hash_name}] stateless floor (row hashes of both sides, nothing written): {least:.2f} s; "
              f"dump+reload / floor = {reload / least:.2f}x (no stateless diff gets past this here); "
              f"uniform envsync / floor = {figures[f'envsync apply, uniform ({hash_name})'] / least:.2f}x")
    full_pass = figures["envsync apply, in sync (md5, full 128-bit pass)"]
    print(f"  [md5] clustered: dump+reload / in-sync full 128-bit pass = "
          f"{figures['mysqldump | mysql reload, clustered'] / full_pass:.2f}x (a table that differs anywhere is "
          "walked in full, and every equal chunk proven with 128 bits)")
    print(f"  [md5] 1 % changed / in sync full 128-bit pass: uniform "
          f"{figures['envsync apply, uniform (md5)'] / full_pass:.2f}x, "
          f"clustered {figures['envsync apply, clustered (md5)'] / full_pass:.2f}x")
    not_identical = [name for name, same in checks.items() if not same]
    print("tables identical after every run" if not not_identical else f"NOT identical after: {not_identical}")
    if not args.keep:
        server.run(f"DROP DATABASE IF EXISTS {SOURCE_DB}", f"DROP DATABASE IF EXISTS {TARGET_DB}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
