from google.protobuf import descriptor_pb2 as _descriptor_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional

DESCRIPTOR: _descriptor.FileDescriptor
JOB_FIELD_NUMBER: _ClassVar[int]
job: _descriptor.FieldDescriptor

class JobPolicy(_message.Message):
    __slots__ = ("timeout_seconds", "max_concurrency", "required_labels", "retries")
    class RequiredLabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    TIMEOUT_SECONDS_FIELD_NUMBER: _ClassVar[int]
    MAX_CONCURRENCY_FIELD_NUMBER: _ClassVar[int]
    REQUIRED_LABELS_FIELD_NUMBER: _ClassVar[int]
    RETRIES_FIELD_NUMBER: _ClassVar[int]
    timeout_seconds: int
    max_concurrency: int
    required_labels: _containers.ScalarMap[str, str]
    retries: int
    def __init__(self, timeout_seconds: _Optional[int] = ..., max_concurrency: _Optional[int] = ..., required_labels: _Optional[_Mapping[str, str]] = ..., retries: _Optional[int] = ...) -> None: ...
