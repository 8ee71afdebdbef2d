"""The runtime's and the engine's support dates: one cited table, checked against cfn-lint's copy,
printed per env as a warning within 90 days, an error (launch refused) once AWS blocks creation."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from datetime import date
from pathlib import Path

import pytest

from envsync_sceptre.config.configfile import EnvConfigError
from envsync_sceptre.config.envconfig import lifecycle_warnings, load_envs
from envsync_sceptre.config.lifecycle import AURORA_MYSQL, LAMBDA_RUNTIMES, engine_major
from tests.conftest import PROJECT_ROOT

TODAY = date(2026, 12, 7)
SWITCH_RUNTIME = "switch: lambda_runtime: python3.13 in config/config.yaml"
SWITCH_ENGINE = "switch: db_engine_version: 8.0.mysql_aurora.3.10.3 in config/config.yaml"


def test_the_runtime_rows_are_the_ones_cfn_lint_ships():
    """cfn-lint's W1030 data is AWS's runtime table; a pinned release that moves a date fails here."""
    import cfnlint

    shipped = json.loads((Path(cfnlint.__file__).parent / "data" / "AdditionalSpecs" /
                          "LmbdRuntimeLifecycle.json").read_text())
    for name, dates in LAMBDA_RUNTIMES.items():
        assert shipped[name]["deprecated"] == dates.deprecated.isoformat(), name
        assert shipped[name]["create-block"] == dates.create_blocked.isoformat(), name
        assert shipped[name]["update-block"] == dates.update_blocked.isoformat(), name


def test_engine_versions_name_their_major_and_family():
    assert engine_major("5.7.mysql_aurora.2.12.5") == "5.7"
    assert engine_major("8.0.mysql_aurora.3.10.3") == "8.0"
    assert engine_major("8.0.mysql_aurora.2.12.5") is None  # v2 is 5.7 only
    assert engine_major("8.4.mysql_aurora.4.0.0") is None
    assert [AURORA_MYSQL[m].family for m in ("5.7", "8.0")] == ["aurora-mysql5.7", "aurora-mysql8.0"]


def test_the_shipped_defaults_warn_today_in_every_env():
    warnings = lifecycle_warnings(PROJECT_ROOT / "config", TODAY)
    assert warnings == [
        f"{env}: WARNING {line}" for env in ("dev", "prod", "staging") for line in (
            "Lambda python3.9: deprecated 2025-12-15 (passed), create blocked 2027-02-01 (in 56 days), "
            f"update blocked 2027-03-03 (in 86 days); {SWITCH_RUNTIME}",
            "Aurora MySQL 5.7 (5.7.mysql_aurora.2.12.5): end of standard support 2024-10-31 (passed), "
            f"end of Extended Support 2027-02-28 (in 83 days); {SWITCH_ENGINE} (README: upgrade dev, then "
            "staging, then prod)")]
    load_envs(PROJECT_ROOT / "config", TODAY)  # warnings only: the launch goes on


@pytest.mark.parametrize(("today", "what"), [
    (date(2027, 2, 1), "Lambda python3.9 can no longer be created in AWS"),
    (date(2027, 2, 28), "Aurora MySQL 5.7 (5.7.mysql_aurora.2.12.5) can no longer be created in AWS"),
])
def test_once_aws_blocks_creation_the_config_is_refused(today, what):
    with pytest.raises(EnvConfigError) as refused:
        load_envs(PROJECT_ROOT / "config", today)
    lines = [line for line in refused.value.problems if what in line]
    assert [line.split(":")[0] for line in lines] == ["dev", "prod", "staging"], refused.value.problems
    assert all("switch: " in line for line in lines)


@pytest.fixture
def switched_config(tmp_path: Path) -> Path:
    config = tmp_path / "config"
    shutil.copytree(PROJECT_ROOT / "config", config)
    shared = config / "config.yaml"
    text = shared.read_text()
    assert "\nlambda_runtime: python3.9\n" in text and "\ndb_engine_version: 5.7.mysql_aurora.2.12.5\n" in text
    shared.write_text(text.replace("\nlambda_runtime: python3.9\n", "\nlambda_runtime: python3.13\n")
                      .replace("\ndb_engine_version: 5.7.mysql_aurora.2.12.5\n",
                               "\ndb_engine_version: 8.0.mysql_aurora.3.10.3\n"))
    return config


def test_after_the_one_line_switches_nothing_is_printed(switched_config: Path):
    assert lifecycle_warnings(switched_config, TODAY) == []
    assert load_envs(switched_config, date(2028, 1, 31))
    # ... until the new versions near their own dates.
    assert [w.split(" WARNING ")[1].split(":")[0] for w in lifecycle_warnings(switched_config, date(2028, 2, 1))
            if w.startswith("dev:")] == ["Aurora MySQL 8.0 (8.0.mysql_aurora.3.10.3)"]


def test_one_env_ahead_during_an_upgrade_warns_only_where_the_old_values_remain(switched_config: Path):
    """An upgrade rolls dev first: dev overrides the runtime and engine, the others keep 3.9/5.7."""
    shared = switched_config / "config.yaml"
    shared.write_text(shared.read_text().replace("lambda_runtime: python3.13", "lambda_runtime: python3.9")
                      .replace("db_engine_version: 8.0.mysql_aurora.3.10.3",
                               "db_engine_version: 5.7.mysql_aurora.2.12.5"))
    with (switched_config / "dev" / "config.yaml").open("a") as dev:
        dev.write("lambda_runtime: python3.12\ndb_engine_version: 8.0.mysql_aurora.3.10.3\n")
    assert sorted({w.split(":")[0] for w in lifecycle_warnings(switched_config, TODAY)}) == ["prod", "staging"]


def test_the_validate_hook_prints_the_warnings_once(capsys, monkeypatch):
    from envsync_sceptre.hooks import validate as validate_hook
    from envsync_sceptre.hooks.validate import ValidateEnvConfig

    monkeypatch.setattr(validate_hook, "_PRINTED", set())
    hook = ValidateEnvConfig(argument=str(PROJECT_ROOT / "config"))
    hook.run()
    hook.run()  # a second stack of the same command
    printed = capsys.readouterr().err.splitlines()
    today = date.today()
    expected = [f"envsync_validate: {line}" for line in lifecycle_warnings(PROJECT_ROOT / "config", today)]
    assert printed == expected and len(expected) == 6


def test_envsync_local_up_prints_them_before_anything_starts():
    result = subprocess.run([sys.executable, "-m", "envsync_local.cli", "up", "nosuchenv"],
                            capture_output=True, text=True, check=False, cwd=PROJECT_ROOT)
    assert result.returncode == 2
    lines = result.stderr.splitlines()
    assert lines[-1].startswith("envsync-local: unknown env(s) nosuchenv")
    assert [line.split(":")[1].strip() for line in lines[:-1]] == ["dev"] * 2 + ["prod"] * 2 + ["staging"] * 2
    assert all(" WARNING " in line and "switch: " in line for line in lines[:-1])
