"""A small IAM policy evaluator: the decision AWS would make for one request, and why.

moto evaluates SSM, Secrets Manager and most services against resource "*", ignores most
conditions, key policies and permissions boundaries, and does not check a role's trust
policy across accounts. The permission proof (`envsync_local.proof`) and the security tests
ask this evaluator instead. Scope (enough for envsync's policies; anything else is refused
with `UnsupportedPolicy` rather than guessed):
- Effect Allow/Deny; an explicit Deny wins; no matching Allow is an implicit deny;
- Action / NotAction and Resource / NotResource with `*` and `?` wildcards (actions
  case-insensitive, resources case-sensitive);
- Principal (resource and trust policies): "*", {"AWS": ARN or list}, {"Service": name or
  list}; an account root ARN (or a bare account id) stands for every principal of that account;
- the condition operators in `_OPERATORS` and their IfExists forms; a key missing from the
  request fails the condition (except IfExists and Null); a request value may be a list (a
  multi-valued key), which matches when any of its values matches.

How the layers combine is in `authorize` (the AWS policy evaluation logic, simplified to the
policy types envsync uses: identity, permissions boundary, resource policy, KMS key policy,
role trust policy and VPC endpoint policy).
"""

from __future__ import annotations

import fnmatch
import json
import re
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Sequence, Union

ALLOW, DENY = "Allow", "Deny"
Document = Union[str, Mapping[str, Any]]
ContextValue = Union[str, Sequence[str]]


class UnsupportedPolicy(ValueError):
    """The policy uses something this evaluator does not model: refuse rather than guess."""


@dataclass(frozen=True)
class Request:
    action: str
    resource: str = "*"
    principal: Optional[str] = None  # for resource and trust policies: the caller's ARN or service
    context: Dict[str, ContextValue] = field(default_factory=dict)


@dataclass(frozen=True)
class Verdict:
    """A decision and the statement that made it (an Allow's or Deny's Sid, or why none)."""

    decision: str
    reason: str

    @property
    def allowed(self) -> bool:
        return self.decision == ALLOW


def _as_list(value: Union[str, Iterable[str], None]) -> List[str]:
    if value is None:
        return []
    return [value] if isinstance(value, str) else list(value)


def _wildcard(pattern: str, value: str, case_sensitive: bool = True) -> bool:
    regex = "^" + re.escape(pattern).replace(r"\*", ".*").replace(r"\?", ".") + "$"
    return re.match(regex, value, 0 if case_sensitive else re.IGNORECASE) is not None


def account_of(arn: str) -> Optional[str]:
    parts = arn.split(":")
    return parts[4] if len(parts) > 5 and parts[4].isdigit() else None


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
                if value in ("*", principal):
                    return True
                account = value if value.isdigit() else (
                    account_of(value) if value.endswith(":root") else None)
                if account and account_of(principal) == account:
                    return True
    return False


def _numeric(expected: str, actual: str, compare: Callable[[float, float], bool]) -> bool:
    return compare(float(actual), float(expected))


_OPERATORS: Dict[str, Callable[[str, str], bool]] = {
    "StringEquals": lambda expected, actual: actual == expected,
    "StringNotEquals": lambda expected, actual: actual != expected,
    "StringEqualsIgnoreCase": lambda expected, actual: actual.lower() == expected.lower(),
    "StringLike": lambda expected, actual: fnmatch.fnmatchcase(actual, expected),
    "StringNotLike": lambda expected, actual: not fnmatch.fnmatchcase(actual, expected),
    # ArnEquals matches wildcards as ArnLike does (IAM reference, "ARN condition operators").
    "ArnEquals": lambda expected, actual: _wildcard(expected, actual),
    "ArnNotEquals": lambda expected, actual: not _wildcard(expected, actual),
    "ArnLike": lambda expected, actual: _wildcard(expected, actual),
    "ArnNotLike": lambda expected, actual: not _wildcard(expected, actual),
    "Bool": lambda expected, actual: str(actual).lower() == str(expected).lower(),
    "NumericLessThanEquals": lambda expected, actual: _numeric(expected, actual, lambda a, e: a <= e),
    "NumericGreaterThanEquals": lambda expected, actual: _numeric(expected, actual, lambda a, e: a >= e),
}
# Negated operators hold when the value matches none of the expected values.
_NEGATED = {"StringNotEquals", "StringNotLike", "ArnNotEquals", "ArnNotLike"}


def _lookup(context: Mapping[str, ContextValue], key: str) -> Optional[List[str]]:
    for name, value in context.items():
        if name.lower() == key.lower():
            return _as_list(value)
    return None


def _conditions_hold(conditions: Mapping[str, Mapping[str, Any]], context: Mapping[str, ContextValue]) -> bool:
    for operator, keys in conditions.items():
        if ":" in operator:
            raise UnsupportedPolicy(f"condition set operator {operator}")
        if_exists = operator.endswith("IfExists")
        base = operator[:-len("IfExists")] if if_exists else operator
        for key, expected in keys.items():
            actual = _lookup(context, key)
            if base == "Null":
                if (actual is None) != (str(expected).lower() == "true"):
                    return False
                continue
            if base not in _OPERATORS:
                raise UnsupportedPolicy(f"condition operator {operator}")
            if actual is None:
                if if_exists:
                    continue
                return False
            values = [str(v) for v in _as_list(expected)]
            check = _OPERATORS[base]
            if base in _NEGATED:
                if not all(check(value, item) for value in values for item in actual):
                    return False
            elif not any(check(value, item) for value in values for item in actual):
                return False
    return True


def statement_applies(statement: Mapping[str, Any], request: Request) -> bool:
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


