"""Why the master's database cannot be used at start, said with what to do about it.

Whatever stops the database at start (a name mistyped, a server not started,
a user it does not know, a file that is not a database) is the operator's to
fix, so the master names the cause and the fix in one ``startup_failed``
line rather than print a driver's traceback. Drivers are told apart by what
their errors carry (PostgreSQL's SQLSTATE, SQLite's error name), so this
module needs neither asyncpg nor peewee.
"""

from __future__ import annotations

import os
import socket
import urllib.parse

from arko.common.errors import StartupError

# SQLSTATE -> what to do; {user}, {name}, {host} and {port} come from the URL.
_POSTGRES_FIXES = {
    "3D000": "create it (createdb -h {host} -p {port} -U {user} {name}) or name another in --db",
    "28000": "give a user the server accepts in --db (or allow {user} in its pg_hba.conf)",
    "28P01": "give the right password of {user} in --db",
    "42501": "grant {user} the right to create tables in {name} "
    "(GRANT CREATE ON SCHEMA public TO {user}) or give another user in --db",
    "53300": "raise the server's max_connections or stop some of its other clients",
    "57P03": "wait until the server has started, then start the master again",
}
_POSTGRES_OTHER = "check --db and the server's log"
_UNREACHABLE = "start PostgreSQL there, or fix the host and port in --db"

# SQLite error name -> what to do; {path} is the --db file.
_SQLITE_FIXES = {
    "SQLITE_NOTADB": "{path} is not a SQLite database (damaged, or another kind of file): "
    "move it aside or restore a backup, or give another --db",
    "SQLITE_CORRUPT": "{path} is damaged: restore a copy (made by arko backup) "
    "or give another --db",
    "SQLITE_CANTOPEN": "check that the folder of {path} exists and this user may write "
    "there, or give another --db",
    "SQLITE_READONLY": "let this user write {path} and its folder, or give another --db",
    "SQLITE_PERM": "let this user write {path} and its folder, or give another --db",
    "SQLITE_FULL": "free some space on the disk of {path}, or give another --db",
}
_SQLITE_OTHER = "check --db, or give another"


def _url_parts(url: str) -> dict[str, str]:
    parts = urllib.parse.urlsplit(url)
    try:
        port = str(parts.port or 5432)
    except ValueError:
        port = "5432"
    return {
        "user": urllib.parse.unquote(parts.username or "") or "postgres",
        "name": urllib.parse.unquote(parts.path.lstrip("/")),
        "host": parts.hostname or "localhost",
        "port": port,
    }


def _driver_error(exc: BaseException) -> BaseException:
    """The driver's own error: peewee wraps it, keeping it as the cause."""
    return exc.__cause__ if exc.__cause__ is not None else exc


def postgres_startup_error(exc: BaseException, url: str, shown: str) -> StartupError:
    """The start-up error for ``exc``, raised opening the PostgreSQL database ``url``.

    Args:
        exc: What the driver raised (or peewee, wrapping it).
        url: ``--db``, to name the user, database, host and port in the fix.
        shown: ``url`` with its password hidden, to show.
    """
    given = _url_parts(url)
    where = f"{given['host']}:{given['port']}"
    error = _driver_error(exc)
    state = getattr(error, "sqlstate", None)
    if isinstance(state, str):
        fix = _POSTGRES_FIXES.get(state, _POSTGRES_OTHER).format(**given)
    elif isinstance(error, socket.gaierror):
        fix = f"the host {given['host']} is unknown: fix it in --db"
    elif isinstance(error, TimeoutError):
        fix = f"nothing answered at {where} in time: {_UNREACHABLE}"
    elif isinstance(error, OSError):
        fix = f"nothing answers at {where}: {_UNREACHABLE}"
    else:
        fix = _POSTGRES_OTHER
    return StartupError(f"cannot use database {shown}: {error}; {fix}")


def sqlite_startup_error(exc: BaseException, path: str) -> StartupError:
    """The start-up error for ``exc``, raised opening the SQLite file ``path``."""
    error = _driver_error(exc)
    name = getattr(error, "sqlite_errorname", "")
    if os.path.isdir(path):
        fix = f"{path} is a folder: give the path of a database file in --db"
    else:
        fix = _SQLITE_FIXES.get(name, _SQLITE_OTHER).format(path=path)
    return StartupError(f"cannot use database {path}: {error}; {fix}")
