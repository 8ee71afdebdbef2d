"""Migration scripts: `V<version>__<description>.sql` names, checksums and statement splitting.

The splitter follows the `mysql` command-line client, because that is how people test their
scripts before they commit them: a statement ends at the current delimiter (`;` unless a
`DELIMITER` line changed it) or at `\\g` / `\\G`, outside quotes, backticks and comments. Under a
custom delimiter the client sends the whole block in one packet and the server runs every
`;`-terminated statement in it (multi-statement); PyMySQL cannot send multi-statements, so such
a block is split further at the `;` that end statements (not those inside a stored program's
`BEGIN ... END`, `IF ... END IF`, loops or `CASE`). sqlparse was tried and rejected for this
job: it cannot handle `DELIMITER`, gives no line numbers, and groups a `BEGIN ... END` body by
its own grammar rather than by the delimiter.

Comments: `-- ` (dash dash + whitespace), `#` and `/* */` are comments; MySQL executable
comments `/*! ... */`, MariaDB's `/*M! ... */` and optimizer hints `/*+ ... */` are SQL and are
kept. A script holding only comments yields no statements.

Files are read as the client would read them on any machine: a UTF-8 byte-order mark is
dropped and CRLF / CR line endings become LF, before splitting and before the checksum, so a
script checked out with CRLF on one machine and LF on another is the same script.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Any, Iterable, Iterator, List, Optional, Tuple

from envsync.errors import EnvsyncError

SCRIPT_NAME = re.compile(r"^V(?P<version>\d+(?:\.\d+)*)__(?P<description>[^/\\]+)\.sql$")
# A name that looks meant as a migration (any `.sql` case, a `v<digit>` start) must parse as
# one: skipping `V2__x.SQL` silently would report success for a script that never ran.
SCRIPT_CANDIDATE = re.compile(r"(?i)^v\d|\.sql$")
DELIMITER_LINE = re.compile(r"(?i)delimiter[ \t]+(\S+)[^\n]*")
# What the history table can hold (history.CREATE_TABLE uses these): checked when a script is
# loaded, so `plan` names the file instead of `apply` failing on the INSERT.
MAX_VERSION, MAX_DESCRIPTION, MAX_SCRIPT_NAME = 64, 200, 255
# The history table (history.TABLE): a script that touches it could lock the runner out of
# recording progress (LOCK TABLES ... WRITE) or rewrite what the runner recorded.
HISTORY_TABLE = "envsync_schema_history"


class ScriptError(EnvsyncError, ValueError):
    """A script name or body that cannot be used as a migration."""

    quotes_no_data = True


@dataclass(frozen=True)
class Statement:
    number: int  # 1-based position in its script
    line: int  # 1-based line where the statement's first token starts
    sql: str


def version_key(version: str) -> Tuple[int, ...]:
    """`1.10` -> (1, 10): versions compare numerically, part by part; trailing zeros ignored."""
    if not re.fullmatch(r"\d+(?:\.\d+)*", version):
        raise ScriptError(f"invalid version {version!r}: expected dotted integers such as 1.10")
    parts = [int(part) for part in version.split(".")]
    while len(parts) > 1 and parts[-1] == 0:
        parts.pop()
    return tuple(parts)


def canonical_version(version: str) -> str:
    """`1.0`, `01` -> `1`: the one spelling a version is stored and looked up under."""
    return ".".join(str(part) for part in version_key(version))


def checksum(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Script:
    name: str  # e.g. V1.2__add_fk.sql
    version: str  # canonical (see canonical_version)
    description: str
    body: bytes  # UTF-8, BOM dropped, LF line endings (see script_text)
    # When the source object was created (epoch seconds), if the source knows: the S3
    # lifecycle deletes an object this long after its upload, not after it was applied.
    uploaded_at: Optional[float] = None
    statements: List[Statement] = field(default_factory=list, compare=False, repr=False)
    # The S3 object version dev applied (dev signs it with the checksum, see origin.py).
    source_version_id: Optional[str] = field(default=None, compare=False)
    # An upstream row's proof of origin (origin.Proof), copied unchanged into this env's history.
    proof: Optional[Any] = field(default=None, compare=False, repr=False)

    @property
    def key(self) -> Tuple[int, ...]:
        return version_key(self.version)

    @property
    def checksum(self) -> str:
        return checksum(self.body)


def is_script_candidate(name: str) -> bool:
    """A file name a source must load as a migration (or refuse), never skip."""
    return bool(SCRIPT_CANDIDATE.search(name))


def parse_name(name: str) -> Tuple[str, str]:
    """Return (canonical version, description) of `V<version>__<description>.sql`."""
    match = SCRIPT_NAME.match(name)
    if not match:
        raise ScriptError(
            f"{name}: not a migration script name; expected V<version>__<description>.sql "
            "(upper-case V, two underscores, lower-case .sql) with a dotted integer version, "
            "e.g. V1.10__add_index.sql"
        )
    version, description = canonical_version(match.group("version")), match.group("description").replace("_", " ")
    for what, value, limit in (("name", name, MAX_SCRIPT_NAME), ("version", version, MAX_VERSION),
                               ("description", description, MAX_DESCRIPTION)):
        if len(value) > limit:
            raise ScriptError(f"{name}: the {what} is {len(value)} characters; the history keeps "
                              f"at most {limit}: shorten the file name")
    return version, description


def script_text(body: bytes, name: str = "script") -> str:
    """The text the splitter and the checksum see: UTF-8, no BOM, LF line endings."""
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScriptError(f"{name}: not UTF-8 ({error})") from error
    if text.startswith("\ufeff"):
        text = text[1:]
    return text.replace("\r\n", "\n").replace("\r", "\n")


def load_script(name: str, body: bytes, uploaded_at: Optional[float] = None) -> Script:
    """Parse a script's name and split its body; errors name the file and the line."""
    version, description = parse_name(name)
    text = script_text(body, name)
    try:
        statements = split_statements(text)
    except ScriptError as error:
        raise ScriptError(f"{name}: {error}") from error
    for statement in statements:
        # A script is promoted to other envs' app schemas, and the runner checks the session
        # stays in its schema: switching schema would apply the rest of it elsewhere.
        if leading_words(statement.sql, 1) == ["USE"]:
            raise ScriptError(f"{name}: statement {statement.number} (line {statement.line}): USE is "
                              "not allowed; a migration applies to its env's app schema")
        if _names_history_table(statement.sql):
            raise ScriptError(f"{name}: statement {statement.number} (line {statement.line}): "
                              f"{HISTORY_TABLE} belongs to envsync; a migration must not touch it")
    return Script(name=name, version=version, description=description, body=text.encode("utf-8"),
                  uploaded_at=uploaded_at, statements=statements)


