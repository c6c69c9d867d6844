"""What the SDK raises, so a pipeline handler never juggles a raw ``grpc.RpcError``."""

from __future__ import annotations

import grpc

from arko.v1 import jobs_pb2


class JobError(Exception):
    """Root of every error the SDK raises.

    Attributes:
        code: The gRPC status code that says what went wrong (a handler may
            abort its own call with it).
    """

    code: grpc.StatusCode = grpc.StatusCode.UNKNOWN

    def __init__(self, message: str) -> None:
        super().__init__(message)
        self.message = message


class NotAJob(JobError):
    """The call carries no job id and token: no arko master sent it as a job."""

    code = grpc.StatusCode.FAILED_PRECONDITION


class JobRefused(JobError):
    """The master would not start or read a child job (no record was made).

    For instance FAILED_PRECONDITION past ``--max_job_depth``, UNAUTHENTICATED
    once the parent has ended, UNAVAILABLE when no master answers.
    """

    def __init__(self, code: grpc.StatusCode, message: str) -> None:
        super().__init__(message)
        self.code = code


class JobFailed(JobError):
    """A child job ended without succeeding.

    Attributes:
        job: The child's record (``arko.v1.Job``): its id, method, state,
            status code and error.
        code: The child's status code (CANCELLED, DEADLINE_EXCEEDED...).
    """

    def __init__(self, job: jobs_pb2.Job) -> None:
        state = jobs_pb2.JobState.Name(job.state)
        super().__init__(
            f"child job {job.id} ({job.method}) ended {state}: {job.code or 'UNKNOWN'}: "
            f"{job.error or job.cancelled_by or 'no error given'}"
        )
        self.job = job
        self.code = (
            grpc.StatusCode[job.code]
            if job.code in grpc.StatusCode.__members__
            else (grpc.StatusCode.UNKNOWN)
        )
