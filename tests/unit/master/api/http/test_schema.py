"""Request descriptors become JSON Schemas and form fields (arko.master.api.http.schema)."""

from __future__ import annotations

from google.protobuf import descriptor_pb2

from arko.gen import pipeline_pb2
from arko.master.api.http.schema import SchemaBuilder, describe_fields
from arko.v1 import jobs_pb2

REFS = "#/components/schemas/"


def test_maps_well_known_types_and_unknown_fields() -> None:
    """A map is an object of its values, Struct any object, and unknown fields are refused."""
    builder = SchemaBuilder(REFS)
    assert builder.message(jobs_pb2.RunRequest.DESCRIPTOR) == {"$ref": f"{REFS}arko.v1.RunRequest"}
    run = builder.definitions["arko.v1.RunRequest"]
    assert run["additionalProperties"] is False
    assert run["properties"]["params"] == {
        "type": "object",
        "additionalProperties": {"type": "string"},
    }
    assert run["properties"]["args"] == {"type": "object"}
    assert run["properties"]["detach"] == {"type": "boolean"}


def test_repeated_enums_integers_and_nested_messages() -> None:
    """Enums list their names, integers their range, nested messages are defined once by ref."""
    builder = SchemaBuilder(REFS)
    builder.message(jobs_pb2.ListJobsRequest.DESCRIPTOR)
    builder.message(jobs_pb2.JobEvent.DESCRIPTOR)
    listing = builder.definitions["arko.v1.ListJobsRequest"]["properties"]
    assert listing["states"]["type"] == "array"
    assert "SUCCEEDED" in listing["states"]["items"]["enum"]
    assert listing["pageSize"] == {"type": "integer", "minimum": -(2**31), "maximum": 2**31 - 1}
    event = builder.definitions["arko.v1.JobEvent"]["properties"]
    assert event["job"] == {"$ref": f"{REFS}arko.v1.Job"}
    job = builder.definitions["arko.v1.Job"]["properties"]
    assert job["createdAt"] == {"type": "string", "format": "date-time"}
    assert job["outputBytes"]["maximum"] == 2**63 - 1


def test_recursive_messages_end() -> None:
    """A message that contains itself is defined once and referred to, not expanded forever."""
    builder = SchemaBuilder(REFS)
    builder.message(descriptor_pb2.DescriptorProto.DESCRIPTOR)
    nested = builder.definitions["google.protobuf.DescriptorProto"]["properties"]["nestedType"]
    assert nested == {
        "type": "array",
        "items": {"$ref": f"{REFS}google.protobuf.DescriptorProto"},
    }


def test_form_fields_mark_secrets_and_kinds() -> None:
    """The run form learns each field's kind, and that a password is secret."""
    fields = {f["name"]: f for f in describe_fields(pipeline_pb2.MyPipelineConfig.DESCRIPTOR)}
    assert fields["password"]["secret"] is True
    assert fields["param"]["secret"] is False
    listing = {f["name"]: f for f in describe_fields(jobs_pb2.ListJobsRequest.DESCRIPTOR)}
    assert listing["states"]["type"] == "enum"
    assert listing["states"]["repeated"] is True
    assert listing["states"]["enum"][1] == "QUEUED"
    run = {f["name"]: f for f in describe_fields(jobs_pb2.RunRequest.DESCRIPTOR)}
    assert run["params"]["type"] == "map"
    assert run["params"]["repeated"] is False
    assert run["args"]["message"] == "google.protobuf.Struct"
