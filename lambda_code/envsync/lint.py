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

from envsync import infoschema
from envsync.scripts import Script, Statement, server_tokens

Token = Tuple[str, str]  # (kind, text) as scripts.server_tokens gives them

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


def classify_statement(sql: str, live: Optional[LiveSchema] = None) -> List[Tuple[str, str]]:
    """(kind, detail) for one statement against `live` (empty: nothing known about the target)."""
    return _Simulation(live or LiveSchema()).classify(Statement(number=1, line=1, sql=sql))


# ---------------------------------------------------------------- token helpers

def _name(token: Token) -> str:
    """An identifier token without its backticks, lower-cased (MySQL column and index names
    are case-insensitive; table names are compared the same way)."""
    kind, text = token
    if kind == "quoted" and text.startswith("`"):
        text = text[1:-1].replace("``", "`")
    return text.lower()


def _qualified_name(tokens: Sequence[Token], at: int) -> Tuple[str, int]:
    """`db`.`t` or t at tokens[at] -> (table name, index after it)."""
    name, at = _name(tokens[at]), at + 1
    while at + 1 < len(tokens) and tokens[at] == ("other", "."):
        name, at = _name(tokens[at + 1]), at + 2
    return name, at


def _skip(tokens: Sequence[Token], at: int, *words: str) -> int:
    """Skip any of `words` (and `IF [NOT] EXISTS`) at tokens[at]."""
    while at < len(tokens):
        if tokens[at][0] == "word" and tokens[at][1] in words:
            at += 1
        elif tokens[at] == ("word", "IF"):
            at += 1
            while at < len(tokens) and tokens[at][1] in ("NOT", "EXISTS"):
                at += 1
        else:
            return at
    return at


def _top_level_split(tokens: Sequence[Token]) -> List[List[Token]]:
    """Split at commas outside parentheses (the clauses of an ALTER TABLE)."""
    parts: List[List[Token]] = [[]]
    depth = 0
    for token in tokens:
        if token == ("other", "("):
            depth += 1
        elif token == ("other", ")"):
            depth -= 1
        if token == ("other", ",") and depth == 0:
            parts.append([])
        else:
            parts[-1].append(token)
    return [part for part in parts if part]


def _top_level_words(tokens: Sequence[Token]) -> List[str]:
    words, depth = [], 0
    for kind, text in tokens:
        if text == "(" and kind == "other":
            depth += 1
        elif text == ")" and kind == "other":
            depth -= 1
        elif kind == "word" and depth == 0:
            words.append(text)
    return words


def _names_list(tokens: Sequence[Token], at: int, stop: Sequence[str] = ()) -> List[str]:
    """Comma-separated table names from tokens[at] (DROP TABLE a, b / TRUNCATE)."""
    names = []
    while at < len(tokens) and not (tokens[at][0] == "word" and tokens[at][1] in stop):
        if tokens[at][0] in ("word", "quoted"):
            name, at = _qualified_name(tokens, at)
            names.append(name)
        else:
            at += 1
    return names


# ---------------------------------------------------------------- column types

@dataclass(frozen=True)
class _Type:
    family: str  # integer | decimal | float | string | temporal | enum | bit | other
    base: str  # upper-cased type word
    args: Tuple[str, ...]  # numbers or quoted enum/set values, as written
    unsigned: bool

    def __str__(self) -> str:
        args = f"({','.join(self.args)})" if self.args else ""
        return f"{self.base.lower()}{args}{' unsigned' if self.unsigned else ''}"


_INTEGER_BYTES = {"TINYINT": 1, "BOOL": 1, "BOOLEAN": 1, "SMALLINT": 2, "MEDIUMINT": 3, "INT": 4,
                  "INTEGER": 4, "BIGINT": 8, "SERIAL": 8}
_STRING_CAPACITY = {"TINYTEXT": 255, "TINYBLOB": 255, "TEXT": 65535, "BLOB": 65535,
                    "MEDIUMTEXT": 16777215, "MEDIUMBLOB": 16777215, "LONGTEXT": 4294967295,
                    "LONGBLOB": 4294967295, "JSON": 4294967295}
