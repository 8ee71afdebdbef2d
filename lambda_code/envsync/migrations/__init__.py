"""Versioned migrations: script sources and rules (plan), one script's run (runner), the history
table, statement splitting (scripts), apply and repair under the lock (migrate), proof of origin."""
