import datetime

from google.protobuf import timestamp_pb2 as _timestamp_pb2
from arko.v1 import options_pb2 as _options_pb2
from arko.v1 import jobs_pb2 as _jobs_pb2
from google.protobuf.internal import containers as _containers
from google.protobuf import descriptor as _descriptor
from google.protobuf import message as _message
from collections.abc import Iterable as _Iterable, Mapping as _Mapping
from typing import ClassVar as _ClassVar, Optional as _Optional, Union as _Union

DESCRIPTOR: _descriptor.FileDescriptor

class ListSlavesRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class SlaveInfo(_message.Message):
    __slots__ = ("address", "status", "reason", "methods", "capacity", "running", "labels", "last_seen", "version")
    class LabelsEntry(_message.Message):
        __slots__ = ("key", "value")
        KEY_FIELD_NUMBER: _ClassVar[int]
        VALUE_FIELD_NUMBER: _ClassVar[int]
        key: str
        value: str
        def __init__(self, key: _Optional[str] = ..., value: _Optional[str] = ...) -> None: ...
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    STATUS_FIELD_NUMBER: _ClassVar[int]
    REASON_FIELD_NUMBER: _ClassVar[int]
    METHODS_FIELD_NUMBER: _ClassVar[int]
    CAPACITY_FIELD_NUMBER: _ClassVar[int]
    RUNNING_FIELD_NUMBER: _ClassVar[int]
    LABELS_FIELD_NUMBER: _ClassVar[int]
    LAST_SEEN_FIELD_NUMBER: _ClassVar[int]
    VERSION_FIELD_NUMBER: _ClassVar[int]
    address: str
    status: str
    reason: str
    methods: _containers.RepeatedScalarFieldContainer[str]
    capacity: int
    running: int
    labels: _containers.ScalarMap[str, str]
    last_seen: _timestamp_pb2.Timestamp
    version: str
    def __init__(self, address: _Optional[str] = ..., status: _Optional[str] = ..., reason: _Optional[str] = ..., methods: _Optional[_Iterable[str]] = ..., capacity: _Optional[int] = ..., running: _Optional[int] = ..., labels: _Optional[_Mapping[str, str]] = ..., last_seen: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., version: _Optional[str] = ...) -> None: ...

class ListSlavesResponse(_message.Message):
    __slots__ = ("slaves",)
    SLAVES_FIELD_NUMBER: _ClassVar[int]
    slaves: _containers.RepeatedCompositeFieldContainer[SlaveInfo]
    def __init__(self, slaves: _Optional[_Iterable[_Union[SlaveInfo, _Mapping]]] = ...) -> None: ...

class DescribeMethodRequest(_message.Message):
    __slots__ = ("method",)
    METHOD_FIELD_NUMBER: _ClassVar[int]
    method: str
    def __init__(self, method: _Optional[str] = ...) -> None: ...

class FieldInfo(_message.Message):
    __slots__ = ("name", "json_name", "type", "type_name", "repeated", "map", "enum_values", "default", "comment", "secret", "number")
    NAME_FIELD_NUMBER: _ClassVar[int]
    JSON_NAME_FIELD_NUMBER: _ClassVar[int]
    TYPE_FIELD_NUMBER: _ClassVar[int]
    TYPE_NAME_FIELD_NUMBER: _ClassVar[int]
    REPEATED_FIELD_NUMBER: _ClassVar[int]
    MAP_FIELD_NUMBER: _ClassVar[int]
    ENUM_VALUES_FIELD_NUMBER: _ClassVar[int]
    DEFAULT_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    SECRET_FIELD_NUMBER: _ClassVar[int]
    NUMBER_FIELD_NUMBER: _ClassVar[int]
    name: str
    json_name: str
    type: str
    type_name: str
    repeated: bool
    map: bool
    enum_values: _containers.RepeatedScalarFieldContainer[str]
    default: str
    comment: str
    secret: bool
    number: int
    def __init__(self, name: _Optional[str] = ..., json_name: _Optional[str] = ..., type: _Optional[str] = ..., type_name: _Optional[str] = ..., repeated: _Optional[bool] = ..., map: _Optional[bool] = ..., enum_values: _Optional[_Iterable[str]] = ..., default: _Optional[str] = ..., comment: _Optional[str] = ..., secret: _Optional[bool] = ..., number: _Optional[int] = ...) -> None: ...

class MessageInfo(_message.Message):
    __slots__ = ("full_name", "fields", "comment")
    FULL_NAME_FIELD_NUMBER: _ClassVar[int]
    FIELDS_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    full_name: str
    fields: _containers.RepeatedCompositeFieldContainer[FieldInfo]
    comment: str
    def __init__(self, full_name: _Optional[str] = ..., fields: _Optional[_Iterable[_Union[FieldInfo, _Mapping]]] = ..., comment: _Optional[str] = ...) -> None: ...

