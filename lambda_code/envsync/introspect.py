"""Read one schema's structure from ``information_schema`` into a normalised, comparable model.

``load_schema(conn, schema)`` runs one query per object kind for the whole schema (tables,
columns, index columns, CHECK constraints, partitions, foreign-key rules, foreign-key columns,
views, triggers, routines, routine parameters, events: twelve queries plus ``SELECT
VERSION()``), never one per table, so a schema of hundreds of tables loads in a fraction of a
second. What each server can show is asked of its ``Flavour`` (``envsync.flavour``).

The model (``SchemaModel``) is built from frozen dataclasses holding tuples, sorted by name, so
two models compare with ``==``, and ``to_dict()``/``from_dict()`` round-trip through JSON.
Compared, besides names, types, defaults, keys and bodies: table, column and index comments,
table options (CREATE_OPTIONS: row_format, stats_*, key_block_size...), table type (MariaDB
system versioning, sequences), partitioning, CHECK constraints (MariaDB, MySQL 8.0.16+), ignored
(MariaDB) / invisible (MySQL 8) indexes, view ALGORITHM (MariaDB), events.
Sequence options are read with one query per sequence (MariaDB has no information_schema table
for them before 11.5). Listed per object in ``SchemaModel.not_compared`` (the report's "not
compared"), never treated as equal: event STARTS/ENDS, view ALGORITHM where the server does not show it
(MySQL), functional key parts where it does not show their expression.
Left out by design (per-environment, not structure): AUTO_INCREMENT counters, row counts, sizes,
create/update times, definers, sql_mode.

Normalisations, so that the same schema on MariaDB 10.11, MySQL 5.7 (Aurora 2) and MySQL 8.0
(Aurora 3), and under two different schema names, compares equal:

* Integer display widths are dropped (``int(11)`` -> ``int``, ``bigint(20) unsigned`` ->
  ``bigint unsigned``) unless ZEROFILL makes them meaningful; ``year(4)`` -> ``year``. MySQL
  8.0.19+ no longer reports display widths, MariaDB and 5.7 do; they never change storage.
* ``utf8`` is spelled ``utf8mb3`` (charsets and collations): MariaDB 10.6+ and MySQL 8.0.30+ say
  ``utf8mb3`` for what 5.7 calls ``utf8``.
* Column defaults become one canonical text: ``None`` for "no default" and for a NULL default
  (MariaDB reports the latter as the *string* ``'NULL'``, MySQL as SQL NULL); literals as one
  single-quoted SQL string (MariaDB 10.2.7+ reports ``'abc'`` quoted and escaped, numbers bare;
  MySQL reports the raw value ``abc`` unquoted), so ``0.00`` and ``'0.00'`` agree; bit literals
  ``b'1'`` as they are; expressions lower-cased outside quotes, whitespace removed around
  punctuation, one pair of enclosing parentheses dropped, and every spelling of the current
  time (``current_timestamp()``, ``CURRENT_TIMESTAMP``, ``now()``, ``localtimestamp``) as
  ``current_timestamp`` / ``current_timestamp(N)``. MySQL marks expression defaults with
  ``DEFAULT_GENERATED`` in EXTRA (8.0) or reports a bare ``CURRENT_TIMESTAMP`` (5.7); MariaDB
  leaves expressions unquoted.
* EXTRA is lower-cased, ``DEFAULT_GENERATED`` (MySQL 8 only) dropped, ``on update
  current_timestamp()`` spelled like defaults.
* Generated-column expressions go through the expression normaliser (MySQL wraps them in
  parentheses, MariaDB does not).
* View definitions, trigger bodies and routine bodies: qualifiers naming the introspected schema
  itself (`` `app`.`orders` `` and ``app.orders``) are removed, so the same object in schema
  ``app_dev`` and ``app_stg`` compares equal; comments are removed, whitespace is kept only
  between two words and backquotes only where a name needs them, so formatting-only changes are
  not drift. String literals and letter case are untouched.
  Definers and ``sql_mode`` are ignored (they differ per environment by design).
* Foreign keys that reference the same schema record ``referenced_schema=None``; the rule
  ``NO ACTION`` is spelled ``RESTRICT`` (InnoDB treats them alike; MySQL 8 reports an omitted
  clause as NO ACTION, MariaDB and 5.7 as RESTRICT).

Not normalised (reported as drift across server flavours, on purpose or for lack of a safe
rule): default collations that really differ (MySQL 8's ``utf8mb4_0900_ai_ci`` vs MariaDB's
``utf8mb4_general_ci``), MariaDB's ``longtext`` + CHECK for MySQL's ``json``, and the server's own
rewriting of view definitions and default expressions, which MariaDB and MySQL print
differently (same flavour on both sides compares fine; our three environments all run the same
engine).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field, fields, replace
from functools import lru_cache
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

from envsync.flavour import MARIADB, Flavour

__all__ = [
    "Check",
    "Column",
    "Event",
    "ForeignKey",
    "Index",
    "IndexPart",
    "Parameter",
    "Routine",
    "SchemaModel",
    "Table",
    "Trigger",
    "View",
    "load_schema",
    "normalise_body",
    "normalise_column_type",
    "normalise_default",
    "normalise_expression",
]


# ----------------------------------------------------------------------------------------------
# The model


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    nullable: bool
    default: Optional[str]
    extra: str
    charset: Optional[str]
    collation: Optional[str]
    generation: Optional[str] = None
    comment: str = ""


@dataclass(frozen=True)
class IndexPart:
    column: Optional[str]  # None for a MySQL 8 functional key part
    sub_part: Optional[int] = None  # prefix length
    descending: bool = False
    expression: Optional[str] = None  # a functional key part's expression, normalised

    def render(self) -> str:
        text = self.column if self.column is not None else f"({self.expression or '<expression>'})"
        if self.sub_part is not None:
            text += f"({self.sub_part})"
        return text + (" DESC" if self.descending else "")


@dataclass(frozen=True)
class Index:
    name: str
    unique: bool
    type: str
    columns: Tuple[IndexPart, ...]  # in key order
    comment: str = ""
    ignored: bool = False  # MariaDB IGNORED, MySQL 8 INVISIBLE: kept but unused by the optimiser

    def render_columns(self) -> str:
        return "(" + ", ".join(part.render() for part in self.columns) + ")"


@dataclass(frozen=True)
class ForeignKey:
    name: str
    columns: Tuple[str, ...]
    referenced_schema: Optional[str]  # None: the same schema
    referenced_table: str
    referenced_columns: Tuple[str, ...]
    on_update: str
    on_delete: str

    def render_reference(self) -> str:
        table = self.referenced_table
        if self.referenced_schema is not None:
            table = f"{self.referenced_schema}.{table}"
        return f"({', '.join(self.columns)}) -> {table}({', '.join(self.referenced_columns)})"


@dataclass(frozen=True)
class Check:
    name: str
    clause: str  # normalised like a default expression


@dataclass(frozen=True)
class Table:
    name: str
    engine: Optional[str]
    charset: Optional[str]
    collation: Optional[str]
    columns: Tuple[Column, ...]  # in ordinal order
    indexes: Tuple[Index, ...]  # by name
    foreign_keys: Tuple[ForeignKey, ...]  # by name
    comment: str = ""
    options: str = ""  # CREATE_OPTIONS (row_format, stats_*, key_block_size...), sorted
    table_type: str = "BASE TABLE"  # MariaDB: SYSTEM VERSIONED, SEQUENCE
    partitioning: Optional[str] = None  # method, expression and partitions, one text
    checks: Tuple[Check, ...] = ()  # by name
    sequence: Optional[str] = None  # a MariaDB sequence's options (not its current value)


@dataclass(frozen=True)
class View:
    name: str
    definition: Optional[str]
    check_option: str
    security_type: str
    algorithm: Optional[str] = None  # None where the server does not say (MySQL)


@dataclass(frozen=True)
class Trigger:
    name: str
    table: str
    timing: str
    event: str
    order: int
    body: Optional[str]


@dataclass(frozen=True)
class Parameter:
    mode: Optional[str]  # IN/OUT/INOUT; None for function parameters
    name: str
    type: str


@dataclass(frozen=True)
class Routine:
    name: str
    type: str  # PROCEDURE or FUNCTION
    parameters: Tuple[Parameter, ...]
    returns: Optional[str]
    deterministic: bool
    data_access: str
    security_type: str
    body: Optional[str]
    comment: str = ""


@dataclass(frozen=True)
class Event:
    name: str
    schedule: str  # `EVERY 1 DAY` or `AT 2030-01-01 00:00:00`
    status: str
    on_completion: str
    comment: str
    body: Optional[str]


def _to_plain(value: Any) -> Any:
    if hasattr(value, "__dataclass_fields__"):
        return {f.name: _to_plain(getattr(value, f.name)) for f in fields(value)}
    if isinstance(value, tuple):
        return [_to_plain(item) for item in value]
    return value


def _from_plain(cls: type, data: Dict[str, Any]) -> Any:
    values: Dict[str, Any] = {}
    for f in fields(cls):
        if f.name not in data:
            continue  # optional fields keep their defaults
        raw = data[f.name]
        item_class = _ITEM_CLASSES.get((cls, f.name))
        if item_class is not None:
            values[f.name] = tuple(_from_plain(item_class, item) for item in raw)
        elif isinstance(raw, list):
            values[f.name] = tuple(tuple(item) if isinstance(item, list) else item for item in raw)
        else:
            values[f.name] = raw
    return cls(**values)


@dataclass(frozen=True)
class SchemaModel:
    """One schema's structure. ``schema`` and ``server`` are labels, not compared."""

    tables: Tuple[Table, ...]
    views: Tuple[View, ...]
    triggers: Tuple[Trigger, ...]
    routines: Tuple[Routine, ...]
    schema: str = field(default="", compare=False)
    server: str = field(default="", compare=False)
    events: Tuple[Event, ...] = ()
    # (kind, object, what): properties present on this server that the model cannot hold, so
    # a report lists them instead of treating them as equal.
    not_compared: Tuple[Tuple[str, str, str], ...] = field(default=(), compare=False)

    def table(self, name: str) -> Optional[Table]:
        for table in self.tables:
            if table.name == name:
                return table
        return None

    def to_dict(self) -> Dict[str, Any]:
        """Plain dicts/lists/scalars, ready for ``json.dumps``."""
        return _to_plain(self)

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> SchemaModel:
        return _from_plain(cls, data)


