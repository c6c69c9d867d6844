"""Generate arko's Python protobuf and gRPC code from ``protos/``.

Used by ``make proto`` and by the test that fails when the committed code is
stale, so both produce byte-identical output.

* The original three protos (no package) go to ``arko/gen``: the
  ``arko/gen=protos`` include mapping makes protoc write ``from arko.gen import
  ...`` imports instead of a top-level ``import execution_pb2`` that would
  break inside a package.
* ``protos/arko/v1/*.proto`` (``package arko.v1``) go to ``arko/v1`` (and are
  copied to ``arko/sdk/include/arko/v1`` for ``arko-protoc``), named
  ``arko/v1/<name>.proto`` in descriptors: that is the path a user's proto
  imports (``import "arko/v1/options.proto"``), and ``from arko.v1 import
  options_pb2`` is what the user's generated code then imports.
"""

from __future__ import annotations

import shutil
import sys
from importlib import resources
from pathlib import Path

from grpc_tools import protoc

ROOT = Path(__file__).resolve().parent.parent
PROTOS = ROOT / "protos"
# google/protobuf/*.proto (Struct, Timestamp) as grpcio-tools ships them.
WELL_KNOWN = resources.files("grpc_tools") / "_proto"


def _protoc(include: str, build_root: Path, protos: list[str]) -> None:
    args = [
        "grpc_tools.protoc",
        include,
        f"-I{WELL_KNOWN}",
        f"--python_out={build_root}",
        f"--pyi_out={build_root}",
        f"--grpc_python_out={build_root}",
        *protos,
    ]
    if protoc.main(args) != 0:
        raise SystemExit("protoc failed")


def generate(out_dir: Path) -> None:
    """Write the generated code into ``out_dir`` (``arko/gen``) and its sibling ``arko/v1``."""
    build_root = out_dir.resolve().parent.parent  # out_dir is <root>/arko/gen
    _protoc(f"-Iarko/gen={PROTOS}", build_root, sorted(str(p) for p in PROTOS.glob("*.proto")))
    (build_root / "arko" / "v1").mkdir(parents=True, exist_ok=True)
    v1 = sorted(str(p) for p in (PROTOS / "arko" / "v1").glob("*.proto"))
    _protoc(f"-I{PROTOS}", build_root, v1)
    # The arko.v1 protos ship in the package too, for users' protos to import
    # (arko-protoc puts this folder on the include path).
    shipped = build_root / "arko" / "sdk" / "include" / "arko" / "v1"
    shipped.mkdir(parents=True, exist_ok=True)
    for proto in v1:
        shutil.copyfile(proto, shipped / Path(proto).name)


if __name__ == "__main__":
    target = Path(sys.argv[1]) if len(sys.argv) > 1 else ROOT / "arko" / "gen"
    if target.resolve().parts[-2:] != ("arko", "gen"):
        raise SystemExit(f"output folder must end in arko/gen, got {target}")
    target.mkdir(parents=True, exist_ok=True)
    generate(target)
