"""Every failure the engine reports to a user is an EnvsyncError: one message, one exit code."""

from __future__ import annotations

import pytest

from envsync import aws, refdata
from envsync.cli import main as cli
from envsync.credentials import rotation
from envsync.errors import EXIT_ERROR, EnvsyncError
from envsync.lambdas import context, secure_parameter
from envsync.migrations import history, migrate, scripts
from envsync.mysql import connection, lock
from envsync.refdata import schema as refdata_schema

ENGINE_ERRORS = [
    (aws.AwsConfigError, RuntimeError), (cli.CliError, RuntimeError), (context.ConfigError, ValueError),
    (connection.ConnectionConfigError, ValueError), (connection.DatabaseUnreachable, RuntimeError),
    (history.HistoryWriteError, RuntimeError), (lock.LockTimeout, RuntimeError),
    (migrate.MigrationError, RuntimeError), (refdata.RefdataConfigError, ValueError),
    (refdata_schema.RefdataError, RuntimeError), (rotation.RotationError, RuntimeError),
    (scripts.ScriptError, ValueError), (secure_parameter.RequestError, ValueError),
]


@pytest.mark.parametrize(("error_class", "builtin"), ENGINE_ERRORS, ids=lambda c: getattr(c, "__name__", ""))
def test_engine_errors_share_the_base_and_keep_their_builtin_kind(error_class: type, builtin: type) -> None:
    error = error_class("V3__add_fk.sql statement 2 (line 14): no such table")
    assert isinstance(error, EnvsyncError) and isinstance(error, builtin)
    assert error.message == "V3__add_fk.sql statement 2 (line 14): no such table"
    assert error.exit_code == EXIT_ERROR


def test_the_cli_reports_any_envsync_error_by_its_message_alone() -> None:
    # LockTimeout was printed with its class name before every engine error shared the base.
    assert cli.error_text(lock.LockTimeout("schema appdb is locked by another run")) == (
        "schema appdb is locked by another run")
    assert cli.error_text(KeyError("x")) == "KeyError: 'x'"