# Which tuple fields hold dataclasses, for from_dict().
_ITEM_CLASSES: Dict[Tuple[type, str], type] = {
    (SchemaModel, "tables"): Table,
    (SchemaModel, "views"): View,
    (SchemaModel, "triggers"): Trigger,
    (SchemaModel, "routines"): Routine,
    (SchemaModel, "events"): Event,
    (Table, "checks"): Check,
    (Table, "columns"): Column,
    (Table, "indexes"): Index,
    (Table, "foreign_keys"): ForeignKey,
    (Index, "columns"): IndexPart,
    (Routine, "parameters"): Parameter,
}


# ----------------------------------------------------------------------------------------------
# Normalisation (pure functions, tested without a server)

_INTEGER_WIDTH = re.compile(r"\b(tinyint|smallint|mediumint|int|integer|bigint)\(\d+\)", re.IGNORECASE)
_YEAR_WIDTH = re.compile(r"\byear\(4\)", re.IGNORECASE)


@lru_cache(maxsize=4096)  # thousands of columns share a few dozen values
def normalise_column_type(column_type: Optional[str]) -> str:
    """``int(11) unsigned`` -> ``int unsigned``; keeps widths under ZEROFILL; ``year(4)`` -> ``year``."""
    if column_type is None:
        return ""
    text = column_type.strip()
    if "zerofill" not in text.lower():
        text = _INTEGER_WIDTH.sub(lambda m: m.group(1).lower(), text)
    text = _YEAR_WIDTH.sub("year", text)
    # Lower-case the type keywords but not enum/set values (quoted, case-sensitive).
    return "".join(
        token if kind == "string" else token.lower() for kind, token in _tokens(text)
    )


