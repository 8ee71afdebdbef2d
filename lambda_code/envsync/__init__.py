"""envsync: schema migrations, schema drift and reference-data sync between environments."""

__version__ = "0.1.0"
