"""The schema model: frozen dataclasses holding tuples, sorted by name, so two models compare
with ``==`` and ``to_dict()``/``from_dict()`` round-trip through JSON."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any, Dict, Optional, Tuple


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