@lru_cache(maxsize=4096)  # thousands of columns share a few dozen values
def normalise_charset(charset: Optional[str]) -> Optional[str]:
    if not charset:
        return None
    charset = charset.lower()
    return "utf8mb3" if charset == "utf8" else charset


@lru_cache(maxsize=4096)  # thousands of columns share a few dozen values
def normalise_collation(collation: Optional[str]) -> Optional[str]:
    if not collation:
        return None
    collation = collation.lower()
    if collation.startswith("utf8_"):
        collation = "utf8mb3_" + collation[len("utf8_"):]
    return collation


def charset_of_collation(collation: Optional[str]) -> Optional[str]:
    """Every collation name starts with its charset name (``latin1_swedish_ci`` -> ``latin1``)."""
    if not collation:
        return None
    return collation if collation == "binary" else collation.split("_", 1)[0]


_TOKEN = re.compile(
    r"""
     (?P<string>'(?:[^'\\]|\\.|'')*'|"(?:[^"\\]|\\.|"")*")
    |(?P<ident>`(?:[^`]|``)*`)
    |(?P<comment>/\*.*?\*/|--(?=\s|$)[^\n]*|\#[^\n]*)
    |(?P<space>\s+)
    |(?P<word>[A-Za-z0-9_$@]+)
    |(?P<other>.)
    """,
    re.VERBOSE | re.DOTALL,
)


def _tokens(text: str) -> Iterator[Tuple[str, str]]:
    for match in _TOKEN.finditer(text):
        kind = match.lastgroup or "other"
        yield kind, match.group()


# Reserved words and the words of compound statements: their case never matters, so bodies
# written `update orders set` and `UPDATE orders SET` are the same routine. Names (tables,
# columns, variables) keep their case: table names are case-sensitive on Linux.
_KEYWORDS = frozenset("""
ADD ALL ALTER AND AS ASC BEFORE BEGIN BETWEEN BOTH BY CALL CASE CAST CLOSE COLLATE COMMIT
CONDITION CONTINUE CONVERT CREATE CROSS CURSOR DECLARE DEFAULT DELETE DESC DISTINCT DIV DO
DROP EACH ELSE ELSEIF END ESCAPE EXISTS EXIT FALSE FETCH FOR FOREIGN FOUND FROM GROUP HANDLER
HAVING IF IGNORE IN INNER INSERT INTERVAL INTO IS ITERATE JOIN KEY LEADING LEAVE LEFT LIKE LIMIT
LOOP MOD NOT NULL OF ON OPEN OR ORDER OUT OUTER PRIMARY REFERENCES REGEXP RELEASE REPEAT REPLACE
RESIGNAL RETURN RIGHT ROLLBACK ROW SELECT SET SIGNAL SQLEXCEPTION SQLSTATE SQLWARNING
START STRAIGHT_JOIN TABLE THEN TO TRAILING TRANSACTION TRUE UNION UNIQUE UNTIL UPDATE USING
VALUE VALUES WHEN WHERE WHILE WITH XOR
""".split())

