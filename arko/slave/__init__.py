"""The arko slave: serves pipeline services and registers with a master."""
