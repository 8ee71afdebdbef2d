"""Migration scripts: `V<version>__<description>.sql` names, checksums and statement splitting.

The splitter follows the `mysql` command-line client, because that is how people test their
scripts before they commit them: a statement ends at the current delimiter (`;` unless a
`DELIMITER` line changed it) outside quotes, backticks and comments. sqlparse was tried and
rejected for this job: it cannot handle `DELIMITER`, gives no line numbers, and groups a
`BEGIN ... END` body by its own grammar rather than by the delimiter, so a script could split
differently here than in the client the author used.

Comments: `-- ` (dash dash + whitespace), `#` and `/* */` are comments; MySQL executable
comments `/*! ... */`, MariaDB's `/*M! ... */` and optimizer hints `/*+ ... */` are SQL and are
kept. A script holding only comments yields no statements.
"""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass, field
from typing import Iterable, List, Optional, Tuple

SCRIPT_NAME = re.compile(r"^V(?P<version>\d+(?:\.\d+)*)__(?P<description>[^/\\]+)\.sql$")
DELIMITER_LINE = re.compile(r"(?i)delimiter[ \t]+(\S+)[^\n]*")


class ScriptError(ValueError):
    """A script name or body that cannot be used as a migration."""


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


def checksum(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@dataclass(frozen=True)
class Script:
    name: str  # e.g. V1.2__add_fk.sql
    version: str
    description: str
    body: bytes
    # When the source object was created (epoch seconds), if the source knows: the S3
    # lifecycle deletes an object this long after its upload, not after it was applied.
    uploaded_at: Optional[float] = None
    statements: List[Statement] = field(default_factory=list, compare=False, repr=False)

    @property
    def key(self) -> Tuple[int, ...]:
        return version_key(self.version)

    @property
    def checksum(self) -> str:
        return checksum(self.body)


def parse_name(name: str) -> Tuple[str, str]:
    """Return (version, description) of `V<version>__<description>.sql`."""
    match = SCRIPT_NAME.match(name)
    if not match:
        raise ScriptError(
            f"{name}: not a migration script name; expected V<version>__<description>.sql "
            "with a dotted integer version, e.g. V1.10__add_index.sql"
        )
    return match.group("version"), match.group("description").replace("_", " ")


def load_script(name: str, body: bytes, uploaded_at: Optional[float] = None) -> Script:
    """Parse a script's name and split its body; errors name the file and the line."""
    version, description = parse_name(name)
    try:
        text = body.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ScriptError(f"{name}: not UTF-8 ({error})") from error
    try:
        statements = split_statements(text)
    except ScriptError as error:
        raise ScriptError(f"{name}: {error}") from error
    for statement in statements:
        # History rows are written unqualified into the app schema on the same session, and a
        # script is promoted to other envs' app schemas: switching schema would break both.
        if re.match(r"(?i)use\s", statement.sql):
            raise ScriptError(f"{name}: statement {statement.number} (line {statement.line}): USE is "
                              "not allowed; a migration applies to its env's app schema")
    return Script(name=name, version=version, description=description, body=body,
                  uploaded_at=uploaded_at, statements=statements)


def sort_scripts(scripts: Iterable[Script]) -> List[Script]:
    """Order by numeric version; two scripts with the same version are an error."""
    ordered = sorted(scripts, key=lambda script: script.key)
    for earlier, later in zip(ordered, ordered[1:]):
        if earlier.key == later.key:
            raise ScriptError(f"{earlier.name} and {later.name} have the same version")
    return ordered


def _line_at(text: str, offset: int) -> int:
    return text.count("\n", 0, offset) + 1


def split_statements(text: str) -> List[Statement]:
    """Split a script into statements the way the `mysql` client does (see module doc)."""
    statements: List[Statement] = []
    delimiter = ";"
    length = len(text)
    position = 0
    pieces: List[str] = []  # SQL text of the statement being built (comments removed)
    start: Optional[int] = None  # offset of the current statement's first token

    def finish() -> None:
        nonlocal pieces, start
        sql = "".join(pieces).strip()
        if sql and start is not None:
            statements.append(Statement(number=len(statements) + 1, line=_line_at(text, start), sql=sql))
        pieces, start = [], None

    while position < length:
        char = text[position]
        # DELIMITER is a client command: only recognised where a statement could begin.
        if start is None and char in "dD" and text[position:position + 9].lower() == "delimiter":
            at_line_start = text.rfind("\n", 0, position) + 1
            if not text[at_line_start:position].strip():
                match = DELIMITER_LINE.match(text, position)
                if match:
                    delimiter = match.group(1)
                    if delimiter.startswith(("'", '"', "`")) or "\\" in delimiter:
                        raise ScriptError(
                            f"line {_line_at(text, position)}: unsupported delimiter {delimiter!r}"
                        )
                    position = match.end()
                    continue
        if text.startswith(delimiter, position):
            finish()
            position += len(delimiter)
            continue
        if char in " \t\r\n":
            if start is not None:
                pieces.append(char)
            position += 1
            continue
        if char == "#" or (text.startswith("--", position)
                           and (position + 2 >= length or text[position + 2] in " \t\r\n")):
            end = text.find("\n", position)
            position = length if end < 0 else end
            continue
        if text.startswith("/*", position):
            end = text.find("*/", position + 2)
            if end < 0:
                raise ScriptError(f"line {_line_at(text, position)}: unterminated /* comment")
            if text.startswith(("/*!", "/*M!", "/*+"), position):
                if start is None:
                    start = position
                pieces.append(text[position:end + 2])
            elif start is not None:
                pieces.append(" ")
            position = end + 2
            continue
        if start is None:
            start = position
        if char in "'\"`":
            end = _end_of_quoted(text, position)
            if end < 0:
                kind = "identifier" if char == "`" else "string"
                raise ScriptError(f"line {_line_at(text, position)}: unterminated quoted {kind} ({char})")
            pieces.append(text[position:end])
            position = end
            continue
        pieces.append(char)
        position += 1
    finish()
    return statements


def _end_of_quoted(text: str, position: int) -> int:
    """Offset just past the quoted token starting at `position`, or -1 if unterminated."""
    quote = text[position]
    index = position + 1
    length = len(text)
    while index < length:
        char = text[index]
        if char == "\\" and quote != "`":
            index += 2
            continue
        if char == quote:
            if index + 1 < length and text[index + 1] == quote:  # doubled quote escapes itself
                index += 2
                continue
            return index + 1
        index += 1
    return -1
