"""Which statements of a resource policy apply to a request to the local stand-in (pure).

moto evaluates bucket policies but not their conditions (all but StringEquals are ignored, so a
conditional Deny denies everything). The request context here is that of the AWS API endpoint
moto stands in for: HTTPS. A statement applies only when all its conditions hold; a condition
on a key the context does not have never holds (unless ...IfExists).
"""

from __future__ import annotations

from typing import Any, Dict

LOCAL_REQUEST_CONTEXT = {"aws:securetransport": "true"}


def _condition_holds(operator: str, key: str, expected: Any) -> bool:
    actual = LOCAL_REQUEST_CONTEXT.get(key.lower())
    if operator.endswith("IfExists") and actual is None:
        return True
    operator = operator.replace("IfExists", "")
    if actual is None:
        return False
    values = [str(v) for v in (expected if isinstance(expected, list) else [expected])]
    if operator == "Bool":
        return actual.lower() in [v.lower() for v in values]
    if operator == "StringEquals":
        return actual in values
    if operator == "StringNotEquals":
        return actual not in values
    if operator == "StringEqualsIgnoreCase":
        return actual.lower() in [v.lower() for v in values]
    return False


def statement_applies(statement: Dict[str, Any]) -> bool:
    return all(_condition_holds(operator, key, expected)
               for operator, keys in (statement.get("Condition") or {}).items()
               for key, expected in keys.items())
