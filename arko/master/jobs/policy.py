"""A method's job policy, read from the ``arko.v1.job`` option of its descriptor.

The option lives in the slave's proto (``protos/arko/v1/options.proto``), so
the master learns it through reflection with the rest of the catalog; a
method without it, or a slave whose files never import the option, gets the
empty policy: no limit, no labels, no retries, the caller's deadline.
"""

from __future__ import annotations

from typing import Any

from arko.master.slaves.discovery import Catalog
from arko.v1 import options_pb2
from arko.v1.options_pb2 import JobPolicy

# protoc's stubs type a file-level extension as a plain FieldDescriptor,
# which the stubs of Message.Extensions do not accept.
_JOB: Any = options_pb2.job


def job_policy(catalog: Catalog | None, method: str) -> JobPolicy:
    """The policy declared on ``Service.Method`` in ``catalog``, or the empty one."""
    service, _, name = method.rpartition(".")
    desc = catalog.method(service, name) if catalog is not None and service else None
    policy = JobPolicy()
    if desc is not None:
        options = desc.GetOptions()
        if options.HasExtension(_JOB):
            policy.CopyFrom(options.Extensions[_JOB])
    return policy
