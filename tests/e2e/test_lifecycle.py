"""`make local`, `make stop`, `make local` again: one lifecycle for every stand-in's state.

moto keeps the AWS accounts in memory, so a stopped system starts over as a whole (databases,
replica and call record with it) and the second `up` ends exactly as the first: every env's
first sync succeeds, the demo's blocked promotion happens, and no alarm but staging's
SyncFailures is in ALARM (prod's replica-lag alarm is OK: the replica replicates).
"""

from __future__ import annotations

import re

import pytest

from envsync_local.cli import LocalStack, command_up
from envsync_local.mariadb import free_port
from envsync_local.paths import PROJECT_ROOT
from envsync_sceptre.config.envconfig import load_envs

pytestmark = [pytest.mark.slow, pytest.mark.launched, pytest.mark.lifecycle]  # launches its own system


def first_status_table(printed: str) -> dict:
    """The `[4] status` table of an `up`: env -> its row."""
    table = printed.split("\n[4] status\n", 1)[1].split("\n[5]", 1)[0]
    return {line.split()[0]: line for line in table.splitlines()[2:] if line.strip() and not line.startswith(" ")}


def test_up_down_up_resumes_a_green_system(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("ENVSYNC_LOCAL_DIR", str(tmp_path))
    envs = load_envs(PROJECT_ROOT / "config")
    first = LocalStack(tmp_path, envs, moto_port=free_port(), db_ports={name: free_port() for name in envs})
    try:
        assert command_up(first, None) == 0
        printed_first = capsys.readouterr().out
        first.stop()
        assert not first.moto_running() and not any(db.is_running() for db in first.servers)

        again = LocalStack(tmp_path, envs)  # what the next `make local` sees: the saved ports
        assert again.moto.port == first.moto.port
        assert command_up(again, None) == 0
        printed_again = capsys.readouterr().out
    finally:
        LocalStack(tmp_path, envs).stop()

    for printed in (printed_first, printed_again):
        assert "UNEXPECTED" not in printed and ", 0 denied" in printed
        rows = first_status_table(printed)
        assert set(rows) == set(envs)
        for row in rows.values():
            assert " SUCCEEDED " in row, row
            assert "=ALARM" not in row, row
        assert re.search(r"aurora-replica-lag=OK", rows["prod"]), rows["prod"]
    # The second run is the first one again, not a resumed half: same schema versions.
    assert {env: row.split()[2] for env, row in first_status_table(printed_first).items()} == \
        {env: row.split()[2] for env, row in first_status_table(printed_again).items()}
