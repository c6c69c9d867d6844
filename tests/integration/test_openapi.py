"""``/openapi.json``: valid, made from the fleet's descriptors, and fuzzed without a 5xx."""

from __future__ import annotations

import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any

from openapi_spec_validator import validate

from arko.testing import Fleet, wait_until
from tests.integration.web import start_web

RUN_PATH = "/api/v1/run/MyPipeline.DryRun"


def _schema(document: dict[str, Any], ref: dict[str, str]) -> dict[str, Any]:
    name = ref["$ref"].removeprefix("#/components/schemas/")
    found: dict[str, Any] = document["components"]["schemas"][name]
    return found


def test_document_validates_and_describes_each_method(fleet: Fleet) -> None:
    """Every slave method gets a run path whose body is its request message's schema."""
    web = start_web(fleet)
    document = web.get("/openapi.json").json()
    validate(document)
    operation = document["paths"][RUN_PATH]["post"]
    body = operation["requestBody"]["content"]["application/json"]["schema"]
    config = _schema(document, body)
    assert config["properties"] == {"param": {"type": "string"}, "password": {"type": "string"}}
    assert config["additionalProperties"] is False
    stream = document["paths"]["/api/v1/run/MyPipelineLogs.Stream"]["post"]
    logs = _schema(document, stream["requestBody"]["content"]["application/json"]["schema"])
    assert logs["properties"]["lines"] == {
        "type": "integer",
        "minimum": -(2**31),
        "maximum": 2**31 - 1,
    }
    assert logs["properties"]["interval"] == {"type": "number"}
    assert "security" not in operation


def test_document_follows_the_fleet(fleet: Fleet) -> None:
    """A slave's methods appear when it registers and go when the master forgets it."""
    web = start_web(fleet, "--ping_interval", "0.3", "--forget_after", "0.5", slave=False)
    assert RUN_PATH not in web.get("/openapi.json").json()["paths"]
    slave = fleet.slave(web.master, "--run_delay", "0")
    document = web.get("/openapi.json").json()
    validate(document)
    assert RUN_PATH in document["paths"]
    slave.stop()
    wait_until(
        lambda: RUN_PATH not in web.get("/openapi.json").json()["paths"],
        30,
        "the forgotten slave's methods to leave /openapi.json",
    )


def test_token_is_declared_when_required(fleet: Fleet) -> None:
    """With a client token the document declares bearer auth on every operation."""
    web = start_web(fleet, env={"ARKO_MASTER_CLIENT_TOKEN": "tok-123456"}, slave=False)
    document = web.get("/openapi.json", headers={"Authorization": "Bearer tok-123456"}).json()
    validate(document)
    assert document["components"]["securitySchemes"]["bearer"]["scheme"] == "bearer"
    assert all(
        op["security"] == [{"bearer": []}]
        for ops in document["paths"].values()
        for op in ops.values()
    )


def test_schemathesis_finds_no_server_error(fleet: Fleet, tmp_path: Path) -> None:
    """A property-based run of every operation (a few examples each) gets no 5xx answer.

    Jobs that waiting callers start are bounded by --job_timeout, so a
    generated ``{"lines": 2000000000}`` cannot make the run hang.
    """
    web = start_web(fleet, "--job_timeout", "3")
    found = shutil.which("schemathesis", path=str(Path(sys.executable).parent))
    assert found, "schemathesis is missing: it comes with the dev extra"
    result = subprocess.run(
        [
            found,
            "run",
            f"{web.url}/openapi.json",
            "--checks",
            "not_a_server_error",
            "--max-examples",
            "8",
            "--seed",
            "1",
            "--request-timeout",
            "30",
            "--workers",
            "1",
            "--report-dir",
            str(tmp_path),
        ],
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
        cwd=tmp_path,  # its cache folder goes there, not into the checkout
        env={"SCHEMATHESIS_HOOKS": "", "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )
    output = result.stdout + result.stderr
    assert result.returncode == 0, output[-6000:]
    operations = sum(len(ops) for ops in web.get("/openapi.json").json()["paths"].values())
    assert operations >= 12  # 8 fixed ones and the slave's 4 methods
    assert f"Tested: {operations}" in output, output[-3000:]