_PLAIN_NAME = re.compile(r"^[A-Za-z0-9_$]*[A-Za-z_$][A-Za-z0-9_$]*$")


def _unquote_identifier(token: str) -> str:
    return token[1:-1].replace("``", "`")


def normalise_body(text: Optional[str], schema: str = "") -> Optional[str]:
    """Canonical text of a view definition or trigger/routine body.

    Drops comments, keeps whitespace only between two words (so ``on(x)`` == ``on (x)``),
    removes qualifiers naming ``schema`` (quoted or bare), drops backquotes around names that
    need none (`` `orders` `` == ``orders``), upper-cases keywords (``_KEYWORDS``) and leaves
    string literals and the case of everything else as they are.
    """
    if text is None:
        return None
    # Comments go; spaces stay for now, to know where one separated two words.
    spaced = [(kind, tok) for kind, tok in _tokens(text) if kind != "comment"]
    out: List[str] = []
    previous_word = False
    pending_space = False
    index = 0
    while index < len(spaced):
        kind, tok = spaced[index]
        if kind == "space":
            pending_space = True
            index += 1
            continue
        if schema and kind in ("ident", "word"):
            name = _unquote_identifier(tok) if kind == "ident" else tok
            following = _next_meaningful(spaced, index + 1)
            if name == schema and following is not None and spaced[following][1] == ".":
                index = following + 1  # keep pending_space: it belongs before the object name
                continue
        if kind == "ident" and _PLAIN_NAME.match(_unquote_identifier(tok)):
            tok = _unquote_identifier(tok)  # `orders` and orders are the same name
        if kind == "word" and tok.upper() in _KEYWORDS:
            tok = tok.upper()
        is_word = kind in ("word", "ident", "string")
        if pending_space and previous_word and is_word:
            out.append(" ")
        out.append(tok)
        previous_word = is_word
        pending_space = False
        index += 1
    return "".join(out)


def _next_meaningful(tokens: Sequence[Tuple[str, str]], start: int) -> Optional[int]:
    for position in range(start, len(tokens)):
        if tokens[position][0] != "space":
            return position
    return None


_NOW = re.compile(
    r"^(?:current_timestamp|now|localtime|localtimestamp)(?:\((\d*)\))?$", re.IGNORECASE
)


@lru_cache(maxsize=4096)  # thousands of columns share a few dozen values
def normalise_expression(text: Optional[str]) -> Optional[str]:
    """Lower-case outside quotes, drop layout, one pair of outer parentheses, canonical now()."""
    if text is None:
        return None
    canonical = normalise_body(text.strip())
    assert canonical is not None
    canonical = "".join(
        tok if kind in ("string", "ident") else tok.lower() for kind, tok in _tokens(canonical)
    )
    if canonical.startswith("(") and canonical.endswith(")") and _balanced(canonical[1:-1]):
        canonical = canonical[1:-1]
    now = _NOW.match(canonical)
    if now:
        precision = now.group(1)
        return f"current_timestamp({precision})" if precision and precision != "0" else "current_timestamp"
    return canonical


def _balanced(text: str) -> bool:
    depth = 0
    for kind, tok in _tokens(text):
        if kind != "other":
            continue
        if tok == "(":
            depth += 1
        elif tok == ")":
            depth -= 1
            if depth < 0:
                return False
    return depth == 0


_NUMBER = re.compile(r"^[-+]?(\d+(\.\d*)?|\.\d+)([eE][-+]?\d+)?$")
_BIT_LITERAL = re.compile(r"^[bB]'[01]*'$")
_ESCAPES = {"0": "\0", "b": "\b", "n": "\n", "r": "\r", "t": "\t", "Z": "\x1a"}


def _quote_literal(value: str) -> str:
    return "'" + value.replace("'", "''") + "'"


def _unescape_mariadb_literal(quoted: str) -> str:
    body = quoted[1:-1]
    out: List[str] = []
    index = 0
    while index < len(body):
        char = body[index]
        if char == "\\" and index + 1 < len(body):
            out.append(_ESCAPES.get(body[index + 1], body[index + 1]))
            index += 2
        elif char == "'" and body[index + 1: index + 2] == "'":
            out.append("'")
            index += 2
        else:
            out.append(char)
            index += 1
    return "".join(out)


