"""The state of one ``load_schema`` run, handed to every per-kind reader."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, List, Optional, Sequence, Tuple

from envsync.mysql import infoschema
from envsync.mysql.flavour import Flavour


@dataclass
class Reading:
    """The connection, the schema read, what its server can show (``flavour``), and the
    properties present there that the model cannot hold (``not_compared``: kind, object, what)."""

    conn: Any
    schema: str
    flavour: Flavour
    not_compared: List[Tuple[str, str, str]] = field(default_factory=list)

    def rows(self, sql: str, args: Optional[Sequence[Any]] = None) -> List[Tuple[Any, ...]]:
        """``sql`` run through the shared information_schema layer; bound to the schema by default."""
        return infoschema.rows(self.conn, sql, (self.schema,) if args is None else args)

    def not_shown(self, kind: str, name: str, what: str) -> None:
        self.not_compared.append((kind, name, what))
