"""The server edge shared by every capability: connections, flavours, information_schema, the lock."""
