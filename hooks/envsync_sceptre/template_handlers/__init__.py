"""Sceptre template handlers (`template: {type: envsync_python, ...}`), registered by entry points."""
