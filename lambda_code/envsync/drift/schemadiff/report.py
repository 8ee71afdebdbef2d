"""What a comparison finds: ``Difference`` (one drifted attribute) and ``DriftReport`` (all of
them, with what could not be compared), their report lines and their JSON form."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Dict, List, Tuple

_LONG_DETAILS = ("definition", "body")  # shortened around the first difference in lines()


@dataclass(frozen=True)
class Difference:
    """``kind`` table|column|index|foreign_key|check|view|trigger|procedure|function|event;
    ``object`` ``table`` or ``table.child`` or the object's name; ``detail`` the attribute, or
    ``presence`` when the object exists on one side only (``left``/``right`` then hold a summary
    of it, or None on the side that lacks it)."""

    kind: str
    object: str
    detail: str
    left: Any
    right: Any

    def line(self, left_name: str = "left", right_name: str = "right") -> str:
        if self.detail == "presence":
            side, summary = (left_name, self.left) if self.right is None else (right_name, self.right)
            return f"{self.kind} {self.object}: only in {side}" + (f": {summary}" if summary else "")
        left, right = _render(self.left), _render(self.right)
        if self.detail in _LONG_DETAILS:
            left, right = _around_first_difference(left, right)
        return f"{self.kind} {self.object}: {self.detail} {left} != {right}"

    def to_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "object": self.object, "detail": self.detail,
                "left": _plain(self.left), "right": _plain(self.right)}

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> Difference:
        return cls(kind=data["kind"], object=data["object"], detail=data["detail"],
                   left=_frozen(data["left"]), right=_frozen(data["right"]))


@dataclass(frozen=True)
class DriftReport:
    differences: Tuple[Difference, ...]
    left_name: str = "left"
    right_name: str = "right"
    ignored_tables: Tuple[str, ...] = field(default=())
    # (kind, object, what) either side could not compare: listed, never counted as equal.
    not_compared: Tuple[Tuple[str, str, str], ...] = field(default=())

    @property
    def count(self) -> int:
        return len(self.differences)

    @property
    def in_sync(self) -> bool:
        return not self.differences

    def lines(self) -> List[str]:
        return [d.line(self.left_name, self.right_name) for d in self.differences]

    def not_compared_lines(self) -> List[str]:
        return [f"not compared: {kind} {name}: {what}" for kind, name, what in self.not_compared]

    def to_dict(self) -> Dict[str, Any]:
        return {
            "left": self.left_name,
            "right": self.right_name,
            "ignored_tables": list(self.ignored_tables),
            "count": self.count,
            "differences": [d.to_dict() for d in self.differences],
            "not_compared": [{"kind": kind, "object": name, "what": what}
                             for kind, name, what in self.not_compared],
        }

    @classmethod
    def from_dict(cls, data: Dict[str, Any]) -> DriftReport:
        return cls(
            differences=tuple(Difference.from_dict(d) for d in data["differences"]),
            left_name=data.get("left", "left"),
            right_name=data.get("right", "right"),
            ignored_tables=tuple(data.get("ignored_tables", ())),
            not_compared=tuple((item["kind"], item["object"], item["what"])
                               for item in data.get("not_compared", ())),
        )


def _render(value: Any) -> str:
    if value is None:
        return "(none)"
    if isinstance(value, bool):
        return "yes" if value else "no"
    if isinstance(value, (tuple, list)):
        return "(" + ", ".join(_render(v) for v in value) + ")"
    text = str(value)
    return text if text else "''"


def _around_first_difference(left: str, right: str, width: int = 60) -> Tuple[str, str]:
    """Show long bodies from just before where they start to differ."""
    if max(len(left), len(right)) <= width:
        return left, right
    prefix = 0
    while prefix < min(len(left), len(right)) and left[prefix] == right[prefix]:
        prefix += 1
    start = max(0, prefix - 20)
    word_start = left.rfind(" ", 0, start) + 1  # start on a word when one begins nearby
    if start and word_start and start - word_start <= 20:
        start = word_start

    def cut(text: str) -> str:
        piece = text[start:start + width]
        return ("…" if start else "") + piece + ("…" if start + width < len(text) else "")

    return cut(left), cut(right)


def _plain(value: Any) -> Any:
    if isinstance(value, tuple):
        return [_plain(v) for v in value]
    return value


def _frozen(value: Any) -> Any:
    if isinstance(value, list):
        return tuple(_frozen(v) for v in value)
    return value