def sort_scripts(scripts: Iterable[Script]) -> List[Script]:
    """Order by numeric version; two scripts with the same version are an error."""
    ordered = sorted(scripts, key=lambda script: script.key)
    for earlier, later in zip(ordered, ordered[1:]):
        if earlier.key == later.key:
            raise ScriptError(f"{earlier.name} and {later.name} have the same version")
    return ordered


# ---------------------------------------------------------------- client-level splitting

_QUOTED = (r"'[^'\\]*(?:(?:\\[\s\S]|'')[^'\\]*)*'"
           r'|"[^"\\]*(?:(?:\\[\s\S]|"")[^"\\]*)*"'
           r"|`[^`]*(?:``[^`]*)*`")
# mysql client commands other than \g / \G (go): a migration runs through envsync, not the client.
_CLIENT_COMMANDS = "?cCdeGghnPpqRrsStTuWw.!#"


def _client_token_pattern(delimiter: str) -> re.Pattern[str]:
    """Tokens as the client sees them. A `text` run (spaces included: fewer tokens, the loop is
    the cost) stops before anything that could start a quote, comment, command or delimiter."""
    first = re.escape(delimiter[0])
    return re.compile(
        "(?P<delimiter>" + re.escape(delimiter) + ")"
        r"|(?P<space>\s+)"
        r"|(?P<line_comment>#[^\n]*|--(?=\s|$)[^\n]*)"
        r"|(?P<sql_comment>/\*(?:!|M!|\+)[\s\S]*?\*/)"
        r"|(?P<block_comment>/\*[\s\S]*?\*/)"
        r"|(?P<open_comment>/\*)"
        "|(?P<quoted>" + _QUOTED + ")"
        r"""|(?P<open_quote>['"`])"""
        r"|(?P<go>\\[gG])"
        r"|(?P<command>\\[" + re.escape(_CLIENT_COMMANDS) + "])"
        r"|(?P<text>[^'\"`#/\\\-" + first + r"]+|[\s\S])"
    )


class _Lines:
    """Line numbers by offset, counted incrementally: offsets only move forward (linear time)."""

    def __init__(self, text: str) -> None:
        self.text, self.offset, self.line = text, 0, 1

    def at(self, offset: int) -> int:
        if offset > self.offset:
            self.line += self.text.count("\n", self.offset, offset)
            self.offset = offset
        return self.line


