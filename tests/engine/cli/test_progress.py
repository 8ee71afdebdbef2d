"""Long `envsync` runs show progress on a terminal (stderr) and stay quiet when piped or --json."""

from __future__ import annotations

import json
import os
import pty
import re
import subprocess
import sys
from pathlib import Path
from typing import Dict, List, Tuple

from tests.engine.conftest import EnvDB, write_scripts

ENVSYNC = [sys.executable, "-m", "envsync.cli.main"]


def on_terminal(*args: str) -> Tuple[int, str, str]:
    """Run envsync with stderr on a pseudo-terminal (as in an operator's shell), stdout piped."""
    master, slave = pty.openpty()
    process = subprocess.Popen([*ENVSYNC, *args], stdout=subprocess.PIPE, stderr=slave, stdin=subprocess.DEVNULL)
    os.close(slave)
    seen: List[bytes] = []
    while True:
        try:
            chunk = os.read(master, 4096)
        except OSError:  # EIO: the child closed its end
            break
        if not chunk:
            break
        seen.append(chunk)
    stdout, _ = process.communicate(timeout=120)
    os.close(master)
    return process.returncode, stdout.decode(), b"".join(seen).decode(errors="replace")


def piped(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([*ENVSYNC, *args], capture_output=True, text=True, timeout=120, check=False)


def test_migrate_apply_shows_statements_applied_on_a_terminal_only(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev, staging = chain["dev"], chain["staging"]
    body = "CREATE TABLE t (id INT PRIMARY KEY);\n" + "".join(f"INSERT INTO t VALUES ({n});\n" for n in range(1, 6))
    folder = str(write_scripts(tmp_path / "s", {"V1__t.sql": body}))
    code, stdout, terminal = on_terminal("apply", "--target", dev.url, "--scripts", folder)
    assert code == 0, terminal
    for number in range(1, 7):
        assert f"V1__t.sql: statement {number}/6 applied" in terminal
    assert terminal.endswith("\r\x1b[K"), "the progress line is cleared before the result"
    assert "statement" not in stdout and "status: applied" in stdout  # the result itself is unchanged
    # Piped: nothing on stderr. --json on a terminal: nothing either, stdout is the JSON.
    quiet = piped("apply", "--target", staging.url, "--scripts", folder)
    assert quiet.returncode == 0 and quiet.stderr == ""
    code, stdout, terminal = on_terminal("--json", "apply", "--target", staging.url, "--scripts",
                                         str(write_scripts(tmp_path / "s", {"V2__u.sql": "SELECT 1;\nSELECT 2;\n"})))
    assert code == 0 and terminal == "" and json.loads(stdout)["status"] == "applied"


def test_refdata_shows_chunks_and_rows_on_a_terminal_only(chain: Dict[str, EnvDB], tmp_path: Path) -> None:
    dev, staging = chain["dev"], chain["staging"]
    folder = str(write_scripts(tmp_path / "s", {
        "V1__ref.sql": "CREATE TABLE currency (code CHAR(3) PRIMARY KEY, name VARCHAR(40));\n"
                       "CREATE TABLE country (code CHAR(2) PRIMARY KEY, name VARCHAR(40));\n"}))
    for db in (dev, staging):
        assert piped("apply", "--target", db.url, "--scripts", folder).returncode == 0
    dev.query("INSERT INTO currency VALUES ('EUR', 'Euro'), ('USD', 'US dollar'), ('JPY', 'Yen')")
    dev.query("INSERT INTO country VALUES ('FR', 'France')")
    config = tmp_path / "refdata.json"
    config.write_text(json.dumps({"tables": [{"name": "currency"}, {"name": "country"}], "chunk_rows": 2}))
    common = ["--target", staging.url, "--upstream", dev.url, "--config", str(config)]

    code, stdout, terminal = on_terminal("refdata", "plan", *common)
    assert code == 1, terminal
    assert "refdata plan: 2 tables" in terminal and "4 rows to change" in terminal
    assert "chunks compared" in terminal and "last: country changed" in terminal
    code, stdout, terminal = on_terminal("refdata", "apply", *common)
    assert code == 0, terminal
    assert "refdata apply: 2 tables" in terminal and "4 rows changed" in terminal
    assert "\x1b[K" not in stdout and "refdata apply:" not in stdout  # progress never reaches stdout
    chunks = [int(n) for n in re.findall(r"(\d+) chunks compared", terminal)]
    assert chunks == sorted(chunks) and chunks[-1] >= 3, chunks  # 3 currency rows in chunks of 2, + country

    # Piped or --json: stderr stays empty.
    assert piped("refdata", "plan", *common).stderr == ""
    code, stdout, terminal = on_terminal("--json", "refdata", "plan", *common)
    assert code == 0 and terminal == "" and json.loads(stdout)["rows_changed"] == 0
