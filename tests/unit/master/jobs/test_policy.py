"""The job policy is read from a reflected method's options, defaulting to empty."""

from __future__ import annotations

from google.protobuf import descriptor_pb2, descriptor_pool

from arko.master.jobs.policy import job_policy
from arko.master.slaves.discovery import Catalog
from arko.v1 import options_pb2


def _catalog(with_option: bool) -> Catalog:
    """A catalog built as discovery builds one: a private pool of reflected files."""
    user = descriptor_pb2.FileDescriptorProto(
        name="deploy.proto",
        package="acme",
        syntax="proto3",
        dependency=["arko/v1/options.proto"],
    )
    user.message_type.add(name="Req")
    service = user.service.add(name="Deploy")
    for name in ("Production", "Staging"):
        service.method.add(name=name, input_type=".acme.Req", output_type=".acme.Req")
    if with_option:
        policy = service.method[0].options.Extensions[options_pb2.job]
        policy.max_concurrency = 1
        policy.timeout_seconds = 900
        policy.required_labels["env"] = "prod"
    pool = descriptor_pool.DescriptorPool()
    for dep in (descriptor_pb2.DESCRIPTOR, options_pb2.DESCRIPTOR):
        proto = descriptor_pb2.FileDescriptorProto()
        dep.CopyToProto(proto)
        pool.Add(proto)
    # Round-trip through bytes, as reflection delivers the file.
    pool.Add(descriptor_pb2.FileDescriptorProto.FromString(user.SerializeToString()))
    methods = ("acme.Deploy.Production", "acme.Deploy.Staging")
    return Catalog(protocol="v1", pool=pool, methods=methods, fingerprint=b"")


def test_declared_policy_is_read() -> None:
    policy = job_policy(_catalog(with_option=True), "acme.Deploy.Production")
    assert policy.max_concurrency == 1
    assert policy.timeout_seconds == 900
    assert dict(policy.required_labels) == {"env": "prod"}


def test_methods_without_the_option_get_the_empty_policy() -> None:
    catalog = _catalog(with_option=True)
    assert job_policy(catalog, "acme.Deploy.Staging") == options_pb2.JobPolicy()
    assert job_policy(_catalog(with_option=False), "acme.Deploy.Production") == (
        options_pb2.JobPolicy()
    )


def test_unknown_methods_and_missing_catalogs_get_the_empty_policy() -> None:
    assert job_policy(None, "acme.Deploy.Production") == options_pb2.JobPolicy()
    assert job_policy(_catalog(with_option=True), "acme.Nope.X") == options_pb2.JobPolicy()
    assert job_policy(_catalog(with_option=True), "NoDot") == options_pb2.JobPolicy()
