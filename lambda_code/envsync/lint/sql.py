"""What the lint reads in a statement: token helpers over `scripts.server_tokens` and column
types (`parse_column_type`, and `narrowing`: whether a new type holds less than the old)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import List, Optional, Sequence, Tuple

from envsync.migrations.scripts import server_tokens

Token = Tuple[str, str]  # (kind, text) as scripts.server_tokens gives them


def name_of(token: Token) -> str:
    """An identifier token without its backticks, lower-cased (MySQL column and index names
    are case-insensitive; table names are compared the same way)."""
    kind, text = token
    if kind == "quoted" and text.startswith("`"):
        text = text[1:-1].replace("``", "`")
    return text.lower()


def qualified_name(tokens: Sequence[Token], at: int) -> Tuple[str, int]:
    """`db`.`t` or t at tokens[at] -> (table name, index after it)."""
    name, at = name_of(tokens[at]), at + 1
    while at + 1 < len(tokens) and tokens[at] == ("other", "."):
        name, at = name_of(tokens[at + 1]), at + 2
    return name, at


def skip_words(tokens: Sequence[Token], at: int, *words: str) -> int:
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


def top_level_split(tokens: Sequence[Token]) -> List[List[Token]]:
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


def top_level_words(tokens: Sequence[Token]) -> List[str]:
    words, depth = [], 0
    for kind, text in tokens:
        if text == "(" and kind == "other":
            depth += 1
        elif text == ")" and kind == "other":
            depth -= 1
        elif kind == "word" and depth == 0:
            words.append(text)
    return words


def names_list(tokens: Sequence[Token], at: int, stop: Sequence[str] = ()) -> List[str]:
    """Comma-separated table names from tokens[at] (DROP TABLE a, b / TRUNCATE)."""
    names = []
    while at < len(tokens) and not (tokens[at][0] == "word" and tokens[at][1] in stop):
        if tokens[at][0] in ("word", "quoted"):
            name, at = qualified_name(tokens, at)
            names.append(name)
        else:
            at += 1
    return names


# ---------------------------------------------------------------- column types

@dataclass(frozen=True)
class ColumnType:
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


def parse_type(tokens: Sequence[Token], at: int) -> Tuple[ColumnType, int]:
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
    return ColumnType(_FAMILIES.get(base, "other"), base, tuple(args), unsigned), at


def parse_column_type(column_type: str) -> ColumnType:
    """information_schema COLUMN_TYPE (or a type as written in a script) -> ColumnType."""
    return parse_type(server_tokens(column_type), 0)[0]


def _int(text: str, default: int) -> int:
    return int(text) if text.isdigit() else default


def _first_arg(column: ColumnType, default: int) -> int:
    return _int(column.args[0], default) if column.args else default


def word_at(tokens: Sequence[Token], at: int) -> str:
    return name_of(tokens[at]) if at < len(tokens) else "?"


def _capacity(column: ColumnType) -> int:
    if column.base in _SIZED_STRINGS:
        return _int(column.args[0], 1) if column.args else 1
    return _STRING_CAPACITY.get(column.base, 0)


def _decimal_digits(column: ColumnType) -> Tuple[int, int]:
    """(digits before the point, digits after): DECIMAL defaults to (10, 0)."""
    precision = _int(column.args[0], 10) if column.args else 10
    scale = _int(column.args[1], 0) if len(column.args) > 1 else 0
    return precision - scale, scale


def narrowing(old: ColumnType, new: ColumnType) -> Optional[str]:
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
class ColumnDefinition:
    column_type: ColumnType
    not_null: bool
    has_default: bool
    fills_itself: bool  # AUTO_INCREMENT or generated (AS ...): needs no DEFAULT


def column_definition(tokens: Sequence[Token], at: int) -> ColumnDefinition:
    column_type, at = parse_type(tokens, at)
    words = top_level_words(tokens[at:])
    not_null = any(first == "NOT" and second == "NULL" for first, second in zip(words, words[1:]))
    return ColumnDefinition(column_type, not_null, "DEFAULT" in words,
                             bool({"AUTO_INCREMENT", "AS", "GENERATED", "SERIAL"} & set(words))
                             or column_type.base == "SERIAL")

