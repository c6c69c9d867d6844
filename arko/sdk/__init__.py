"""Writing pipelines for arko: child jobs from a handler, and ``arko-protoc``.

In a handler of a method an arko master runs as a job::

    from arko.sdk import JobContext, JobFailed

    job = JobContext.of(context)
    lint, tests = await asyncio.gather(job.run("Ci.Lint"), job.run("Ci.Test"))

``arko-protoc`` (:mod:`arko.sdk.protoc`) needs ``arko-ci[sdk]``.
"""

from arko.sdk.context import JobContext
from arko.sdk.errors import JobError, JobFailed, JobRefused, NotAJob
from arko.sdk.masters import Masters, close, configure

__all__ = [
    "JobContext",
    "JobError",
    "JobFailed",
    "JobRefused",
    "Masters",
    "NotAJob",
    "close",
    "configure",
]
