"""Where the master keeps what must survive it: SQLite or PostgreSQL.

``database`` holds the ``Store`` protocol, its rows and the two SQL stores;
``models`` and ``migrations`` the schema; ``errors`` says why a database cannot
be used; ``lock`` and ``private_files`` guard the files on disk.
"""
