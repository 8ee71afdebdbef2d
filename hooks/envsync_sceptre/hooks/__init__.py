"""Sceptre hooks (`!envsync_validate`), registered by entry points."""
