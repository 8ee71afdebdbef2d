"""Normalisation of what servers report, so MariaDB 10.11, MySQL 5.7 and MySQL 8.0 compare equal
(pure functions, tested without a server; the rules are listed in ``envsync.drift.introspect``)."""

from __future__ import annotations

import re
from functools import lru_cache
from typing import Iterator, List, Optional, Sequence, Tuple

from envsync.mysql.flavour import Flavour

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
    raw: Optional[str], extra: Optional[str], data_type: Optional[str], flavour: Flavour
) -> Optional[str]:
    """One canonical text for COLUMN_DEFAULT: None, a quoted literal, ``b'..'`` or an expression."""
    if raw is None:
        return None
    if flavour.quotes_literal_defaults:
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


def fk_rule(rule: Optional[str]) -> str:
    # InnoDB checks NO ACTION immediately, exactly like RESTRICT; MySQL 8 reports an omitted
    # clause as NO ACTION where MariaDB and 5.7 say RESTRICT.
    rule = str(rule or "RESTRICT").upper()
    return "RESTRICT" if rule == "NO ACTION" else rule


def normalise_create_options(options: Optional[str]) -> str:
    """`stats_persistent=1 row_format=COMPACT partitioned` -> `row_format=compact stats_persistent=1`
    (partitioning is compared on its own)."""
    words = [word.lower() for word in (options or "").split() if word.lower() != "partitioned"]
    return " ".join(sorted(words))