@lru_cache(maxsize=4096)  # thousands of columns share a few dozen values
def normalise_default(
    raw: Optional[str], extra: Optional[str], data_type: Optional[str], mariadb: bool
) -> Optional[str]:
    """One canonical text for COLUMN_DEFAULT: None, a quoted literal, ``b'..'`` or an expression."""
    if raw is None:
        return None
    if mariadb:
        # MariaDB 10.2.7+: literals quoted and escaped, NULL as the bare word NULL, numbers and
        # expressions bare.
        if raw == "NULL":
            return None
        if raw.startswith("'") and raw.endswith("'") and len(raw) >= 2:
            return _quote_literal(_unescape_mariadb_literal(raw))
        if _BIT_LITERAL.match(raw):
            return raw.lower()
        if _NUMBER.match(raw):
            return _quote_literal(raw)
        return normalise_expression(raw)
    # MySQL: the raw literal value, unquoted; 8.0 flags expressions with DEFAULT_GENERATED,
    # 5.7 only allows CURRENT_TIMESTAMP as an expression (on datetime/timestamp).
    if _BIT_LITERAL.match(raw):
        return raw.lower()
    if "default_generated" in (extra or "").lower():
        return normalise_expression(raw)
    if (data_type or "").lower() in ("timestamp", "datetime") and _NOW.match(raw.strip()):
        return normalise_expression(raw)
    return _quote_literal(raw)


_ON_UPDATE = re.compile(r"on update (\S+)", re.IGNORECASE)


@lru_cache(maxsize=4096)  # thousands of columns share a few dozen values
def normalise_extra(extra: Optional[str]) -> str:
    words = (extra or "").strip()
    words = re.sub(r"\bDEFAULT_GENERATED\b", "", words, flags=re.IGNORECASE)
    words = _ON_UPDATE.sub(lambda m: "on update " + (normalise_expression(m.group(1)) or ""), words)
    return " ".join(words.lower().split())


def _fk_rule(rule: Optional[str]) -> str:
    # InnoDB checks NO ACTION immediately, exactly like RESTRICT; MySQL 8 reports an omitted
    # clause as NO ACTION where MariaDB and 5.7 say RESTRICT.
    rule = str(rule or "RESTRICT").upper()
    return "RESTRICT" if rule == "NO ACTION" else rule


# ----------------------------------------------------------------------------------------------
# Reading information_schema


def _text(value: Any) -> Any:
    # Some MySQL 8 information_schema columns arrive as bytes through PyMySQL.
    if isinstance(value, (bytes, bytearray)):
        return bytes(value).decode("utf-8")
    return value


def _rows(conn: Any, sql: str, args: Sequence[Any]) -> List[Tuple[Any, ...]]:
    """Run a query; rows as tuples in select order whatever cursor class the connection uses."""
    cursor = conn.cursor()
    try:
        cursor.execute(sql, tuple(args))
        rows = cursor.fetchall()
        names = [d[0] for d in cursor.description or ()]
    finally:
        cursor.close()
    if rows and isinstance(rows[0], dict):
        rows = [tuple(row[name] for name in names) for row in rows]
    # Decode only when some value came back as bytes (checking is far cheaper than converting).
    if {type(value) for row in rows for value in row} & {bytes, bytearray}:
        rows = [tuple(_text(value) for value in row) for row in rows]
    return list(rows)


_TABLES_SQL = """
SELECT TABLE_NAME, ENGINE, TABLE_COLLATION, TABLE_TYPE, TABLE_COMMENT, CREATE_OPTIONS
FROM information_schema.TABLES
WHERE TABLE_SCHEMA = %s AND TABLE_TYPE NOT IN ('VIEW', 'TEMPORARY')
"""

_COLUMNS_SQL = """
SELECT TABLE_NAME, COLUMN_NAME, ORDINAL_POSITION, COLUMN_TYPE, DATA_TYPE, IS_NULLABLE,
       COLUMN_DEFAULT, EXTRA, CHARACTER_SET_NAME, COLLATION_NAME, GENERATION_EXPRESSION,
       COLUMN_COMMENT
FROM information_schema.COLUMNS
WHERE TABLE_SCHEMA = %s
"""

_INDEXES_SQL = """
SELECT TABLE_NAME, INDEX_NAME, NON_UNIQUE, SEQ_IN_INDEX, COLUMN_NAME, SUB_PART, COLLATION,
       INDEX_TYPE, INDEX_COMMENT, {ignored}, {expression}
FROM information_schema.STATISTICS
WHERE TABLE_SCHEMA = %s
"""

# MariaDB's CHECK_CONSTRAINTS names the table (column-level checks are named after their
# column, so names repeat across tables); MySQL 8's does not, its names are unique per schema.
_CHECKS_SQL = {
    "mariadb": """
SELECT TABLE_NAME, CONSTRAINT_NAME, CHECK_CLAUSE, 'YES'
FROM information_schema.CHECK_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s
""",
    "mysql": """
SELECT tc.TABLE_NAME, cc.CONSTRAINT_NAME, cc.CHECK_CLAUSE, tc.ENFORCED
FROM information_schema.CHECK_CONSTRAINTS cc
JOIN information_schema.TABLE_CONSTRAINTS tc
  ON tc.CONSTRAINT_SCHEMA = cc.CONSTRAINT_SCHEMA AND tc.CONSTRAINT_NAME = cc.CONSTRAINT_NAME
 AND tc.CONSTRAINT_TYPE = 'CHECK'
WHERE cc.CONSTRAINT_SCHEMA = %s
""",
}