def split_statements(text: str) -> List[Statement]:
    """Split a script into statements the way the `mysql` client does (see module doc)."""
    statements: List[Statement] = []
    lines = _Lines(text)
    delimiter = ";"
    pattern = _client_token_pattern(delimiter)
    length = len(text)
    position = 0
    pieces: List[str] = []  # SQL text of the statement being built (comments removed)
    start: Optional[int] = None  # offset of the current statement's first token

    def finish(custom_delimiter: bool) -> None:
        nonlocal pieces, start
        sql = "".join(pieces).strip()
        if sql and start is not None:
            line = lines.at(start)
            # The server runs each `;`-terminated statement of a custom-delimiter block
            # (multi-statement); PyMySQL sends one statement per call, so split them here.
            parts = _server_statements(sql) if custom_delimiter else [(0, sql)]
            for newlines_before, part in parts:
                statements.append(Statement(number=len(statements) + 1, line=line + newlines_before,
                                            sql=part))
        pieces, start = [], None

    while position < length:
        match = pattern.match(text, position)
        assert match is not None  # the last alternative matches any character
        kind, lexeme, end = match.lastgroup, match.group(), match.end()
        if kind == "delimiter":
            finish(delimiter != ";")
        elif kind == "go":
            finish(delimiter != ";")
        elif kind == "space":
            if start is not None:
                pieces.append(lexeme)
        elif kind == "line_comment":
            pass  # the newline after it is kept as whitespace
        elif kind == "block_comment":
            if start is not None:  # keep line numbers of what follows inside the statement
                pieces.append("\n" * lexeme.count("\n") or " ")
        elif kind == "open_comment":
            raise ScriptError(f"line {lines.at(position)}: unterminated /* comment")
        elif kind == "open_quote":
            what = "identifier" if lexeme == "`" else "string"
            raise ScriptError(f"line {lines.at(position)}: unterminated quoted {what} ({lexeme})")
        elif kind == "command":
            raise ScriptError(f"line {lines.at(position)}: client command {lexeme} is not supported "
                              "in a migration script (only the terminators ; \\g \\G and DELIMITER)")
        elif (kind == "text" and start is None and lexeme[:1] in "dD"
              and text[position:position + 9].lower() == "delimiter"
              and not text[text.rfind("\n", 0, position) + 1:position].strip()):
            # DELIMITER is a client command: only recognised where a statement could begin.
            line_match = DELIMITER_LINE.match(text, position)
            if line_match:
                delimiter = line_match.group(1)
                if delimiter.startswith(("'", '"', "`")) or "\\" in delimiter:
                    raise ScriptError(f"line {lines.at(position)}: unsupported delimiter {delimiter!r}")
                pattern = _client_token_pattern(delimiter)
                position = line_match.end()
                continue
            start = position
            pieces.append(lexeme)
        else:  # text, quoted, sql_comment
            if start is None:
                start = position
            pieces.append(lexeme)
        position = end
    finish(delimiter != ";")
    return statements


# ---------------------------------------------------------------- server-level words

_SERVER_TOKEN = re.compile(
    r"(?P<space>\s+)"
    r"|(?P<comment>#[^\n]*|--(?=\s|$)[^\n]*|/\*(?![!+]|M!)[\s\S]*?\*/|/\*\+[\s\S]*?\*/)"
    r"|(?P<executable>/\*M?!\d*[\s\S]*?\*/)"
    "|(?P<quoted>" + _QUOTED + ")"
    r"|(?P<word>[\w$]+)"
    r"|(?P<other>[\s\S])"
)
_EXECUTABLE_BODY = re.compile(r"/\*M?!\d*([\s\S]*?)\*/")


def _server_tokens(sql: str, open_executable: bool) -> Iterator[Tuple[str, str, int]]:
    """(kind, upper-cased word or lexeme text, offset) as the server parses `sql`; comments
    skipped. `open_executable`: read inside `/*!...*/` (for the head), or keep it whole."""
    for match in _SERVER_TOKEN.finditer(sql):
        kind = match.lastgroup or "other"
        if kind in ("space", "comment"):
            continue
        if kind == "executable" and open_executable:
            inner = _EXECUTABLE_BODY.match(match.group())
            for inner_kind, lexeme, _ in _server_tokens(inner.group(1) if inner else "", True):
                yield inner_kind, lexeme, match.start()
            continue
        yield kind, match.group().upper() if kind == "word" else match.group(), match.start()


def _names_history_table(sql: str) -> bool:
    for kind, lexeme, _ in _server_tokens(sql, open_executable=True):
        if kind == "word" and lexeme == HISTORY_TABLE.upper():
            return True
        if kind == "quoted" and lexeme.startswith("`") and lexeme[1:-1].replace("``", "`").lower() == HISTORY_TABLE:
            return True
    return False


