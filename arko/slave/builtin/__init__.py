"""Pipeline services that ship with arko, loaded like any plug-in with ``--service``."""