_PARTITIONS_SQL = """
SELECT TABLE_NAME, PARTITION_NAME, SUBPARTITION_NAME, PARTITION_METHOD, SUBPARTITION_METHOD,
       PARTITION_EXPRESSION, SUBPARTITION_EXPRESSION, PARTITION_DESCRIPTION, PARTITION_COMMENT
FROM information_schema.PARTITIONS
WHERE TABLE_SCHEMA = %s AND PARTITION_NAME IS NOT NULL
ORDER BY TABLE_NAME, PARTITION_ORDINAL_POSITION, SUBPARTITION_ORDINAL_POSITION
"""

_EVENTS_SQL = """
SELECT EVENT_NAME, EVENT_TYPE, EXECUTE_AT, INTERVAL_VALUE, INTERVAL_FIELD, STATUS, ON_COMPLETION,
       EVENT_COMMENT, EVENT_DEFINITION
FROM information_schema.EVENTS
WHERE EVENT_SCHEMA = %s
"""

_FK_RULES_SQL = """
SELECT TABLE_NAME, CONSTRAINT_NAME, UPDATE_RULE, DELETE_RULE
FROM information_schema.REFERENTIAL_CONSTRAINTS
WHERE CONSTRAINT_SCHEMA = %s
"""

_FK_COLUMNS_SQL = """
SELECT TABLE_NAME, CONSTRAINT_NAME, ORDINAL_POSITION, COLUMN_NAME, REFERENCED_TABLE_SCHEMA,
       REFERENCED_TABLE_NAME, REFERENCED_COLUMN_NAME
FROM information_schema.KEY_COLUMN_USAGE
WHERE TABLE_SCHEMA = %s AND REFERENCED_TABLE_NAME IS NOT NULL
"""

_VIEWS_SQL = """
SELECT TABLE_NAME, VIEW_DEFINITION, CHECK_OPTION, SECURITY_TYPE, {algorithm}
FROM information_schema.VIEWS
WHERE TABLE_SCHEMA = %s
"""

_TRIGGERS_SQL = """
SELECT TRIGGER_NAME, EVENT_OBJECT_TABLE, ACTION_TIMING, EVENT_MANIPULATION, ACTION_ORDER,
       ACTION_STATEMENT
FROM information_schema.TRIGGERS
WHERE TRIGGER_SCHEMA = %s
"""

_ROUTINES_SQL = """
SELECT ROUTINE_NAME, ROUTINE_TYPE, DTD_IDENTIFIER, IS_DETERMINISTIC, SQL_DATA_ACCESS,
       SECURITY_TYPE, ROUTINE_DEFINITION, ROUTINE_COMMENT
FROM information_schema.ROUTINES
WHERE ROUTINE_SCHEMA = %s
"""

_PARAMETERS_SQL = """
SELECT SPECIFIC_NAME, ROUTINE_TYPE, ORDINAL_POSITION, PARAMETER_MODE, PARAMETER_NAME,
       DTD_IDENTIFIER
FROM information_schema.PARAMETERS
WHERE SPECIFIC_SCHEMA = %s AND ORDINAL_POSITION > 0
"""


