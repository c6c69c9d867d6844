"""Where the master keeps what must survive it: SQLite or PostgreSQL.

``rows`` holds the ``Store`` protocol and the plain rows it takes and gives;
``sql`` the two SQL stores; ``models`` and ``migrations`` the schema;
``errors`` says why a database cannot be used; ``lock`` and ``private_files``
guard the files on disk.
"""
