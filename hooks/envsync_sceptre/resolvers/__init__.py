"""Sceptre resolvers (`!envsync_*` tags), one class per module, registered by entry points."""
