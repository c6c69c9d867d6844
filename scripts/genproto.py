"""Generate arko's Python protobuf and gRPC code from ``protos/``.

Used by ``make proto`` and by the test that fails when the committed code is
stale, so both produce byte-identical output. The ``arko/gen=protos`` include
mapping makes protoc write ``from arko.gen import ...`` imports instead of the
top-level ``import execution_pb2`` that would break inside a package.
"""

from __future__ import annotations

import sys
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"


def generate(out_dir: Path) -> None:
    """Write ``arko/gen/*_pb2*.py`` for every proto under ``protos/`` into ``out_dir``."""
    build_root = out_dir.resolve().parent.parent  # out_dir is <root>/arko/gen
    protos = sorted(str(p) for p in PROTOS.glob("*.proto"))
    args = [
        "grpc_tools.protoc",
        f"-Iarko/gen={PROTOS}",
        f"--python_out={build_root}",
        f"--pyi_out={build_root}",
        f"--grpc_python_out={build_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "arko" / "gen"
    if target.resolve().parts[-2:] != ("arko", "gen"):
        raise SystemExit(f"output folder must end in arko/gen, got {target}")
    target.mkdir(parents=True, exist_ok=True)
    generate(target)
