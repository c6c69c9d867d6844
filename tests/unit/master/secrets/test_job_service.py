"""The job service with secrets: the slave gets the value, everything else the reference."""

from __future__ import annotations

import asyncio
import json
import os
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import grpc
import pytest
from google.protobuf.wrappers_pb2 import StringValue

from arko.common.errors import PermissionDenied, SlaveCallFailed
from arko.master.jobs.executor import JobInput, OnMessage, OnStart
from arko.master.jobs.live import OUTPUT, LiveJobs
from arko.master.jobs.records import JobRecorder
from arko.master.jobs.service import JobService, Submission
from arko.master.secrets.references import SecretResolver
from arko.master.secrets.sealing import Sealer
from arko.master.secrets.vault import Vault
from arko.master.store.rows import EventRow, JobRow
from arko.master.store.sql import open_store

VALUE = 'se"cr\\et'
JSON_FORM = json.dumps(VALUE)[1:-1]


class Store:
    """Job records kept in memory (the secrets live in a real SQLite store)."""

    def __init__(self) -> None:
        self.jobs: dict[str, JobRow] = {}

    async def save_jobs(self, jobs: Sequence[JobRow], events: Sequence[EventRow] = ()) -> None:
        self.jobs.update((job.id, job) for job in jobs)

    async def interrupt_unfinished(self, reason: str, master: str | None = None) -> int:
        return 0

    async def get_job(self, job_id: str) -> JobRow | None:
        return self.jobs.get(job_id)


class EchoingSlave:
    """Answers with what it was sent, then fails echoing it too when ``fail`` is set."""

    def __init__(self, fail: bool = False) -> None:
        self.sent: list[JobInput] = []
        self.fail = fail

    def check(self, job: JobInput) -> None:
        pass

    async def execute(
        self,
        job: JobInput,
        timeout: float | None,
        on_start: OnStart,
        on_message: OnMessage,
        *_: Any,
    ) -> bool:
        self.sent.append(job)
        on_start("127.0.0.1:7001")
        seen = f"key={job.params['key']} json={json.dumps(dict(job.params))}"
        await on_message(StringValue(value=seen))
        if self.fail:
            details = job.secrets.text(f"refused {job.params['key']}")  # as the executor does
            raise SlaveCallFailed(grpc.StatusCode.ABORTED, "127.0.0.1:7001", details)
        return False


async def service(
    tmp: Path, slave: EchoingSlave, records: Store
) -> tuple[JobService, JobRecorder, Any]:
    secrets = await open_store(str(tmp / "secrets.db"))
    vault = Vault(secrets, Sealer(os.urandom(32)))
    await vault.set("KEY", VALUE, ["Deploy.*"])
    recorder = JobRecorder(records, tmp / "journal")  # type: ignore[arg-type]
    await recorder.recover()
    jobs = JobService(
        slave,  # type: ignore[arg-type]
        recorder,
        records,  # type: ignore[arg-type]
        LiveJobs(),
        1 << 20,
        60.0,
        secrets=SecretResolver(vault),
    )
    return jobs, recorder, secrets


@pytest.mark.parametrize("fail", [False, True])
def test_the_slave_gets_the_value_and_the_rest_sees_the_reference_or_stars(
    tmp_path: Path, fail: bool
) -> None:
    """Sent: the value. Record params: the reference. Output, result, error: ***."""

    async def scenario() -> None:
        slave, records = EchoingSlave(fail), Store()
        jobs, recorder, secrets = await service(tmp_path, slave, records)
        try:
            job = jobs.submit(Submission("Deploy.Run", {"key": "${secret:KEY}"}))
            if fail:
                with pytest.raises(SlaveCallFailed) as caught:
                    await job.run()
                assert VALUE not in caught.value.message
            else:
                await job.run()
            assert slave.sent[0].params == {"key": VALUE}
            row = await jobs.get(job.id)
            assert row.params == {"key": "${secret:KEY}"}
            (output,) = [e.data for e in job.live.since(0) if e.kind == OUTPUT]
            everything = json.dumps([output, row.result, row.error])
            assert VALUE not in everything and JSON_FORM not in everything
            assert "key=***" in output and '\\"key\\": \\"***\\"' in output
            await recorder.close()  # every record written to the store
            stored = repr(records.jobs[job.id])
            assert VALUE not in stored and JSON_FORM not in stored
            assert "${secret:KEY}" in stored
        finally:
            await secrets.close()

    asyncio.run(scenario())


def test_a_method_the_globs_refuse_fails_on_record_and_never_reaches_the_slave(
    tmp_path: Path,
) -> None:
    """PERMISSION_DENIED on record; the slave was never called."""

    async def scenario() -> None:
        slave = EchoingSlave()
        jobs, recorder, secrets = await service(tmp_path, slave, Store())
        try:
            job = jobs.submit(Submission("Build.Run", {"key": "${secret:KEY}"}))
            with pytest.raises(PermissionDenied):
                await job.run()
            row = await jobs.get(job.id)
            assert (row.state, row.error_code) == ("failed", "PERMISSION_DENIED")
            assert "secret KEY" in row.error and "Build.Run" in row.error
            assert slave.sent == []
            await recorder.close()
        finally:
            await secrets.close()

    asyncio.run(scenario())
