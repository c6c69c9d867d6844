"""The committed generated code matches what ``make proto`` makes from protos/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def _generated(folder: Path) -> dict[str, bytes]:
    return {
        p.name: p.read_bytes()
        for p in folder.iterdir()
        if p.name != "__init__.py" and p.is_file() and "_pb2" in p.name
    }


def test_generated_code_is_up_to_date(tmp_path: Path) -> None:
    """Regenerating arko/gen and arko/v1 from protos/ changes no file."""
    out = tmp_path / "arko" / "gen"
    out.mkdir(parents=True)
    subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "genproto.py"), str(out)], check=True, timeout=60
    )
    for folder in ("gen", "v1"):
        fresh = _generated(tmp_path / "arko" / folder)
        old = _generated(ROOT / "arko" / folder)
        assert fresh, f"nothing generated into arko/{folder}"
        assert sorted(fresh) == sorted(old), f"arko/{folder} file list differs: run `make proto`"
        stale = [name for name in fresh if fresh[name] != old[name]]
        assert not stale, f"stale generated code {stale}: run `make proto` and commit"


def test_original_wire_names_are_kept() -> None:
    """The three original protos have no package, so services keep their bare names."""
    from arko.gen import execution_pb2, pipeline_pb2, register_pb2

    assert execution_pb2.DESCRIPTOR.package == ""
    assert register_pb2.DESCRIPTOR.services_by_name["Register"].full_name == "Register"
    assert execution_pb2.DESCRIPTOR.services_by_name["Execution"].full_name == "Execution"
    assert pipeline_pb2.DESCRIPTOR.services_by_name["MyPipeline"].full_name == "MyPipeline"
    fields = {f.name: f.number for f in register_pb2.SlaveConfig.DESCRIPTOR.fields}
    assert fields == {
        "host": 1,
        "port": 2,
        "token": 3,
        "call_secret": 4,
        "call_nonce": 5,
        "registration_nonce": 6,
    }
    fields = {f.name: f.number for f in execution_pb2.JobParams.DESCRIPTOR.fields}
    assert fields == {"method": 1, "params": 2}
