"""The Lambda package: a deterministic zip of the engine and its pinned dependencies."""