def load_schema(conn: Any, schema: str) -> SchemaModel:
    """Introspect ``schema`` over a DB-API connection (PyMySQL) into a ``SchemaModel``.

    Privileges (measured on MariaDB 10.11 with a SELECT + SHOW VIEW user, see
    test_drift.py::test_reader_privileges_decide_what_is_visible): SELECT on the schema shows
    tables, columns, indexes and FKs; SHOW VIEW adds view definitions; but **triggers are
    invisible without the TRIGGER privilege** and **routines are invisible without SELECT on
    mysql.proc** (MariaDB, MySQL 5.7; SHOW_ROUTINE on MySQL 8.0.20+) or routine ownership.
    Invisible objects are simply absent from the model, so compare such a side with
    ``diff(..., ignore_kinds=("trigger", "procedure", "function"))`` or load it with a user that
    can see them (e.g. the environment's own writer, publishing ``to_dict()`` for others).
    """
    version = str(_rows(conn, "SELECT VERSION()", ())[0][0])
    flavour = Flavour.from_version(version)
    quoted_defaults = flavour.quotes_literal_defaults
    not_compared: List[Tuple[str, str, str]] = []

    table_rows = _rows(conn, _TABLES_SQL, (schema,))
    table_names = {row[0] for row in table_rows}

    columns: Dict[str, List[Tuple[int, Column]]] = {}
    for (table, name, position, column_type, data_type, nullable, default, extra, charset,
         collation, generation, comment) in _rows(conn, _COLUMNS_SQL, (schema,)):
        if table not in table_names:
            continue  # a view's columns
        columns.setdefault(table, []).append((int(position), Column(
            name=name,
            type=normalise_column_type(column_type),
            nullable=str(nullable).upper() == "YES",
            default=normalise_default(default, extra, data_type, quoted_defaults),
            extra=normalise_extra(extra),
            charset=normalise_charset(charset),
            collation=normalise_collation(collation),
            generation=normalise_expression(generation) if generation else None,
            comment=comment or "",
        )))

    index_parts: Dict[Tuple[str, str], List[Tuple[int, IndexPart]]] = {}
    index_info: Dict[Tuple[str, str], Tuple[bool, str, str, bool]] = {}
    ignored_column = ("IGNORED = 'YES'" if flavour.ignored_indexes
                      else "IS_VISIBLE = 'NO'" if flavour.invisible_indexes else "0")
    expression_column = "EXPRESSION" if flavour.index_expressions else "NULL"
    for (table, name, non_unique, seq, column, sub_part, collation, index_type, comment,
         ignored, expression) in _rows(
            conn, _INDEXES_SQL.format(ignored=ignored_column, expression=expression_column), (schema,)):
        key = (table, name)
        index_info[key] = (int(non_unique) == 0, str(index_type or "").upper(), comment or "",
                           bool(int(ignored or 0)))
        if column is None and expression is None:
            not_compared.append(("index", f"{table}.{name}", f"key part expressions (not shown by {flavour})"))
        index_parts.setdefault(key, []).append((int(seq), IndexPart(
            column=column,
            sub_part=int(sub_part) if sub_part is not None else None,
            descending=(collation or "").upper() == "D",
            expression=normalise_expression(expression) if expression else None,
        )))
    indexes: Dict[str, List[Index]] = {}
    for (table, name), parts in index_parts.items():
        unique, index_type, comment, ignored = index_info[(table, name)]
        indexes.setdefault(table, []).append(Index(
            name=name, unique=unique, type=index_type,
            columns=tuple(part for _, part in sorted(parts, key=lambda item: item[0])),
            comment=comment, ignored=ignored,
        ))

    checks: Dict[str, List[Check]] = {}
    if flavour.check_constraints:
        sql = _CHECKS_SQL["mariadb" if flavour.vendor == MARIADB else "mysql"]
        for table, name, clause, enforced in _rows(conn, sql, (schema,)):
            # MySQL's NOT ENFORCED (https://dev.mysql.com/doc/refman/8.0/en/create-table-check-constraints.html)
            text = (normalise_expression(clause) or "") + ("" if enforced == "YES" else " NOT ENFORCED")
            checks.setdefault(table, []).append(Check(name=name, clause=text))
    partitioning = _partitioning(_rows(conn, _PARTITIONS_SQL, (schema,)))

    fk_rules = {
        (table, name): (_fk_rule(update_rule), _fk_rule(delete_rule))
        for table, name, update_rule, delete_rule in _rows(conn, _FK_RULES_SQL, (schema,))
    }
    fk_columns: Dict[Tuple[str, str], List[Tuple[int, str, Optional[str], str, str]]] = {}
    for (table, name, position, column, ref_schema, ref_table, ref_column) in _rows(
        conn, _FK_COLUMNS_SQL, (schema,)
    ):
        fk_columns.setdefault((table, name), []).append(
            (int(position), column, ref_schema, ref_table, ref_column)
        )
    foreign_keys: Dict[str, List[ForeignKey]] = {}
    for (table, name), entries in fk_columns.items():
        entries.sort(key=lambda item: item[0])
        ref_schema = entries[0][2]
        on_update, on_delete = fk_rules.get((table, name), ("RESTRICT", "RESTRICT"))
        foreign_keys.setdefault(table, []).append(ForeignKey(
            name=name,
            columns=tuple(entry[1] for entry in entries),
            referenced_schema=None if ref_schema in (None, schema) else ref_schema,
            referenced_table=entries[0][3],
            referenced_columns=tuple(entry[4] for entry in entries),
            on_update=on_update,
            on_delete=on_delete,
        ))

    tables = tuple(
        Table(
            name=name,
            engine=engine,
            charset=normalise_charset(charset_of_collation(collation)),
            collation=normalise_collation(collation),
            columns=tuple(col for _, col in sorted(columns.get(name, []), key=lambda item: item[0])),
            indexes=tuple(sorted(indexes.get(name, []), key=lambda index: index.name)),
            foreign_keys=tuple(sorted(foreign_keys.get(name, []), key=lambda fk: fk.name)),
            comment=comment or "",
            options=normalise_create_options(create_options),
            table_type=str(table_type).upper(),
            partitioning=partitioning.get(name),
            checks=tuple(sorted(checks.get(name, []), key=lambda check: check.name)),
        )
        for name, engine, collation, table_type, comment, create_options in sorted(
            table_rows, key=lambda row: row[0])
    )
    # information_schema has no sequence options before MariaDB 11.5: one query per sequence
    # (they are few), reading the options and not the sequence's current value.
    tables = tuple(
        replace(table, sequence=_sequence_options(conn, table.name)) if table.table_type == "SEQUENCE"
        else table
        for table in tables
    )

    views = tuple(sorted(
        (
            View(
                name=name,
                # Empty: the user may not see it (needs SELECT on the view), never a real view's text.
                definition=normalise_body(definition, schema) if definition else None,
                check_option=str(check_option or "NONE").upper(),
                security_type=str(security_type or "").upper(),
                algorithm=str(algorithm).upper() if algorithm else None,
            )
            for name, definition, check_option, security_type, algorithm in _rows(
                conn, _VIEWS_SQL.format(algorithm="ALGORITHM" if flavour.view_algorithm else "NULL"),
                (schema,))
        ),
        key=lambda view: view.name,
    ))

    triggers = tuple(sorted(
        (
            Trigger(
                name=name, table=table, timing=str(timing).upper(), event=str(event).upper(),
                order=int(order or 1), body=normalise_body(body, schema),
            )
            for name, table, timing, event, order, body in _rows(conn, _TRIGGERS_SQL, (schema,))
        ),
        key=lambda trigger: trigger.name,
    ))

    parameters: Dict[Tuple[str, str], List[Tuple[int, Parameter]]] = {}
    for name, routine_type, position, mode, param_name, dtd in _rows(conn, _PARAMETERS_SQL, (schema,)):
        parameters.setdefault((str(routine_type).upper(), name), []).append((int(position), Parameter(
            mode=str(mode).upper() if mode else None,
            name=param_name,
            type=normalise_column_type(dtd),
        )))
    routines = tuple(sorted(
        (
            Routine(
                name=name,
                type=str(routine_type).upper(),
                parameters=tuple(
                    param for _, param in sorted(
                        parameters.get((str(routine_type).upper(), name), []), key=lambda item: item[0]
                    )
                ),
                returns=normalise_column_type(dtd) if dtd else None,
                deterministic=str(deterministic).upper() == "YES",
                data_access=str(data_access or "").upper(),
                security_type=str(security_type or "").upper(),
                body=normalise_body(body, schema),
                comment=comment or "",
            )
            for name, routine_type, dtd, deterministic, data_access, security_type, body, comment in _rows(
                conn, _ROUTINES_SQL, (schema,)
            )
        ),
        key=lambda routine: (routine.type, routine.name),
    ))

    if not flavour.view_algorithm:
        not_compared.extend(("view", view.name, f"ALGORITHM (not shown by {flavour})") for view in views)
    not_compared.extend(("view", view.name, "definition (not shown to this user: it needs SELECT on the view)")
                        for view in views if view.definition is None)

    events = tuple(sorted(
        (
            Event(
                name=name,
                schedule=(f"EVERY {interval_value} {interval_field}" if str(event_type).upper() == "RECURRING"
                          else f"AT {execute_at}"),
                status=str(status or "").upper(), on_completion=str(on_completion or "").upper(),
                comment=comment or "", body=normalise_body(body, schema),
            )
            for (name, event_type, execute_at, interval_value, interval_field, status, on_completion,
                 comment, body) in _rows(conn, _EVENTS_SQL, (schema,))
        ),
        key=lambda event: event.name,
    ))
    # STARTS defaults to the moment each env created the event: different everywhere by design.
    not_compared.extend(("event", event.name, "STARTS/ENDS") for event in events)

    return SchemaModel(
        tables=tables, views=views, triggers=triggers, routines=routines,
        schema=schema, server=version, events=events, not_compared=tuple(sorted(set(not_compared))),
    )