class MethodInfo(_message.Message):
    __slots__ = ("method", "request_type", "response_type", "server_streaming", "client_streaming", "messages", "policy", "slaves", "comment")
    METHOD_FIELD_NUMBER: _ClassVar[int]
    REQUEST_TYPE_FIELD_NUMBER: _ClassVar[int]
    RESPONSE_TYPE_FIELD_NUMBER: _ClassVar[int]
    SERVER_STREAMING_FIELD_NUMBER: _ClassVar[int]
    CLIENT_STREAMING_FIELD_NUMBER: _ClassVar[int]
    MESSAGES_FIELD_NUMBER: _ClassVar[int]
    POLICY_FIELD_NUMBER: _ClassVar[int]
    SLAVES_FIELD_NUMBER: _ClassVar[int]
    COMMENT_FIELD_NUMBER: _ClassVar[int]
    method: str
    request_type: str
    response_type: str
    server_streaming: bool
    client_streaming: bool
    messages: _containers.RepeatedCompositeFieldContainer[MessageInfo]
    policy: _options_pb2.JobPolicy
    slaves: _containers.RepeatedScalarFieldContainer[str]
    comment: str
    def __init__(self, method: _Optional[str] = ..., request_type: _Optional[str] = ..., response_type: _Optional[str] = ..., server_streaming: _Optional[bool] = ..., client_streaming: _Optional[bool] = ..., messages: _Optional[_Iterable[_Union[MessageInfo, _Mapping]]] = ..., policy: _Optional[_Union[_options_pb2.JobPolicy, _Mapping]] = ..., slaves: _Optional[_Iterable[str]] = ..., comment: _Optional[str] = ...) -> None: ...

class RemoveSlaveRequest(_message.Message):
    __slots__ = ("address",)
    ADDRESS_FIELD_NUMBER: _ClassVar[int]
    address: str
    def __init__(self, address: _Optional[str] = ...) -> None: ...

class RemoveSlaveResponse(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class BackupRequest(_message.Message):
    __slots__ = ("chunk_bytes",)
    CHUNK_BYTES_FIELD_NUMBER: _ClassVar[int]
    chunk_bytes: int
    def __init__(self, chunk_bytes: _Optional[int] = ...) -> None: ...

class BackupChunk(_message.Message):
    __slots__ = ("data", "total_bytes")
    DATA_FIELD_NUMBER: _ClassVar[int]
    TOTAL_BYTES_FIELD_NUMBER: _ClassVar[int]
    data: bytes
    total_bytes: int
    def __init__(self, data: _Optional[bytes] = ..., total_bytes: _Optional[int] = ...) -> None: ...

class ListTriggersRequest(_message.Message):
    __slots__ = ()
    def __init__(self) -> None: ...

class TriggerInfo(_message.Message):
    __slots__ = ("trigger", "name", "kind", "method", "path", "when", "next_time", "last_job")
    TRIGGER_FIELD_NUMBER: _ClassVar[int]
    NAME_FIELD_NUMBER: _ClassVar[int]
    KIND_FIELD_NUMBER: _ClassVar[int]
    METHOD_FIELD_NUMBER: _ClassVar[int]
    PATH_FIELD_NUMBER: _ClassVar[int]
    WHEN_FIELD_NUMBER: _ClassVar[int]
    NEXT_TIME_FIELD_NUMBER: _ClassVar[int]
    LAST_JOB_FIELD_NUMBER: _ClassVar[int]
    trigger: str
    name: str
    kind: str
    method: str
    path: str
    when: str
    next_time: _timestamp_pb2.Timestamp
    last_job: _jobs_pb2.Job
    def __init__(self, trigger: _Optional[str] = ..., name: _Optional[str] = ..., kind: _Optional[str] = ..., method: _Optional[str] = ..., path: _Optional[str] = ..., when: _Optional[str] = ..., next_time: _Optional[_Union[datetime.datetime, _timestamp_pb2.Timestamp, _Mapping]] = ..., last_job: _Optional[_Union[_jobs_pb2.Job, _Mapping]] = ...) -> None: ...

class ListTriggersResponse(_message.Message):
    __slots__ = ("triggers",)
    TRIGGERS_FIELD_NUMBER: _ClassVar[int]
    triggers: _containers.RepeatedCompositeFieldContainer[TriggerInfo]
    def __init__(self, triggers: _Optional[_Iterable[_Union[TriggerInfo, _Mapping]]] = ...) -> None: ...
