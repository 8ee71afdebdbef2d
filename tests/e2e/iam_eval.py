"""A small IAM policy evaluator for the requests the security tests ask about.

Used where moto cannot enforce: moto 5.2.5 evaluates SSM, Secrets Manager (and most services)
against resource "*", and does not evaluate a role's trust policy for a cross-account
AssumeRole. Scope (enough for envsync's policies, and refusing what it does not know):
- Effect Allow/Deny; explicit Deny wins; no matching Allow is an implicit deny;
- Action / NotAction and Resource / NotResource with `*` and `?` wildcards (actions
  case-insensitive, resources case-sensitive);
- Principal (trust policies): "*", {"AWS": ARN or list}, {"Service": name or list}; an account
  root ARN (or a bare account id) stands for every principal of that account;
- Condition operators StringEquals, StringNotEquals, StringLike, ArnEquals, ArnLike, Bool (and their
  IfExists forms); every value of a multi-valued key must be in the request; a key missing
  from the request fails the condition (except IfExists). Any other operator raises.
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any, Dict, Iterable, List, Optional, Union

ALLOW, DENY = "Allow", "Deny"


class UnsupportedPolicy(ValueError):
    """The policy uses something this evaluator does not model: refuse rather than guess."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str = "*"
    principal: Optional[str] = None  # for trust policies: the caller's ARN
    context: Dict[str, str] = field(default_factory=dict)


def _as_list(value: Union[str, Iterable[str], None]) -> List[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def _principal_matches(statement_principal: Any, principal: Optional[str]) -> bool:
    if statement_principal == "*":
        return True
    if principal is None or not isinstance(statement_principal, dict):
        return False
    for kind, values in statement_principal.items():
        for value in _as_list(values):
            if kind == "Service" and value == principal:
                return True
            if kind == "AWS":
                if value == "*" or value == principal:
                    return True
                account = value if value.isdigit() else (
                    value.split(":")[4] if value.endswith(":root") else None)
                if account and principal.split(":")[4:5] == [account] and ":" in principal:
                    return True
    return False


_OPERATORS = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringNotEquals": lambda expected, actual: actual != expected,
    "StringLike": lambda expected, actual: fnmatch.fnmatchcase(actual, expected),
    "ArnEquals": lambda expected, actual: actual == expected,
    "ArnLike": lambda expected, actual: _wildcard(expected, actual),
    "Bool": lambda expected, actual: str(actual).lower() == str(expected).lower(),
}


def _conditions_hold(conditions: Dict[str, Dict[str, Any]], context: Dict[str, str]) -> bool:
    for operator, keys in conditions.items():
        if_exists = operator.endswith("IfExists")
        base = operator[:-len("IfExists")] if if_exists else operator
        if base not in _OPERATORS:
            raise UnsupportedPolicy(f"condition operator {operator}")
        for key, expected in keys.items():
            actual = next((v for k, v in context.items() if k.lower() == key.lower()), None)
            if actual is None:
                if if_exists:
                    continue
                return False
            values = _as_list(expected)
            if base == "StringNotEquals":
                if not all(_OPERATORS[base](value, actual) for value in values):
                    return False
            elif not any(_OPERATORS[base](value, actual) for value in values):
                return False
    return True


def statement_applies(statement: Dict[str, Any], request: Request) -> bool:
    if "Action" in statement:
        if not any(_wildcard(p, request.action, case_sensitive=False) for p in _as_list(statement["Action"])):
            return False
    elif "NotAction" in statement:
        if any(_wildcard(p, request.action, case_sensitive=False) for p in _as_list(statement["NotAction"])):
            return False
    else:
        raise UnsupportedPolicy("statement without Action or NotAction")
    if "Resource" in statement:
        if not any(_wildcard(p, request.resource) for p in _as_list(statement["Resource"])):
            return False
    elif "NotResource" in statement:
        if any(_wildcard(p, request.resource) for p in _as_list(statement["NotResource"])):
            return False
    if "Principal" in statement and not _principal_matches(statement["Principal"], request.principal):
        return False
    if "NotPrincipal" in statement:
        raise UnsupportedPolicy("NotPrincipal")
    return _conditions_hold(statement.get("Condition", {}), request.context)


def policy_document(document: Union[str, Dict[str, Any]]) -> Dict[str, Any]:
    return json.loads(document) if isinstance(document, str) else document


def evaluate(policies: Iterable[Union[str, Dict[str, Any]]], request: Request) -> str:
    """ALLOW or DENY for `request` under every policy together (identity or trust)."""
    allowed = False
    for document in policies:
        statements = policy_document(document).get("Statement", [])
        for statement in [statements] if isinstance(statements, dict) else statements:
            if not statement_applies(statement, request):
                continue
            if statement["Effect"] == DENY:
                return DENY
            if statement["Effect"] == ALLOW:
                allowed = True
    return ALLOW if allowed else DENY
