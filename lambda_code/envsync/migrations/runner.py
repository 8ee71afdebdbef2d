"""Running one script's statements in its own session, recording only what is durable.

`_ScriptRun` executes a script statement by statement on the script session, checks after each
one what the session would leave behind (`session_state`: an open transaction, autocommit off,
another schema), and writes progress to the history through the control session only for work
that has committed. A lost connection leaves the row in doubt (`is_lost_connection`).
"""


from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any, Callable, Dict, Optional, Tuple

import pymysql
from pymysql.constants import SERVER_STATUS

from envsync.migrations import history
from envsync.migrations.plan import MigrationError
from envsync.migrations.scripts import Script, Statement
from envsync.mysql.connection import server_error_notice


@dataclass(frozen=True)
class SessionState:
    """What the script's session would leave behind if the run stopped now."""

    in_transaction: bool
    autocommit: bool
    database: Optional[str]


def session_state(connection: Any) -> SessionState:
    with connection.cursor() as cursor:
        cursor.execute("SELECT @@autocommit, DATABASE()")
        autocommit, database = cursor.fetchone()
    # The status flags of the reply say whether a transaction is open, on MySQL and MariaDB
    # alike (@@in_transaction is MariaDB-only).
    in_transaction = bool(connection.server_status & SERVER_STATUS.SERVER_STATUS_IN_TRANS)
    return SessionState(in_transaction=in_transaction, autocommit=bool(autocommit), database=database)


# PyMySQL's errors for a session that died: lost mid-query, gone away, socket closed.
LOST_CONNECTION_CODES = (2006, 2013, 2055)


def is_lost_connection(error: BaseException) -> bool:
    if isinstance(error, pymysql.err.InterfaceError):
        return True
    return (isinstance(error, pymysql.err.OperationalError) and bool(error.args)
            and error.args[0] in LOST_CONNECTION_CODES)


