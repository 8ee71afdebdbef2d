"""Checking a resolver's argument in `setup()`, when Sceptre attaches it to a stack: a bad
argument stops `generate`, `validate`, `diff` and `launch` with Sceptre's own
`InvalidResolverArgumentError` before anything is resolved or sent to AWS."""

from __future__ import annotations

from typing import Mapping, Sequence

from sceptre.resolvers import Resolver


def require_mapping(resolver: Resolver, tag: str, required: Sequence[str], optional: Sequence[str] = ()) -> None:
    """The raw argument must be a mapping holding `required` (and no keys beyond `optional`)."""
    argument = resolver.argument
    shape = "{" + ", ".join([*required, *(f"{key} (optional)" for key in optional)]) + "}"
    if not isinstance(argument, Mapping):
        resolver.raise_invalid_argument_error(f"{tag} needs a mapping {shape}, got {argument!r}")
    missing = [key for key in required if argument.get(key) in (None, "")]
    unknown = sorted(set(argument) - set(required) - set(optional))
    if missing or unknown:
        what = "; ".join(filter(None, [missing and f"missing {', '.join(missing)}",
                                       unknown and f"unknown {', '.join(unknown)}"]))
        resolver.raise_invalid_argument_error(f"{tag} needs {shape}: {what}")


def require_text(resolver: Resolver, tag: str, what: str) -> None:
    """The raw argument must be a non-empty scalar (`!tag value`)."""
    argument = resolver.argument
    if isinstance(argument, (Mapping, list)) or not str(argument or "").strip():
        resolver.raise_invalid_argument_error(f"{tag} needs {what}, got {argument!r}")
