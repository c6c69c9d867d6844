"""``arko-protoc``: protoc for a pipeline's proto, with arko's own protos at hand.

A user's proto imports ``arko/v1/options.proto`` to declare a job policy; that
file ships inside the installed arko package (``arko/sdk/include``), and the
well-known types (``google/protobuf/*.proto``) ship with grpcio-tools. This
command puts both on protoc's include path, so generating code is one line
from a plain ``pip install 'arko-ci[sdk]'``::

    arko-protoc hello/hello.proto

Without any ``--*_out`` option it writes Python, type stubs and gRPC code next
to the proto, with the current folder as the import root: ``hello/hello.proto``
becomes ``hello/hello_pb2.py`` and the gRPC module imports it as
``from hello import hello_pb2``, which matches the package layout. Any other
protoc arguments are passed through unchanged.
"""

from __future__ import annotations

import sys
from collections.abc import Sequence
from importlib import resources
from pathlib import Path

# arko's protos as shipped in the package: include/arko/v1/*.proto.
INCLUDE = Path(str(resources.files("arko.sdk") / "include"))
DEFAULT_OUTPUTS = ("--python_out=.", "--pyi_out=.", "--grpc_python_out=.")


def include_path() -> list[Path]:
    """Folders to search for imported protos: arko's, then the well-known types.

    Raises:
        SystemExit: grpcio-tools is not installed.
    """
    try:
        import grpc_tools
    except ImportError:
        raise SystemExit("arko-protoc needs grpcio-tools: pip install 'arko-ci[sdk]'") from None
    return [INCLUDE, Path(grpc_tools.__file__).parent / "_proto"]


def protoc_args(args: Sequence[str]) -> list[str]:
    """The full protoc command line for the user's ``args``."""
    given = list(args)
    if not any(a.startswith("--") and a.partition("=")[0].endswith("_out") for a in given):
        given = ["-I.", *DEFAULT_OUTPUTS, *given]
    return ["grpc_tools.protoc", *given, *(f"-I{folder}" for folder in include_path())]


def main(argv: Sequence[str] | None = None) -> int:
    """Run protoc; its exit status (1 when a proto does not compile)."""
    args = list(sys.argv[1:] if argv is None else argv)
    if not args or args[0] in ("-h", "--help"):
        print(__doc__)
        return 0 if args else 2
    from grpc_tools import protoc

    return int(protoc.main(protoc_args(args)))


if __name__ == "__main__":
    raise SystemExit(main())
