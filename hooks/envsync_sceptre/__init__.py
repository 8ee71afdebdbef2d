"""Sceptre plugins of envsync (hooks and resolvers), registered by entry points in pyproject.toml."""
