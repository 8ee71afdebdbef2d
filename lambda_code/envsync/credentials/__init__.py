"""The sync database users: creating them (db_users) and rotating their passwords (rotation)."""
