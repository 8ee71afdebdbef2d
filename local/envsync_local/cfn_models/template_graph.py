"""Which resources of a template refer to which (pure: no moto import, testable anywhere)."""

from __future__ import annotations

import re
from typing import Any, Dict, List, Set

SUB_VARIABLE = re.compile(r"\$\{([^!}][^}]*)\}")


def _references(node: Any) -> Set[str]:
    """Logical ids a template fragment refers to (Ref, Fn::GetAtt, Fn::Sub)."""
    found: Set[str] = set()
    if isinstance(node, dict):
        for key, value in node.items():
            if key == "Ref" and isinstance(value, str):
                found.add(value)
            elif key == "Fn::GetAtt":
                target = value[0] if isinstance(value, list) else str(value).split(".")[0]
                found.add(target)
            elif key == "Fn::Sub":
                text = value[0] if isinstance(value, list) else value
                if isinstance(text, str):
                    found.update(name.split(".")[0] for name in SUB_VARIABLE.findall(text))
                found |= _references(value)
            else:
                found |= _references(value)
    elif isinstance(node, list):
        for item in node:
            found |= _references(item)
    return found


def deletion_order(resources: Dict[str, Any]) -> List[str]:
    """Logical ids, every resource before the resources it depends on."""
    depends: Dict[str, Set[str]] = {}
    for logical_id, resource in resources.items():
        explicit = resource.get("DependsOn") or []
        explicit = [explicit] if isinstance(explicit, str) else list(explicit)
        depends[logical_id] = (_references(resource) | set(explicit)) & set(resources) - {logical_id}
    created: List[str] = []
    visiting: Set[str] = set()

    def visit(logical_id: str) -> None:
        if logical_id in created or logical_id in visiting:
            return
        visiting.add(logical_id)
        for dependency in sorted(depends[logical_id]):
            visit(dependency)
        visiting.discard(logical_id)
        created.append(logical_id)

    for logical_id in resources:
        visit(logical_id)
    return list(reversed(created))
