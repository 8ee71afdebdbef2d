"""The comparison mechanism every object kind shares: presence on one side only, then the
attributes of the objects both sides have."""

from __future__ import annotations

from typing import Any, Callable, Dict, List, Optional, Sequence

from envsync.drift.schemadiff.report import Difference


def diff_named(
    out: List[Difference],
    kind: str,
    left: Sequence[Any],
    right: Sequence[Any],
    summary: Callable[[Any], str],
    compare: Callable[[List[Difference], str, Any, Any], None],
    prefix: str = "",
    order: Optional[Sequence[str]] = None,
) -> None:
    """Presence differences for objects on one side only, then ``compare`` for the shared ones.

    ``order`` fixes the reporting order (e.g. column ordinal order); the default is by name.
    """
    left_by_name = {item.name: item for item in left}
    right_by_name = {item.name: item for item in right}
    names = order if order is not None else sorted(set(left_by_name) | set(right_by_name))
    for name in names:
        in_left, in_right = left_by_name.get(name), right_by_name.get(name)
        if in_left is None and in_right is None:
            continue
        if in_left is None or in_right is None:
            out.append(Difference(
                kind, prefix + name, "presence",
                summary(in_left) if in_left is not None else None,
                summary(in_right) if in_right is not None else None,
            ))
            continue
        compare(out, prefix + name, in_left, in_right)


def diff_attributes(
    out: List[Difference], kind: str, name: str, left: Any, right: Any, attributes: Sequence[str],
    render: Optional[Dict[str, Callable[[Any], Any]]] = None,
) -> None:
    for attribute in attributes:
        value_left, value_right = getattr(left, attribute), getattr(right, attribute)
        if value_left != value_right:
            show = (render or {}).get(attribute)
            if show is not None:
                value_left, value_right = show(left), show(right)
            out.append(Difference(kind, name, attribute, value_left, value_right))