_SIZED_STRINGS = {"CHAR", "VARCHAR", "BINARY", "VARBINARY", "NCHAR", "NVARCHAR", "CHARACTER"}
_TEMPORAL_RANK = {"YEAR": 0, "DATE": 1, "TIMESTAMP": 2, "DATETIME": 3}
_FAMILIES = {
    **{word: "integer" for word in _INTEGER_BYTES},
    **{word: "string" for word in [*_STRING_CAPACITY, *_SIZED_STRINGS]},
    **{word: "temporal" for word in [*_TEMPORAL_RANK, "TIME"]},
    "DECIMAL": "decimal", "DEC": "decimal", "NUMERIC": "decimal", "FIXED": "decimal",
    "FLOAT": "float", "DOUBLE": "float", "REAL": "float", "ENUM": "enum", "SET": "set", "BIT": "bit",
}


def _parse_type(tokens: Sequence[Token], at: int) -> Tuple[_Type, int]:
    """A column type at tokens[at] -> (type, index after it and its UNSIGNED/ZEROFILL)."""
    base = tokens[at][1].upper() if at < len(tokens) else ""
    at += 1
    if base == "DOUBLE" and at < len(tokens) and tokens[at] == ("word", "PRECISION"):
        at += 1
    if base in ("CHARACTER", "NATIONAL") and at < len(tokens) and tokens[at][1] in ("VARYING", "CHAR", "VARCHAR"):
        base, at = "VARCHAR" if tokens[at][1] != "CHAR" else "CHAR", at + 1
    args: List[str] = []
    if at < len(tokens) and tokens[at] == ("other", "("):
        at += 1
        while at < len(tokens) and tokens[at] != ("other", ")"):
            if tokens[at][0] in ("word", "quoted"):
                args.append(tokens[at][1])
            at += 1
        at += 1
    unsigned = False
    while at < len(tokens) and tokens[at][1] in ("UNSIGNED", "SIGNED", "ZEROFILL"):
        unsigned = unsigned or tokens[at][1] in ("UNSIGNED", "ZEROFILL")
        at += 1
    return _Type(_FAMILIES.get(base, "other"), base, tuple(args), unsigned), at


def parse_column_type(column_type: str) -> _Type:
    """information_schema COLUMN_TYPE (or a type as written in a script) -> _Type."""
    return _parse_type(server_tokens(column_type), 0)[0]


def _int(text: str, default: int) -> int:
    return int(text) if text.isdigit() else default


def _first_arg(column: _Type, default: int) -> int:
    return _int(column.args[0], default) if column.args else default


def _word(tokens: Sequence[Token], at: int) -> str:
    return _name(tokens[at]) if at < len(tokens) else "?"


def _capacity(column: _Type) -> int:
    if column.base in _SIZED_STRINGS:
        return _int(column.args[0], 1) if column.args else 1
    return _STRING_CAPACITY.get(column.base, 0)


def _decimal_digits(column: _Type) -> Tuple[int, int]:
    """(digits before the point, digits after): DECIMAL defaults to (10, 0)."""
    precision = _int(column.args[0], 10) if column.args else 10
    scale = _int(column.args[1], 0) if len(column.args) > 1 else 0
    return precision - scale, scale


def narrowing(old: _Type, new: _Type) -> Optional[str]:
    """Why `new` holds less than `old`, or None if every `old` value fits in `new`."""
    if old.family != new.family or "other" in (old.family, new.family):
        return None if (old.base, old.args) == (new.base, new.args) else f"type changes from {old} to {new}"
    if old.family == "integer":
        if _INTEGER_BYTES[new.base] < _INTEGER_BYTES[old.base]:
            return f"{old} narrows to {new}"
        if old.unsigned != new.unsigned and not (new.unsigned is False
                                                 and _INTEGER_BYTES[new.base] > _INTEGER_BYTES[old.base]):
            return f"{old} to {new} changes signedness"
        return None
    if old.family == "decimal":
        (old_int, old_scale), (new_int, new_scale) = _decimal_digits(old), _decimal_digits(new)
        if new_int < old_int or new_scale < old_scale or (new.unsigned and not old.unsigned):
            return f"{old} narrows to {new}"
        return None
    if old.family == "float":
        wide = ("DOUBLE", "REAL")
        return f"{old} narrows to {new}" if old.base in wide and new.base not in wide else None
    if old.family == "string":
        binary_old = "BIN" in old.base or "BLOB" in old.base
        binary_new = "BIN" in new.base or "BLOB" in new.base
        if binary_old != binary_new:
            return f"type changes from {old} to {new}"
        return f"{old} narrows to {new}" if _capacity(new) < _capacity(old) else None
    if old.family in ("enum", "set"):
        lost = [value for value in old.args if value not in new.args]
        return f"{old.base.lower()} loses {', '.join(lost)}" if lost else None
    if old.family == "temporal":
        if old.base == new.base:
            return f"{old} narrows to {new}" if _first_arg(new, 0) < _first_arg(old, 0) else None
        if "TIME" in (old.base, new.base) or _TEMPORAL_RANK[new.base] < _TEMPORAL_RANK[old.base]:
            return f"{old} narrows to {new}"
        return None
    if old.family == "bit":
        return f"{old} narrows to {new}" if _first_arg(new, 1) < _first_arg(old, 1) else None
    return None