def server_tokens(sql: str) -> List[Tuple[str, str]]:
    """Every token the server would parse, as (kind, text): kind is word (upper-cased), quoted
    (as written, quotes kept) or other (one character); comments skipped, executable comments
    opened (the server runs their content)."""
    return [(kind, lexeme) for kind, lexeme, _ in _server_tokens(sql, open_executable=True)]


def leading_words(sql: str, count: int) -> List[str]:
    """The first `count` tokens the server would parse, words upper-cased: comments skipped,
    executable comments `/*!...*/` and `/*M!...*/` opened (the server runs their content)."""
    words: List[str] = []
    for _, lexeme, _ in _server_tokens(sql, open_executable=True):
        words.append(lexeme)
        if len(words) == count:
            break
    return words


# Tokens after which a compound statement (IF, LOOP, WHILE, REPEAT, FOR) can begin.
_STATEMENT_STARTS = {";", ":", "BEGIN", "THEN", "ELSE", "DO", "LOOP", "REPEAT", "ROW", ")"}
_PROGRAMS = {"PROCEDURE", "FUNCTION", "TRIGGER", "EVENT", "PACKAGE"}
_NOT_PROGRAMS = {"TABLE", "VIEW", "INDEX", "DATABASE", "SCHEMA", "USER", "ROLE", "SERVER",
                 "SEQUENCE", "TABLESPACE", "SPATIAL", "FULLTEXT", "UNIQUE", "TEMPORARY"}
_COMPOUND_HEADS = {"IF", "CASE", "LOOP", "WHILE", "REPEAT", "FOR"}


def _may_hold_compound(tokens: List[Tuple[str, str, int]], first: int) -> bool:
    """Does the statement starting at tokens[first] have a body with its own `;`s?"""
    head = [lexeme for kind, lexeme, _ in tokens[first:first + 10] if kind == "word"]
    if not head:
        return False
    if head[0] == "CREATE":
        for word in head[1:]:
            if word in _PROGRAMS:
                return True
            if word in _NOT_PROGRAMS:
                return False
        return False
    if head[0] == "BEGIN":
        return len(head) > 1 and head[1] == "NOT"  # MariaDB's anonymous block; else a transaction
    second = tokens[first + 1][1] if first + 1 < len(tokens) else ""
    return head[0] in _COMPOUND_HEADS or second == ":"  # MariaDB compound outside a program


def _server_statements(sql: str) -> List[Tuple[int, str]]:
    """Split one custom-delimiter block into the statements the server would run, as
    (newlines before the statement in `sql`, statement)."""
    tokens = list(_server_tokens(sql, open_executable=False))
    lines = _Lines(sql)
    parts: List[Tuple[int, str]] = []

    def add(begin: int, end: int) -> None:
        piece = sql[begin:end]
        part = piece.strip()
        if part:
            parts.append((lines.at(begin + len(piece) - len(piece.lstrip())) - 1, part))

    begin = 0  # offset in sql of the current statement
    # Open constructs, innermost last: "block" (BEGIN, IF, loops, CASE statement) or
    # "expression" (a CASE expression, where THEN/ELSE are followed by values, not statements:
    # `THEN IF(a, 1, 2)` there is the IF function).
    open_constructs: List[str] = []
    tracking = _may_hold_compound(tokens, 0)
    previous = ";"
    skip_next = False
    for index, (kind, lexeme, offset) in enumerate(tokens):
        following = tokens[index + 1][1] if index + 1 < len(tokens) else ""
        if skip_next:  # the IF of END IF, the LOOP of END LOOP ...
            skip_next = False
        elif kind == "other" and lexeme == ";" and not open_constructs:
            add(begin, offset)
            begin = offset + 1
            tracking = _may_hold_compound(tokens, index + 1)
        elif tracking and kind == "word":
            at_statement_start = previous in _STATEMENT_STARTS and (
                not open_constructs or open_constructs[-1] == "block")
            if lexeme == "END" and open_constructs:
                open_constructs.pop()
                skip_next = following in _COMPOUND_HEADS
            elif lexeme == "BEGIN":
                open_constructs.append("block")
            elif lexeme == "CASE":
                open_constructs.append("block" if at_statement_start else "expression")
            elif (lexeme in _COMPOUND_HEADS and at_statement_start
                  and following not in ("EXISTS", "NOT")):
                open_constructs.append("block")
        previous = lexeme
    add(begin, len(sql))
    return parts
