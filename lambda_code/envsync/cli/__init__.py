"""`envsync` from a shell: one module per command family (main: the parser and most commands)."""