def policy_document(document: Document) -> Mapping[str, Any]:
    return json.loads(document) if isinstance(document, str) else document


def _statements(document: Document) -> List[Mapping[str, Any]]:
    statements = policy_document(document).get("Statement", [])
    return [statements] if isinstance(statements, dict) else list(statements)


def explain(policies: Iterable[Document], request: Request) -> Verdict:
    """ALLOW or DENY for `request` under `policies` together, naming the deciding statement."""
    allowed_by: Optional[str] = None
    for index, document in enumerate(policies):
        for number, statement in enumerate(_statements(document)):
            if not statement_applies(statement, request):
                continue
            label = statement.get("Sid") or f"policy {index} statement {number}"
            if statement["Effect"] == DENY:
                return Verdict(DENY, f"explicit Deny {label}")
            if statement["Effect"] == ALLOW and allowed_by is None:
                allowed_by = label
    if allowed_by is not None:
        return Verdict(ALLOW, f"allowed by {allowed_by}")
    return Verdict(DENY, "no statement allows it")


def evaluate(policies: Iterable[Document], request: Request) -> str:
    """ALLOW or DENY for `request` under every policy together (identity or trust)."""
    return explain(policies, request).decision


def _explicit_deny(policies: Iterable[Document], request: Request) -> Optional[str]:
    for document in policies:
        for statement in _statements(document):
            if statement["Effect"] == DENY and statement_applies(statement, request):
                return statement.get("Sid") or "a Deny statement"
    return None


@dataclass
class Principal:
    """Who calls: a role (its policies as deployed) or an AWS service principal."""

    arn: str
    identity_policies: List[Document] = field(default_factory=list)
    boundary: Optional[Document] = None
    service: bool = False

    @property
    def account(self) -> Optional[str]:
        return account_of(self.arn)


def authorize(principal: Principal, request: Request, *, resource_policy: Optional[Document] = None,
              resource_account: Optional[str] = None, key_policy: Optional[Document] = None,
              endpoint_policy: Optional[Document] = None) -> Verdict:
    """The decision for `principal` making `request` (AWS's evaluation logic, envsync's subset).

    - An explicit Deny in any policy wins.
    - A KMS key's policy is the root of trust: it must allow the principal itself, or allow
      the key's account (then the principal's identity policy must allow too).
    - Otherwise a same-account request needs identity OR resource policy; a cross-account one
      needs both. A permissions boundary caps what the identity policies grant.
    - A VPC endpoint policy, when the call goes through one, must allow it as well.
    AWS puts the caller's ARN in every request's context (aws:PrincipalArn) unless it is a service.
    """
    if not principal.service and _lookup(request.context, "aws:PrincipalArn") is None:
        request = Request(request.action, request.resource, request.principal,
                          {"aws:PrincipalArn": principal.arn, **request.context})
    as_principal = Request(request.action, request.resource, principal.arn, request.context)
    layers = [("identity policy", principal.identity_policies, request),
              ("permissions boundary", [principal.boundary] if principal.boundary else [], request),
              ("resource policy", [resource_policy] if resource_policy else [], as_principal),
              ("key policy", [key_policy] if key_policy else [], as_principal),
              ("endpoint policy", [endpoint_policy] if endpoint_policy else [], as_principal)]
    for name, documents, asked in layers:
        denied = _explicit_deny(documents, asked)
        if denied:
            return Verdict(DENY, f"{name}: explicit Deny {denied}")
    if endpoint_policy is not None and not explain([endpoint_policy], as_principal).allowed:
        return Verdict(DENY, "endpoint policy: no statement allows it")
    identity = (Verdict(ALLOW, "service principal") if principal.service
                else explain(principal.identity_policies, request))
    if identity.allowed and principal.boundary is not None and not explain([principal.boundary], request).allowed:
        identity = Verdict(DENY, "not within the permissions boundary")
    if key_policy is not None:
        named, delegated = _key_policy_grants(key_policy, as_principal)
        if named:
            return Verdict(ALLOW, f"key policy: allowed by {named}")
        if delegated:
            if identity.allowed:
                return Verdict(ALLOW, f"key policy {delegated} delegates to the account; {identity.reason}")
            return Verdict(DENY, f"key policy {delegated} delegates to the account, but the identity "
                                 f"policy: {identity.reason}")
        return Verdict(DENY, f"key policy: no statement allows {principal.arn}")
    if resource_policy is not None:
        granted = explain([resource_policy], as_principal)
        same_account = resource_account is None or resource_account == principal.account
        if same_account and (identity.allowed or granted.allowed):
            return identity if identity.allowed else Verdict(ALLOW, f"resource policy: {granted.reason}")
        if not same_account:
            if identity.allowed and granted.allowed:
                return Verdict(ALLOW, f"identity and resource policy ({granted.reason})")
            missing = "identity policy" if not identity.allowed else "resource policy"
            return Verdict(DENY, f"cross-account: {missing} does not allow it")
        return Verdict(DENY, f"identity policy: {identity.reason}; resource policy: {granted.reason}")
    return identity


def _key_policy_grants(key_policy: Document, request: Request) -> tuple[Optional[str], Optional[str]]:
    """(Sid naming the caller itself, Sid naming only the caller's account) among the Allows."""
    named: Optional[str] = None
    delegated: Optional[str] = None
    for number, statement in enumerate(_statements(key_policy)):
        if statement["Effect"] != ALLOW or not statement_applies(statement, request):
            continue
        label = statement.get("Sid") or f"statement {number}"
        principals = statement.get("Principal")
        values = ["*"] if principals == "*" else [v for vs in (principals or {}).values() for v in _as_list(vs)]
        if request.principal in values or "*" in values:
            named = named or label
        else:
            delegated = delegated or label
    return named, delegated
