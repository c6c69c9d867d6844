"""The plug-in path through which a slave serves pipeline services.

A plug-in is ``module:attr`` where ``attr`` is a callable taking the slave's
settings and returning the services to serve. The example ``MyPipeline`` is
loaded this way too, so a user's own service needs nothing from arko but this.

Plug-ins are imported from ``--app_dir`` (the current folder by default)
before the installed packages, as uvicorn and celery do: ``arko-slave`` run
from a project folder finds the project's modules, which the console script
alone would not (its ``sys.path`` starts at the script's own folder).
"""

from __future__ import annotations

import importlib
import re
import sys
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import grpc
from google.protobuf.descriptor import FileDescriptor

from arko.common.errors import StartupError

if TYPE_CHECKING:
    from arko.slave.settings import SlaveSettings


@dataclass(frozen=True, slots=True)
class Service:
    """A servicer ready to add to a server, with its full name for reflection."""

    name: str
    add: Callable[[grpc.aio.Server], None]

    @classmethod
    def of(
        cls,
        file: FileDescriptor,
        service: str,
        servicer: Any,
        add_to_server: Callable[[Any, grpc.aio.Server], None],
    ) -> Service:
        """Build from generated code.

        Example: ``Service.of(x_pb2.DESCRIPTOR, "X", impl, add_XServicer_to_server)``.

        Args:
            file: The generated module's ``DESCRIPTOR``: the slave serves it
                through reflection, which is how the master learns the
                methods, their messages and their job policy.
            service: The service's name as the proto declares it, without
                its package (``"X"``, not ``"pkg.v1.X"``).
            servicer: The object whose methods answer the calls.
            add_to_server: The generated ``add_XServicer_to_server``.

        Raises:
            StartupError: ``file`` declares no service ``service``.
        """
        declared = file.services_by_name.get(service)
        if declared is None:
            raise StartupError(
                f"{file.name} declares no service {service!r}; it declares: "
                f"{', '.join(file.services_by_name) or 'none'}"
            )
        return cls(name=declared.full_name, add=lambda server: add_to_server(servicer, server))


Plugin = Callable[["SlaveSettings"], Iterable[Service]]

# CPython's wording for a failed ``from PACKAGE import NAME``; its ImportError
# carries only PACKAGE as ``name`` (3.11 has no ``name_from``), so NAME is read
# from the message.
_FROM_IMPORT = re.compile(r"cannot import name '(\w+)' from '([\w.]+)'")
_GENERATED_SUFFIXES = ("_pb2_grpc", "_pb2")


def _missing_module(exc: ImportError) -> str | None:
    """The full name of the module an import did not find, None when it is not that."""
    if isinstance(exc, ModuleNotFoundError):
        return exc.name
    found = _FROM_IMPORT.match(str(exc))
    return f"{found[2]}.{found[1]}" if found else None


def _ungenerated(exc: ImportError) -> tuple[Path, Path] | None:
    """Import root and proto from which ``arko-protoc`` makes the module ``exc`` misses.

    Only a ``*_pb2``/``*_pb2_grpc`` module whose ``.proto`` sits where
    ``arko-protoc`` would write it counts, so no other ImportError is blamed
    on code generation.
    """
    missing = _missing_module(exc)
    if missing is None:
        return None
    *package, leaf = missing.split(".")
    stem = next((leaf.removesuffix(s) for s in _GENERATED_SUFFIXES if leaf.endswith(s)), None)
    if not stem:
        return None
    proto = Path(*package, f"{stem}.proto")
    for entry in sys.path:
        root = Path(entry or ".")
        if (root / proto).is_file():
            return root, proto
    return None


def load_plugin(spec: str) -> Plugin:
    """Import ``module:attr``.

    Raises:
        StartupError: the spec is malformed, the module or attribute missing,
            or the attribute is not callable.
    """
    module_name, sep, attr = spec.partition(":")
    if not sep or not module_name or not attr:
        raise StartupError(f"service plug-in {spec!r} is not of the form module:attr")
    try:
        module = importlib.import_module(module_name)
    except ImportError as exc:
        ungenerated = _ungenerated(exc)
        if ungenerated is not None:
            root, proto = ungenerated
            raise StartupError(
                f"cannot import service plug-in module {module_name!r}: {exc}; that module is "
                f"generated from {proto}: run `arko-protoc {proto}` in {root.resolve()} first"
            ) from None
        raise StartupError(
            f"cannot import service plug-in module {module_name!r}: {exc} (plug-ins are "
            "imported from --app_dir, the current folder by default, and the installed packages)"
        ) from None
    plugin = getattr(module, attr, None)
    if not callable(plugin):
        raise StartupError(f"service plug-in {spec!r}: {attr!r} is missing or not callable")
    return plugin  # type: ignore[no-any-return]


def use_app_dir(folder: Path) -> None:
    """Put ``folder`` first on the import path (once), as uvicorn's ``--app-dir`` does.

    Raises:
        StartupError: ``folder`` is not a folder.
    """
    if not folder.is_dir():
        raise StartupError(f"--app_dir {folder} is not a folder")
    path = str(folder.resolve())
    if path in sys.path:
        sys.path.remove(path)
    sys.path.insert(0, path)


def load_services(specs: Iterable[str], settings: SlaveSettings) -> list[Service]:
    """Every service all plug-ins provide (imported from ``settings.app_dir`` first).

    Raises:
        StartupError: a plug-in cannot be loaded, services clash, or none is given.
    """
    use_app_dir(settings.app_dir)
    services: list[Service] = []
    for spec in specs:
        services.extend(load_plugin(spec)(settings))
    names = [s.name for s in services]
    dupes = sorted({n for n in names if names.count(n) > 1})
    if dupes:
        raise StartupError(f"services provided twice: {', '.join(dupes)}")
    if not services:
        raise StartupError("no service to serve: give at least one --service module:attr")
    return services