class _ScriptRun:
    """One script on the script session, progress on the control session.

    Progress is recorded only for work that is durable: while the script has a transaction
    open, its statements could still be rolled back, so they are recorded when it commits
    (explicitly, or implicitly by DDL). A transaction still open at the end, or autocommit
    turned off, fails the script after rolling back: nothing rolled back is ever recorded.
    """

    def __init__(self, control: Any, session: Any, script: Script, *, schema: str, env_label: str,
                 resume_from: int) -> None:
        self.control, self.session, self.script = control, session, script
        self.schema, self.env_label = schema, env_label
        self.durable = resume_from - 1  # statements known to have taken effect for good
        self.open_since: Optional[Statement] = None  # first statement of an open transaction
        self.started = time.monotonic()
        # A failure as notifications carry it: the server's message can quote row values
        # ("Duplicate entry ..."), so it stays in the history and the env's logs only.
        self.notice: Optional[str] = None
        # The same as named fields (script, statement, line, error class): what SNS carries.
        self.failure: Optional[Dict[str, Any]] = None

    def failed_at(self, statement: Statement, error_class: str) -> None:
        self.failure = {"script": self.script.name, "statement": statement.number, "line": statement.line,
                        "error": error_class}

    def elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def label(self, statement: Statement) -> str:
        return f"{self.script.name} statement {statement.number} (line {statement.line})"

    def rolled_back(self, upto: Statement) -> str:
        """Roll back the open transaction; say which statements it undid."""
        if self.open_since is None:
            return ""
        with self.session.cursor() as cursor:
            cursor.execute("ROLLBACK")
        first = self.open_since
        self.open_since = None
        span = (f"statement {first.number}" if first.number == upto.number
                else f"statements {first.number}-{upto.number}")
        return f"; {span} (from line {first.line}) ran in a transaction that was rolled back"

    def recorded(self, what: str, write: Callable[[], None]) -> None:
        """A history write on the control session; if it fails, say what ran and what to do."""
        try:
            write()
        except Exception as error:
            if is_lost_connection(error):
                code, message = _server_error(error)
                cause = f"lost the connection to the database ([{code}] {message})"
            elif isinstance(error, history.HistoryWriteError):
                cause = str(error)
            else:
                cause = f"{type(error).__name__}: {error}"
            raise MigrationError(
                f"{self.env_label}: {what}, but writing that to the history failed: {cause}. The "
                f"history may be behind what ran: run `envsync status` to see where {self.env_label} "
                "stands, check the schema, then `envsync repair` the script in doubt"
            ) from error

    def failed(self, text: str) -> str:
        self.recorded(text, lambda: history.fail(
            self.control, self.script.version, error_text=text, duration_ms=self.elapsed_ms(),
            statements_applied=self.durable))
        return f"{self.env_label}: {text}"

    def lost(self, statement: Statement, error: BaseException) -> str:
        code, message = _server_error(error)
        text = (f"{self.label(statement)}: lost the connection to the database ([{code}] {message}) "
                f"while it ran: it may or may not have taken effect. Run `envsync status` to see "
                f"where {self.env_label} stands, check the schema, then `envsync repair --version "
                f"{self.script.version} --resolution applied|not-applied`")
        if self.open_since is not None:
            text += (f" (statements {self.open_since.number}-{statement.number - 1} ran in a "
                     "transaction the server rolled back when the session died)")
        # The row stays `running`: in doubt until a human says what happened.
        self.recorded(text, lambda: history.interrupted(
            self.control, self.script.version, error_text=text, duration_ms=self.elapsed_ms()))
        return f"{self.env_label}: {text}"

    def execute(self, statement: Statement) -> Optional[str]:
        """Run one statement; the error text when the script must stop, else None."""
        try:
            with self.session.cursor() as cursor:
                cursor.execute(statement.sql)
                while cursor.nextset():
                    pass
        except Exception as error:  # the server's message goes into history, verbatim
            if is_lost_connection(error):
                self.failed_at(statement, "lost connection")
                return self.lost(statement, error)
            code, message = _server_error(error)
            self.failed_at(statement, server_error_notice(error))
            text = f"{self.label(statement)}: [{code}] {message}"
            try:
                undone = self.rolled_back(statement)
            except Exception as rollback_error:
                if is_lost_connection(rollback_error):
                    return self.lost(statement, error)
                raise
            self.notice = f"{self.env_label}: {self.label(statement)}: {server_error_notice(error)}{undone}"
            return self.failed(text + undone)
        state = session_state(self.session)
        if state.database != self.schema:
            self.failed_at(statement, "the script changed the session's schema")
            text = (f"{self.label(statement)}: the session's schema is now {state.database!r}, "
                    f"not {self.schema!r}; a migration must not change schema"
                    f"{self.rolled_back(statement)}")
            return self.failed(text)
        if not state.autocommit:
            self.failed_at(statement, "the script turned autocommit off")
            self.open_since = self.open_since or statement
            text = (f"{self.label(statement)} turned autocommit off: its work and everything after "
                    "it would be rolled back when the session ends, though reported applied. "
                    "Use START TRANSACTION ... COMMIT instead" + self.rolled_back(statement))
            with self.session.cursor() as cursor:
                cursor.execute("SET autocommit = 1")
            return self.failed(text)
        if state.in_transaction:
            self.open_since = self.open_since or statement
            return None
        self.open_since = None
        self.durable = statement.number
        self.recorded(f"{self.label(statement)} took effect", lambda: history.record_progress(
            self.control, self.script.version, statement.number))
        return None

    def finish(self) -> Optional[str]:
        """After the last statement: a transaction still open is rolled back and fails the script."""
        if self.open_since is not None:
            last = self.script.statements[-1]
            first = self.open_since
            self.failed_at(first, "the script left a transaction open")
            text = (f"{self.label(first)} opened a transaction that the script never commits: "
                    "nothing after the last COMMIT is recorded as applied. End it with COMMIT"
                    f"{self.rolled_back(last)}")
            return self.failed(text)
        # LOCK TABLES without UNLOCK: released at the end of the script, as the client's session
        # end would, so the next script does not start in a locked session.
        with self.session.cursor() as cursor:
            cursor.execute("UNLOCK TABLES")
        self.recorded(f"{self.script.name} ran to its end", lambda: history.finish(
            self.control, self.script.version, duration_ms=self.elapsed_ms()))
        return None


def _server_error(error: BaseException) -> Tuple[object, str]:
    args = getattr(error, "args", ())
    if len(args) >= 2:
        return args[0], str(args[1])
    return type(error).__name__, str(error) or "no message"


