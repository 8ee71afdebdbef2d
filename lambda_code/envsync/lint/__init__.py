"""Destructive-change lint: which statements of the pending scripts can lose data or break readers.

Classes (`Finding.kind`):
- drop_table, drop_view, drop_column, drop_index, drop_constraint, drop_partition, drop_database
  (`CREATE OR REPLACE TABLE` drops the existing table, so it counts as drop_table);
- narrowing: a MODIFY/CHANGE to a type that holds less than the live column's type (shorter
  length, smaller integer, fewer decimal digits, dropped ENUM/SET values, another type family,
  signedness flipped, NULL allowed -> NOT NULL);
- not_null_without_default: ADD COLUMN ... NOT NULL without DEFAULT on a table that has rows;
- rename: RENAME TABLE, ALTER ... RENAME [TO|AS|COLUMN|INDEX|KEY], CHANGE with a new name;
- truncate: TRUNCATE [TABLE], ALTER ... TRUNCATE PARTITION;
- delete_without_where / update_without_where: no WHERE at the statement's top level;
- unreadable: a statement the lint could not follow (flagged, so a person reads it).

Statements are read with the splitter's own tokenizer (scripts.server_tokens), so comments,
backticks and executable comments read as the server reads them. Where a check needs the live
schema (narrowing, non-empty tables), it is passed in: `LiveSchema` from `read_live_schema`;
the rest is pure. The pending scripts are simulated in order (a table created earlier in the
plan is empty; a column narrowed twice is compared with its type after the first change).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Sequence, Set, Tuple

from envsync.lint.sql import (
    Token,
    column_definition,
    name_of,
    names_list,
    narrowing,
    parse_column_type,
    qualified_name,
    skip_words,
    top_level_split,
    top_level_words,
    word_at,
)
from envsync.migrations.scripts import Script, Statement, server_tokens
from envsync.mysql import infoschema

DESTRUCTIVE_KINDS = (
    "drop_database", "drop_table", "drop_view", "drop_column", "drop_index", "drop_constraint",
    "drop_partition", "narrowing", "not_null_without_default", "rename", "truncate",
    "delete_without_where", "update_without_where", "unreadable",
)


@dataclass(frozen=True)
class Finding:
    kind: str  # one of DESTRUCTIVE_KINDS
    script_name: str
    statement: int  # 1-based statement number in its script
    line: int  # line where the statement starts
    detail: str  # what it does, in words (names, old -> new type)
    sql: str  # the statement as the script has it

    @property
    def label(self) -> str:
        return f"{self.script_name} statement {self.statement} (line {self.line})"

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "script_name": self.script_name, "statement": self.statement,
                "line": self.line, "detail": self.detail, "sql": self.sql}


@dataclass(frozen=True)
class ColumnFacts:
    column_type: str  # information_schema COLUMN_TYPE, e.g. "varchar(20)", "int(10) unsigned"
    nullable: bool


@dataclass
class LiveSchema:
    """What the target schema holds now: column types per table (names lower-cased) and which
    tables have at least one row (never their values)."""

    columns: Dict[str, Dict[str, ColumnFacts]] = field(default_factory=dict)
    nonempty: Set[str] = field(default_factory=set)


def read_live_schema(connection: Any) -> LiveSchema:
    """Column types of the connection's schema, and which of its base tables have rows
    (`SELECT 1 ... LIMIT 1` each: existence only, no row is read into the plan)."""
    live = LiveSchema()
    for row in infoschema.columns(connection, base_tables_only=True):
        facts = ColumnFacts(str(row.column_type), str(row.nullable) == "YES")
        live.columns.setdefault(str(row.table).lower(), {})[str(row.name).lower()] = facts
    with connection.cursor() as cursor:
        for table in sorted(live.columns):
            cursor.execute("SELECT 1 FROM `" + table.replace("`", "``") + "` LIMIT 1")
            if cursor.fetchone() is not None:
                live.nonempty.add(table)
    return live


def lint_scripts(scripts: Iterable[Tuple[Script, int]], live: LiveSchema) -> List[Finding]:
    """Findings for each (script, first statement to run) in plan order."""
    state = _Simulation(live)
    findings: List[Finding] = []
    for script, resume_from in scripts:
        for statement in script.statements:
            if statement.number < resume_from:
                continue
            try:
                classes = state.classify(statement)
            except (IndexError, KeyError, ValueError):  # truncated or unusual syntax: a person reads it
                classes = [("unreadable", "the lint could not follow this statement; review it")]
            findings += [Finding(kind, script.name, statement.number, statement.line, detail,
                                 statement.sql) for kind, detail in classes]
    return findings


def lint_plan(connection: Any, pending: Sequence[Any]) -> List[Finding]:
    """Findings for a migrate.Plan's pending scripts against the target `connection` (reads
    the live schema only when something is pending)."""
    if not pending:
        return []
    return lint_scripts([(planned.script, planned.resume_from) for planned in pending],
                        read_live_schema(connection))


# ---------------------------------------------------------------- classification

class _Simulation:
    """The target as the plan changes it, statement by statement (types, tables, emptiness)."""

    def __init__(self, live: LiveSchema) -> None:
        self.columns = {table: dict(columns) for table, columns in live.columns.items()}
        self.nonempty = set(live.nonempty)

    def classify(self, statement: Statement) -> List[Tuple[str, str]]:
        tokens = server_tokens(statement.sql)
        words = [text for kind, text in tokens[:6] if kind == "word"]
        if not words:
            return []
        head = words[0]
        if head == "WITH":  # MySQL 8: WITH cte AS (...) DELETE|UPDATE ...
            depth = 0
            for index, (kind, text) in enumerate(tokens):
                depth += {"(": 1, ")": -1}.get(text, 0) if kind == "other" else 0
                if depth == 0 and kind == "word" and text in ("DELETE", "UPDATE"):
                    tokens, head = tokens[index:], text
                    break
        if head == "DROP":
            return self._drop(tokens)
        if head == "ALTER":
            return self._alter(tokens)
        if head == "RENAME" and len(words) > 1 and words[1] == "TABLE":
            return self._rename_tables(tokens)
        if head == "TRUNCATE":
            tables = names_list(tokens, skip_words(tokens, 1, "TABLE"))
            self.nonempty -= set(tables)
            return [("truncate", f"empties table {', '.join(tables)}")]
        if head in ("DELETE", "UPDATE"):
            if "WHERE" not in top_level_words(tokens):
                what = "deletes every row of" if head == "DELETE" else "updates every row of"
                return [(head.lower() + "_without_where", f"{what} {self._dml_target(tokens, head)}")]
            return []
        if head == "CREATE":
            return self._create(tokens)
        return []

    def _dml_target(self, tokens: Sequence[Token], head: str) -> str:
        at = skip_words(tokens, 1, "LOW_PRIORITY", "QUICK", "IGNORE")
        if head == "DELETE" and at < len(tokens) and tokens[at] == ("word", "FROM"):
            at += 1
        return qualified_name(tokens, at)[0] if at < len(tokens) else "?"

    def _create(self, tokens: Sequence[Token]) -> List[Tuple[str, str]]:
        words = [text for kind, text in tokens[:8] if kind == "word"]
        if "TABLE" not in words:
            return []
        at = skip_words(tokens, [text for _, text in tokens].index("TABLE") + 1)
        table = qualified_name(tokens, at)[0]
        findings = []
        replaces = words[1:3] == ["OR", "REPLACE"] and "TEMPORARY" not in words
        if replaces and table in self.columns:
            findings.append(("drop_table", f"CREATE OR REPLACE drops the existing table {table}"))
        if "TEMPORARY" in words or ("NOT" in words and table in self.columns and not replaces):
            return findings  # a session's scratch table, or IF NOT EXISTS on a table that stays
        self.columns[table] = {}
        if "SELECT" in top_level_words(tokens[at:]):
            self.nonempty.add(table)  # CREATE TABLE ... AS SELECT: it has rows
        else:
            self.nonempty.discard(table)  # new and empty: later NOT NULL adds are safe
        return findings

    def _drop(self, tokens: Sequence[Token]) -> List[Tuple[str, str]]:
        words = [text for kind, text in tokens[:4] if kind == "word"]
        what = words[1] if len(words) > 1 else ""
        if what == "TEMPORARY":
            return []  # a session's own scratch table
        if what in ("TABLE", "TABLES"):
            tables = names_list(tokens, skip_words(tokens, 2), stop=("RESTRICT", "CASCADE"))
            for table in tables:
                self.columns.pop(table, None)
                self.nonempty.discard(table)
            return [("drop_table", f"drops table {', '.join(tables)}")]
        if what == "VIEW":
            views = names_list(tokens, skip_words(tokens, 2), ("RESTRICT", "CASCADE"))
            return [("drop_view", f"drops view {', '.join(views)}")]
        if what in ("DATABASE", "SCHEMA"):
            return [("drop_database", f"drops database {name_of(tokens[skip_words(tokens, 2)])}")]
        if what == "INDEX" or (what in ("ONLINE", "OFFLINE") and "INDEX" in words):
            at = skip_words(tokens, 1, "ONLINE", "OFFLINE", "INDEX")
            index = name_of(tokens[at]) if at < len(tokens) else "?"
            return [("drop_index", f"drops index {index} of {self._on_table(tokens, at + 1) or '?'}")]
        return []

    @staticmethod
    def _on_table(tokens: Sequence[Token], at: int) -> Optional[str]:
        for index in range(at, len(tokens) - 1):
            if tokens[index] == ("word", "ON"):
                return qualified_name(tokens, index + 1)[0]
        return None

    def _rename_tables(self, tokens: Sequence[Token]) -> List[Tuple[str, str]]:
        pairs = []
        for part in top_level_split(tokens[skip_words(tokens, 1, "TABLE", "TABLES"):]):
            to = part.index(("word", "TO")) if ("word", "TO") in part else 0
            if to > 0 and to + 1 < len(part):
                pairs.append((qualified_name(part, 0)[0], qualified_name(part, to + 1)[0]))
        for old, new in pairs:
            self._move_table(old, new)
        return [("rename", "renames table " + ", ".join(f"{old} to {new}" for old, new in pairs))]

    def _move_table(self, old: str, new: str) -> None:
        if old in self.columns:
            self.columns[new] = self.columns.pop(old)
        if old in self.nonempty:
            self.nonempty.discard(old)
            self.nonempty.add(new)

    def _alter(self, tokens: Sequence[Token]) -> List[Tuple[str, str]]:
        at = skip_words(tokens, 1, "ONLINE", "OFFLINE", "IGNORE")
        if at >= len(tokens) or tokens[at] != ("word", "TABLE"):
            return []
        table, at = qualified_name(tokens, skip_words(tokens, at + 1))
        findings: List[Tuple[str, str]] = []
        for clause in top_level_split(tokens[at:]):
            findings += self._alter_clause(table, clause)
            if clause and clause[0] == ("word", "RENAME") and len(clause) > 1 and \
                    clause[1][1] not in ("COLUMN", "INDEX", "KEY"):
                new = qualified_name(clause, skip_words(clause, 1, "TO", "AS"))[0]
                self._move_table(table, new)
                table = new
        return findings

    def _alter_clause(self, table: str, clause: List[Token]) -> List[Tuple[str, str]]:
        verb = clause[0][1] if clause[0][0] == "word" else ""
        second = clause[1][1] if len(clause) > 1 else ""
        columns = self.columns.get(table)
        if verb == "DROP":
            if second in ("INDEX", "KEY"):
                return [("drop_index", f"drops index {name_of(clause[skip_words(clause, 2)])} of {table}")]
            if second == "PRIMARY":
                return [("drop_index", f"drops the primary key of {table}")]
            if second in ("FOREIGN", "CONSTRAINT", "CHECK"):
                at = skip_words(clause, 2, "KEY")
                name = name_of(clause[at]) if at < len(clause) else ""
                what = "foreign key" if second == "FOREIGN" else second.lower()
                return [("drop_constraint", f"drops {what} {name} of {table}")]
            if second == "PARTITION":
                partitions = ", ".join(names_list(clause, 2))
                return [("drop_partition", f"drops partition {partitions} of {table} with its rows")]
            if second in ("DEFAULT",):
                return []
            column = name_of(clause[skip_words(clause, 1, "COLUMN")])
            if columns is not None:
                columns.pop(column, None)
            return [("drop_column", f"drops column {table}.{column}")]
        if verb == "TRUNCATE" and second == "PARTITION":
            return [("truncate", f"empties partition {', '.join(names_list(clause, 2))} of {table}")]
        if verb == "RENAME":
            if second == "COLUMN":
                return [("rename", f"renames column {table}.{word_at(clause, 2)} to {word_at(clause, 4)}")]
            if second in ("INDEX", "KEY"):
                return [("rename", f"renames index {word_at(clause, 2)} of {table} to {word_at(clause, 4)}")]
            new = qualified_name(clause, skip_words(clause, 1, "TO", "AS"))[0]
            return [("rename", f"renames table {table} to {new}")]
        if verb == "MODIFY":
            at = skip_words(clause, 1, "COLUMN")
            return self._redefine(table, name_of(clause[at]), name_of(clause[at]), clause, at + 1)
        if verb == "CHANGE":
            at = skip_words(clause, 1, "COLUMN")
            return self._redefine(table, name_of(clause[at]), name_of(clause[at + 1]), clause, at + 2)
        if verb == "ADD" and second not in ("INDEX", "KEY", "UNIQUE", "PRIMARY", "CONSTRAINT", "FOREIGN",
                                             "FULLTEXT", "SPATIAL", "CHECK", "PARTITION", "PERIOD",
                                             "SYSTEM"):
            at = skip_words(clause, 1, "COLUMN")
            definitions = [clause[at:]]
            if at < len(clause) and clause[at] == ("other", "("):  # ADD COLUMN (a INT, b INT)
                definitions = top_level_split(clause[at + 1:-1])
            return [finding for definition in definitions for finding in self._add(table, definition)]
        return []

    def _add(self, table: str, definition: List[Token]) -> List[Tuple[str, str]]:
        if len(definition) < 2 or definition[0][0] not in ("word", "quoted"):
            return []
        column = name_of(definition[0])
        parsed = column_definition(definition, 1)
        columns = self.columns.get(table)
        if columns is not None:
            columns[column] = ColumnFacts(str(parsed.column_type), not parsed.not_null)
        if parsed.not_null and not parsed.has_default and not parsed.fills_itself and table in self.nonempty:
            return [("not_null_without_default",
                     f"adds {table}.{column} NOT NULL without DEFAULT to a table with rows "
                     "(existing rows get the type's implicit value: '', 0 or a zero date)")]
        return []

    def _redefine(self, table: str, old_name: str, new_name: str, clause: List[Token],
                  at: int) -> List[Tuple[str, str]]:
        findings: List[Tuple[str, str]] = []
        if new_name != old_name:
            findings.append(("rename", f"renames column {table}.{old_name} to {new_name}"))
        if at >= len(clause):
            return findings
        parsed = column_definition(clause, at)
        columns = self.columns.get(table)
        before = columns.get(old_name) if columns is not None else None
        if before is not None:
            why = narrowing(parse_column_type(before.column_type), parsed.column_type)
            if why:
                findings.append(("narrowing", f"{table}.{old_name}: {why}"))
            if before.nullable and parsed.not_null:
                findings.append(("narrowing", f"{table}.{old_name}: NULL allowed -> NOT NULL "
                                 "(existing NULLs fail or become an implicit value)"))
        if columns is not None:
            columns.pop(old_name, None)
            columns[new_name] = ColumnFacts(str(parsed.column_type), not parsed.not_null)
        return findings


def summary(findings: Sequence[Finding]) -> str:
    """`drop_column x2, rename x1`: the classes a plan holds, for one-line reports."""
    counts: Dict[str, int] = {}
    for finding in findings:
        counts[finding.kind] = counts.get(finding.kind, 0) + 1
    return ", ".join(f"{kind} x{count}" for kind, count in counts.items())