@dataclass(frozen=True)
class _ColumnDefinition:
    column_type: _Type
    not_null: bool
    has_default: bool
    fills_itself: bool  # AUTO_INCREMENT or generated (AS ...): needs no DEFAULT


def _column_definition(tokens: Sequence[Token], at: int) -> _ColumnDefinition:
    column_type, at = _parse_type(tokens, at)
    words = _top_level_words(tokens[at:])
    not_null = any(first == "NOT" and second == "NULL" for first, second in zip(words, words[1:]))
    return _ColumnDefinition(column_type, not_null, "DEFAULT" in words,
                             bool({"AUTO_INCREMENT", "AS", "GENERATED", "SERIAL"} & set(words))
                             or column_type.base == "SERIAL")


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
            tables = _names_list(tokens, _skip(tokens, 1, "TABLE"))
            self.nonempty -= set(tables)
            return [("truncate", f"empties table {', '.join(tables)}")]
        if head in ("DELETE", "UPDATE"):
            if "WHERE" not in _top_level_words(tokens):
                what = "deletes every row of" if head == "DELETE" else "updates every row of"
                return [(head.lower() + "_without_where", f"{what} {self._dml_target(tokens, head)}")]
            return []
        if head == "CREATE":
            return self._create(tokens)
        return []

    def _dml_target(self, tokens: Sequence[Token], head: str) -> str:
        at = _skip(tokens, 1, "LOW_PRIORITY", "QUICK", "IGNORE")
        if head == "DELETE" and at < len(tokens) and tokens[at] == ("word", "FROM"):
            at += 1
        return _qualified_name(tokens, at)[0] if at < len(tokens) else "?"

    def _create(self, tokens: Sequence[Token]) -> List[Tuple[str, str]]:
        words = [text for kind, text in tokens[:8] if kind == "word"]
        if "TABLE" not in words:
            return []
        at = _skip(tokens, [text for _, text in tokens].index("TABLE") + 1)
        table = _qualified_name(tokens, at)[0]
        findings = []
        replaces = words[1:3] == ["OR", "REPLACE"] and "TEMPORARY" not in words
        if replaces and table in self.columns:
            findings.append(("drop_table", f"CREATE OR REPLACE drops the existing table {table}"))
        if "TEMPORARY" in words or ("NOT" in words and table in self.columns and not replaces):
            return findings  # a session's scratch table, or IF NOT EXISTS on a table that stays
        self.columns[table] = {}
        if "SELECT" in _top_level_words(tokens[at:]):
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
            tables = _names_list(tokens, _skip(tokens, 2), stop=("RESTRICT", "CASCADE"))
            for table in tables:
                self.columns.pop(table, None)
                self.nonempty.discard(table)
            return [("drop_table", f"drops table {', '.join(tables)}")]
        if what == "VIEW":
            views = _names_list(tokens, _skip(tokens, 2), ("RESTRICT", "CASCADE"))
            return [("drop_view", f"drops view {', '.join(views)}")]
        if what in ("DATABASE", "SCHEMA"):
            return [("drop_database", f"drops database {_name(tokens[_skip(tokens, 2)])}")]
        if what == "INDEX" or (what in ("ONLINE", "OFFLINE") and "INDEX" in words):
            at = _skip(tokens, 1, "ONLINE", "OFFLINE", "INDEX")
            index = _name(tokens[at]) if at < len(tokens) else "?"
            return [("drop_index", f"drops index {index} of {self._on_table(tokens, at + 1) or '?'}")]
        return []

    @staticmethod
    def _on_table(tokens: Sequence[Token], at: int) -> Optional[str]:
        for index in range(at, len(tokens) - 1):
            if tokens[index] == ("word", "ON"):
                return _qualified_name(tokens, index + 1)[0]
        return None

    def _rename_tables(self, tokens: Sequence[Token]) -> List[Tuple[str, str]]:
        pairs = []
        for part in _top_level_split(tokens[_skip(tokens, 1, "TABLE", "TABLES"):]):
            to = part.index(("word", "TO")) if ("word", "TO") in part else 0
            if to > 0 and to + 1 < len(part):
                pairs.append((_qualified_name(part, 0)[0], _qualified_name(part, to + 1)[0]))
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
        at = _skip(tokens, 1, "ONLINE", "OFFLINE", "IGNORE")
        if at >= len(tokens) or tokens[at] != ("word", "TABLE"):
            return []
        table, at = _qualified_name(tokens, _skip(tokens, at + 1))
        findings: List[Tuple[str, str]] = []
        for clause in _top_level_split(tokens[at:]):
            findings += self._alter_clause(table, clause)
            if clause and clause[0] == ("word", "RENAME") and len(clause) > 1 and \
                    clause[1][1] not in ("COLUMN", "INDEX", "KEY"):
                new = _qualified_name(clause, _skip(clause, 1, "TO", "AS"))[0]
                self._move_table(table, new)
                table = new
        return findings

    def _alter_clause(self, table: str, clause: List[Token]) -> List[Tuple[str, str]]:
        verb = clause[0][1] if clause[0][0] == "word" else ""
        second = clause[1][1] if len(clause) > 1 else ""
        columns = self.columns.get(table)
        if verb == "DROP":
            if second in ("INDEX", "KEY"):
                return [("drop_index", f"drops index {_name(clause[_skip(clause, 2)])} of {table}")]
            if second == "PRIMARY":
                return [("drop_index", f"drops the primary key of {table}")]
            if second in ("FOREIGN", "CONSTRAINT", "CHECK"):
                at = _skip(clause, 2, "KEY")
                name = _name(clause[at]) if at < len(clause) else ""
                what = "foreign key" if second == "FOREIGN" else second.lower()
                return [("drop_constraint", f"drops {what} {name} of {table}")]
            if second == "PARTITION":
                partitions = ", ".join(_names_list(clause, 2))
                return [("drop_partition", f"drops partition {partitions} of {table} with its rows")]
            if second in ("DEFAULT",):
                return []
            column = _name(clause[_skip(clause, 1, "COLUMN")])
            if columns is not None:
                columns.pop(column, None)
            return [("drop_column", f"drops column {table}.{column}")]
        if verb == "TRUNCATE" and second == "PARTITION":
            return [("truncate", f"empties partition {', '.join(_names_list(clause, 2))} of {table}")]
        if verb == "RENAME":
            if second == "COLUMN":
                return [("rename", f"renames column {table}.{_word(clause, 2)} to {_word(clause, 4)}")]
            if second in ("INDEX", "KEY"):
                return [("rename", f"renames index {_word(clause, 2)} of {table} to {_word(clause, 4)}")]
            new = _qualified_name(clause, _skip(clause, 1, "TO", "AS"))[0]
            return [("rename", f"renames table {table} to {new}")]
        if verb == "MODIFY":
            at = _skip(clause, 1, "COLUMN")
            return self._redefine(table, _name(clause[at]), _name(clause[at]), clause, at + 1)
        if verb == "CHANGE":
            at = _skip(clause, 1, "COLUMN")
            return self._redefine(table, _name(clause[at]), _name(clause[at + 1]), clause, at + 2)
        if verb == "ADD" and second not in ("INDEX", "KEY", "UNIQUE", "PRIMARY", "CONSTRAINT", "FOREIGN",
                                             "FULLTEXT", "SPATIAL", "CHECK", "PARTITION", "PERIOD",
                                             "SYSTEM"):
            at = _skip(clause, 1, "COLUMN")
            definitions = [clause[at:]]
            if at < len(clause) and clause[at] == ("other", "("):  # ADD COLUMN (a INT, b INT)
                definitions = _top_level_split(clause[at + 1:-1])
            return [finding for definition in definitions for finding in self._add(table, definition)]
        return []

    def _add(self, table: str, definition: List[Token]) -> List[Tuple[str, str]]:
        if len(definition) < 2 or definition[0][0] not in ("word", "quoted"):
            return []
        column = _name(definition[0])
        parsed = _column_definition(definition, 1)
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
        parsed = _column_definition(clause, at)
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

