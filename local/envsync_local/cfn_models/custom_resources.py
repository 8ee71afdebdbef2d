"""Custom resource types (filled below)."""