def _sequence_options(conn: Any, name: str) -> str:
    quoted = "`" + name.replace("`", "``") + "`"
    start, minimum, maximum, increment, cache, cycle = _rows(
        conn, f"SELECT start_value, minimum_value, maximum_value, increment, cache_size, cycle_option "
              f"FROM {quoted}", ())[0]
    return (f"START {start} INCREMENT {increment} MINVALUE {minimum} MAXVALUE {maximum} "
            f"CACHE {cache} {'CYCLE' if int(cycle) else 'NOCYCLE'}")


def normalise_create_options(options: Optional[str]) -> str:
    """`stats_persistent=1 row_format=COMPACT partitioned` -> `row_format=compact stats_persistent=1`
    (partitioning is compared on its own)."""
    words = [word.lower() for word in (options or "").split() if word.lower() != "partitioned"]
    return " ".join(sorted(words))


def _partitioning(rows: Sequence[Tuple[Any, ...]]) -> Dict[str, str]:
    """One text per partitioned table: method (expression), then each partition and its bound."""
    methods: Dict[str, str] = {}
    partitions: Dict[str, List[str]] = {}
    for (table, name, subname, method, submethod, expression, subexpression, description,
         comment) in rows:
        if table not in methods:
            text = f"{method} ({normalise_expression(expression) or ''})"
            if submethod:
                text += f" SUBPARTITION BY {submethod} ({normalise_expression(subexpression) or ''})"
            methods[table] = text
        part = name + (f"/{subname}" if subname else "")
        if description is not None:
            part += f" {description}"
        if comment:
            part += f" COMMENT {comment!r}"
        partitions.setdefault(table, []).append(part)
    return {table: f"{methods[table]}: {', '.join(partitions[table])}" for table in methods}
